"""`SimCloud`: the whole simulated cloud in its own thread and event loop.

One fake Linode API (real HTTP) and, for every instance created through it, a simulated GPU VM
behind its own asyncssh server. The app, the tests and `python -m maider_tui.sim` talk to it only
over those real protocols; `vm()` lets a test look inside a VM.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from maider_tui.sim.faults import SimFaults
from maider_tui.sim.hub import HUB_PREFIX
from maider_tui.sim.linode_api import run_linode_api
from maider_tui.sim.ssh_server import VmSshd
from maider_tui.sim.vm import SimVm
from maider_tui.sim.world import SimInstance, World

if TYPE_CHECKING:
    from maider_tui.store import Store
    from maider_tui.cloud.linode import LinodeProvider

log = logging.getLogger(__name__)
T = TypeVar("T")


class VmManager:
    """Lives on the sim loop: a SimVm and its sshd for each instance, from "created" to "deleted"."""

    def __init__(self, world: World, loop: asyncio.AbstractEventLoop, *, host: str = "127.0.0.1") -> None:
        self.world, self.loop, self.host = world, loop, host
        self.vms: dict[int, SimVm] = {}
        self.sshds: dict[int, VmSshd] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._thread_id = threading.get_ident()  # made on the loop's own thread
        self._unsubscribe = world.subscribe(self._on_event)

    def _on_event(self, event: str, instance: SimInstance) -> None:
        # The world emits on whichever thread changed it (a test may create from its own thread).
        if threading.get_ident() == self._thread_id:
            self._handle(event, instance)
        else:
            self.loop.call_soon_threadsafe(self._handle, event, instance)

    def _handle(self, event: str, instance: SimInstance) -> None:
        if event == "created" and instance.id not in self.vms:
            vm = SimVm(self.world, instance, seed=self.world.seed)
            sshd = VmSshd(vm, self.host)
            self.vms[instance.id], self.sshds[instance.id] = vm, sshd
            sshd.watch()
        elif event == "deleted" and instance.id in self.vms:
            vm, sshd = self.vms.pop(instance.id), self.sshds.pop(instance.id)
            task = self.loop.create_task(self._remove(vm, sshd))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        elif event == "rebooted" and instance.id in self.vms:
            self.vms[instance.id].reboot()
            self.loop.create_task(self.sshds[instance.id].go_down())

    @staticmethod
    async def _remove(vm: SimVm, sshd: VmSshd) -> None:
        vm.stopped = True
        await sshd.close()
        await vm.close()

    async def close(self) -> None:
        self._unsubscribe()
        for instance_id in list(self.vms):
            await self._remove(self.vms.pop(instance_id), self.sshds.pop(instance_id))
        await asyncio.gather(*self._closing, return_exceptions=True)


class SimCloud:
    """The simulated cloud: `with SimCloud(speed=500) as sim: provider = sim.provider()`.

    speed: sim seconds per real second (1 = realistic minutes; tests use 500-2000). faults: a
    `SimFaults` shared with the world, editable while the cloud runs. big_plan_gpus: also offer a
    sim-only plan with that many GPUs (`world.big_plan`), for measuring the dashboard with 8.
    """

    def __init__(self, speed: float = 1.0, seed: int = 0, faults: SimFaults | None = None, *,
                 host: str = "127.0.0.1", api_port: int = 0, big_plan_gpus: int | None = None) -> None:
        self.world = World(speed, seed, faults, big_plan_gpus=big_plan_gpus)
        self.host, self.api_port = host, api_port
        self.linode_base_url = ""
        self.hf_base_url = ""
        """The simulated Hugging Face Hub, on the API's server under /hf (sim/hub.py)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._manager: VmManager | None = None
        self._runner: web.AppRunner | None = None
        self._thread_id: int | None = None

    @property
    def token(self) -> str:
        """The bearer token the fake API accepts."""
        return self.world.token

    @property
    def faults(self) -> SimFaults:
        return self.world.faults

    @property
    def speed(self) -> float:
        return self.world.speed

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SimCloud:
        """Start the loop thread, the fake API and the VM manager; returns when all answer."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._thread_id = threading.get_ident()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._setup(loop))
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="maider-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            loop.close()
            self._thread = self._loop = None
            raise failure[0]
        return self

    async def _setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self._manager = VmManager(self.world, loop, host=self.host)
        self._runner, self.linode_base_url = await run_linode_api(
            self.world, self.host, self.api_port, ssh_info=self._ssh_info)
        self.hf_base_url = self.linode_base_url.removesuffix("/v4") + HUB_PREFIX

    def close(self) -> None:
        """Stop every VM and server, then the loop; leaves no task pending."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
            self._loop = self._thread = None

    async def _shutdown(self) -> None:
        if self._manager is not None:
            await self._manager.close()
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self) -> SimCloud:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- calls into the sim loop ------------------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run a coroutine on the sim's loop from another thread and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the simulated cloud is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _on_loop(self) -> bool:
        return self._loop is not None and threading.get_ident() == self._thread_id

    def _lookup(self, instance_id: int) -> tuple[SimVm, VmSshd]:
        if self._manager is None:
            raise RuntimeError("the simulated cloud is not running: call start() first")
        if not self._on_loop():
            self.call(asyncio.sleep(0))  # let a create made from this thread reach the manager first
        try:
            return self._manager.vms[instance_id], self._manager.sshds[instance_id]
        except KeyError:
            raise LookupError(f"no simulated VM with id {instance_id} (never created, or deleted)") from None

    def ssh_address(self, instance_id: int) -> tuple[str, int]:
        """(host, port) of the VM's SSH server, stable from create to delete."""
        sshd = self._lookup(instance_id)[1]
        return sshd.host, sshd.port

    def _ssh_info(self, instance_id: int) -> dict[str, Any]:
        """The control plane's view of a VM's SSH server (called on the sim loop)."""
        if self._manager is None or instance_id not in self._manager.sshds:
            raise LookupError(f"no simulated VM with id {instance_id} (never created, or deleted)")
        sshd = self._manager.sshds[instance_id]
        return {"ssh_host": sshd.host, "ssh_port": sshd.port, "ssh_handshakes": sshd.handshakes}

    def vm(self, instance_id: int) -> SimVm:
        """The VM itself, for tests: files, containers, GPUs, the vLLM server."""
        return self._lookup(instance_id)[0]

    def ssh_handshakes(self, instance_id: int) -> int:
        """SSH logins (successful authentications) the VM has seen."""
        return self._lookup(instance_id)[1].handshakes

    def ssh_connections(self, instance_id: int) -> int:
        """Connections the VM's SSH server accepted, whether or not a login followed."""
        return self._lookup(instance_id)[1].accepted

    def provider(self, store: Store | None = None) -> LinodeProvider:
        """The app's own LinodeProvider, wired to this cloud's API and SSH ports."""
        from maider_tui.cloud.linode import LinodeProvider  # sim must not import cloud/ at module level

        return LinodeProvider(self.token, base_url=self.linode_base_url, store=store,
                              ssh_resolver=self.ssh_address)
