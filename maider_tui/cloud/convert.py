"""From linode_api4 objects to our types, and to and from the JSON kept in the store's cache.

Runs inside the worker thread with the API call, since touching an object's attribute can make
linode_api4 fetch it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from maider_tui import catalog
from maider_tui.cloud.base import Vm
from maider_tui.models import GpuType, Region

GPU_CAPABILITY = "GPU Linodes"


def get(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a linode_api4 object, MappedObject or plain dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def slug(value: Any) -> str | None:
    """A related object's id ("us-ord" from a Region), or the value itself when it is a string."""
    if value is None or isinstance(value, str):
        return value
    return str(get(value, "id"))


def epoch(value: Any) -> float:
    """Linode timestamps are UTC without a zone. linode_api4 turns them into naive datetimes holding
    that same wall time (through mktime and back), so we pin UTC on them rather than read local time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc).timestamp() if value.tzinfo is None else value.timestamp()
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return 0.0


def vm_from_instance(instance: Any, hourly_usd: float | None) -> Vm:
    return Vm(
        id=int(get(instance, "id")),
        label=str(get(instance, "label")),
        region=slug(get(instance, "region")) or "",
        type=slug(get(instance, "type")) or "",
        status=str(get(instance, "status") or "unknown"),
        ipv4=tuple(str(a) for a in get(instance, "ipv4") or ()),
        tags=tuple(str(t) for t in get(instance, "tags") or ()),
        created=epoch(get(instance, "created")),
        hourly_usd=hourly_usd,
    )


def availability_map(entries: Iterable[Any]) -> dict[str, dict[str, bool]]:
    """plan -> region -> available, from /regions/availability entries."""
    out: dict[str, dict[str, bool]] = {}
    for entry in entries:
        plan, region = get(entry, "plan"), get(entry, "region")
        if plan and region:
            out.setdefault(str(plan), {})[str(region)] = bool(get(entry, "available"))
    return out


def gpu_type_record(api_type: Any, availability: dict[str, dict[str, bool]] | None) -> dict[str, Any] | None:
    """The cache record of one GPU plan, or None for a plan without GPUs."""
    gpus = int(get(api_type, "gpus") or 0)
    type_class = get(api_type, "type_class", None) or get(api_type, "class")
    if gpus < 1 or type_class not in (None, "gpu"):
        return None
    price = get(api_type, "price") or {}
    type_id = str(get(api_type, "id"))
    where = (availability or {}).get(type_id)
    return {
        "id": type_id,
        "label": str(get(api_type, "label") or type_id),
        "gpus": gpus,
        "hourly_usd": float(get(price, "hourly") or 0.0),
        "monthly_usd": get(price, "monthly"),
        # None: the API said nothing about this plan, so the family's regions stand in.
        "regions": None if where is None else sorted(r for r, ok in where.items() if ok),
        "memory_mb": get(api_type, "memory"),
        "vcpus": get(api_type, "vcpus"),
        "disk_mb": get(api_type, "disk"),
    }


def gpu_type_from_record(record: dict[str, Any]) -> GpuType:
    regions = record.get("regions")
    built = catalog.gpu_type_from_api(
        record["id"], record["label"], record["gpus"], record["hourly_usd"], record.get("monthly_usd"),
        regions or (), memory_mb=record.get("memory_mb"), vcpus=record.get("vcpus"),
        disk_mb=record.get("disk_mb"),
    )
    if regions == []:
        # The API says it is sold out everywhere; gpu_type_from_api would put the family's regions back.
        built = dataclasses.replace(built, regions=())
    return built


def region_record(api_region: Any, availability: dict[str, dict[str, bool]] | None) -> dict[str, Any] | None:
    """The cache record of one GPU region, or None for a region without GPU plans."""
    if GPU_CAPABILITY not in (get(api_region, "capabilities") or ()):
        return None
    region_id = str(get(api_region, "id"))
    label = str(get(api_region, "label") or region_id)
    if availability is not None:
        families = {
            family.id
            for plan, where in availability.items()
            if where.get(region_id) and (family := catalog.family_for_type_id(plan)) is not None
        }
    else:
        known = next((r for r in catalog.regions() if r.id == region_id), None)
        families = set(known.gpu_families) if known else set()
    return {
        "id": region_id,
        "city": label.split(",", 1)[0].strip(),
        "country": str(get(api_region, "country") or "").upper(),
        "gpu_families": sorted(families),
    }


def region_from_record(record: dict[str, Any]) -> Region:
    return Region(record["id"], record["city"], record["country"], tuple(record["gpu_families"]))
