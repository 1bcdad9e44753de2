"""The real app killed with SIGKILL at each stage of a launch, then started again on the same home and
the same simulated cloud (which outlives it): every VM is a session's or an orphan row, no session is lost.

The cloud runs in this process, so the test holds it still at the stage wanted (`SimGates`): the
launch cannot get past it, the store's record says the stage reached, and the kill lands there.
record and keys cannot be held (provisioning goes from record through keys to the create call
without waiting on anything), and tunnel, aider and ready follow one another the same way: those
kills are covered in-process by test_destroy_recover's crash-at-every-stage test, and "ready" here
stands for the last three.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from maider_tui.ops.owner import owner_of
from maider_tui.ops.session_files import client_key_path, write_private
from maider_tui.paths import AppPaths
from maider_tui.sim import SimCloud, coreutils, docker, linode_api, shell, vm, world
from maider_tui.store import SessionRecord, open_store
from tests.integration.test_destroy_recover import CLIENT, bare_vm, launch, make_provider
from tests.proc import AppProcess, launch_defaults, sim_app

# Each kill, in the order the chain makes them ("token" first: nothing is recorded, so the restart
# after it has nothing to report).
CHAIN = ("token", "create", "running", "ssh", "cloud_init", "upload", "compose_up", "vllm", "ready")
# Waits scaled by the sim's speed (1000) must outlast a loaded machine's slowest poll.
SLOW_LIMITS = "[readiness]\nrunning_minutes = 600\nssh_minutes = 600\ncloud_init_minutes = 600\nvllm_minutes = 600\n"


class SimGates:
    """Hold the simulated cloud (of this process) at one point of a launch, or a delete, until released.

    Made before the cloud starts: its API routes take the handlers as they are then.
    """

    def __init__(self, sim: SimCloud, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sim, self.world = sim, sim.world
        self.closed: set[str] = set()
        self.reached: set[str] = set()  # gates something was held at
        gates = self

        def held(where: str, of_world: world.World) -> bool:
            if where in gates.closed and of_world is gates.world:
                gates.reached.add(where)
                return True
            return False

        async def wait(where: str, of_world: world.World) -> None:
            while held(where, of_world):
                await asyncio.sleep(0.01)

        status, sshd_ready, progress = world.World.status, vm.SimVm.sshd_ready, vm.SimVm.cloud_init_progress
        profile, body, delete = linode_api._profile, linode_api.read_body, linode_api._delete
        mkdir, cmd_docker, run_vllm = coreutils.COMMANDS["mkdir"], shell.Shell.cmd_docker, docker.DockerEngine._run_vllm

        def held_status(self, instance):
            found = status(self, instance)
            return "booting" if found == "running" and held("running", self) else found

        def held_sshd(self):
            return sshd_ready(self) and not held("ssh", self.world)

        def held_progress(self):
            return min(progress(self), 0.5) if held("cloud_init", self.world) else progress(self)

        async def held_profile(request):  # the token check
            await wait("token", request.app[linode_api.WORLD_KEY])
            return await profile(request)

        async def held_body(request):
            data = await body(request)  # read first: the caller may be dead when the gate opens
            if request.method == "POST" and request.path == "/v4/linode/instances":
                await wait("create", request.app[linode_api.WORLD_KEY])
            return data

        async def held_delete(request):
            await wait("delete", request.app[linode_api.WORLD_KEY])
            return await delete(request)

        async def held_mkdir(machine, argv, io, cwd):
            if "/opt/llm" in argv:
                await wait("upload", machine.world)
            return await mkdir(machine, argv, io, cwd)

        async def held_docker(self, argv, io):
            if "compose" in argv and "up" in argv:
                await wait("compose_up", self.vm.world)
            return await cmd_docker(self, argv, io)

        async def held_vllm(self, container):
            await wait("vllm", self.vm.world)
            return await run_vllm(self, container)

        monkeypatch.setattr(world.World, "status", held_status)
        monkeypatch.setattr(vm.SimVm, "sshd_ready", held_sshd)
        monkeypatch.setattr(vm.SimVm, "cloud_init_progress", held_progress)
        monkeypatch.setattr(linode_api, "_profile", held_profile)
        monkeypatch.setattr(linode_api, "read_body", held_body)
        monkeypatch.setattr(linode_api, "_delete", held_delete)
        monkeypatch.setitem(coreutils.COMMANDS, "mkdir", held_mkdir)
        monkeypatch.setattr(shell.Shell, "cmd_docker", held_docker)
        monkeypatch.setattr(docker.DockerEngine, "_run_vllm", held_vllm)

    def hold(self, where: str) -> None:
        self.closed.add(where)

    def release(self) -> None:
        self.closed.clear()
        self.reached.clear()


def sessions(db: Path) -> dict[str, SessionRecord]:
    """The store's sessions, read the way a second process reads them (WAL: never blocks the app)."""
    with open_store(db) as store:
        return {r.name: r for r in store.list_sessions()}


