"""Secrets and listening addresses over a whole demo flow on the simulated cloud.

Recognisable fake tokens go in; after a launch from the wizard (with Open WebUI), the dashboard, a
benchmark, exports, a screenshot and a destroy, no file the app wrote holds either token, the VM's
user-data and compose file hold neither, and the HF token is on the VM only in /opt/llm/.env (0600).
Every published port on the VM and every local tunnel listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
import yaml
from textual.widgets import Checkbox

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, LLM_DIR, ComposeOptions
from maider_tui.log import setup_logging
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.provision import LaunchPlan
from maider_tui.settings import Settings
from maider_tui.sim.docker import _service
from maider_tui.store import open_store
from maider_tui.ui.dialogs.confirm import ConfirmDialog
from maider_tui.ui.screens.bench_run import BenchRunScreen
from maider_tui.ui.screens.benchmarks import BenchmarksScreen
from maider_tui.ui.screens.dashboard import DashboardScreen

from .test_benchmarks import answer
from .test_dashboard import until
from .test_wizard import open_wizard, press
from ..integration.test_live_sessions import LIMITS

LINODE_CANARY = "sim-CANARY-LINODE-7f3a9c2e41d8b6"
HF_CANARY = "hf_CANARYhuggingfaceQ8zX4kW2mN7pR5tY"
LOOPBACK = {"127.0.0.1"}


@pytest.fixture
def clock():
    return SystemClock()  # the sim runs in real time, sped up: the app needs a clock that moves


@pytest.fixture
def log_file(paths):
    """The app's real log file, as `maider-tui` sets it up, removed again after the test."""
    setup_logging(paths.log_file, level=logging.DEBUG)
    yield paths.log_file
    root = logging.getLogger("maider_tui")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True


def token_forms(token: str) -> list[bytes]:
    """The token as written, and base64 of it at each of the three alignments (as inside user-data)."""
    raw = token.encode()
    forms = [raw]
    for shift in range(3):
        encoded = base64.b64encode(b"x" * shift + raw)
        forms.append(encoded[4 if shift else 0:-4])  # the stretch that only depends on the token
    return forms


