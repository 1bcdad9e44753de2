"""A fake Linode API v4 on aiohttp: the endpoints linode_api4 uses for our provider, with real shapes.

Serves under /v4 with bearer-token auth, `data/page/pages/results` pagination, the `X-Filter`
header (field equality, `+contains`, `+neq`, `+and`, `+or`, `+order_by`), real error bodies
(`{"errors": [{"reason": ..., "field": ...}]}`) and the API faults of `world.faults`.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from maider_tui import catalog
from maider_tui.sim.api_lists import paginate
from maider_tui.sim.hub import HUB_PREFIX, add_hub_routes
from maider_tui.sim.world import (PLAIN_REGIONS, PLAIN_TYPES, Exchange, World, WorldError, check_label,
                                  decode_user_data)

WORLD_KEY: web.AppKey[World] = web.AppKey("world", World)
T = TypeVar("T")
# Labels as Linode writes them; the catalog has the city and country only.
_US_STATES = {"us-ord": "IL", "us-sea": "WA", "us-east": "NJ", "us-southeast": "GA"}
_CAPABILITIES = [
    "Linodes", "Backups", "NodeBalancers", "Block Storage", "Cloud Firewall", "Vlans", "VPCs",
    "Metadata", "Placement Group",
]
_PUBLIC = re.compile(r"^/v4/(regions|linode/types)(/|$)")  # no token needed, as on Linode


def errors(status: int, reason: str, field: str | None = None, **headers: str) -> web.Response:
    """A response with Linode's error body."""
    error: dict[str, str] = {"reason": reason}
    if field:
        error["field"] = field
    return web.json_response({"errors": [error]}, status=status, headers=headers or None)


