"""The Watchdog panel: how long the session has been idle and when the watchdog will destroy it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cost_panel import format_countdown
from .lines import LinePanel

if TYPE_CHECKING:
    from ...ops.watchdog import Watchdog


@dataclass(frozen=True)
class WatchdogView:
    """A frozen reading of an ops.watchdog.Watchdog (or of none: `off`)."""

    off: bool = True
    state: str = ""
    idle_s: float | None = None
    remaining_s: float | None = None
    unreachable: bool = False
    hold_reason: str | None = None
    warning_s: float | None = None
    ended: bool = False  # the session is over: its VM is gone
    kept: bool = False  # no model serving: it goes at a deadline, whatever its use

    @classmethod
    def of(cls, watchdog: Watchdog | None, *, ended: bool = False) -> WatchdogView:
        """Read the watchdog's public attributes once, so one redraw sees one consistent state."""
        if ended:
            return cls(off=False, state="ended", ended=True,
                       idle_s=getattr(watchdog, "idle_s", None) if watchdog is not None else None)
        if watchdog is None:
            return cls()
        return cls(off=False, state=str(getattr(watchdog, "state", "watching")),
                   idle_s=getattr(watchdog, "idle_s", None), remaining_s=getattr(watchdog, "remaining_s", None),
                   unreachable=bool(getattr(watchdog, "unreachable", False)),
                   hold_reason=(list(getattr(watchdog, "holds", None) or []) or [None])[-1],
                   warning_s=getattr(watchdog, "warning_s", None), kept=bool(getattr(watchdog, "kept", False)))


def watchdog_lines(view: WatchdogView) -> list[str]:
    """The panel's lines."""
    if view.ended:
        return ["session ended", "its VM is gone: nothing bills"]
    if view.off:
        return ["watchdog off", "this VM runs until you destroy it"]
    if view.state in ("destroying", "destroyed", "stopped"):
        return [f"idle {format_countdown(view.idle_s)}", view.state]
    if view.state == "paused":
        second = f"paused · {view.hold_reason}" if view.hold_reason else "paused"
        return [f"idle {format_countdown(view.idle_s)} · timer held", second]
    if view.kept:
        return [f"kept {format_countdown(view.idle_s)} · destroys in {format_countdown(view.remaining_s)}",
                f"{view.state} · no model serving · e extends"]
    first = f"idle {format_countdown(view.idle_s)} · destroys in {format_countdown(view.remaining_s)}"
    if view.unreachable:
        second = f"{view.state} · VM unreachable, timer running"
    elif view.state == "watching" and view.warning_s:
        second = f"watching · warns at {format_countdown(view.warning_s)} left"
    else:
        second = f"{view.state} · e extends"
    return [first, second]


class WatchdogPanel(LinePanel):
    """Two lines; coloured $warning in the warning window, $error once destroying. The countdown line
    changes every second and repaints alone."""

    DEFAULT_CSS = """
    WatchdogPanel { height: auto; }
    WatchdogPanel.-warning { color: $warning; text-style: bold; }
    WatchdogPanel.-destroying { color: $error; text-style: bold; }
    WatchdogPanel.-off { color: $text-muted; }
    """

    def show(self, view: WatchdogView) -> None:
        self.set_class(view.state == "warning", "-warning")
        self.set_class(view.state in ("destroying", "destroyed"), "-destroying")
        self.set_class(view.off or view.ended, "-off")
        self.show_lines(watchdog_lines(view))
