"""Find GPU families, types, regions, models and tiers by id, with helpful errors for typos."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from maider_tui.catalog import gpus, model_specs
from maider_tui.catalog.errors import (
    UnknownCapabilityError,
    UnknownGpuTypeError,
    UnknownModelError,
    UnknownRegionError,
)
from maider_tui.models import Capability, GpuFamily, GpuType, ModelSpec, Region


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_HasId = TypeVar("_HasId", bound=_Identified)


def gpu_families() -> tuple[GpuFamily, ...]:
    """Every GPU family the catalog knows."""
    return gpus.all_families()


def gpu_types(*, region_id: str | None = None) -> tuple[GpuType, ...]:
    """The built-in GPU types, cheapest first; only those offered in `region_id` when given."""
    types = gpus.all_types()
    if region_id is not None:
        wanted = region(region_id).id  # raises UnknownRegionError for a typo
        types = tuple(t for t in types if wanted in t.regions)
    return tuple(sorted(types, key=lambda t: (t.hourly_usd, t.id)))


def gpu_type(type_id: str) -> GpuType:
    """The built-in GPU type with this id (case-insensitive); UnknownGpuTypeError otherwise."""
    found = _find(type_id, gpus.all_types())
    if found is None:
        raise UnknownGpuTypeError(type_id, (t.id for t in gpus.all_types()))
    return found


def regions() -> tuple[Region, ...]:
    """The GPU-capable regions."""
    return gpus.all_regions()


def region(region_id: str) -> Region:
    """The GPU region with this id (case-insensitive); UnknownRegionError otherwise."""
    found = _find(region_id, gpus.all_regions())
    if found is None:
        raise UnknownRegionError(region_id, (r.id for r in gpus.all_regions()))
    return found


def models() -> tuple[ModelSpec, ...]:
    """The built-in models, smallest first."""
    return model_specs.all_models()


def model(model_id: str) -> ModelSpec:
    """The built-in model with this Hugging Face id or short name (both case-insensitive).

    Raises UnknownModelError naming up to three close matches.
    """
    specs = model_specs.all_models()
    found = _find(model_id, specs)
    if found is None:
        lowered = model_id.lower()
        found = next((m for m in specs if m.short_name.lower() == lowered), None)
    if found is None:
        raise UnknownModelError(model_id, (m.id for m in specs))
    return found


def capabilities() -> tuple[Capability, ...]:
    """The wizard's capability tiers, smallest first, "custom" last."""
    return model_specs.all_capabilities()


def capability(tier: str | Capability) -> Capability:
    """The tier with this id ("7B-14B", "30B-32B", "70B+", "custom")."""
    if isinstance(tier, Capability):
        return tier
    found = _find(tier, model_specs.all_capabilities())
    if found is None:
        raise UnknownCapabilityError(tier, (c.id for c in model_specs.all_capabilities()))
    return found


def models_for_capability(tier: str | Capability) -> tuple[ModelSpec, ...]:
    """The built-in models a tier offers; none for "custom", where the user names the model."""
    categories = capability(tier).categories
    return tuple(m for m in model_specs.all_models() if m.category in categories)


def as_model(value: ModelSpec | str) -> ModelSpec:
    return value if isinstance(value, ModelSpec) else model(value)


def as_gpu_type(value: GpuType | str) -> GpuType:
    return value if isinstance(value, GpuType) else gpu_type(value)


def _find(wanted: str, items: Iterable[_HasId]) -> _HasId | None:
    """The item whose id is `wanted`, exactly or else ignoring case."""
    items = tuple(items)
    for item in items:
        if item.id == wanted:
            return item
    lowered = wanted.lower()
    for item in items:
        if item.id.lower() == lowered:
            return item
    return None