def api_time(ts: float) -> str:
    """Linode's timestamps: UTC, no zone suffix."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# --- JSON shapes ------------------------------------------------------------------------------------


def region_json(region_id: str, label: str, country: str, gpu: bool) -> dict[str, Any]:
    return {
        "id": region_id, "label": label, "country": country, "status": "ok", "site_type": "core",
        "capabilities": list(_CAPABILITIES) + (["GPU Linodes"] if gpu else []),
        "resolvers": {"ipv4": "192.0.2.53", "ipv6": "2001:db8::53"},
        "placement_group_limits": {"maximum_pgs_per_customer": None, "maximum_linodes_per_pg": 5},
    }


def all_regions() -> list[dict[str, Any]]:
    out = []
    for r in catalog.regions():
        label = f"{r.city}, {_US_STATES.get(r.id, r.country)}"
        out.append(region_json(r.id, label, r.country.lower(), True))
    out += [region_json(rid, label, country, False) for rid, label, country in PLAIN_REGIONS]
    return sorted(out, key=lambda r: r["id"])


def type_json(
    type_id: str, label: str, type_class: str, gpus: int, memory: int, vcpus: int, disk: int,
    transfer: int, hourly: float, monthly: float,
) -> dict[str, Any]:
    return {
        "id": type_id, "label": label, "class": type_class, "gpus": gpus, "memory": memory, "vcpus": vcpus,
        "disk": disk, "transfer": transfer, "network_out": 10000 if gpus else 4000,
        "price": {"hourly": hourly, "monthly": monthly},
        "region_prices": [],
        "addons": {"backups": {"price": {"hourly": round(monthly / 5 / 730, 4), "monthly": monthly / 5},
                               "region_prices": []}},
        "successor": None,
        "accelerated_devices": 0,
    }


def all_types(world: World | None = None) -> list[dict[str, Any]]:
    out = [type_json(type_id, label, type_class, 0, memory, vcpus, disk, transfer, hourly, monthly)
           for type_id, label, type_class, memory, vcpus, disk, transfer, hourly, monthly in PLAIN_TYPES]
    for t in world.gpu_types() if world is not None else catalog.gpu_types():
        # A few catalog plans lack disk/vCPU figures; the real API always has them.
        out.append(type_json(
            t.id, t.label, "gpu", t.gpus, t.memory_mb or 16384 * t.gpus, t.vcpus or 4 * t.gpus,
            t.disk_mb or 524288 * t.gpus, 16000 * t.gpus, t.hourly_usd, t.monthly_usd,
        ))
    return out


def availability(world: World) -> list[dict[str, Any]]:
    """Per region and GPU plan (the plans with limited availability, as on Linode), whether it can be had."""
    regions = sorted(world.region_ids())
    return [
        {"region": region, "plan": t.id, "available": world.offered(t.id, region)}
        for region in regions
        for t in world.gpu_types()
    ]


def instance_json(world: World, i: Any) -> dict[str, Any]:
    specs = next((t for t in all_types(world) if t["id"] == i.type), None) or {}
    return {
        "id": i.id,
        "label": i.label,
        "group": "",
        "status": world.status(i),
        "created": api_time(i.created),
        "updated": api_time(i.updated or i.created),
        "type": i.type,
        "region": i.region,
        "image": i.image,
        "ipv4": list(i.ipv4),
        "ipv6": i.ipv6,
        "tags": list(i.tags),
        "specs": {k: specs.get(k, 0) for k in ("disk", "memory", "vcpus", "gpus", "transfer")},
        "hypervisor": "kvm",
        "alerts": {"cpu": 90 * max(1, specs.get("vcpus", 1)), "network_in": 10, "network_out": 10,
                   "transfer_quota": 80, "io": 10000},
        "backups": {"enabled": False, "available": False, "schedule": {"day": None, "window": None},
                    "last_successful": None},
        "watchdog_enabled": True,
        "has_user_data": i.user_data is not None,
        "host_uuid": f"sim-host-{i.id % 7}",
        "disk_encryption": "disabled",
        "lke_cluster_id": None,
        "placement_group": None,
        "capabilities": [],
    }


# --- middleware: bookkeeping, faults, auth, errors ------------------------------------------------------


@web.middleware
async def _middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    world = request.app[WORLD_KEY]
    if request.path.startswith(HUB_PREFIX + "/"):
        return await handler(request)  # the simulated Hugging Face Hub (sim/hub.py): its own rules
    if request.path.startswith("/sim/"):
        # The control plane (sim/control.py): never Linode traffic, never faulted; same token.
        if request.headers.get("Authorization", "") != f"Bearer {world.token}":
            return errors(401, "Invalid Token")
        return await handler(request)
    world.api_requests += 1
    world.requests[f"{request.method} {request.path.removeprefix('/v4')}"] += 1
    if world.exchanges is not None:
        response = await _answer(request, handler)
        world.exchanges.append(Exchange(
            request.method, request.path.removeprefix("/v4"), dict(request.query),
            {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            _json_or_none(await request.read()), response.status,
            _json_or_none(response.body if isinstance(response, web.Response) else None)))
        return response
    return await _answer(request, handler)


def _json_or_none(body: Any) -> Any:
    if not isinstance(body, (bytes, bytearray)) or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _answer(request: web.Request, handler: Any) -> web.StreamResponse:
    world = request.app[WORLD_KEY]
    faults = world.faults
    if faults.api_delay_s > 0:
        await asyncio.sleep(faults.api_delay_s)
    status = faults.take_api_fault()
    if status == 429:
        return errors(429, "Too Many Requests", **{"Retry-After": "1"})
    if status is not None:
        return errors(status, "Service Unavailable" if status == 503 else "Internal Server Error")
    auth = request.headers.get("Authorization", "")
    if auth != f"Bearer {world.token}" and not (auth == "" and _PUBLIC.match(request.path)):
        return errors(401, "Invalid Token")
    try:
        return await handler(request)
    except WorldError as exc:
        return errors(exc.status, exc.reason, exc.field)
    except web.HTTPNotFound:
        return errors(404, "Not found")
    except web.HTTPMethodNotAllowed:
        return errors(405, "Method Not Allowed")


# --- handlers --------------------------------------------------------------------------------------------


async def _profile(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    return web.json_response({
        "username": world.username, "email": world.email, "restricted": False, "uid": 1001,
        "timezone": "UTC", "two_factor_auth": False, "email_notifications": True,
        "ip_whitelist_enabled": False, "lish_auth_method": "keys_only", "authorized_keys": None,
        "referrals": {"code": "", "url": "", "total": 0, "completed": 0, "pending": 0, "credit": 0},
    })


async def _regions(request: web.Request) -> web.Response:
    return paginate(request, all_regions())


async def _availability(request: web.Request) -> web.Response:
    return paginate(request, availability(request.app[WORLD_KEY]))


async def _types(request: web.Request) -> web.Response:
    return paginate(request, all_types(request.app[WORLD_KEY]))


async def _type(request: web.Request) -> web.Response:
    found = next((t for t in all_types(request.app[WORLD_KEY]) if t["id"] == request.match_info["type_id"]),
                 None)
    return web.json_response(found) if found else errors(404, "Not found")


async def _instances(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    return paginate(request, [instance_json(world, i) for i in world.list()])


async def read_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise WorldError("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise WorldError("Request body must be a JSON object")
    return body


async def _create(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    body = await read_body(request)
    if world.faults.create_hold_s > 0:  # the request has arrived; the VM is made when it lands
        await asyncio.sleep(world.faults.create_hold_s)
    for required in ("type", "region"):
        if not body.get(required):
            raise WorldError(f"{required} is required", required)
    keys = body.get("authorized_keys") or []
    key_ok = (isinstance(k, str) and k.startswith(("ssh-", "ecdsa-")) for k in keys)
    if not isinstance(keys, list) or not all(key_ok):
        raise WorldError("Invalid SSH2 public key", "authorized_keys")
    if body.get("image") and not (keys or body.get("root_pass")):
        raise WorldError("root_pass or authorized_keys is required when an image is given", "root_pass")
    metadata = body.get("metadata") or {}
    user_data = decode_user_data(metadata["user_data"]) if "user_data" in metadata else None
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and 3 <= len(t) <= 50 for t in tags):
        raise WorldError("Tags must be 3 to 50 characters long", "tags")
    joining = world.vpcs.plan_attachment(body.get("interfaces"), body["region"])
    instance = world.create(
        body.get("label"), body["region"], body["type"], body.get("image"),
        authorized_keys=keys, user_data=user_data, tags=tags, firewall_id=body.get("firewall_id"),
    )
    if joining is not None:
        world.vpcs.attach(instance.id, joining)
    if world.faults.create_response_lost > 0:
        # The instance exists; only the answer is lost, as with a proxy timing out on the way back.
        world.faults.create_response_lost -= 1
        return errors(502, "Bad Gateway")
    return web.json_response(instance_json(world, instance))


def found_or_404(request: web.Request, key: str, lookup: Callable[[int], T | None]) -> T:
    """What the path's `key` names, by `lookup`; a 404 when it is not a number or names nothing."""
    try:
        found = lookup(int(request.match_info[key]))
    except ValueError:
        found = None
    if found is None:
        raise web.HTTPNotFound()
    return found


