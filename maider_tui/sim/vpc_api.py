"""The fake Linode API's VPC routes: `/v4/vpcs`, one VPC, its subnets and its addresses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from maider_tui.sim.api_lists import paginate
from maider_tui.sim.linode_api import WORLD_KEY, all_regions, api_time, found_or_404, read_body
from maider_tui.sim.vpcs import SimSubnet, SimVpc
from maider_tui.sim.world import World


def subnet_json(subnet: SimSubnet) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "label": subnet.label,
        "ipv4": subnet.ipv4,
        "linodes": [{"id": instance_id, "interfaces": [{"id": instance_id * 10 + 1, "active": True}]}
                    for instance_id in sorted(subnet.addresses)],
        "created": api_time(subnet.created),
        "updated": api_time(subnet.created),
    }


def vpc_json(vpc: SimVpc) -> dict[str, Any]:
    return {
        "id": vpc.id,
        "label": vpc.label,
        "description": vpc.description,
        "region": vpc.region,
        "subnets": [subnet_json(s) for s in vpc.subnets],
        "created": api_time(vpc.created),
        "updated": api_time(vpc.created),
    }


def _vpc_or_404(request: web.Request) -> SimVpc:
    return found_or_404(request, "vpc_id", request.app[WORLD_KEY].vpcs.get)


async def _list(request: web.Request) -> web.Response:
    return paginate(request, [vpc_json(v) for v in request.app[WORLD_KEY].vpcs.vpcs.values()])


async def _create(request: web.Request) -> web.Response:
    world: World = request.app[WORLD_KEY]
    regions = {r["id"] for r in all_regions() if "VPCs" in r["capabilities"]}
    return web.json_response(vpc_json(world.vpcs.create(await read_body(request), regions)))


async def _one(request: web.Request) -> web.Response:
    return web.json_response(vpc_json(_vpc_or_404(request)))


async def _delete(request: web.Request) -> web.Response:
    request.app[WORLD_KEY].vpcs.delete(_vpc_or_404(request).id)
    return web.json_response({})


async def _subnets(request: web.Request) -> web.Response:
    return paginate(request, [subnet_json(s) for s in _vpc_or_404(request).subnets])


async def _ips(request: web.Request) -> web.Response:
    vpc = _vpc_or_404(request)
    rows = [{"address": address, "address_range": None, "vpc_id": vpc.id, "subnet_id": subnet.id,
             "region": vpc.region, "linode_id": instance_id, "config_id": instance_id * 10,
             "interface_id": instance_id * 10 + 1, "active": True, "nat_1_1": None, "gateway": None,
             "prefix": int(subnet.ipv4.rsplit("/", 1)[1]), "subnet_mask": None}
            for subnet in vpc.subnets for instance_id, address in sorted(subnet.addresses.items())]
    return paginate(request, rows)


def add_vpc_routes(app: web.Application) -> None:
    app.router.add_get("/v4/vpcs", _list)
    app.router.add_post("/v4/vpcs", _create)
    app.router.add_get("/v4/vpcs/{vpc_id}", _one)
    app.router.add_delete("/v4/vpcs/{vpc_id}", _delete)
    app.router.add_get("/v4/vpcs/{vpc_id}/subnets", _subnets)
    app.router.add_get("/v4/vpcs/{vpc_id}/ips", _ips)
