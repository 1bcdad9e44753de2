"""The simulated cloud: a fake Linode API, GPU VMs behind real SSH servers, and fake vLLM servers.

`SimCloud` starts it all in its own thread; `SimFaults` switches on what real clouds do wrong.
Both are imported on first use, so the app against a cloud in another process (`maider_tui.sim.remote`)
does not load the simulator itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maider_tui.sim.cloud import SimCloud
    from maider_tui.sim.faults import SimFaults

__all__ = ["SimCloud", "SimFaults"]


def __getattr__(name: str) -> Any:
    if name == "SimCloud":
        from maider_tui.sim.cloud import SimCloud

        return SimCloud
    if name == "SimFaults":
        from maider_tui.sim.faults import SimFaults

        return SimFaults
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
