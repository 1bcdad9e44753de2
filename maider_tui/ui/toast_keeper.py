"""The toasts the app raised, so that those about a session are taken down when the session ends
("qwen-… kept: ssh …" means nothing once that VM is destroyed).

Textual's `App.notify` returns nothing and offers no public way to take one toast down; the app
raises every toast through `raise_toast` (its `notify`), which keeps the `Notification`, and takes
toasts down with `clear_notifications` and raises the others again, each for the time it had left.
"""

from __future__ import annotations

import re
from typing import Any

from textual.app import App
from textual.content import Content
from textual.notifications import Notification, Notify


class ToastKeeper:
    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self._raised: list[Notification] = []

    def raise_toast(self, notification: Notification) -> None:
        self._raised = [n for n in self._raised if not n.has_expired] + [notification]
        self.app.post_message(Notify(notification))

    def dismiss_about(self, session: str) -> int:
        """Take down every toast up now whose title or text names `session`; return how many."""
        names = re.compile(rf"(?<![\w.-]){re.escape(session)}(?![\w-])")
        up = [n for n in self._raised if not n.has_expired]
        shown = {str(toast.render()) for toast in self.app.screen.query("Toast")}
        if shown:  # one the user clicked away is not raised again (none shown: not drawn yet, keep all)
            up = [n for n in up if _as_drawn(n) in shown]
        keep = [n for n in up if not (names.search(n.title) or names.search(n.message))]
        if len(keep) == len(up):
            self._raised = keep
            return 0
        self.app.clear_notifications()
        # New objects for the same toasts: Textual keeps the place of a toast it has shown once.
        self._raised = []
        for n in keep:
            self.raise_toast(Notification(n.message, n.title, n.severity, max(n.time_left, 0.1), markup=n.markup))
        return len(up) - len(keep)

    def clear(self) -> None:
        """Take every toast down (a dialog whose buttons they would cover)."""
        self._raised = []
        self.app.clear_notifications()


def _as_drawn(notification: Notification) -> str:
    """A toast's text as its widget draws it: the title, then the message."""
    message = notification.message
    try:
        text = Content.from_markup(message).plain if notification.markup else message
    except Exception:  # noqa: BLE001 - markup Textual cannot parse: compared as written
        text = message
    return f"{notification.title}\n{text}" if notification.title else text
