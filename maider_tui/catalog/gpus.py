"""GPU families, Linode GPU plans and GPU regions, as the hardware really is.

The seed documents call the `g1-gpu-rtx6000-*` plans "RTX 6000 Ada, 48 GB". Linode's own plan
pages and `nvidia-smi` on those VMs say Quadro RTX 6000: Turing, 24 GB GDDR6, compute capability
7.5, no bfloat16 and no FP8. We follow the hardware; see docs/catalog.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from maider_tui.models import GpuFamily, GpuType, Region

RTX4000_ADA = GpuFamily(
    id="rtx4000-ada",
    name="NVIDIA RTX 4000 Ada Generation",
    short_name="RTX 4000 Ada",
    vram_mib=20475,  # 20 GB GDDR6 (ECC on), as nvidia-smi reports memory.total
    bandwidth_gbs=360.0,
    compute_capability=(8, 9),
    bf16=True,
    fp8=True,
)

QUADRO_RTX6000 = GpuFamily(
    id="quadro-rtx6000",
    name="Quadro RTX 6000",
    short_name="Quadro RTX 6000",
    vram_mib=24576,  # 24 GB GDDR6
    bandwidth_gbs=672.0,
    compute_capability=(7, 5),
    bf16=False,  # Turing: vLLM must run with --dtype half
    fp8=False,
)

_FAMILIES: tuple[GpuFamily, ...] = (RTX4000_ADA, QUADRO_RTX6000)

# Linode type id prefix -> family. Checked in order; a plan matching none is unknown.
_TYPE_PREFIXES: tuple[tuple[str, GpuFamily], ...] = (
    ("g2-gpu-rtx4000a", RTX4000_ADA),
    ("g1-gpu-rtx6000", QUADRO_RTX6000),
)

_REGIONS: tuple[Region, ...] = (
    Region("us-ord", "Chicago", "US", (RTX4000_ADA.id,)),
    Region("us-sea", "Seattle", "US", (RTX4000_ADA.id,)),
    Region("de-fra-2", "Frankfurt 2", "DE", (RTX4000_ADA.id,)),
    Region("fr-par", "Paris", "FR", (RTX4000_ADA.id,)),
    Region("in-bom-2", "Mumbai 2", "IN", (RTX4000_ADA.id,)),
    Region("sg-sin-2", "Singapore 2", "SG", (RTX4000_ADA.id,)),
    Region("jp-osa", "Osaka", "JP", (RTX4000_ADA.id,)),
    Region("us-east", "Newark", "US", (QUADRO_RTX6000.id,)),
    Region("us-southeast", "Atlanta", "US", (QUADRO_RTX6000.id,)),
    Region("eu-central", "Frankfurt", "DE", (QUADRO_RTX6000.id,)),
    Region("ap-west", "Mumbai", "IN", (QUADRO_RTX6000.id,)),
    Region("ap-south", "Singapore", "SG", (QUADRO_RTX6000.id,)),
)


def regions_with_family(family_id: str) -> tuple[str, ...]:
    """Ids of the built-in regions that offer GPUs of this family."""
    return tuple(r.id for r in _REGIONS if family_id in r.gpu_families)


_ADA_REGIONS = regions_with_family(RTX4000_ADA.id)
_QUADRO_REGIONS = regions_with_family(QUADRO_RTX6000.id)

# Prices are Linode's list prices (hourly, and the monthly cap). Plan RAM/vCPU/disk come from
# public /v4/linode/types answers; the "~" ones were seen only in third-party listings.
_TYPES: tuple[GpuType, ...] = (
    GpuType(
        "g2-gpu-rtx4000a1-s", "RTX4000 Ada x1 Small", 1, RTX4000_ADA, 0.52, 350.0, _ADA_REGIONS,
        memory_mb=16384, vcpus=4, disk_mb=524288,  # ~ vCPUs and disk
    ),
    GpuType(
        "g2-gpu-rtx4000a2-s", "RTX4000 Ada x2 Small", 2, RTX4000_ADA, 1.04, 700.0, _ADA_REGIONS,
        memory_mb=32768, vcpus=8,  # ~ both; disk unknown
    ),
    # The seed's $2.08/h is 4x the x1 price; public listings show $3.57/h ($2,384/month) for this
    # plan. We keep the seed's figure (monthly = hourly x 730) and let the live API price win.
    GpuType(
        "g2-gpu-rtx4000a4-m", "RTX4000 Ada x4 Medium", 4, RTX4000_ADA, 2.08, 1518.0, _ADA_REGIONS,
        memory_mb=200704, vcpus=48,  # ~ both (196 GB, 48 vCPU); disk unknown
    ),
    GpuType(
        "g1-gpu-rtx6000-1", "Dedicated 32GB + RTX6000 GPU x1", 1, QUADRO_RTX6000, 1.50, 1000.0,
        _QUADRO_REGIONS, memory_mb=32768, vcpus=8, disk_mb=655360,
    ),
    GpuType(
        "g1-gpu-rtx6000-2", "Dedicated 64GB + RTX6000 GPU x2", 2, QUADRO_RTX6000, 3.00, 2000.0,
        _QUADRO_REGIONS, memory_mb=65536, vcpus=16, disk_mb=1310720,
    ),
    GpuType(
        "g1-gpu-rtx6000-3", "Dedicated 96GB + RTX6000 GPU x3", 3, QUADRO_RTX6000, 4.50, 3000.0,
        _QUADRO_REGIONS, memory_mb=98304, vcpus=20, disk_mb=1966080,  # ~ vCPUs
    ),
    GpuType(
        "g1-gpu-rtx6000-4", "Dedicated 128GB + RTX6000 GPU x4", 4, QUADRO_RTX6000, 6.00, 4000.0,
        _QUADRO_REGIONS, memory_mb=131072, vcpus=24, disk_mb=2621440,  # ~ vCPUs
    ),
)


def all_families() -> tuple[GpuFamily, ...]:
    return _FAMILIES


def all_types() -> tuple[GpuType, ...]:
    return _TYPES


def all_regions() -> tuple[Region, ...]:
    return _REGIONS


def family_for_type_id(type_id: str) -> GpuFamily | None:
    """The GPU family of a Linode type id by its prefix, or None for a plan we do not know."""
    for prefix, family in _TYPE_PREFIXES:
        if type_id.startswith(prefix):
            return family
    return None


def gpu_type_from_api(
    id: str,  # noqa: A002 - the API's own field name
    label: str,
    gpus: int,
    hourly_usd: float,
    monthly_usd: float | None = None,
    regions: Iterable[str] = (),
    *,
    memory_mb: int | None = None,
    vcpus: int | None = None,
    disk_mb: int | None = None,
) -> GpuType:
    """Build a GpuType for a plan the Linode API reports.

    The family comes from the type id prefix; an unknown prefix gives family None, so the fit
    planner says it cannot judge the plan instead of guessing its VRAM. Without a monthly price,
    hourly x 730 stands in. Without regions, a known family falls back to the built-in regions.
    """
    if gpus < 1:
        raise ValueError(f"{id}: a GPU type needs at least one GPU, got {gpus}")
    family = family_for_type_id(id)
    region_ids = tuple(regions)
    if not region_ids and family is not None:
        region_ids = regions_with_family(family.id)
    monthly = float(monthly_usd) if monthly_usd is not None else float(round(hourly_usd * 730.0))
    return GpuType(
        id=id,
        label=label,
        gpus=gpus,
        family=family,
        hourly_usd=float(hourly_usd),
        monthly_usd=monthly,
        regions=region_ids,
        memory_mb=memory_mb,
        vcpus=vcpus,
        disk_mb=disk_mb,
    )
