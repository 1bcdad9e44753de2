"""Every request the app sends to the Linode API, and every answer the simulated API gives it, held
against Linode's published OpenAPI description (`../shared/schemas/linode-openapi.json`).

The app's own code runs: a whole launch and destroy through `LiveSessions`, the provider's catalog
and account calls, and the failures the app must read (a wrong token, an unknown region, a VM that
is gone). Known differences between the description and the live API are listed in the schemas'
README and handled in `openapi.json_schema`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.cloud.base import CreateSpec, VpcJoin
from maider_tui.cloud.errors import ProviderError
from maider_tui.cloud.linode import LinodeProvider
from maider_tui.cloud.vpcs import node_address
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.ops.provision import LaunchPlan
from maider_tui.ops.switch_model import plan_config
from maider_tui.remote.ssh import generate_keypair
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.sim.world import Exchange
from maider_tui.store import open_store
from tests.integration import openapi
from tests.integration.test_destroy_recover import LIMITS, make_provider

pytestmark = pytest.mark.skipif(not openapi.SPEC.exists(), reason="Linode's OpenAPI description is not beside the repository")

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
ONE_GPU = "g2-gpu-rtx4000a1-s"
KEY = generate_keypair("contract").public_line


@pytest.fixture(scope="module")
def exchanges(tmp_path_factory) -> list[Exchange]:
    """The whole conversation of one module's worth of app use with the simulated API."""
    import asyncio

    with SimCloud(speed=1000, seed=11) as sim:
        recorded = sim.world.record_exchanges()
        asyncio.run(_use_the_api(sim, tmp_path_factory.mktemp("contract")))
        return list(recorded)


async def _use_the_api(sim: SimCloud, folder: Path) -> None:
    from maider_tui.ops.live import LiveSessions
    from maider_tui.paths import AppPaths

    with open_store(folder / "db.sqlite3") as store:
        provider = make_provider(sim, store)
        await provider.whoami()
        await provider.regions(refresh=True)
        await provider.gpu_types(refresh=True)
        paths = AppPaths(config_dir=folder / "config", data_dir=folder / "data", log_dir=folder / "log",
                         cache_dir=folder / "cache")
        live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                            provider=lambda: make_provider(sim, store), hf_token=lambda: None, limits=LIMITS)
        try:
            gpu = catalog.gpu_type(ONE_GPU)
            plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=plan_config(MODEL, ONE_GPU),
                              compose=ComposeOptions())
            name = (await live.launch(plan)).name
            record = store.get_session(name)
            assert record is not None and record.instance_id is not None
            assert await provider.get(record.instance_id) is not None
            assert await provider.find_label(name) is not None
            await live.destroy(name)
            assert await provider.get(record.instance_id) is None  # a 404 the app reads as "gone"
        finally:
            await live.close_all()
        await _private_network(provider)
        await _failures(sim, provider)


async def _private_network(provider: LinodeProvider) -> None:
    """A multi-VM session's VPC: made, joined by a VM at a fixed address, refused while attached, removed."""
    gpu = catalog.gpu_type(ONE_GPU)
    network = await provider.vpcs.create("contract-net", gpu.regions[0], "maider-tui contract test")
    assert await provider.vpcs.find(network.label) == network and network in await provider.vpcs.list()
    vm = await provider.create(CreateSpec(label="contract-node-0", region=gpu.regions[0], type=ONE_GPU,
                                          image="linode/ubuntu22.04", authorized_keys=[KEY],
                                          vpc=VpcJoin(network.subnet_id, node_address(network.cidr, 0))))
    with pytest.raises(ProviderError):
        await provider.vpcs.delete(network.id)  # 400 while a VM is attached
    assert await provider.destroy(vm.id)
    assert await provider.vpcs.delete(network.id) is True
    assert await provider.vpcs.delete(network.id) is False  # 404


async def _failures(sim: SimCloud, provider: LinodeProvider) -> None:
    """The error answers the app must read: each must have Linode's error body."""
    with pytest.raises(ProviderError):
        await provider.create(CreateSpec(label="contract-bad-region", region="xx-nowhere", type=ONE_GPU,
                                         image="linode/ubuntu22.04",
                                         authorized_keys=[KEY]))
    wrong = LinodeProvider("not-the-token", base_url=sim.linode_base_url, retry_delays=(0.01,))
    with pytest.raises(ProviderError) as refused:
        await wrong.whoami()
    assert refused.value.kind == "auth"


