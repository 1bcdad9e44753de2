"""The idle watchdog on a manual clock: fake metrics, destroy and notify; no real waiting."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import httpx
import pytest

from maider_tui.clock import ManualClock
from maider_tui.cloud import ProviderError
from maider_tui.ops.events import EventRecorder, WatchdogEvent
from maider_tui.ops.notify import Notifier, desktop_command
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.remote.vllm import VllmMetrics
from maider_tui.settings import NotificationSettings, WatchdogSettings
from maider_tui.store import SessionRecord, open_store

NAME = "qwen7b-test"
POLL = 60
SETTINGS = WatchdogSettings(timeout_minutes=30, warning_minutes=5, poll_seconds=POLL)


class FakeMetrics:
    """What vLLM's /metrics says; `None` means the VM cannot be reached."""

    def __init__(self) -> None:
        self.value: VllmMetrics | None = VllmMetrics(reported=True)
        self.calls = 0

    async def __call__(self) -> VllmMetrics | None:
        self.calls += 1
        return self.value

    def tokens(self, prompt: int = 0, generation: int = 0) -> None:
        self.value = replace(self.value, prompt_tokens_total=self.value.prompt_tokens_total + prompt,
                             generation_tokens_total=self.value.generation_tokens_total + generation)

    def running(self, n: int) -> None:
        self.value = replace(self.value, requests_running=n)


@dataclass
class Receipt:
    cost_usd: float


class FakeDestroy:
    def __init__(self, store, clock) -> None:
        self.store, self.clock = store, clock
        self.calls = 0
        self.fail = False

    async def __call__(self) -> Receipt:
        self.calls += 1
        if self.fail:
            raise ProviderError("Linode answered 503", "server", status=503)
        self.store.update_session(NAME, state="destroyed", ended_at=self.clock.now(), cost_usd=0.26)
        return Receipt(0.26)


@pytest.fixture
def env(tmp_path, clock: ManualClock):
    store = open_store(tmp_path / "db.sqlite3", clock=clock)
    store.add_session(SessionRecord(name=NAME, state="ready", hourly_usd=0.52, created_at=clock.now(),
                                    ready_at=clock.now()))
    notes: list[tuple[str, str]] = []
    metrics = FakeMetrics()
    destroy = FakeDestroy(store, clock)
    events = EventRecorder()

    def make(settings: WatchdogSettings = SETTINGS) -> Watchdog:
        return Watchdog(NAME, metrics=metrics, destroy=destroy, store=store, clock=clock, settings=settings,
                        notify=lambda title, message: notes.append((title, message)), emit=events)

    yield type("Env", (), {"store": store, "notes": notes, "metrics": metrics, "destroy": destroy,
                           "events": events, "make": staticmethod(make), "clock": clock})
    store.close()


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


async def start(dog: Watchdog) -> asyncio.Task:
    task = asyncio.create_task(dog.run())
    await settle()
    return task


async def minutes(clock: ManualClock, n: float) -> None:
    """Advance `n` minutes one poll at a time, letting the watchdog poll after each."""
    for _ in range(round(n * 60 / POLL)):
        clock.advance(POLL)
        await settle()


async def finish(dog: Watchdog, task: asyncio.Task) -> None:
    dog.stop()
    await asyncio.wait_for(task, 1)


async def test_warns_then_destroys_on_time(env):
    dog = env.make()
    task = await start(dog)
    assert dog.state == "watching" and dog.remaining_s == 30 * 60
    await minutes(env.clock, 24)
    assert dog.state == "watching" and not env.notes
    await minutes(env.clock, 1)
    assert dog.state == "warning" and len(env.notes) == 1
    await minutes(env.clock, 4)
    assert len(env.notes) == 1, "the warning is sent once"
    assert env.destroy.calls == 0 and dog.remaining_s == 60
    await minutes(env.clock, 1)
    assert env.destroy.calls == 1 and dog.state == "destroyed"
    await asyncio.wait_for(task, 1)
    assert "destroyed after 30 min idle, $0.26 total" in env.notes[-1][1]
    assert any("destroyed after 30 min idle, $0.26 total" in e.message for e in env.store.events(NAME))
    states = [e.state for e in env.events.of(WatchdogEvent)]
    assert states[0] == "watching" and "warning" in states and states[-2:] == ["destroying", "destroyed"]


async def test_activity_resets_the_timer(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 26)
    assert dog.state == "warning"
    env.metrics.tokens(prompt=120, generation=40)
    await minutes(env.clock, 1)
    assert dog.state == "watching" and dog.remaining_s == 30 * 60
    record = env.store.get_session(NAME)
    assert record.last_activity == env.clock.now() and record.extra["idle_since"] == env.clock.now()
    await minutes(env.clock, 29)
    assert env.destroy.calls == 0
    await finish(dog, task)
    assert dog.state == "stopped"


