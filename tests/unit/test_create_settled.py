"""A launch cancelled while its create call is out still records the VM that call made, even when the
cancel lands in the very step the call returns (a destroy pressed as the VM comes into being)."""

from __future__ import annotations

import asyncio

import pytest

from maider_tui.clock import SystemClock
from maider_tui.ops.provision import _Launch


def bare_launch() -> _Launch:
    """A launch with only what `_settled` uses: its name, a clock and an event sink."""
    launch = object.__new__(_Launch)
    launch.name, launch.clock, launch.emit = "settled", SystemClock(), lambda event: None
    return launch


async def test_a_cancel_at_any_step_of_a_create_never_loses_the_vm_it_made():
    lost, cancelled_after_create = 0, 0
    for step in range(1, 40):  # from 1: the launch has started and sent its create
        made_by_api: list[str] = []
        recorded: list[str] = []

        async def create() -> str:
            for _ in range(6):  # the call's own awaits (its thread, the HTTP round trip)
                await asyncio.sleep(0)
            made_by_api.append("vm-1")
            return "vm-1"

        async def made(vm: str) -> None:
            recorded.append(vm)

        task = asyncio.ensure_future(bare_launch()._settled(create(), made))
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        try:
            result = await task
        except asyncio.CancelledError:
            if made_by_api:
                cancelled_after_create += 1
                lost += recorded != ["vm-1"]
        else:
            assert result == "vm-1"  # it finished before the cancel: the caller records it
    assert cancelled_after_create > 0  # the sweep did cancel after the create had made its VM
    assert lost == 0, f"{lost} VMs made by a create were never recorded"
