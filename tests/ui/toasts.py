"""What the toasts on screen say, found as a user finds them: the `Toast` widgets in the current
screen's toast rack, each rendered (its title, if any, on the line before its message)."""

from __future__ import annotations

from textual.app import App


def toasts(app: App, severity: str | None = None) -> list[str]:
    """The text of each toast on `app`'s current screen (of one severity: "information", "warning",
    "error"), oldest first. A notification shows once the app has had a pause to mount its toast."""
    selector = "Toast" if severity is None else f"Toast.-{severity}"
    return [str(toast.render()) for toast in app.screen.query(selector)]
