"""App-level entry to GPU validation, a mixin of MaiderApp (the dashboard's `v` key calls it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ValidateActions:
    """Needs `self.context` (AppContext) and `self.live` (LiveSessions or None)."""

    def open_validation(self, name: str, *, full: bool = False,
                        run_options: Mapping[str, Any] | None = None) -> None:
        """Show the validation screen of session `name` and start a quick check (or, with `full`, all of it).

        `run_options` ({"quick": {...}, "full": {...}}) pass keyword arguments to the ops, e.g. a
        `duration_scale` or fewer `max_tokens` in tests.
        """
        from .screens.validation import ValidationScreen

        live = self.live.get(name) if self.live is not None else None  # type: ignore[attr-defined]
        if live is None or live.handle is None:
            self.notify(f"{name} is not connected: open its dashboard and reconnect first.",  # type: ignore[attr-defined]
                        severity="warning")
            return
        self.push_screen(ValidationScreen(self.context, self.live, name, full=full,  # type: ignore[attr-defined]
                                          run_options=run_options))
