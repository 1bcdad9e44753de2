"""Where the files a user asks for land: validation reports, benchmark exports and screenshots go to the
`files.exports_dir` setting, else `exports/` in the data folder, never the current directory (a clone of
the repository, when run from one). A name typed without a folder lands there; `~/...` and absolute paths
are taken as given."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..paths import AppPaths
    from ..settings import Settings


def exports_folder(paths: AppPaths, settings: Settings | None = None) -> Path:
    """The folder exports go to: the configured one, else the data folder's `exports`."""
    configured = settings.files.exports_dir if settings is not None else None
    return Path(configured).expanduser() if configured else paths.data_dir / "exports"


def resolve(folder: Path, typed: str) -> Path:
    """The file `typed` names: relative names under `folder`. RuntimeError for `~someone` unknown here."""
    path = Path(typed.strip()).expanduser()
    return path if path.is_absolute() else folder / path


def prepare(folder: Path, typed: str) -> Path:
    """`resolve`, and make the exports folder itself when the file goes in it (a folder the user names
    elsewhere is theirs to make); OSError says why it could not."""
    target = resolve(folder, typed)
    if target.parent == folder:
        folder.mkdir(parents=True, exist_ok=True)
    return target


def write_text(folder: Path, name: str, text: str) -> Path:
    """Write `text` to `name` in the exports folder (made if missing) and return the whole path."""
    target = prepare(folder, name)
    target.write_text(text, encoding="utf-8")
    return target
