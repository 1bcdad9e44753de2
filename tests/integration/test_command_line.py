"""The command line as a user runs it (`python -m maider_tui ...` in a child process): bad input gets
one sentence and exit code 2, never a traceback, and leaves the home as it was; `--demo` and
`--sim-url` send every headless command to the demo's own sessions and the simulated cloud."""

from __future__ import annotations

import asyncio
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.cloud import CreateSpec
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import generate_keypair
from maider_tui.sim import SimCloud
from maider_tui.store import SessionRecord, open_store
from tests.proc import app_env
from tests.ui.test_benchmarks import add_runs

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], *, memory_cap: bool = False) -> subprocess.CompletedProcess:
    """The command, to its end or 30 s; `memory_cap` keeps a runaway read from taking the machine."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**env, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "maider_tui", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL,
                          preexec_fn=cap if memory_cap else None)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every folder and file under `root`, files with their bytes: equal before and after, nothing changed."""
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def deep_arrays(path: Path) -> str:
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    return str(path)


def deep_tables(path: Path) -> str:
    path.write_text("[" + ".".join(["k"] * 5000) + "]\nx = 1\n")
    return str(path)


def fifo(path: Path) -> str:
    os.mkfifo(path)
    return str(path)


def big_file(path: Path) -> str:
    path.write_text("# a comment line that is valid TOML\n" * 60_000)  # 2 MiB
    return str(path)


# (id, arguments with {name} for a file the test makes, what stderr says, what HOME / MAIDER_HOME are)
DEEP = "nests tables or arrays more than 32 levels deep"
CASES = [
    ("config-deep-arrays", ["--config", "{deep}", "ls"], DEEP, None),
    ("config-deep-tables", ["--config", "{tables}"], DEEP, None),
    ("config-dev-zero", ["ls", "--config", "/dev/zero"], "/dev/zero is not a regular file", None),
    ("config-too-big", ["--config", "{big}", "ls"], "is larger than 1 MiB", None),
    ("config-missing", ["--config", "{missing}", "ls"], "does not exist", None),
    ("config-fifo", ["--config", "{fifo}", "ls"], "is not a regular file", None),  # never opened: it would block
    ("sim-speed-nan", ["sim", "--speed", "nan"], "'nan' is not a speed", None),
    ("sim-speed-inf", ["sim", "--speed", "inf"], "'inf' is not a speed", None),
    ("sim-port-99999", ["sim", "--port", "99999"], "'99999' is not a port", None),
    ("sim-port-busy", ["sim", "--port", "{busy}"], "Cannot listen on port", None),
    ("sim-url-not-a-url", ["--sim-url", "notaurl", "ls"], "is not an http:// or https:// address", None),
    ("sim-url-bad-port", ["ls", "--sim-url", "http://127.0.0.1:99999/v4"], "has no valid port", None),
    ("sim-url-ftp", ["--sim-url", "ftp://127.0.0.1/v4"], "is not an http:// or https:// address", None),
    ("sim-url-nobody-there", ["types", "--sim-url", "http://127.0.0.1:{free}/v4"], "No simulated cloud", None),
    ("sim-speed-tiny", ["--demo", "--sim-speed", "1e-300"], "'1e-300' is not a speed", None),
    ("sim-speed-tiny-after", ["ls", "--sim-speed", "1e-300", "--demo"], "'1e-300' is not a speed", None),
    ("home-is-a-file", ["ls"], "is a file, not a folder", "HOME={file}"),
    ("home-is-a-file-app", [], "is a file, not a folder", "HOME={file}"),
    ("maider-home-is-a-file", ["--demo"], "is a file, not a folder", "MAIDER_HOME={file}/sub"),
    ("maider-home-in-proc", ["ls"], "Cannot keep the app's files in /proc/nope", "MAIDER_HOME=/proc/nope"),
    ("down-demo-no-cloud", ["down", "s1", "--demo"], "`down --demo` needs the simulated cloud", None),
    ("watch-demo-no-cloud", ["--demo", "watch"], "`watch --demo` needs the simulated cloud", None),
    ("token-demo", ["token", "status", "--demo"], "The demo keeps no tokens", None),
]