async def test_never_destroys_while_streaming(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 29)
    # The app's own request is streaming: not activity, but destroying would still cut a stream.
    with dog.own_requests():
        env.metrics.running(1)
        await minutes(env.clock, 10)
        assert env.destroy.calls == 0 and dog.remaining_s == 0 and dog.state == "warning"
    env.metrics.running(0)
    await minutes(env.clock, 1)
    assert env.destroy.calls == 1 and dog.state == "destroyed"
    await asyncio.wait_for(task, 1)


async def test_running_request_resets_the_timer(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 29)
    env.metrics.running(1)
    await minutes(env.clock, 5)
    assert env.destroy.calls == 0 and dog.remaining_s == 30 * 60
    env.metrics.running(0)
    env.metrics.value = replace(env.metrics.value, requests_waiting=2)  # queued counts too
    await minutes(env.clock, 20)
    assert dog.idle_s == 0
    await finish(dog, task)


async def test_extend_resets_and_is_recorded(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 27)
    assert dog.state == "warning"
    dog.extend()
    assert dog.state == "watching" and dog.remaining_s == 30 * 60
    assert [e.kind for e in env.store.events(NAME)].count("extended") == 1
    await minutes(env.clock, 26)
    assert dog.state == "warning" and len(env.notes) == 2, "a new idle stretch warns again"
    await finish(dog, task)


async def test_hold_pauses_and_release_restarts(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 20)
    dog.hold("benchmark")
    assert dog.state == "paused" and dog.message == "Paused while the benchmark runs."
    env.metrics.tokens(prompt=5000, generation=9000)
    await minutes(env.clock, 60)
    assert dog.state == "paused" and env.destroy.calls == 0 and dog.remaining_s == 10 * 60
    dog.release()
    assert dog.state == "watching" and dog.remaining_s == 30 * 60
    await minutes(env.clock, 1)
    assert dog.remaining_s == 29 * 60, "the held work's tokens are not counted again"
    await finish(dog, task)


async def test_unreachable_counts_as_idle_by_default(env):
    env.metrics.value = None
    dog = env.make()
    task = await start(dog)
    assert dog.unreachable
    await minutes(env.clock, 30)
    assert env.destroy.calls == 1 and dog.state == "destroyed"
    await asyncio.wait_for(task, 1)


async def test_unreachable_pauses_when_the_setting_is_off(env):
    dog = env.make(SETTINGS.replace(**{"unreachable_is_idle": False}))
    task = await start(dog)
    await minutes(env.clock, 10)
    env.metrics.value = None
    await minutes(env.clock, 60)
    assert dog.state == "paused" and dog.unreachable and env.destroy.calls == 0
    assert 19 * 60 <= dog.remaining_s <= 20 * 60
    env.metrics.value = VllmMetrics(reported=True)
    await minutes(env.clock, 1)
    assert dog.state == "watching" and not dog.unreachable
    await finish(dog, task)


async def test_resumes_after_restart(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 12)
    await finish(dog, task)
    await minutes(env.clock, 3)  # the app is closed for three minutes
    second = env.make()
    assert second.remaining_s == 15 * 60
    task = await start(second)
    await minutes(env.clock, 15)
    assert env.destroy.calls == 1 and second.state == "destroyed"
    await asyncio.wait_for(task, 1)


async def test_failing_destroy_keeps_the_session_and_retries(env):
    env.destroy.fail = True
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 30)
    assert env.destroy.calls == 1 and dog.state == "warning"
    assert "503" in env.notes[-1][1] and not env.store.get_session(NAME).ended
    await minutes(env.clock, 1)
    assert env.destroy.calls == 2
    env.destroy.fail = False
    await minutes(env.clock, 1)
    assert env.destroy.calls == 3 and dog.state == "destroyed"
    await asyncio.wait_for(task, 1)


async def test_own_traffic_is_not_activity(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 10)
    with dog.own_requests():
        env.metrics.running(1)
        env.metrics.tokens(prompt=30, generation=8)
        await minutes(env.clock, 1)
    env.metrics.running(0)
    env.metrics.tokens(generation=2)  # the tail of the own request, seen only after the block
    await minutes(env.clock, 1)
    assert dog.remaining_s == 18 * 60
    env.metrics.tokens(generation=50)  # then the user
    await minutes(env.clock, 1)
    assert dog.remaining_s == 30 * 60
    await finish(dog, task)


async def test_counter_reset_is_not_activity(env):
    env.metrics.tokens(prompt=1000, generation=500)
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 5)
    env.metrics.value = VllmMetrics(reported=True)  # vLLM restarted after a model switch
    await minutes(env.clock, 1)
    assert dog.remaining_s == 24 * 60
    await finish(dog, task)


