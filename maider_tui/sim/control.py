"""The sim's control plane: what a test or benchmark in another process needs to see and steer.

Served beside the fake Linode API, under /sim instead of /v4, with the same bearer token. It never
counts as Linode API traffic and API faults never hit it:

- `GET /sim/instances/{id}`: `{"ssh_host", "ssh_port", "ssh_handshakes"}` for a VM that exists;
- `GET /sim/faults`: every fault switch and its value;
- `PATCH /sim/faults`: set some of them (a JSON object; sets are given as lists);
- `GET /sim/stats`: API request counts, creates, deletes, vanished VMs and live instance ids.

`RemoteSim` in `sim/remote.py` is the client the app's `--sim-url` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from maider_tui.sim.faults import SimFaults
from maider_tui.sim.world import World

SshInfo = Callable[[int], dict[str, Any]]
"""instance id -> {"ssh_host", "ssh_port", "ssh_handshakes"}; raises LookupError if there is no VM."""

WORLD_KEY: web.AppKey[World] = web.AppKey("control_world", World)
SSH_INFO_KEY: web.AppKey[list[SshInfo]] = web.AppKey("ssh_info", list)
_FAULT_FIELDS = {f.name: f for f in dataclasses.fields(SimFaults)}


def _json_error(status: int, reason: str) -> web.Response:
    return web.json_response({"errors": [{"reason": reason}]}, status=status)


async def _instance(request: web.Request) -> web.Response:
    try:
        instance_id = int(request.match_info["instance_id"])
        holder = request.app[SSH_INFO_KEY]
        if not holder:
            raise LookupError("the simulated cloud is still starting")
        return web.json_response(holder[0](instance_id))
    except (ValueError, LookupError) as exc:
        return _json_error(404, str(exc) or "Not found")


def faults_json(faults: SimFaults) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FAULT_FIELDS:
        value = getattr(faults, name)
        out[name] = sorted(value) if isinstance(value, set) else value
    return out


def apply_faults(faults: SimFaults, changes: dict[str, Any]) -> None:
    """Set the named switches; an unknown name or a wrong kind of value raises ValueError."""
    unknown = sorted(set(changes) - set(_FAULT_FIELDS))
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
    for name, value in changes.items():
        current = getattr(faults, name)
        if isinstance(current, set):
            if not isinstance(value, list):
                raise ValueError(f"{name} takes a list")
            value = set(value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{name} takes true or false")
        elif value is not None and not isinstance(value, (int, float)):
            raise ValueError(f"{name} takes a number or null")
        setattr(faults, name, value)


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(faults_json(request.app[WORLD_KEY].faults))


async def _patch_faults(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("send a JSON object of fault names and values")
        apply_faults(world.faults, changes)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        return _json_error(400, str(exc))
    return web.json_response(faults_json(world.faults))


async def _stats(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    return web.json_response({
        "api_requests": world.api_requests,
        "requests": dict(world.requests),
        "creates": world.creates,
        "deletes": world.deletes,
        "vanished": world.vanished,
        "instances": sorted(i.id for i in world.instances.values() if not i.deleted),
        "speed": world.speed,
    })


def add_control_routes(app: web.Application, world: World) -> list[SshInfo]:
    """Register /sim/*; returns the (empty) holder the cloud puts its SSH lookup into once VMs run."""
    holder: list[SshInfo] = []
    app[WORLD_KEY] = world
    app[SSH_INFO_KEY] = holder
    app.router.add_get("/sim/instances/{instance_id}", _instance)
    app.router.add_get("/sim/faults", _get_faults)
    app.router.add_patch("/sim/faults", _patch_faults)
    app.router.add_get("/sim/stats", _stats)
    return holder