def _key(exchange: Exchange) -> str:
    found = openapi.operation(exchange.method, exchange.path)
    return f"{exchange.method} {found.template if found else exchange.path}"


def test_the_app_uses_only_documented_operations_and_the_whole_flow_was_seen(exchanges):
    undocumented = sorted({f"{e.method} {e.path}" for e in exchanges if openapi.operation(e.method, e.path) is None})
    assert not undocumented, f"not in Linode's API description: {undocumented}"
    seen = {_key(e) for e in exchanges}
    # What a launch, a destroy and the catalog need; the test is only as good as this coverage.
    assert {"GET /profile", "GET /regions", "GET /regions/availability", "GET /linode/types",
            "GET /linode/instances", "POST /linode/instances", "GET /linode/instances/{linodeId}",
            "DELETE /linode/instances/{linodeId}", "POST /vpcs", "GET /vpcs", "GET /vpcs/{vpcId}/subnets",
            "DELETE /vpcs/{vpcId}"} <= seen
    statuses = {e.status for e in exchanges}
    assert {200, 400, 401, 404} <= statuses


def test_every_request_body_the_app_sends_is_valid_and_sends_no_undocumented_field(exchanges):
    bodies = [e for e in exchanges if e.request is not None]
    assert any(e.method == "POST" and e.path == "/linode/instances" for e in bodies)
    for exchange in bodies:
        schema = openapi.operation(exchange.method, exchange.path).request_schema()
        assert schema is not None, f"{_key(exchange)} takes no JSON body, yet the app sent one"
        assert not openapi.problems(schema, exchange.request), (_key(exchange), openapi.problems(schema, exchange.request))
        extra = set(exchange.request) - openapi.declared_fields(schema)
        assert not extra, f"{_key(exchange)} sends fields Linode does not document: {sorted(extra)}"


def test_every_filter_the_app_sends_is_json(exchanges):
    import json

    filters = [e.headers["X-Filter"] for e in exchanges if "X-Filter" in e.headers]
    assert filters, "the app filters instances and types on the server"
    for value in filters:
        assert isinstance(json.loads(value), dict)


def test_every_answer_the_sim_gives_matches_the_description(exchanges):
    checked = 0
    for exchange in exchanges:
        schema = openapi.operation(exchange.method, exchange.path).response_schema(exchange.status)
        assert schema is not None, f"{_key(exchange)} has no documented {exchange.status} answer"
        found = openapi.problems(schema, exchange.response)
        assert not found, (f"{_key(exchange)} -> {exchange.status}", found[:5])
        checked += 1
    assert checked >= 10


def test_error_answers_carry_linodes_error_body(exchanges):
    failures = [e for e in exchanges if e.status >= 400]
    assert failures
    for exchange in failures:
        reasons = [error.get("reason") for error in exchange.response["errors"]]
        assert reasons and all(isinstance(r, str) and r for r in reasons), _key(exchange)


def test_the_conversion_admits_null_only_where_the_description_says_nullable():
    schema = {"type": "object", "properties": {"a": {"type": "string", "nullable": True}, "b": {"type": "string"},
                                               "nullable": {"type": "integer"}}}
    assert openapi.problems(schema, {"a": None, "b": "x", "nullable": 1}) == []
    assert openapi.problems(schema, {"b": None}) != []
    assert openapi.problems(schema, {"nullable": "not a number"}) != []  # a field named like a keyword


def test_the_check_bites_on_a_real_answer_and_a_real_request(exchanges):
    import copy

    answer = next(e for e in exchanges if e.method == "GET" and e.path.startswith("/linode/instances/")
                  and e.status == 200)
    schema = openapi.operation(answer.method, answer.path).response_schema(200)
    broken = copy.deepcopy(answer.response)
    broken["id"], broken["status"] = "one", "melting"
    assert len(openapi.problems(schema, broken)) == 2
    create = next(e for e in exchanges if e.method == "POST" and e.path == "/linode/instances" and e.status == 200)
    request_schema = openapi.operation(create.method, create.path).request_schema()
    assert "made_up_field" not in openapi.declared_fields(request_schema)
    assert openapi.problems(request_schema, {**create.request, "tags": "not-a-list"})