@pytest.mark.parametrize("argv, expected, home_var", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_sentence_exit_2_and_changes_nothing(tmp_path: Path, argv, expected, home_var):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "file").write_text("a file, not a folder\n")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    free = socket.socket()
    free.bind(("127.0.0.1", 0))  # bound, never listening: nobody answers there
    names = {"deep": deep_arrays(tmp_path / "deep.toml"), "tables": deep_tables(tmp_path / "tables.toml"),
             "big": big_file(tmp_path / "big.toml"), "missing": str(tmp_path / "missing.toml"),
             "fifo": fifo(tmp_path / "fifo"), "busy": str(busy.getsockname()[1]),
             "free": str(free.getsockname()[1]), "file": str(tmp_path / "file")}
    env = app_env(home, MAIDER_SIM_TOKEN="sim-test-token")
    if home_var:
        name, _, value = home_var.format(**names).partition("=")
        env.pop("MAIDER_HOME")
        env[name] = value
    before = snapshot(tmp_path)
    started = time.monotonic()
    try:
        done = run([arg.format(**names) for arg in argv], env, memory_cap=True)
    finally:
        busy.close()
        free.close()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert expected in last, done.stderr[-2000:]
    assert done.stdout == ""
    assert time.monotonic() - started < 20
    assert snapshot(tmp_path) == before, "something was written"