def _instance_or_404(request: web.Request) -> Any:
    return found_or_404(request, "instance_id", request.app[WORLD_KEY].get)


async def _instance(request: web.Request) -> web.Response:
    return web.json_response(instance_json(request.app[WORLD_KEY], _instance_or_404(request)))


async def _update(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    instance = _instance_or_404(request)
    body = await read_body(request)
    if "label" in body and body["label"] != instance.label:
        check_label(body["label"])
        if world.find_label(body["label"]) is not None:
            raise WorldError("Label must be unique among your Linodes", "label")
        instance.label = body["label"]
    if "tags" in body:
        instance.tags = sorted(set(body["tags"]))
    instance.updated = world.now()
    return web.json_response(instance_json(world, instance))


async def _delete(request: web.Request) -> web.Response:
    instance = _instance_or_404(request)
    request.app[WORLD_KEY].delete(instance.id)
    return web.json_response({})


async def _reboot(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    instance = _instance_or_404(request)
    if world.status(instance) in ("provisioning", "booting"):
        raise WorldError("Linode busy.", status=400)
    world.reboot(instance.id)
    return web.json_response({})


def create_linode_api_app(world: World) -> web.Application:
    """The fake API as an aiohttp application; every route lives under /v4."""
    app = web.Application(middlewares=[_middleware])
    app[WORLD_KEY] = world
    app.router.add_get("/v4/profile", _profile)
    app.router.add_get("/v4/regions", _regions)
    app.router.add_get("/v4/regions/availability", _availability)
    app.router.add_get("/v4/linode/types", _types)
    app.router.add_get("/v4/linode/types/{type_id}", _type)
    app.router.add_get("/v4/linode/instances", _instances)
    app.router.add_post("/v4/linode/instances", _create)
    app.router.add_get("/v4/linode/instances/{instance_id}", _instance)
    app.router.add_put("/v4/linode/instances/{instance_id}", _update)
    app.router.add_delete("/v4/linode/instances/{instance_id}", _delete)
    app.router.add_post("/v4/linode/instances/{instance_id}/reboot", _reboot)
    from maider_tui.sim.vpc_api import add_vpc_routes  # it builds on this module's helpers

    add_vpc_routes(app)
    return app


async def run_linode_api(
    world: World, host: str = "127.0.0.1", port: int = 0, *, ssh_info: Any = None
) -> tuple[web.AppRunner, str]:
    """Start the fake API on the running loop; returns the runner (call `cleanup()`) and the base URL.

    ssh_info: the cloud's lookup of a VM's SSH address, served on the control plane (/sim).
    """
    from maider_tui.sim.control import add_control_routes

    app = create_linode_api_app(world)
    holder = add_control_routes(app, world)
    add_hub_routes(app, world.hub)
    if ssh_info is not None:
        holder.append(ssh_info)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, f"http://{bound_host}:{bound_port}/v4"
