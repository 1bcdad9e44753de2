"""A live session with nothing behind it, for drawing the dashboard without SSH, HTTP or a cloud.

The dashboard asks `LiveSessions` for a session's handle (its record, config, SSH state and endpoint)
and watchdog. These stand-ins answer with fixed values; the caller feeds the screen GPU snapshots and
vLLM readings itself (`DashboardScreen(..., stream=False)`). The dashboard's snapshot tests and the
canned dashboard of `benchmarks/dashboard_cpu.py` both build the screen from them, so they live in
the package rather than under `tests/`, which the benchmarks must run without.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maider_tui.models import VllmConfig
from maider_tui.ops.live import LiveSession
from maider_tui.store import SessionRecord

if TYPE_CHECKING:
    from maider_tui.store import Store

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBu7nkV0rJ1S3ff2a1I4d0Wb7x6xHCnCx0jH3V7z2Jc1 maider"


class FakeSsh:
    host, port, state = "127.0.0.1", 2201, "connected"

    def on_state(self, callback: Callable[..., Any]) -> Callable[[], None]:
        return lambda: None


@dataclass
class FakeHandle:
    name: str
    record: SessionRecord
    config: VllmConfig
    ssh: FakeSsh = field(default_factory=FakeSsh)
    endpoint: str = "http://127.0.0.1:8000/v1"
    local_port: int = 8000
    max_model_len: int = 32768
    heals: int = 0


@dataclass
class FakeWatchdog:
    state: str = "watching"
    idle_s: float = 350.0
    remaining_s: float = 1450.0
    unreachable: bool = False
    warning_s: float = 300.0
    holds: list[Any] = field(default_factory=list)
    extended: int = 0

    def extend(self) -> None:
        self.extended += 1
        self.idle_s, self.remaining_s = 0.0, 1800.0

    def hold(self, reason: str) -> None:
        self.holds.append(reason)
        self.state = "paused"

    def release(self) -> None:
        if self.holds:
            self.holds.pop()
        if not self.holds:
            self.state = "watching"
            self.idle_s, self.remaining_s = 0.0, 1800.0


class FakeLive:
    """What the dashboard asks of LiveSessions, with one connected session and nothing streaming."""

    def __init__(self, handle: Any, watchdog: Any | None, store: Store | None = None) -> None:
        self.session = LiveSession(handle.name, handle=handle, watchdog=watchdog)
        self.store, self.settings, self.limits = store, None, None  # what the ops of vllm_care read

    def get(self, name: str) -> LiveSession | None:
        return self.session if name == self.session.name else None

    def subscribe(self, listener: Callable[..., Any]) -> Callable[[], None]:
        return lambda: None