def test_a_settings_file_the_app_finds_itself_is_reported_and_skipped(tmp_path: Path):
    """The config file named by MAIDER_CONFIG (or the default one) is not the command line's: a
    broken one is a warning and the command goes on with the defaults, as for invalid TOML."""
    home = tmp_path / "home"
    plan = ["plan", "--type", "g2-gpu-rtx4000a2-s", "--model", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
            "--summary"]
    for config, expected in [(deep_arrays(tmp_path / "deep.toml"), DEEP), (deep_tables(tmp_path / "tables.toml"), DEEP),
                             ("/dev/zero", "not a regular file"), (fifo(tmp_path / "fifo"), "not a regular file"),
                             (big_file(tmp_path / "big.toml"), "larger than 1 MiB")]:
        done = run(plan, app_env(home, MAIDER_CONFIG=config), memory_cap=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert f"warning: {config}: {expected}" in done.stderr
        assert "none of this file's settings" in done.stderr
        assert "TP 2" in done.stdout
    assert not home.exists()


def test_a_bad_setting_is_named_by_its_source_and_key_and_the_one_below_is_used(tmp_path: Path):
    """A value pydantic refuses (here in the environment) is a warning naming where it came from;
    the command goes on with the TOML file's value for that key, and the TOML file's bad key keeps
    the default."""
    config = tmp_path / "config.toml"
    config.write_text("[vllm]\nmax_model_len = 8192\ngpu_memory_utilization = 1.5\n")
    plan = ["plan", "--type", "g2-gpu-rtx4000a2-s", "--model", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
            "--summary"]
    done = run(plan, app_env(tmp_path / "home", MAIDER_CONFIG=str(config), MAIDER_VLLM__MAX_MODEL_LEN="lots"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("warning: environment: MAIDER_VLLM__MAX_MODEL_LEN = 'lots' was ignored because it is not a "
            "whole number") in done.stderr
    assert f"warning: {config}: vllm.gpu_memory_utilization = 1.5 was ignored because it must be at most 0.99" \
        in done.stderr
    assert "--max-model-len 8192 --gpu-memory-utilization 0.9 " in done.stdout


def store_with(paths: AppPaths, name: str, **fields) -> None:
    with open_store(paths.database) as store:
        store.add_session(SessionRecord(name=name, state="ready", hourly_usd=0.52, **fields))


@pytest.mark.parametrize("argv, expected", [
    (["ls", "--demo"], "demo-one"), (["--demo", "ls"], "demo-one"),
    (["ls", "--sim-url", "http://127.0.0.1:9/v4"], "demo-one"),  # `ls` needs no cloud: nothing is asked there
    (["--demo", "bench", "compare"], "No benchmark matches"),
    (["bench", "compare", "--demo"], "No benchmark matches"),
])
def test_headless_commands_under_demo_read_the_demo_store_only(tmp_path: Path, argv, expected):
    home = tmp_path / "home"
    real = AppPaths.under(home)
    demo = AppPaths.under(real.data_dir / "demo")
    store_with(real, "real-one", instance_id=7)
    with open_store(real.database) as store:
        add_runs(store, time.time())  # measured runs only the real store has
    store_with(demo, "demo-one", instance_id=8)
    done = run(argv, app_env(home))
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert "real-one" not in done.stdout and "g1-gpu-rtx6000-4" not in done.stdout
    if "demo-one" in expected:
        assert "1 live session" in done.stdout


@pytest.fixture
def cloud():
    with SimCloud(speed=1000) as sim:
        yield sim


def test_types_under_demo_ask_the_simulated_cloud_not_the_account(tmp_path: Path, cloud):
    home = tmp_path / "home"
    done = run(["types", "--demo"], app_env(home, LINODE_TOKEN="never-used-0123456789abcdef"))
    assert done.returncode == 0, done.stderr
    assert "from the Linode API" in done.stdout and "g2-gpu-rtx4000a1-s" in done.stdout
    assert (AppPaths.under(home).data_dir / "demo" / "data" / "maider.sqlite3").exists()
    assert not AppPaths.under(home).database.exists()  # the real store untouched
    asked = cloud.world.api_requests
    done = run(["--sim-url", cloud.linode_base_url, "types", "--refresh"],
               app_env(home, MAIDER_SIM_TOKEN=cloud.token))
    assert done.returncode == 0, done.stderr
    assert "from the Linode API" in done.stdout
    assert cloud.world.api_requests > asked


def test_down_with_sim_url_destroys_the_demo_session_on_that_cloud(tmp_path: Path, cloud):
    home = tmp_path / "home"
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    key = generate_keypair("client")

    async def create():
        spec = CreateSpec(label="demo-vm", region=gpu.regions[0], type=gpu.id, image="linode/ubuntu24.04",
                          authorized_keys=[key.public_line])
        return await cloud.provider().create(spec)

    vm = asyncio.run(create())
    demo = AppPaths.under(AppPaths.under(home).data_dir / "demo")
    store_with(demo, "demo-vm", instance_id=vm.id, gpu_type=gpu.id)
    done = run(["down", "demo-vm", "--sim-url", cloud.linode_base_url],
               app_env(home, MAIDER_SIM_TOKEN=cloud.token))
    assert done.returncode == 0, done.stderr
    assert "Destroyed demo-vm" in done.stdout
    assert cloud.world.instances[vm.id].deleted
    assert not AppPaths.under(home).database.exists()
    with open_store(demo.database) as store:
        assert store.get_session("demo-vm").ended


async def demo_ready_session(home: Path, cloud: SimCloud) -> str:
    """A ready session in the demo's store, its VM on `cloud`, provisioned as the demo app would."""
    from maider_tui.context import build_context

    from .test_headless import ready_session

    context = build_context(AppPaths.under(AppPaths.under(home).data_dir / "demo"), demo=True, environ={},
                            use_keyring=False)
    context.provider = cloud.provider(store=context.store)
    try:
        return (await ready_session(context)).name
    finally:
        context.store.close()


def test_watch_with_sim_url_watches_the_demo_session_on_that_cloud(tmp_path: Path, cloud):
    home = tmp_path / "home"
    name = asyncio.run(demo_ready_session(home, cloud))
    env = {**app_env(home, MAIDER_SIM_TOKEN=cloud.token), "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore",
           "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "maider_tui", "watch", name, "--sim-url", cloud.linode_base_url]
    watcher = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout], daemon=True).start()
    out = ""
    try:
        deadline = time.monotonic() + 30
        while "Watching 1 session" not in out and time.monotonic() < deadline and watcher.poll() is None:
            try:
                out += lines.get(timeout=0.2)
            except queue.Empty:
                pass
        assert "Watching 1 session" in out, out
        demo = AppPaths.under(AppPaths.under(home).data_dir / "demo")
        from maider_tui.ops.owner import owner_of

        assert owner_of(demo, name)  # the demo's session, watched through the other process's cloud
        watcher.terminate()
        watcher.wait(timeout=20)
        err = watcher.stderr.read()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    time.sleep(0.2)  # the reader thread takes the last lines
    while not lines.empty():
        out += lines.get()
    assert watcher.returncode == 0, err
    assert "Stopped watching; the VMs keep running." in out, out
    assert not AppPaths.under(home).database.exists()  # the real store never opened


def test_ls_piped_at_80_columns_never_cuts_a_session_name(tmp_path: Path):
    home = tmp_path / "home"
    paths = AppPaths.under(home)
    names = ["alice-qwen-coder-32b-payroll-refactor-1", "alice-qwen-coder-32b-payroll-refactor-2"]
    for i, name in enumerate(names):
        store_with(paths, name, instance_id=10 + i, gpu_type="g2-gpu-rtx4000a2-s", gpu_count=2,
                   model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", region="us-ord", created_at=time.time() - 60)
    done = run(["ls"], app_env(home, COLUMNS="80"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), done.stdout
    for name in names:
        (row,) = [line for line in lines if name in line]
        assert "0.52" in row and "$0.01" in row, done.stdout  # the money stays on the name's line
    assert "$/h" in done.stdout and "Cost so far" in done.stdout


def test_ls_with_a_name_wider_than_the_terminal_prints_it_whole(tmp_path: Path):
    home = tmp_path / "home"
    paths = AppPaths.under(home)
    name = "a" * 30 + "-session-name-as-long-as-linode-allows-x"[: 64 - 30]
    store_with(paths, name, instance_id=10, created_at=time.time() - 60)
    done = run(["ls"], app_env(home, COLUMNS="60"))
    assert done.returncode == 0, done.stderr
    assert len(name) == 64 and name in done.stdout, done.stdout
