"""Faults of the cloud, the network and vLLM, met by the workflows (LiveSessions, provision, destroy,
telemetry, watchdog) on the simulated cloud: no VM duplicated or lost, nothing half-written used,
and a message that says what happened. docs/reliability.md lists them.
"""

from __future__ import annotations

import asyncio
import time

import asyncssh
import pytest

from maider_tui.clock import ManualClock, SystemClock
from maider_tui.cloud import LinodeProvider, ProviderError
from maider_tui.deploy import compose
from maider_tui.ops.events import FailedEvent, LogEvent, StageEvent, WarningEvent
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.provision import ProvisionFailed
from maider_tui.ops.receipt import session_cost_so_far
from maider_tui.ops.recover import recover
from maider_tui.ops.telemetry import gpu_snapshots
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.remote.vllm import VllmClient
from maider_tui.settings import Settings, WatchdogSettings
from maider_tui.sim import SimCloud
from maider_tui.sim.ssh_server import MemSftp
from maider_tui.store import Store, open_store

from tests.integration.simfix import module_sim, reset_faults

from .test_live_sessions import LIMITS, _plan
from .test_provider import InstantClock


sim, clean_faults = module_sim(seed=9)  # the module's cloud; faults reset around each test


@pytest.fixture
def store(paths) -> Store:
    with open_store(paths.database) as db:
        yield db


def fast_provider(sim: SimCloud, store: Store | None = None, **kwargs) -> LinodeProvider:
    """The app's provider on the sim; its pauses (Retry-After: 1 included) only recorded, not slept."""
    kwargs.setdefault("retry_delays", (0.01, 0.01, 0.01, 0.01))
    return LinodeProvider(sim.token, base_url=sim.linode_base_url, store=store, ssh_resolver=sim.ssh_address,
                          clock=InstantClock(), **kwargs)


def live_sessions(sim: SimCloud, store: Store, paths, provider: LinodeProvider | None = None,
                  clock=None) -> LiveSessions:
    provider = provider or fast_provider(sim, store)
    return LiveSessions(store=store, paths=paths, settings=Settings(), clock=clock or SystemClock(),
                        provider=lambda: provider, hf_token=lambda: None, limits=LIMITS)


def on_stage(live: LiveSessions, stage: str, action) -> list:
    """Run `action()` once, when the launch reaches `stage`; returns the events seen."""
    seen: list = []

    def listener(event) -> None:
        seen.append(event)
        if isinstance(event, StageEvent) and event.stage == stage and not getattr(listener, "done", False):
            listener.done = True
            action()

    live.subscribe(listener)
    return seen


def ours(sim: SimCloud) -> list[int]:
    return [i.id for i in sim.world.list()]


