"""How long each provisioning wait may take: apart from readiness.py, so the app can make its limits at
start-up without importing SSH and the cloud client."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maider_tui.settings import ReadinessSettings


@dataclass(frozen=True)
class ReadinessLimits:
    """How long each wait may take, in seconds of the injected clock, and how often it polls.

    vllm_s applies to each start attempt (a heal restarts the container, and the clock). time_scale
    divides the ETAs shown to the user: the simulated cloud at speed 1000 finishes 1000 times sooner.
    """

    running_s: float = 10 * 60
    ssh_s: float = 20 * 60
    cloud_init_s: float = 30 * 60
    vllm_s: float = 40 * 60
    poll_s: float = 3.0
    command_timeout_s: float = 60.0
    time_scale: float = 1.0

    @classmethod
    def from_settings(cls, readiness: ReadinessSettings) -> "ReadinessLimits":
        """The limits the user set (settings.readiness, in minutes)."""
        return cls(running_s=readiness.running_minutes * 60, ssh_s=readiness.ssh_minutes * 60,
                   cloud_init_s=readiness.cloud_init_minutes * 60, vllm_s=readiness.vllm_minutes * 60)

    def scaled(self, factor: float, *, min_poll_s: float = 0.02) -> ReadinessLimits:
        """The limits for a cloud `factor` times faster than real (the simulated cloud's speed)."""
        return replace(self, running_s=self.running_s / factor, ssh_s=self.ssh_s / factor,
                       cloud_init_s=self.cloud_init_s / factor, vllm_s=self.vllm_s / factor,
                       poll_s=max(min_poll_s, self.poll_s / factor), time_scale=self.time_scale * factor)
