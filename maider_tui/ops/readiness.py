"""The stages of provisioning and its bounded waits: the VM running, SSH answering, cloud-init done,
vLLM serving (with the healing loop around it).

Each wait polls through the injected Clock and gives up after its limit with a `StageFailed` that
names the stage and quotes what the VM last said, so the user knows where it stopped. None of them
destroys anything: the caller leaves the VM for the user to inspect or destroy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maider_tui.clock import Clock
from maider_tui.cloud import Provider, Vm
from maider_tui.deploy.compose import COMPOSE_PATH, ComposeOptions, vllm_environment
from maider_tui.models import VllmConfig
from maider_tui.ops import heal
from maider_tui.ops.heal import Diagnosis
from maider_tui.ops.limits import ReadinessLimits
from maider_tui.remote.ssh import AuthRefused, HostKeyMismatch, SshError, SshSession
from maider_tui.remote.vllm import VllmClient, VllmError

COMPOSE_CMD = f"docker compose -f {COMPOSE_PATH}"
LOG_TAIL = 400  # enough for vLLM's whole start-up, traceback included
TEST_PROMPT = [{"role": "user", "content": "Reply with the single word: ready"}]
_RUN_START = "vLLM API server version"  # the first line of each start: a restarted container logs several
# Signs that vLLM's engine died even though Docker still shows the container running (restart loop).
_ENGINE_DEAD = re.compile(r"Traceback \(most recent call last\)|initialization failed|failed to start|"
                          r"EngineDeadError")


# (stage, typical real seconds, what the user reads): the seconds weight the progress bar and the ETA.
STAGES: tuple[tuple[str, float, str], ...] = (
    ("token", 2, "Checking the Linode token"),
    ("record", 0.5, "Recording the session"),
    ("keys", 0.5, "Making the SSH keys for this VM"),
    ("create", 10, "Renting the VM"),
    ("running", 60, "Waiting for the VM to boot"),
    ("ssh", 20, "Waiting for SSH (pinned host key)"),
    ("cloud_init", 420, "Installing the NVIDIA driver and Docker (cloud-init)"),
    ("upload", 3, "Uploading the compose file and .env"),
    ("compose_up", 10, "Starting vLLM (docker compose up)"),
    ("vllm", 480, "Waiting for vLLM to load the model"),
    ("tunnel", 1, "Opening the SSH tunnel"),
    ("aider", 0.5, "Writing the aider files"),
    ("ready", 0, "Ready"),
)
STAGE_NAMES = tuple(name for name, _, _ in STAGES)
CLUSTER_TITLES = {  # a launch over several VMs does each stage on every VM at once; short for a narrow column
    "keys": "Making every VM's SSH keys", "create": "Renting the VMs and their network",
    "running": "Waiting for the VMs to boot", "ssh": "Waiting for SSH on every VM",
    "upload": "Uploading each VM's files", "compose_up": "Starting Ray and vLLM on every VM",
    "vllm": "Forming Ray; loading the model",
}
TOTAL_S = sum(seconds for _, seconds, _ in STAGES)


class StageFailed(Exception):
    """A stage could not finish; `str()` says which and what the VM last said."""

    def __init__(self, stage: str, message: str, diagnosis: str | None = None) -> None:
        super().__init__(message)
        self.stage, self.message, self.diagnosis = stage, message, diagnosis


class _Deadline:
    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock, self.seconds = clock, seconds
        self._end = clock.monotonic() + seconds

    @property
    def passed(self) -> bool:
        return self._clock.monotonic() >= self._end


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:g} s"


async def wait_running(provider: Provider, vm_id: int, limits: ReadinessLimits, clock: Clock) -> Vm:
    """Poll the API until the VM is running; it vanishing or the limit passing is a StageFailed."""
    deadline, status = _Deadline(clock, limits.running_s), "unknown"
    while True:
        vm = await provider.get(vm_id)
        if vm is None:
            raise StageFailed("running", f"the VM {vm_id} disappeared while booting "
                                         "(deleted outside the app?)")
        if vm.running:
            return vm
        status = vm.status
        if deadline.passed:
            raise StageFailed("running", f"the VM was not running after {_duration(limits.running_s)}; "
                                         f"Linode last said: {status}")
        await clock.sleep(limits.poll_s)


async def connect_ssh(host: str, port: int, client_key: str, host_key: str, limits: ReadinessLimits,
                      clock: Clock) -> SshSession:
    """Connect with the pinned host key, retrying while sshd is not up yet; a wrong host key or a
    refused client key fails at once (retrying cannot fix either)."""
    deadline, last = _Deadline(clock, limits.ssh_s), "no answer yet"
    while True:
        ssh = SshSession(host, port, client_keys=[client_key], known_host_key=host_key, clock=clock,
                         connect_timeout=min(15.0, max(1.0, limits.ssh_s)))
        try:
            await ssh.connect()
            return ssh
        except (HostKeyMismatch, AuthRefused) as exc:
            raise StageFailed("ssh", str(exc)) from None
        except SshError as exc:  # SshUnreachable above all: refused or timed out while it boots
            last = str(exc)
        if deadline.passed:
            raise StageFailed("ssh", f"SSH did not answer within {_duration(limits.ssh_s)}; last: {last}")
        await clock.sleep(limits.poll_s)


async def wait_cloud_init(ssh: SshSession, limits: ReadinessLimits, clock: Clock,
                          warn: Callable[[str], None]) -> dict:
    """Poll `cloud-init status --format json` until done; "degraded" (exit 2) only warns, "error" fails.

    Polling rather than `--wait` keeps the wait bounded and lets the failure quote the last status.
    SSH drops are expected here (cloud-init may reboot the VM for a new kernel or the driver).
    """
    deadline, last = _Deadline(clock, limits.cloud_init_s), "no status yet"
    while True:
        try:
            result = await ssh.run("cloud-init status --format json", timeout=limits.command_timeout_s)
            report = _json_object(result.stdout)
            if report is not None:
                status = str(report.get("status") or "unknown")
                extended = str(report.get("extended_status") or status)
                last = f"status {extended}" + (f", stage {report['stage']}" if report.get("stage") else "")
                if status == "done":
                    if result.exit_status == 2 or "degraded" in extended:
                        warn(f"cloud-init finished with recoverable errors ({extended}); carrying on")
                    return report
                if status == "error":
                    errors = "; ".join(str(e) for e in report.get("errors") or []) or extended
                    raise StageFailed("cloud_init", f"cloud-init failed on the VM: {errors}")
            elif result.exit_status != 0:
                last = last_line(result.stderr or result.stdout) or f"exit {result.exit_status}"
        except SshError as exc:
            if ssh.state == "refused":
                raise StageFailed("cloud_init", str(exc)) from None
            last = f"SSH: {exc}"  # a reboot under way; the session reconnects on its own
        if deadline.passed:
            raise StageFailed("cloud_init", f"cloud-init did not finish within "
                                            f"{_duration(limits.cloud_init_s)}; the VM last said: {last}")
        await clock.sleep(limits.poll_s)


@dataclass(frozen=True)
class VllmAttempt:
    """How one start of the vLLM container ended: serving (with the real context), or stopped."""

    ready: bool
    log_text: str = ""
    max_model_len: int | None = None
    served_name: str = ""
    reason: str = ""


async def wait_vllm(ssh: SshSession, local_port: int, config: VllmConfig, limits: ReadinessLimits,
                    clock: Clock, diagnose: Callable[[str], object]) -> VllmAttempt:
    """Wait for one start of vLLM: the container up, `/health`, the model in `/v1/models`, and one short
    chat completion. Returns `ready=False` with the log when the container exited (or is restarting
    after a crash, or its log shows the engine died); raises StageFailed when the limit passes.
    """
    deadline, last = _Deadline(clock, limits.vllm_s), "the container has not started yet"
    served = config.served_model_name or config.model
    async with VllmClient(f"http://127.0.0.1:{local_port}", timeout=max(5.0, limits.command_timeout_s),
                          clock=clock) as vllm:
        while True:
            try:
                state = await container_state(ssh, limits)
                if state in ("exited", "dead", "restarting"):
                    log_text = await container_logs(ssh, limits)
                    return VllmAttempt(False, log_text, reason=f"the vLLM container {state}")
                if state == "running":
                    if await vllm.health():
                        attempt, last = await _serving(vllm, served)
                        if attempt is not None:
                            return attempt
                    else:
                        log_text = await container_logs(ssh, limits)
                        last = last_line(log_text) or "vLLM is loading"
                        latest = log_text[log_text.rfind(_RUN_START):] if _RUN_START in log_text else log_text
                        if diagnose(log_text) is not None and _ENGINE_DEAD.search(latest):
                            return VllmAttempt(False, log_text, reason="vLLM's engine died on start-up")
                else:
                    last = f"container {state or 'not created'}"
            except SshError as exc:
                if ssh.state == "refused":
                    raise StageFailed("vllm", str(exc)) from None
                last = f"SSH: {exc}"
            if deadline.passed:
                raise StageFailed("vllm", f"vLLM was not serving within {_duration(limits.vllm_s)}; "
                                          f"its log last said: {last}")
            await clock.sleep(limits.poll_s)


async def wait_vllm_healing(ssh: SshSession, local_port: int, current: Callable[[], VllmConfig], *,
                            gpu_count: int, options: ComposeOptions, limits: ReadinessLimits, clock: Clock,
                            apply: Callable[[int, Diagnosis, VllmConfig], Awaitable[None]],
                            log: Callable[[str], None] = lambda _: None) -> VllmAttempt:
    """Wait for vLLM; after a failed start diagnose the log and let `apply(attempt, diagnosis, new)`
    put the remedied config in place (new compose, `up -d`), at most heal.MAX_ATTEMPTS times.

    `current()` is the config running now. A log that names no cause, a remedy of None, or the
    attempts used up end in StageFailed("vllm") carrying the diagnosis.
    """
    attempt = 0
    while True:
        config = current()
        outcome = await wait_vllm(ssh, local_port, config, limits, clock, heal.diagnose)
        if outcome.ready:
            return outcome
        found = heal.diagnose(outcome.log_text)
        if found is None:
            raise StageFailed("vllm", f"{outcome.reason}, and its log names no cause to heal; last line: "
                                      f"{last_line(outcome.log_text) or '(empty log)'}")
        said = f"{found.kind}: {found.summary}"
        log(found.evidence)
        if attempt >= heal.MAX_ATTEMPTS:
            raise StageFailed("vllm", f"vLLM still fails after {attempt} healing attempts ({found.summary}); "
                                      f"the log says: {found.evidence}", said)
        attempt += 1
        env = vllm_environment(config, options)
        new = heal.remedy(config, found, attempt, gpu_count, container_env=env)
        if new is None:
            raise StageFailed("vllm", f"vLLM cannot start ({found.summary}) and no setting is left to try; "
                                      f"the log says: {found.evidence}", said)
        await apply(attempt, found, new)


async def container_logs(ssh: SshSession, limits: ReadinessLimits) -> str:
    """The vLLM container's last LOG_TAIL lines (stdout and stderr)."""
    result = await ssh.run(f"{COMPOSE_CMD} logs --no-color --tail {LOG_TAIL} vllm 2>&1",
                           timeout=limits.command_timeout_s)
    return result.stdout + result.stderr