def leaks(root: Path, tokens: list[str]) -> list[str]:
    """Every file under `root` holding any of `tokens` (plain or base64), as "path: token"."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {t[:12]}" for t in tokens if any(form in data for form in token_forms(t))]
    return found


def ports_of(compose_text: str) -> dict[str, list[str]]:
    return {name: service.get("ports", []) for name, service in yaml.safe_load(compose_text)["services"].items()}


def published_hosts(sim_cloud, instance_id: int) -> dict[str, dict[int, str]]:
    """Each running container's published ports and the VM address they listen on, as the sim's Docker has them."""
    return {c.service.name: dict(c.service.hosts) for c in sim_cloud.vm(instance_id).docker.containers.values()
            if c.state == "running"}


def tunnel_addresses(ssh) -> set[str]:
    return {sock.getsockname()[0] for server in ssh._forwards.values() for sock in server.sockets}


async def test_a_demo_flow_writes_no_token_and_listens_on_loopback_only(make_context, sim_cloud, paths,
                                                                          tmp_path, log_file):
    sim_cloud.world.token = LINODE_CANARY
    context = make_context(environ={"MAIDER_LINODE_TOKEN": LINODE_CANARY, "MAIDER_HF_TOKEN": HF_CANARY})
    context.provider = sim_cloud.provider(store=context.store)
    context.cloud_speed = sim_cloud.speed
    export_dir = tmp_path / "exports"
    export_dir.mkdir()
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "up", "enter", "enter", "enter", "enter")  # 7B-14B, then the defaults
        wizard.query_one("#openwebui", Checkbox).value = True
        name = wizard.query_one("#name").value
        await pilot.press("enter")  # launch (not `press`: the session's workers never complete)
        await until(lambda: (r := context.store.get_session(name)) is not None and r.state in ("ready", "failed"),
                    timeout=20)
        assert context.store.get_session(name).state == "ready"
        live = app.live.get(name)
        instance_id = live.handle.vm.id
        await until(lambda: isinstance(app.screen, DashboardScreen))  # the provisioning screen opens it
        dashboard = app.screen
        await until(lambda: dashboard.webui_url is not None and dashboard.state.vllm is not None)

        # --- on the VM: what it was given and what listens where -----------------------------------------
        vm = sim_cloud.vm(instance_id)
        files = vm.files.files
        user_data = sim_cloud.world.instances[instance_id].user_data
        compose_text = files[COMPOSE_PATH].data.decode()
        assert user_data and "ssh_keys" in user_data
        for text in (user_data, compose_text):
            assert not any(form.decode() in text for t in (LINODE_CANARY, HF_CANARY) for form in token_forms(t))
        holding_hf = sorted(path for path, node in files.items() if HF_CANARY.encode() in bytes(node.data))
        assert holding_hf == [ENV_PATH]
        assert files[ENV_PATH].mode & 0o777 == 0o600
        assert vm.files.is_dir(LLM_DIR) and f"install -d -m 0700 -o root -g root {LLM_DIR} " in user_data
        assert not [path for path, node in files.items() if LINODE_CANARY.encode() in bytes(node.data)]

        ports = ports_of(compose_text)
        assert set(ports) == {"vllm", "open-webui"}
        assert all(p.startswith("127.0.0.1:") for entries in ports.values() for p in entries), ports
        hosts = published_hosts(sim_cloud, instance_id)
        assert set(hosts) == {"vllm", "open-webui"} and all(hosts.values())
        assert {address for per in hosts.values() for address in per.values()} == LOOPBACK
        listed = await live.handle.ssh.run(f"docker compose -f {COMPOSE_PATH} ps --format json")
        publishers = [p for line in listed.stdout.splitlines() for p in json.loads(line)["Publishers"]]
        assert publishers and {p["URL"] for p in publishers} == LOOPBACK
        # The firewall lets in SSH only (published ports bypass it, hence loopback above).
        allowed = [line.strip() for line in user_data.splitlines() if "ufw allow" in line]
        assert "ufw default deny incoming" in user_data and [a.split("ufw allow", 1)[1] for a in allowed] == [" 22/tcp"]
        # The local tunnels: vLLM and Open WebUI, each on this machine's loopback only.
        assert set(live.handle.ssh._forwards) == {8000, 3000}
        assert tunnel_addresses(live.handle.ssh) == LOOPBACK
        assert dashboard.webui_url.startswith("http://127.0.0.1:")

        # --- a benchmark, its exports, a screenshot --------------------------------------------------------
        app.run_benchmark_on(name, max_tokens_scale=0.01)
        await pilot.pause()
        bench = app.screen
        assert isinstance(bench, BenchRunScreen)
        bench.query_one("#benchrun-category").query("RadioButton")[1].value = True  # coding: 4 prompts
        await pilot.pause()
        await pilot.press("enter")
        await until(lambda: not bench.running and bench.lines[-1:] != [] and bench.outcome is not None
                    or "failed" in " ".join(bench.lines), timeout=30)
        assert bench.outcome is not None, bench.lines
        await pilot.press("escape")
        await pilot.pause()
        app.open_benchmarks()
        await pilot.pause()
        table = app.screen
        assert isinstance(table, BenchmarksScreen)
        await pilot.press("x")
        await answer(pilot, str(export_dir / "bench.csv"))
        await until(lambda: (table.last_file_message or "").startswith("Wrote"))
        assert (export_dir / "bench.csv").read_text().count("\n") == 2  # header and this run's row
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dashboard
        await pilot.press("f12")
        await until(lambda: list((paths.data_dir / "exports").glob("*.svg")))  # the exports folder

        # --- destroy ---------------------------------------------------------------------------------------
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await until(lambda: context.store.get_session(name).ended)
        with pytest.raises(LookupError):
            sim_cloud.vm(instance_id)

    # --- every file the app wrote: home (store, log, aider files, keys), exports, the screenshot ---------
    assert log_file.is_file() and log_file.stat().st_size > 0
    assert (paths.sessions_dir / name / "aider-env").is_file() or not (paths.sessions_dir / name).exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert paths.database in written and log_file in written and len(written) >= 5
    assert leaks(tmp_path, [LINODE_CANARY, HF_CANARY]) == []


async def test_without_open_webui_only_vllm_is_published_on_loopback(sim_cloud, paths):
    store = open_store(paths.database)
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: HF_CANARY,
                        limits=LIMITS)
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    config = catalog.fit("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", gpu).to_vllm_config()
    plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config,
                      compose=ComposeOptions(enable_openwebui=False))
    try:
        session = await live.launch(plan)
        instance_id = session.handle.vm.id
        ports = ports_of(sim_cloud.vm(instance_id).files.files[COMPOSE_PATH].data.decode())
        assert ports == {"vllm": ["127.0.0.1:8000:8000"]}
        assert published_hosts(sim_cloud, instance_id) == {"vllm": {8000: "127.0.0.1"}}
        assert set(session.handle.ssh._forwards) == {8000}
        assert tunnel_addresses(session.handle.ssh) == LOOPBACK
        await live.destroy(session.name)
    finally:
        await live.close_all()
        store.close()


def test_the_sims_docker_tells_a_port_open_to_the_internet_from_a_loopback_one():
    """What the checks above rely on: a port published without an address is exposed, as Docker does it."""
    spec = {"image": "vllm/vllm-openai:v0.11.0",
            "ports": ["8000:8000", "127.0.0.1:3000:8080", "[::1]:3001:8080",
                      {"target": 80, "published": 8080, "host_ip": "127.0.0.1"}, {"target": 81, "published": 8081}]}
    service = _service("llm", "vllm", spec, {}, "/opt/llm")
    assert service.hosts == {8000: "0.0.0.0", 3000: "127.0.0.1", 3001: "::1", 8080: "127.0.0.1", 8081: "0.0.0.0"}
    assert service.exposed_ports() == [8000, 8081]
