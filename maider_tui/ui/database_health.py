"""The session database's health, said on screen: a lock another program holds, a file that cannot
be read (with the offer to move it aside). MaiderApp owns one; ops.database does the file work."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .dialogs.confirm import ConfirmDialog

if TYPE_CHECKING:
    from ..app import MaiderApp


class DatabaseHealth:
    def __init__(self, app: MaiderApp) -> None:
        self.app = app
        self._said_locked = False  # the database's lock was told for the episode under way

    def watch_lock(self) -> None:
        """The store says when another program locks the database and when it lets go (writes come
        from worker threads too, so it posts a message)."""
        from .messages import StoreLock

        store = self.app.context.store
        if store is None:
            return
        def changed(locked: bool) -> None:
            self.app.post_message(StoreLock(locked))

        store.on_lock_change = changed
        if store.locked:  # it happened before anyone listened
            self.app.post_message(StoreLock(True))

    def lock_changed(self, locked: bool) -> None:
        """Once per episode: writes fail while another program holds the database (the store then
        stops waiting the full busy timeout on each, so the app stays responsive)."""
        store = self.app.context.store
        if locked and not self._said_locked and store is not None:
            from ..paths import display_path

            self.app.notify(f"{display_path(store.path)} is locked by another program: changes are not saved "
                            "until it lets go. Close it (another maider-tui, a sqlite3 shell).",
                            title="Database", severity="error", timeout=30)
        self._said_locked = locked

    def offer_recovery(self) -> None:
        """The database could not be opened: say why, and offer to move a broken one aside."""
        from ..store import StoreCorruptError

        context = self.app.context
        error = context.store_error
        if not isinstance(error, StoreCorruptError):
            self.app.notify(str(error), title="Database", severity="error", timeout=30)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.app.notify("Running without a database: nothing will be saved this time.",
                                title="Database", severity="warning", timeout=20)
                return
            self.app.run_worker(self._replace(), exit_on_error=False, description="Start a new database")

        self.app.push_screen(ConfirmDialog(
            "The session database cannot be read",
            f"{error}\n\nMove it aside (renamed, not deleted) and start a new one?",
            yes="Move aside", no="Keep it"), answered)

    async def _replace(self) -> None:
        from ..ops.database import replace_broken
        from ..store import StoreError

        context = self.app.context
        try:
            moved, store = await asyncio.to_thread(replace_broken, context.paths.database, context.clock)
        except StoreError as exc:
            context.store_error = exc
            self.app.notify(f"{exc} Nothing will be saved this time.", title="Database", severity="error",
                            timeout=30)
            return
        except OSError as exc:
            self.app.notify(f"Could not move the broken database aside: {exc.strerror or exc}. Nothing will be "
                            "saved this time.", title="Database", severity="error", timeout=30)
            return
        context.store, context.store_error = store, None
        self.watch_lock()
        self.app.database_reopened()
        self.app.notify(f"Moved the broken database to {moved.name}; started a new one.", title="Database")
