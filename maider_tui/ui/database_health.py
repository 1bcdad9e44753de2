"""The session database's health, said on screen: a lock another program holds, a file that cannot
be read (with the offer to move it aside). MaiderApp owns one; ops.database does the file work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dialogs.confirm import ConfirmDialog

if TYPE_CHECKING:
    from ..app import MaiderApp


class DatabaseHealth:
    def __init__(self, app: MaiderApp) -> None:
        self.app = app
        self._said_locked = False  # the database's lock was told for the episode under way

    def watch_lock(self) -> None:
        """The database says when another program locks it and when it lets go (writes come from
        worker threads too, so it posts a message)."""
        from ..ops.database import watch_lock
        from .messages import StoreLock

        def changed(locked: bool) -> None:
            self.app.post_message(StoreLock(locked))

        watch_lock(self.app.context, changed)

    def lock_changed(self, locked: bool) -> None:
        """Once per episode: writes fail while another program holds the database (the store then
        stops waiting the full busy timeout on each, so the app stays responsive)."""
        if locked and not self._said_locked:
            from ..paths import display_path

            where = display_path(self.app.context.paths.database)
            self.app.notify(f"{where} is locked by another program: changes are not saved until it lets go. "
                            "Close it (another maider-tui, a sqlite3 shell).",
                            title="Database", severity="error", timeout=30)
        self._said_locked = locked

    def offer_recovery(self) -> None:
        """The database could not be opened: say why, and offer to move a broken one aside."""
        from ..ops.database import broken_beyond_reading

        context = self.app.context
        error = context.store_error
        if not broken_beyond_reading(context):
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
        from ..ops.database import StoreError, reopen

        try:
            moved = await reopen(self.app.context)
        except StoreError as exc:
            self.app.notify(f"{exc} Nothing will be saved this time.", title="Database", severity="error",
                            timeout=30)
            return
        except OSError as exc:
            self.app.notify(f"Could not move the broken database aside: {exc.strerror or exc}. Nothing will be "
                            "saved this time.", title="Database", severity="error", timeout=30)
            return
        self.watch_lock()
        self.app.database_reopened()
        self.app.notify(f"Moved the broken database to {moved.name}; started a new one.", title="Database")