async def test_session_ended_elsewhere_stops_the_watchdog(env):
    dog = env.make()
    task = await start(dog)
    env.store.update_session(NAME, state="destroyed", ended_at=env.clock.now())
    await minutes(env.clock, 1)
    await asyncio.wait_for(task, 1)
    assert dog.state == "destroyed" and env.destroy.calls == 0


async def test_disabled_watchdog_does_nothing(env):
    dog = env.make(SETTINGS.replace(**{"enabled": False}))
    await asyncio.wait_for(dog.run(), 1)
    assert dog.state == "stopped" and env.metrics.calls == 0


async def test_metrics_from_tunnel_unreachable_is_none():
    read = metrics_from_tunnel(lambda: 1, timeout=1)  # nothing listens on port 1
    assert await read() is None
    assert await metrics_from_tunnel(lambda: None)() is None


async def test_a_deadline_passed_while_unwatched_still_gets_its_warning(env):
    dog = env.make()
    env.clock.advance(3 * 3600)  # the app was closed for three hours, nobody watching
    task = await start(dog)
    assert dog.state == "warning" and len(env.notes) == 1 and env.destroy.calls == 0
    assert dog.remaining_s == 5 * 60
    await minutes(env.clock, 5)
    assert env.destroy.calls == 1 and dog.state == "destroyed"
    await asyncio.wait_for(task, 1)


async def test_a_stopped_watchdog_can_run_again(env):
    dog = env.make()
    task = await start(dog)
    await minutes(env.clock, 10)
    await finish(dog, task)
    assert dog.state == "stopped"
    task = await start(dog)
    assert dog.state == "watching" and dog.remaining_s == 20 * 60
    await finish(dog, task)


# --- notifications (ops/notify.py), with fake subprocess and HTTP -----------------------------------

class FakeProc:
    """A notify-send process that exits at once, or hangs until killed."""

    def __init__(self, hang: bool = False) -> None:
        self.hang, self.killed = hang, False

    async def wait(self) -> int:
        if self.hang:
            await asyncio.sleep(3600)
        return 0

    def kill(self) -> None:
        self.killed = True


def fake_run(calls: list, proc: FakeProc):
    async def run(*argv, **kwargs):
        return calls.append(argv) or proc

    return run


def fake_http(posts: list, status: int = 200, fail: bool = False):
    def handler(request: httpx.Request) -> httpx.Response:
        if fail:
            raise httpx.ConnectError("refused", request=request)
        posts.append((str(request.url), request.headers.get("Title"), request.content.decode()))
        return httpx.Response(status)

    return lambda **kwargs: httpx.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)


async def test_notifier_sends_to_every_channel():
    calls, posts, seen = [], [], []
    notifier = Notifier(NotificationSettings(ntfy_url="https://ntfy.example/maider"),
                        in_app=lambda t, m: seen.append((t, m)), run=fake_run(calls, FakeProc()),
                        http=fake_http(posts), which=lambda cmd: f"/usr/bin/{cmd}", platform="linux")
    await notifier("s1: idle — destroying soon", "destroyed in 5 min")
    assert seen == [("s1: idle — destroying soon", "destroyed in 5 min")]
    assert calls == [("/usr/bin/notify-send", "--app-name=maider-tui", "s1: idle — destroying soon",
                      "destroyed in 5 min")]
    assert posts == [("https://ntfy.example/maider", "s1: idle ? destroying soon", "destroyed in 5 min")]


async def test_notifier_macos_and_missing_tools():
    argv = desktop_command('say "hi"', "a\\b", platform="darwin", which=lambda cmd: "/usr/bin/osascript")
    assert argv == ["/usr/bin/osascript", "-e", 'display notification "a\\\\b" with title "say \\"hi\\""']
    assert desktop_command("t", "m", platform="linux", which=lambda cmd: None) is None
    calls: list = []
    quiet = Notifier(NotificationSettings(desktop=False), run=fake_run(calls, FakeProc()),
                     which=lambda cmd: "/x", platform="linux")
    assert await quiet.desktop("t", "m") is False and calls == []
    assert await quiet.ntfy("t", "m") is False, "no ntfy URL, no POST"


async def test_notifier_failures_are_swallowed():
    proc = FakeProc(hang=True)

    notifier = Notifier(NotificationSettings(ntfy_url="https://ntfy.example/t"), in_app=lambda t, m: 1 / 0,
                        run=fake_run([], proc), http=fake_http([], fail=True), which=lambda cmd: "/x",
                        platform="linux", timeout=0.05)
    await notifier.notify("t", "m")  # nothing raises
    assert proc.killed, "a hung notify-send is killed after the timeout"
    refused = Notifier(NotificationSettings(desktop=False, ntfy_url="https://ntfy.example/t"),
                       http=fake_http([], status=500))
    assert await refused.ntfy("t", "m") is False
