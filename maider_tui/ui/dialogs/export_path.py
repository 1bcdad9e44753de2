"""Ask for a file path (export or import); a `check` callback refuses a bad answer in place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ...ops.exports import resolve

# Export formats by file ending; anything else is refused before a file is touched.
FORMATS_BY_SUFFIX = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown"}


def export_format(path: str) -> str | None:
    """The export format a path's ending asks for, or None for an ending we cannot write."""
    lower = path.strip().lower()
    return next((fmt for suffix, fmt in FORMATS_BY_SUFFIX.items() if lower.endswith(suffix)), None)


def check_file_path(path: str, exports: Path | None = None) -> str | None:
    """Why a file cannot be written at `path` (a message), or None when it may be: the dialog stays
    open on a folder, a folder that does not exist or one we may not write in. A relative `path` is
    under `exports` (the exports folder, which the app makes when missing)."""
    if not path.strip():
        return "Type a file name, e.g. benchmarks.json."
    if any(ord(c) < 32 for c in path):
        return "A file name cannot hold control characters: type it again."
    try:
        target = resolve(exports, path) if exports is not None else Path(path.strip()).expanduser()
        folder = target.parent
        if target.is_dir():
            return f"{target} is a folder: add a file name, like {target / 'benchmarks.csv'}."
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder: choose another path."
        if folder == exports and not folder.exists():  # the app makes its exports folder as it writes
            return _creatable(folder, target)
        if not folder.is_dir():
            return f"The folder {folder} does not exist: create it first, or choose another path."
    except RuntimeError:  # "~someone" for a user this machine does not know
        return f"Cannot tell whose home folder {path.strip().split('/')[0]} is: type the whole path."
    except OSError as exc:  # a name too long for the file system, a folder we may not look into
        return f"Cannot use this path: {exc.strerror or exc}. Choose another."
    if not os.access(folder, os.W_OK):
        return f"Cannot write in {folder}: choose a folder you can write to."
    return None


def _creatable(folder: Path, target: Path) -> str | None:
    """Why `target` cannot be written once the missing `folder` is made, or None when it can."""
    if len(os.fsencode(target.name)) > 255:
        return "Cannot use this path: File name too long. Choose another."
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        return f"Cannot make the folder {folder}: choose a folder you can write to."
    return None


def check_export_path(path: str, exports: Path | None = None) -> str | None:
    """Why `path` cannot be an export target (a message), or None when it can."""
    if not path.strip():
        return "Type a file name, e.g. benchmarks.csv."
    if export_format(path) is None:
        return "End the name with .csv, .json or .md to choose the format."
    return check_file_path(path, exports)


class PathDialog(ModalScreen[str | None]):
    """One line of input for a path: `enter` answers (once `check` accepts it), `escape` cancels."""

    DEFAULT_CSS = """
    PathDialog {
        align: center middle;
    }
    PathDialog > Vertical {
        width: 72;
        max-width: 95%;
        height: auto;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    PathDialog #path-title {
        text-style: bold;
        margin-bottom: 1;
    }
    PathDialog #path-error {
        color: $error;
        height: auto;
    }
    PathDialog #path-help {
        color: $text-muted;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="path.cancel", tooltip="Close without doing anything"),
    ]

    def __init__(self, title: str, help_text: str, default: str = "",
                 check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self._title, self._help, self._default, self._check = title, help_text, default, check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title, id="path-title", markup=False)
            yield Input(self._default, id="path-input", placeholder="path/to/file")
            yield Static("", id="path-error", markup=False)
            yield Static(self._help, id="path-help", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.value)

    def submit(self, value: str) -> None:
        """Answer with `value`, or show why it is refused and keep the dialog open."""
        problem = self._check(value) if self._check is not None else None
        if problem:
            self.query_one("#path-error", Static).update(problem)
            return
        self.dismiss(value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