async def container_state(ssh: SshSession, limits: ReadinessLimits, service: str = "vllm") -> str | None:
    """A compose service's container state (running, exited, restarting ...), None before it exists."""
    result = await ssh.run(f"{COMPOSE_CMD} ps -a --format json", timeout=limits.command_timeout_s)
    for row in _json_rows(result.stdout):
        if row.get("Service") == service:
            return str(row.get("State") or "").lower() or None
    return None


async def _serving(vllm: VllmClient, served: str) -> tuple[VllmAttempt | None, str]:
    """Ready when the model is listed and answers one short completion; else (None, why not yet)."""
    try:
        models = await vllm.models()
        listed = next((m for m in models if m.id == served), None)
        if listed is None:
            names = ", ".join(m.id for m in models) or "nothing"
            return None, f"vLLM is up but serves {names}, not {served}"
        await vllm.complete_chat(served, TEST_PROMPT, max_tokens=8)
    except VllmError as exc:
        return None, f"vLLM is up but the test request failed: {exc}"
    return VllmAttempt(True, max_model_len=listed.max_model_len, served_name=served), ""


def _json_rows(text: str) -> list[dict]:
    """`ps --format json`: one object per line (Compose >= 2.21) or one array (older releases)."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except ValueError:
            return []
        return [r for r in rows if isinstance(r, dict)]
    return [row for line in stripped.splitlines() if (row := _json_object(line)) is not None]


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