async def until(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- Linode API ------------------------------------------------------------------------------------

async def test_a_launch_through_429s_503s_and_a_lost_reply_on_create_makes_one_vm(sim, store, paths):
    live = live_sessions(sim, store, paths)
    before = set(ours(sim))

    def burst() -> None:  # from the create call on: 429, 429, 503, 503, then a create whose reply is lost
        sim.faults.api_rate_limit_burst, sim.faults.api_error_burst = 2, 2
        sim.faults.create_response_lost = 1

    on_stage(live, "create", burst)
    try:
        session = await live.launch(_plan())
        record = store.get_session(session.name)
        made = set(ours(sim)) - before
        assert made == {record.instance_id}  # exactly one VM, and it is the session's
        assert record.state == "ready" and sim.faults.create_response_lost == 0
        assert sim.world.requests["POST /linode/instances"] == 4  # 429, 429, 503, then the lost reply
    finally:
        await live.close_all()
        await fast_provider(sim).destroy(store.get_session(session.name).instance_id)


async def test_a_launch_whose_create_timed_out_makes_one_vm(sim, store, paths):
    """The POST gets no answer in time (the sim drops it unread): the label is looked up before it is sent again."""
    before = set(ours(sim))

    class Settles(InstantClock):
        async def sleep(self, seconds: float) -> None:
            sim.faults.api_delay_s = 0.0

    provider = LinodeProvider(sim.token, base_url=sim.linode_base_url, store=store, clock=Settles(),
                              ssh_resolver=sim.ssh_address, timeout=0.3, retry_delays=(0.01, 0.01))
    live = live_sessions(sim, store, paths, provider)
    events = on_stage(live, "create", lambda: setattr(sim.faults, "api_delay_s", 0.6))
    posts, looks = sim.world.requests["POST /linode/instances"], sim.world.requests["GET /linode/instances"]
    try:
        session = await live.launch(_plan())
        assert set(ours(sim)) - before == {store.get_session(session.name).instance_id}
        assert sim.world.requests["POST /linode/instances"] == posts + 2
        assert sim.world.requests["GET /linode/instances"] > looks  # looked for the label in between
        assert not [e for e in events if isinstance(e, FailedEvent)]
    finally:
        await live.close_all()
        await fast_provider(sim).destroy(store.get_session(session.name).instance_id)


async def test_create_giving_up_says_so_and_the_vm_it_made_is_not_lost(sim, store, paths):
    live = live_sessions(sim, store, paths)
    before = set(ours(sim))

    def down(event: str, instance) -> None:
        if event == "created":
            sim.faults.api_error_burst = 1000

    # The create lands, its reply is lost, and from then on the API answers 503.
    events = on_stage(live, "create", lambda: setattr(sim.faults, "create_response_lost", 1))
    unsubscribe = sim.world.subscribe(down)
    try:
        with pytest.raises(ProvisionFailed) as failed:
            await live.launch(_plan())
    finally:
        unsubscribe()
    name = failed.value.session
    assert "look for a VM labelled" in failed.value.message and "503" in failed.value.message
    [failure] = [e for e in events if isinstance(e, FailedEvent)]
    assert failure.stage == "create" and name in failure.message
    [made] = set(ours(sim)) - before
    assert store.get_session(name).state == "failed" and store.get_session(name).instance_id is None
    reset_faults(sim.faults)  # the API is back: recovery finds the VM by its label and links it
    sim.faults.api_rate_limit_burst, sim.faults.api_error_burst = 1, 2  # a burst on the list too
    report = await recover(provider=fast_provider(sim, store), store=store, clock=SystemClock())
    assert name in report.linked and made not in {o.id for o in report.orphans}
    assert store.get_session(name).instance_id == made
    await fast_provider(sim).destroy(made)


async def test_a_destroy_that_keeps_failing_keeps_the_session_and_its_watchdog(sim, store, paths):
    live = live_sessions(sim, store, paths)
    session = await live.launch(_plan())
    try:
        dog = live.start_watchdog(session.name, lambda *a: None)
        events: list = []
        live.subscribe(events.append)
        sim.faults.api_error_burst = 1000
        with pytest.raises(ProviderError) as caught:
            await live.destroy(session.name)
        assert str(caught.value) == "Linode API kept answering 503; try again in a minute"
        reset_faults(sim.faults)
        record = store.get_session(session.name)
        assert not record.ended and record.state == "ready"
        assert record.instance_id in ours(sim)
        assert live.get(session.name) is session and session.handle.ssh.state == "connected"
        assert dog.state == "watching" and not session.watchdog_task.done()
        [failure] = [e for e in events if isinstance(e, FailedEvent)]
        assert "the session is kept" in failure.message
        await live.destroy(session.name)  # the API is back: the same session destroys fine
        assert record.instance_id not in ours(sim)
    finally:
        await live.close_all()


async def test_a_destroy_whose_delete_landed_but_timed_out_ends_the_session_once(sim, store, paths):
    """The DELETE reaches Linode, its answer does not (timeout); the retry's 404 means it worked."""
    live = live_sessions(sim, store, paths)
    session = await live.launch(_plan())
    vm_id = store.get_session(session.name).instance_id

    class SlowDelete(InstantClock):
        async def sleep(self, seconds: float) -> None:  # the pause before the retry
            sim.faults.api_delay_s = 0.0
            await until(lambda: vm_id not in ours(sim))  # the first DELETE lands after our timeout

    provider = LinodeProvider(sim.token, base_url=sim.linode_base_url, store=store, clock=SlowDelete(),
                              ssh_resolver=sim.ssh_address, timeout=0.3, retry_delays=(0.01, 0.01))
    original = provider.destroy

    async def delete_slowly(instance_id: int) -> bool:
        sim.faults.api_delay_s = 0.6  # only the DELETE: the token check before it answers at once
        return await original(instance_id)

    provider.destroy = delete_slowly
    live._provider_factory = lambda: provider
    deletes = sim.world.deletes
    try:
        receipt = await live.destroy(session.name)
    finally:
        await live.close_all()
    assert vm_id not in ours(sim) and sim.world.deletes == deletes + 1
    record = store.get_session(session.name)
    assert record.state == "destroyed" and record.cost_usd == pytest.approx(receipt.cost_usd)
    assert "VM " + str(vm_id) + " deleted" in store.events(session.name)[-1].message


# --- SSH -------------------------------------------------------------------------------------------

async def test_an_upload_cut_midway_leaves_no_half_file_and_the_launch_carries_on(sim, store, paths,
                                                                                  monkeypatch):
    cut: list[tuple[str, bool]] = []  # (temporary path, whether the final path existed then)
    write = MemSftp.write

    def cut_once(self, file_obj, offset, data):
        final = next((p for p in (compose.ENV_PATH, compose.COMPOSE_PATH)
                      if file_obj.path.startswith(p.rsplit("/", 1)[0] + "/." + p.rsplit("/", 1)[1])), None)
        if final is not None and final not in [c[0] for c in cut]:
            write(self, file_obj, offset, data[: len(data) // 2])  # half the file, then the line drops
            cut.append((final, final in self._fs.files))
            self.connection.abort()
            return len(data) // 2
        return write(self, file_obj, offset, data)

    monkeypatch.setattr(MemSftp, "write", cut_once)
    live = live_sessions(sim, store, paths)
    events: list = []
    live.subscribe(events.append)
    session = await live.launch(_plan())
    try:
        assert [c[0] for c in cut] == [compose.ENV_PATH, compose.COMPOSE_PATH]
        assert not any(existed for _, existed in cut)  # nothing stood at the final path meanwhile
        files = sim.vm(session.handle.vm.id).files.files
        assert files[compose.COMPOSE_PATH].data == compose.render(session.handle.config, _plan().compose).encode()
        assert files[compose.ENV_PATH].data == compose.env_file_text(None).encode()
        assert files[compose.ENV_PATH].mode == 0o600
        assert not [f for f in files if f.endswith(".tmp")]  # the cut halves were removed by the retry
        assert sum("cut" in e.text for e in events if isinstance(e, LogEvent)) == 2
        assert store.get_session(session.name).state == "ready"
    finally:
        await live.close_all()
        await fast_provider(sim).destroy(session.handle.vm.id)


async def test_gpu_telemetry_resumes_after_drops_on_the_same_session(sim, store, paths):
    live = live_sessions(sim, store, paths)
    session = await live.launch(_plan())
    ssh = session.handle.ssh
    ssh.backoff = (0.05,)
    vm_id = session.handle.vm.id
    statuses: list[str] = []
    try:
        sim.faults.ssh_drop_after_s = 0.3  # every connection from now on drops after 0.3 s
        ssh._conn.abort()
        handshakes = sim.ssh_handshakes(vm_id)
        samples = 0
        stream = gpu_snapshots(ssh, gpu_count=1, clock=SystemClock(), interval_ms=20, backoff=(0.05,),
                               on_status=statuses.append)
        async for snapshot in stream:
            samples += 1
            assert len(snapshot.gpus) == 1
            if statuses.count("reconnecting") >= 2 and sim.faults.ssh_drop_after_s is not None:
                sim.faults.ssh_drop_after_s = None  # the network settles
                settled = samples
            if sim.faults.ssh_drop_after_s is None and samples >= settled + 10:
                break
        await stream.aclose()
        reconnects = sim.ssh_handshakes(vm_id) - handshakes
        assert statuses.count("reconnecting") >= 2 and statuses[-1] == "ok"
        assert statuses == ["reconnecting", "ok"] * (len(statuses) // 2)  # each drop is followed by a resume
        assert 1 <= reconnects <= statuses.count("reconnecting") + 2  # one login per drop, none per sample
        assert samples > 3 * reconnects
        assert ssh.state == "connected"
    finally:
        sim.faults.ssh_drop_after_s = None
        await live.close_all()
        await fast_provider(sim).destroy(vm_id)


async def test_a_changed_host_key_is_refused_on_reconnect_naming_the_risk(sim, store, paths):
    live = live_sessions(sim, store, paths)
    session = await live.launch(_plan())
    ssh, vm_id = session.handle.ssh, session.handle.vm.id
    ssh.backoff = (0.05,)
    states: list[str] = []
    ssh.on_state(states.append)
    try:
        await asyncio.to_thread(sim.call, rekey(sim, vm_id))
        await until(lambda: ssh.state == "refused")
        assert "man-in-the-middle" in str(ssh.error) and "impersonating" in str(ssh.error)
        tried = await asyncio.to_thread(sim.ssh_connections, vm_id)
        assert tried >= 2  # the first login, and the reconnect that met the new key
        await asyncio.sleep(0.5)  # ten of its backoffs: a session that retried would have come back
        assert await asyncio.to_thread(sim.ssh_connections, vm_id) == tried and ssh.state == "refused"
        handle, session.handle = session.handle, None
        await handle.close()
        with pytest.raises(Exception) as refused:
            await live.attach(session.name)  # `r` on the dashboard: a fresh connection, same answer
        assert "impersonating the VM" in str(refused.value)
        assert store.get_session(session.name).state == "ready"  # nothing else is decided for the user
    finally:
        await live.close_all()
        await fast_provider(sim).destroy(vm_id)


async def rekey(sim: SimCloud, vm_id: int) -> None:
    """On the sim's loop: the VM now answers with another host key (sshd restarted with it)."""
    vm, sshd = sim._manager.vms[vm_id], sim._manager.sshds[vm_id]
    vm.host_key = asyncssh.generate_private_key("ssh-ed25519")
    await sshd.go_down()


# --- vLLM ------------------------------------------------------------------------------------------

async def test_a_dead_vllm_does_not_count_as_activity(sim, store, paths):
    live = live_sessions(sim, store, paths)
    on_stage(live, "compose_up", lambda: setattr(sim.faults, "vllm_crash_after_s", 600.0))
    session = await live.launch(_plan())
    handle = session.handle
    try:
        clock = ManualClock(start=time.time())
        destroyed: list[str] = []

        async def destroy():
            destroyed.append(handle.name)

        said: list[tuple[str, str]] = []  # (title, message), then "destroy" when it was called
        dog = Watchdog(handle.name, metrics=metrics_from_tunnel(handle.local_port), destroy=destroy, store=store,
                       clock=clock, settings=WatchdogSettings(timeout_minutes=30, warning_minutes=5),
                       notify=lambda title, message: said.append((title, message)))
        states: list[str] = []
        async with VllmClient(f"http://127.0.0.1:{handle.local_port}", timeout=5) as vllm:
            await until(lambda: any("EngineDeadError" in line for line in sim.vm(handle.vm.id).vllm.log_lines))
            await dog.check()
            for _ in range(6):  # 30 min of a dead server, polled by the app and asked by a client
                clock.advance(300)
                assert not await vllm.health()
                with pytest.raises(Exception):
                    await vllm.complete_chat(handle.config.model, [{"role": "user", "content": "hi"}],
                                             max_tokens=4)
                await dog.check()
                states.append(dog.state)
        assert dog.idle_s >= 30 * 60 and not dog.unreachable  # /metrics answered all along, and still idle
        assert destroyed == [handle.name]  # the deadline passed (after its warning): the VM goes
        # The warning came first, on its own poll, saying so; the destroy only at a later one.
        assert "warning" in states and states.index("warning") < len(states) - 1, states
        assert said and said[0][0] == f"{handle.name}: idle, destroying soon", said
    finally:
        await live.close_all()
        await fast_provider(sim).destroy(handle.vm.id)


async def test_a_vm_deleted_outside_the_app_is_found_gone_and_stops_costing(sim, store, paths):
    clock = SystemClock()
    live = live_sessions(sim, store, paths, clock=clock)
    session = await live.launch(_plan())
    name, vm_id = session.name, session.handle.vm.id
    dog = live.new_watchdog(name, lambda *a: None)
    events: list = []
    live.subscribe(events.append)
    try:
        sim.faults.vm_vanish_after_s = 0  # the VM is deleted behind our back
        await until(lambda: vm_id not in ours(sim) and session.handle.ssh.state != "connected")
        await dog.check()  # the watchdog's next poll: the connection is down, so it asks the API
        record = store.get_session(name)
        assert record.ended and record.extra.get("gone") is True and record.state == "ended"
        assert dog.state == "destroyed" and live.get(name) is None
        cost = session_cost_so_far(record, clock.now())
        assert session_cost_so_far(record, clock.now() + 7200) == cost  # the meter stopped
        assert any(isinstance(e, WarningEvent) and "no longer exists" in e.message for e in events)
        assert store.events(name)[-1].kind == "gone"
    finally:
        await live.close_all()
