"""A simulated cloud shared by one test module, with its faults reset around every test."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from maider_tui.ops.limits import ReadinessLimits
from maider_tui.remote.ssh import SshSession, SshUnreachable
from maider_tui.sim import SimCloud, SimFaults

# The real seconds a launch's waits may take on the sim before they fail. Only a failure waits this
# long; it is generous so that a suite on 2 busy cores never fails a wait that would have succeeded.
WAIT_S = 60


def sim_limits(time_scale: float = 1000) -> ReadinessLimits:
    """Readiness limits for a launch on the sim: WAIT_S real seconds per wait, short polls (the sim
    runs `time_scale` times faster than real time)."""
    return ReadinessLimits(running_s=WAIT_S, ssh_s=WAIT_S, cloud_init_s=WAIT_S, vllm_s=WAIT_S, poll_s=0.02,
                           time_scale=time_scale)


def reset_faults(faults: SimFaults) -> None:
    """Every fault back to its default, in place (the running VMs share the object)."""
    for f in dataclasses.fields(SimFaults):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        setattr(faults, f.name, default)


def module_sim(seed: int):
    """Fixtures `sim` (one SimCloud at speed 1000 for the module) and `clean_faults` (autouse):
    `sim, clean_faults = module_sim(seed=4)` at a test module's top level."""

    @pytest.fixture(scope="module")
    def sim():
        with SimCloud(speed=1000, seed=seed) as cloud:
            yield cloud

    @pytest.fixture(autouse=True)
    def clean_faults(sim: SimCloud):
        reset_faults(sim.faults)
        yield
        reset_faults(sim.faults)

    return sim, clean_faults


async def ssh_when_up(address: tuple[str, int], client_pem: str, host_key: str, *, timeout: float = 20.0,
                      **session: object) -> SshSession:
    """The app's SshSession to a sim VM, connected once its sshd answers (it boots at the sim's speed);
    `session` goes to SshSession (backoff ...)."""
    ssh = SshSession(*address, client_keys=[client_pem], known_host_key=host_key, **session)
    end = time.monotonic() + timeout
    while True:
        try:
            await ssh.connect()
            return ssh
        except SshUnreachable:
            assert time.monotonic() < end, "the VM never answered SSH"
            await asyncio.sleep(0.02)
