"""LinodeProvider against the fake Linode API over real HTTP (linode_api4 -> aiohttp on 127.0.0.1).

The fake API runs on its own loop in a thread, because linode_api4 is synchronous and the provider
calls it through asyncio.to_thread while the test's loop waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from maider_tui import catalog
from maider_tui.cli import build_parser, main
from maider_tui.commands.gpu_types import run_types
from maider_tui.clock import SystemClock
from maider_tui.cloud import CreateSpec, LinodeProvider, ProviderError
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.linode_api import run_linode_api
from maider_tui.sim.world import World
from maider_tui.store import open_store

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO6qV2tYxT0Nq1mXcTgJmHQVbGq3G8k0pFrXoGx1y9yP test@maider"


class InstantClock(SystemClock):
    """Real `now`, but sleeps only record how long they were asked to be."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


class SimApi:
    """The fake API on a loop of its own; `call` runs a function on that loop (the world's home)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, self.base_url = self._run(run_linode_api(world))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def wrapped() -> Any:
            return fn(*args)

        return self._run(wrapped())

    def close(self) -> None:
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def make_api() -> Iterator[Callable[..., SimApi]]:
    started: list[SimApi] = []

    def factory(**world_kwargs: Any) -> SimApi:
        api = SimApi(World(**world_kwargs))
        started.append(api)
        return api

    yield factory
    for api in started:
        api.close()


@pytest.fixture
def api(make_api) -> SimApi:
    return make_api(speed=1.0)


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


def provider_for(api: SimApi, clock: InstantClock, **kwargs: Any) -> LinodeProvider:
    kwargs.setdefault("retry_delays", (0.01, 0.01, 0.01, 0.01))
    return LinodeProvider(api.world.token, base_url=api.base_url, clock=clock, **kwargs)


def spec(
    label: str = "sess-a", region: str = "us-ord", type_: str = "g2-gpu-rtx4000a2-s", **kw: Any
) -> CreateSpec:
    return CreateSpec(label, region, type_, "linode/ubuntu22.04", [KEY], kw.pop("user_data", None), **kw)


# --- token and catalog ----------------------------------------------------------------------------


async def test_whoami_with_good_and_bad_token(api, clock):
    account = await provider_for(api, clock).whoami()
    assert account.username == api.world.username
    bad = LinodeProvider("not-the-token", base_url=api.base_url, clock=clock)
    with pytest.raises(ProviderError) as exc:
        await bad.whoami()
    assert exc.value.kind == "auth"
    assert "token was refused (401)" in str(exc.value) and "read/write" in str(exc.value)


async def test_regions_are_the_twelve_gpu_regions(api, clock):
    result = await provider_for(api, clock).regions()
    assert result.source == "api"
    assert {r.id for r in result.items} == {r.id for r in catalog.regions()}
    chicago = next(r for r in result.items if r.id == "us-ord")
    assert (chicago.city, chicago.country, chicago.gpu_families) == ("Chicago", "US", ("rtx4000-ada",))
    assert "us-central" not in {r.id for r in result.items}  # a region without GPUs


async def test_gpu_types_prices_counts_and_regions_from_availability(api, clock):
    api.call(api.world.unavailable.add, ("us-ord", "g2-gpu-rtx4000a1-s"))
    result = await provider_for(api, clock).gpu_types()
    assert result.source == "api"
    by_id = {t.id: t for t in result.items}
    assert set(by_id) == {t.id for t in catalog.gpu_types()}
    assert len(by_id) == 7
    assert by_id["g1-gpu-rtx6000-2"].gpus == 2 and by_id["g1-gpu-rtx6000-2"].hourly_usd == 3.00
    assert by_id["g2-gpu-rtx4000a2-s"].total_vram_gb == pytest.approx(2 * 20475 / 1024)
    assert "us-ord" not in by_id["g2-gpu-rtx4000a1-s"].regions  # sold out there, says availability
    assert "us-ord" in by_id["g2-gpu-rtx4000a2-s"].regions
    assert "us-east" in by_id["g1-gpu-rtx6000-1"].regions
    assert [t.hourly_usd for t in result.items] == sorted(t.hourly_usd for t in result.items)


async def test_cache_hit_then_refresh_bypasses(api, clock, tmp_path):
    store = open_store(tmp_path / "db.sqlite3")
    provider = provider_for(api, clock, store=store)
    first = await provider.gpu_types()
    asked = api.world.requests["GET /linode/types"]
    second = await provider.gpu_types()
    assert (first.source, second.source) == ("api", "cache")
    assert api.world.requests["GET /linode/types"] == asked
    assert [t.id for t in second.items] == [t.id for t in first.items]
    assert second.items[0].family is not None and second.age_s(clock.now()) < 60
    third = await provider.gpu_types(refresh=True)
    assert third.source == "api" and api.world.requests["GET /linode/types"] == asked + 1
    assert (await provider.regions()).source == "api"
    assert (await provider.regions()).source == "cache"


async def test_api_down_gives_the_offline_catalog(clock):
    provider = LinodeProvider("sim-x", base_url="http://127.0.0.1:9/v4", clock=clock, retry_delays=(0,))
    result = await provider.gpu_types()
    assert result.source == "offline"
    assert "Linode API unreachable" in result.message and "built-in prices" in result.message
    assert len(result.items) == 7
    assert (await provider.regions()).source == "offline"


async def test_server_errors_on_the_catalog_fall_back_too(make_api, clock):
    api = make_api(faults=SimFaults(api_error_burst=20))
    result = await provider_for(api, clock).gpu_types()
    assert result.source == "offline" and "503" in result.message


# --- create -------------------------------------------------------------------------------------------


async def test_create_labels_tags_user_data_and_firewall(api, clock):
    user_data = "#cloud-config\nssh_keys: {}\n"
    vm = await provider_for(api, clock).create(spec(user_data=user_data, tags=["team-a"], firewall_id=4242))
    assert vm.label == "sess-a" and vm.status == "provisioning"
    assert set(vm.tags) == {"maider", "maider-session:sess-a", "team-a"}
    assert vm.hourly_usd == 1.04 and vm.ipv4[0].startswith("192.0.2.")
    made = api.world.get(vm.id)
    assert made.user_data == user_data
    assert made.firewall_id == 4242 and made.authorized_keys == [KEY]
    assert made.image == "linode/ubuntu22.04"


async def test_create_for_a_type_the_region_lacks(api, clock):
    with pytest.raises(ProviderError) as exc:
        await provider_for(api, clock).create(spec(region="us-east"))
    assert exc.value.kind == "not_available"
    assert str(exc.value) == (
        "g2-gpu-rtx4000a2-s is not offered in us-east: pick a region that has RTX 4000 Ada"
    )
    assert api.world.creates == 0


async def test_lost_create_response_makes_exactly_one_vm(make_api, clock):
    api = make_api(faults=SimFaults(create_response_lost=1))
    vm = await provider_for(api, clock).create(spec())
    assert [i.id for i in api.world.list()] == [vm.id]
    assert api.world.requests["POST /linode/instances"] == 1  # the library did not resend the POST


async def test_create_after_a_503_checks_the_label_then_retries(make_api, clock):
    api = make_api(faults=SimFaults(api_error_burst=1))
    vm = await provider_for(api, clock).create(spec())
    assert [i.id for i in api.world.list()] == [vm.id]
    assert api.world.requests["POST /linode/instances"] == 2
    assert api.world.requests["GET /linode/instances"] == 1  # looked before sending again


async def test_create_with_a_taken_label_is_refused(api, clock):
    provider = provider_for(api, clock)
    await provider.create(spec())
    with pytest.raises(ProviderError) as exc:
        await provider.create(spec())
    assert exc.value.kind == "invalid" and "unique" in str(exc.value)
    assert api.world.creates == 1


async def test_a_key_that_is_not_a_key_is_invalid(api, clock):
    with pytest.raises(ProviderError) as exc:
        await provider_for(api, clock).create(CreateSpec("sess-a", "us-ord", "g2-gpu-rtx4000a2-s", "img", ["nope"]))
    assert exc.value.kind == "invalid" and api.world.creates == 0


async def test_timeout_is_reported(make_api, clock):
    api = make_api(faults=SimFaults(api_delay_s=0.5))
    with pytest.raises(ProviderError) as exc:
        await provider_for(api, clock, timeout=0.1, retry_delays=()).whoami()
    assert exc.value.kind == "timeout"


# --- reads, retries, lifecycle -----------------------------------------------------------------------


async def test_rate_limit_on_list_is_retried_honouring_retry_after(make_api, clock):
    api = make_api(faults=SimFaults(api_rate_limit_burst=2))
    assert await provider_for(api, clock).list() == []
    assert clock.slept == [1.0, 1.0]  # Retry-After: 1 beats our 0.01 s backoff


async def test_server_errors_longer_than_the_retries(make_api, clock):
    api = make_api(faults=SimFaults(api_error_burst=10))
    with pytest.raises(ProviderError) as exc:
        await provider_for(api, clock).list()
    assert exc.value.kind == "server"
    assert str(exc.value) == "Linode API kept answering 503; try again in a minute"
    assert len(clock.slept) == 4


async def test_destroy_twice(api, clock):
    provider = provider_for(api, clock)
    vm = await provider.create(spec())
    assert await provider.destroy(vm.id) is True
    assert await provider.destroy(vm.id) is False
    assert await provider.get(vm.id) is None


async def test_list_by_tag(api, clock):
    provider = provider_for(api, clock)
    a = await provider.create(spec("sess-a"))
    b = await provider.create(spec("sess-b", tags=["bench"]))
    api.call(lambda: api.world.create("someone-else", "us-ord", "g6-standard-2"))
    assert [vm.id for vm in await provider.list()] == [a.id, b.id]
    assert [vm.id for vm in await provider.list("bench")] == [b.id]
    assert [vm.label for vm in await provider.list("maider-session:sess-b")] == ["sess-b"]


async def test_get_of_a_vanished_vm_is_none(api, clock):
    provider = provider_for(api, clock)
    vm = await provider.create(spec())
    assert (await provider.get(vm.id)).id == vm.id
    api.call(api.world.vanish, vm.id)
    assert await provider.get(vm.id) is None
    assert await provider.list() == []


async def test_status_goes_provisioning_booting_running(make_api, clock):
    api = make_api(speed=300.0)  # boot = 60 sim s = 0.2 real s
    provider = provider_for(api, clock)
    vm = await provider.create(spec())
    seen = [vm.status]
    for _ in range(200):
        status = (await provider.get(vm.id)).status
        if status != seen[-1]:
            seen.append(status)
        if status == "running":
            break
        await asyncio.sleep(0.01)
    assert seen[0] == "provisioning" and seen[-1] == "running"
    assert seen in (["provisioning", "booting", "running"], ["provisioning", "running"])


async def test_ssh_endpoint(api, clock):
    vm = await provider_for(api, clock).create(spec())
    assert provider_for(api, clock).ssh_endpoint(vm) == (vm.ipv4[0], 22)
    resolved = provider_for(api, clock, ssh_resolver=lambda vm_id: ("127.0.0.1", 40000 + vm_id % 1000))
    assert resolved.ssh_endpoint(vm) == ("127.0.0.1", 40000 + vm.id % 1000)


def test_the_token_never_shows(api):
    provider = LinodeProvider(api.world.token, base_url=api.base_url)
    assert api.world.token not in repr(provider)


# --- maider-tui types ---------------------------------------------------------------------------------


def test_types_command_says_where_the_data_came_from(api, capsys, paths, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    store = open_store(paths.database)
    provider = LinodeProvider(api.world.token, base_url=api.base_url, store=store)
    args = build_parser().parse_args(["types", "--region", "us-east"])
    assert run_types(args, provider=provider) == 0
    out = capsys.readouterr().out
    assert "from the Linode API" in out
    assert "g1-gpu-rtx6000-4" in out and "g2-gpu-rtx4000a1-s" not in out
    assert "Quadro RTX 6000" in out and "6.00" in out
    assert run_types(build_parser().parse_args(["types"]), provider=provider) == 0
    assert "from the cache (0 min old" in capsys.readouterr().out


def test_types_command_without_a_token(capsys):
    assert main(["types"]) == 1
    assert "maider-tui token set linode" in capsys.readouterr().err


async def test_a_network_create_after_a_503_checks_the_label_then_retries_once(make_api, clock):
    """The session's VPC goes through the same create-once path as a VM: one network, not two."""
    api = make_api(faults=SimFaults(api_error_burst=1))
    network = await provider_for(api, clock).vpcs.create("netted", "us-east", "maider-tui session netted")
    assert [v.id for v in api.world.vpcs.vpcs.values()] == [network.id]
    assert api.world.requests["POST /vpcs"] == 2
    assert api.world.requests["GET /vpcs"] >= 1  # looked for it by label before sending again