def wait_until(check, timeout: float = 20.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    return found


@contextmanager
def running(app: AppProcess) -> Iterator[AppProcess]:
    with app:
        app.wait_for("Sessions")
        yield app


def kill_at(stage: str, app: AppProcess, gates: SimGates, db: Path, known: set[str]) -> str | None:
    """Launch the wizard's defaults, hold the sim at `stage`, SIGKILL the app there; the session's name."""
    launch_defaults(app, before_launch=lambda: gates.hold(stage))
    if stage == "token":
        wait_until(lambda: "token" in gates.reached, what="the launch's token check")
        app.wait_for("Checking the Linode token")
        app.kill()
        assert set(sessions(db)) == known, "a session was recorded before the token was checked"
        gates.release()
        return None

    def reached():
        new = [r for name, r in sessions(db).items() if name not in known]
        if stage == "ready":  # the stage is recorded a moment before the state
            return new[0] if new and new[0].state == "ready" else None
        return new[0] if new and new[0].stage == stage else None

    wait_until(reached, what=f"the launch to reach {stage}")
    if stage != "ready":  # and the cloud holds it there (the create call, say, is on its way)
        wait_until(lambda: stage in gates.reached, what=f"the sim to hold the launch at {stage}")
    app.kill()
    record = next(r for name, r in sessions(db).items() if name not in known)
    # What the dead process left: the stage it was held at, nothing later.
    assert record.stage == stage
    assert record.state == ("ready" if stage == "ready" else "creating")
    creates = gates.world.creates
    gates.release()
    if stage == "create":  # the held create lands after its caller died: a VM with no id recorded
        assert record.instance_id is None
        wait_until(lambda: gates.world.creates > creates, what="the held create")
    return record.name


def check_accounted_for(app: AppProcess, sim: SimCloud, db: Path, before: dict[str, str]) -> dict[str, SessionRecord]:
    """Every live VM of the sim is a live session's or an orphan row on screen; no session is lost."""
    now = sessions(db)
    assert set(before) <= set(now), "a session record disappeared"
    claimed = {r.instance_id for r in now.values() if not r.ended and r.instance_id is not None}
    screen = app.screen()
    for instance in sim.world.list():
        assert instance.id in claimed or f"(orphan) {instance.label}" in screen, \
            f"VM {instance.id} ({instance.label}) is neither a session's nor shown as an orphan:\n{screen}"
    for name, stage in before.items():  # each interrupted launch is still offered, at its stage
        record = now[name]
        row = next((line for line in screen.splitlines() if name in line), "")
        assert record.state in row, f"{name} is not listed as {record.state}:\n{screen}"
        if stage != "ready":
            assert record.stage == stage and record.ready_at is None
    return now


def crash_chain(sim: SimCloud, gates: SimGates, home: Path, config: Path, stages: tuple[str, ...]) -> None:
    """Kill the app at each of `stages` in turn, each start after a crash checking the one before;
    then a last start (with a stray VM to show as an orphan) checks them all and quits, destroying."""
    db = AppPaths.under(home / "data" / "demo").database
    crashed: dict[str, str] = {}  # session name -> the stage it was killed at
    for stage in stages:
        with running(sim_app(sim, home, "--config", str(config))) as app:
            if crashed:  # this start follows a crash: recovery has run once the toast says so
                app.wait_for("Sessions and VMs", what="the start-up check of VMs against sessions")
                check_accounted_for(app, sim, db, crashed)
            name = kill_at(stage, app, gates, db, set(crashed))
            if name is not None:
                crashed[name] = stage

    # A VM with our tag that no session claims: it must show as an orphan row.
    asyncio.run(sim.provider().create(bare_vm("stray-vm")))
    with running(sim_app(sim, home, "--config", str(config))) as app:
        app.wait_for("(orphan) stray-vm", what="the orphan row")
        final = check_accounted_for(app, sim, db, crashed)
        for name, stage in crashed.items():
            if stage == "create":  # the create that landed after the crash: found by its label, id recorded
                assert final[name].instance_id is not None
            if stage == "ready":  # a ready session is watched from the new process
                paths = AppPaths.under(home / "data" / "demo")
                app.wait_for(lambda: owner_of(paths, name), what="the watch lock")  # noqa: B023
                assert owner_of(paths, name).endswith(f":{app.pid}")
        app.press("q")
        app.wait_for("Destroy all")
        app.press("D")
        assert app.wait_exit(30) == 0
    after = sessions(db)
    assert all(after[n].ended for n, r in final.items() if r.instance_id is not None)
    assert sim.world.list() == [], "Destroy all destroys the orphan too: the quit dialog lists it"


def test_sigkill_at_each_stage_then_a_restart_accounts_for_every_vm(tmp_path: Path, monkeypatch):
    """Two chains at once, each with its own cloud and home, to halve the wall time."""
    config = tmp_path / "config.toml"
    config.write_text(SLOW_LIMITS)
    chains = (CHAIN[:5], CHAIN[5:])
    sims = [SimCloud(speed=1000, seed=9 + i) for i in range(len(chains))]
    gates = [SimGates(sim, monkeypatch) for sim in sims]
    with contextlib.ExitStack() as stack:
        for sim in sims:
            stack.enter_context(sim)
        with concurrent.futures.ThreadPoolExecutor(len(chains)) as pool:
            runs = [pool.submit(crash_chain, sim, gate, tmp_path / f"home{i}", config, stages)
                    for i, (sim, gate, stages) in enumerate(zip(sims, gates, chains))]
            for run in runs:
                run.result()


# The first app's watchdog destroys the session at its first look: idle for hours, no warning.
QUICK_WATCHDOG = "[watchdog]\ntimeout_minutes = 1\nwarning_minutes = 0\npoll_seconds = 1\n"


async def ready_session(sim: SimCloud, paths: AppPaths, name: str) -> SessionRecord:
    """A ready session in the demo's store, idle for two hours, with its key where the app looks."""
    with open_store(paths.database) as store:
        record, ssh = await launch(sim, make_provider(sim, store), store, name)
        await ssh.close()
        write_private(client_key_path(paths, name), CLIENT.private_pem)
        hours_ago = time.time() - 7200
        return store.update_session(name, created_at=hours_ago, ready_at=hours_ago, last_activity=hours_ago)


def test_two_apps_at_once_one_watches_and_the_vm_is_deleted_once(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    paths = AppPaths.under(home / "data" / "demo")
    config = tmp_path / "config.toml"
    config.write_text(QUICK_WATCHDOG)
    sim = SimCloud(speed=1000, seed=5)
    gates = SimGates(sim, monkeypatch)
    with sim:
        record = asyncio.run(ready_session(sim, paths, "shared"))
        gates.hold("delete")
        with running(sim_app(sim, home, "--config", str(config))) as first:
            # The first app watches the session, finds it idle and destroys it: the cloud holds the delete.
            wait_until(lambda: "delete" in gates.reached, what="the first app's watchdog to destroy")
            assert owner_of(paths, "shared").endswith(f":{first.pid}")
            with running(sim_app(sim, home, "--config", str(config))) as second:
                second.wait_for("elsewhere", what="the session shown as watched by another process")
                # The second window neither stopped the first nor took the session from it.
                assert first.proc.poll() is None
                assert owner_of(paths, "shared").endswith(f":{first.pid}")
                assert sessions(paths.database)["shared"].owner.endswith(f":{first.pid}")
                second.press("d")
                second.wait_for("Destroy shared?")
                second.press("y")
                second.wait_for("Another maider-tui process is destroying shared", what="the second destroy to wait")
                gates.release()
                second.wait_for("shared destroyed", what="the second app's receipt")
                assert first.proc.poll() is None
        after = sessions(paths.database)["shared"]
        assert after.state == "destroyed" and after.ended_at is not None
        assert sim.world.requests[f"DELETE /linode/instances/{record.instance_id}"] == 1
        assert sim.world.get(record.instance_id) is None


def test_sigkill_during_a_destroy_then_a_restart_ends_the_session(tmp_path: Path, monkeypatch):
    """The watchdog's delete reaches the cloud, the app dies before it can record it: the next start
    finds the VM gone and ends the session, so its cost stops counting; nothing is deleted twice."""
    home = tmp_path / "home"
    paths = AppPaths.under(home / "data" / "demo")
    config = tmp_path / "config.toml"
    config.write_text(QUICK_WATCHDOG)
    sim = SimCloud(speed=1000, seed=6)
    gates = SimGates(sim, monkeypatch)
    with sim:
        record = asyncio.run(ready_session(sim, paths, "dying"))
        gates.hold("delete")
        with running(sim_app(sim, home, "--config", str(config))) as app:
            wait_until(lambda: "delete" in gates.reached, what="the watchdog's delete")
            app.kill()
        assert sessions(paths.database)["dying"].state == "ready"  # the dead app recorded nothing
        gates.release()
        wait_until(lambda: sim.world.get(record.instance_id) is None, what="the delete to land")
        with running(sim_app(sim, home, "--config", str(config))) as app:
            app.wait_for("Sessions and VMs", what="the start-up check")
            assert "VM gone, session ended: dying" in app.toasts()
            after = sessions(paths.database)["dying"]
            assert after.state == "ended" and after.ended_at is not None and after.extra["gone"] is True
            assert after.cost_usd == pytest.approx(2 * record.hourly_usd, rel=0.05)  # two idle hours, then it stopped
            # The table says why it ended, once its read in a worker has landed.
            app.wait_for(lambda: any("dying" in line and "gone" in line for line in app.screen().splitlines()),
                         what="the sessions table to show dying as gone")
            app.press("q")
            assert app.wait_exit() == 0
        assert sim.world.requests[f"DELETE /linode/instances/{record.instance_id}"] == 1


async def serving_session(sim: SimCloud, paths: AppPaths, name: str) -> SessionRecord:
    """A ready session in the demo's store, just used (not idle), with its key where the app looks."""
    with open_store(paths.database) as store:
        record, ssh = await launch(sim, make_provider(sim, store), store, name)
        await ssh.close()
        write_private(client_key_path(paths, name), CLIENT.private_pem)
        return record


def test_sigkill_during_a_model_switch_then_a_restart_settles_the_record(tmp_path: Path, monkeypatch):
    """The switch's new vLLM is held loading, the app dies there, the new model comes up without it:
    the next start asks vLLM what it serves and the record, the aider files and the dashboard follow."""
    from maider_tui import catalog
    from maider_tui.ops.session_files import session_dir
    from maider_tui.ops.switch_model import SWITCH_MARK

    home = tmp_path / "home"
    paths = AppPaths.under(home / "data" / "demo")
    config = tmp_path / "config.toml"
    config.write_text(SLOW_LIMITS)  # the held load must not time out into a rollback
    sim = SimCloud(speed=1000, seed=8)
    gates = SimGates(sim, monkeypatch)
    with sim:
        record = asyncio.run(serving_session(sim, paths, "swap"))
        choices = [r.model.id for r in catalog.models_that_fit(record.gpu_type)]
        target = next(m for m in choices if m != record.model and m.endswith("-AWQ"))
        with running(sim_app(sim, home, "--config", str(config))) as app:
            app.press("enter")
            app.wait_for("(tunnel ok)", what="the dashboard connected")
            app.press("m")
            app.wait_for("Switch model", what="the model picker")
            gates.hold("vllm")
            app.press(*["down"] * choices.index(target))
            app.press("enter")
            wait_until(lambda: "vllm" in gates.reached and SWITCH_MARK in sessions(paths.database)["swap"].extra,
                       what="the switch held with the record marked")
            app.kill()
        dead = sessions(paths.database)["swap"]
        assert dead.model == record.model and dead.extra[SWITCH_MARK]["to"]["model"] == target
        gates.release()
        wait_until(lambda: (server := sim.vm(record.instance_id).vllm) is not None and server.config.model == target,
                   what="the new model to come up on the VM")
        with running(sim_app(sim, home, "--config", str(config))) as app:
            app.press("enter")
            app.wait_for("(tunnel ok)", what="the dashboard connected again")
            settled = wait_until(lambda: (r := sessions(paths.database)["swap"]).model == target and r,
                                 what="the record settled to the model served")
            assert SWITCH_MARK not in settled.extra and settled.vllm_config["model"] == target
            aider_env = (session_dir(paths, "swap") / "aider-env").read_text()
            assert f"AIDER_MODEL=openai/{target}" in aider_env
            # The endpoint survived the crash too: the port the dead process had, free again, is reused.
            assert settled.extra["local_port"] == dead.extra["local_port"]
            assert f"127.0.0.1:{dead.extra['local_port']}/v1" in aider_env
            app.wait_for(f"{target}  ", what="the dashboard showing the model served")
            assert "is taken" not in app.shown()
