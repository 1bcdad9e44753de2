"""What each wizard step lists: rows, defaults and fit verdicts, worked out from the catalog.

No widgets and no I/O here: the screen passes in what the provider answered, so this is easy to
reason about (and the verdicts always come from the fit planner, never from a table).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rich.text import Text

from ... import catalog
from ...deploy.launch import default_context as launch_context
from ...deploy.launch import fit_on
from ...models import Capability, FitReport, GpuType, ModelSpec, Region
from ...profiles import Profile, builtin_profile
from ..widgets.steps_header import StepMark

if TYPE_CHECKING:
    from maider_tui.settings import Settings

STEP_TITLES = ("Capability", "Region", "GPU type", "Model", "Review")
CAPABILITY, REGION, GPU_TYPE, MODEL, REVIEW = range(5)

# Column widths of the rows (the last column takes what is left and is cut with an ellipsis).
REGION_COLUMNS = (("REGION", 13), ("CITY", 13), ("GPUS", 17), ("FITS", 0))
TYPE_COLUMNS = (("TYPE", 20), ("GPUS", 5), ("VRAM", 7), ("$/H", 6), ("FITS", 0))
MODEL_COLUMNS = (("MODEL", 20), ("SIZE", 7), ("LAYOUT", 9), ("CONTEXT", 9), ("WEIGHTS/GPU", 0))
CAPABILITY_COLUMNS = (("CAPABILITY", 10), ("", 0))
SOURCE_WORDS = {"api": "from the API", "cache": "cached", "offline": "offline data"}


@dataclass(frozen=True)
class Choice:
    """One row of a step's list. Dimmed rows stay listed (with the reason) but cannot be chosen."""

    id: str
    cells: tuple[str, ...]
    value: Any
    dimmed: bool = False
    reason: str = ""
    detail: str = ""  # the full verdict, shown under the list for the highlighted row
    nodes: int = 1  # VMs the row's plan spans: above 1 for a model no single VM of the type holds

    def matches(self, query: str) -> bool:
        """Filter as you type: every word of the query appears somewhere in the row."""
        haystack = " ".join(self.cells).lower()
        return all(word in haystack for word in query.lower().split())


def fit_cell(cell: str, width: int) -> str:
    """`cell` padded to `width`, or cut to it with an ellipsis (the detail line shows it whole)."""
    return cell.ljust(width) if len(cell) <= width else cell[:width - 1] + "…"


def row_text(cells: Sequence[str], columns: Sequence[tuple[str, int]], *, dimmed: bool = False) -> Text:
    """The cells in their columns (a long one cut with an ellipsis, so the next columns stay in line),
    as one line that ends in an ellipsis where it is too long."""
    text = Text(no_wrap=True, overflow="ellipsis", style="dim" if dimmed else "")
    for cell, (_, width) in zip(cells, columns):
        text.append(fit_cell(cell, width) + " " if width else cell)
    return text


def header_text(columns: Sequence[tuple[str, int]]) -> Text:
    return row_text([title for title, _ in columns], columns)


# --- step 1: capability ---------------------------------------------------------------------------

def capability_choices() -> list[Choice]:
    """The tiers, smallest first, custom last."""
    rows = []
    for cap in catalog.capabilities():
        label = cap.label.split(": ", 1)[-1]
        names = ", ".join(m.short_name for m in catalog.models_for_capability(cap))
        detail = f"{cap.id}: {label}" + (f" ({names})" if names else "")
        rows.append(Choice(cap.id, (cap.id.replace("-", "–"), label), cap, detail=detail))
    return rows


def default_capability(model_id: str) -> str:
    """The tier that holds the settings' model, else the 30B-32B tier (the seed's sweet spot)."""
    for cap in catalog.capabilities():
        if any(m.id.lower() == model_id.lower() for m in catalog.models_for_capability(cap)):
            return cap.id
    return "30B-32B"


def tier_label(cap: Capability | None, custom: ModelSpec | None) -> str:
    """How the header and verdicts name the tier: "30B–32B", or the custom model's name."""
    if cap is None:
        return ""
    if cap.id == "custom" and custom is not None:
        return custom.short_name
    return cap.id.replace("-", "–")


def models_of(cap: Capability, custom: ModelSpec | None) -> tuple[ModelSpec, ...]:
    """The models a tier offers; for custom, the one model the user named."""
    if cap.id == "custom":
        return (custom,) if custom is not None else ()
    return catalog.models_for_capability(cap)


# --- fit verdicts ---------------------------------------------------------------------------------

def best_fit(models: Sequence[ModelSpec], gpu: GpuType) -> tuple[FitReport | None, FitReport | None]:
    """(the best fitting report, largest model first; the closest miss when none fits)."""
    if not models:
        return None, None
    reports = [catalog.fit(m, gpu) for m in models]
    fitting = sorted((r for r in reports if r.fits),
                     key=lambda r: (-round(r.model.params_b), -r.max_context, r.model.id))
    if fitting:
        return fitting[0], None
    # The smallest weights come closest: its reason says how far off the plan is.
    return None, min(reports, key=lambda r: (r.weights_gb, r.model.id))


def verdict(models: Sequence[ModelSpec], gpu: GpuType) -> tuple[bool, str]:
    """(fits, "yes — 32B-AWQ, TP 2, up to 32K context" or "no — needs ... usable")."""
    best, miss = best_fit(models, gpu)
    if best is not None:
        return True, f"yes — {best.reason}"
    if miss is None:
        return False, "no — no model chosen yet"
    return False, f"no — {miss.model.short_name} {miss.reason}"


def vram_gb(gpu: GpuType) -> float:
    return gpu.gpus * gpu.family.vram_mib / 1024 if gpu.family else 0.0


# --- step 2: region -------------------------------------------------------------------------------

def types_in(region_id: str, types: Sequence[GpuType]) -> list[GpuType]:
    """The GPU types offered in `region_id`, cheapest first."""
    return sorted((t for t in types if region_id in t.regions), key=lambda t: (t.hourly_usd, t.id))


def region_choices(regions: Sequence[Region], types: Sequence[GpuType], models: Sequence[ModelSpec],
                   tier_label: str) -> list[Choice]:
    """Regions with city and GPU families; those without a type that holds the tier are dimmed."""
    families = {f.id: f.short_name for f in catalog.gpu_families()}
    rows = []
    for region in regions:
        offered = types_in(region.id, types)
        fitting = [t for t in offered if verdict(models, t)[0]]
        gpus = ", ".join(families.get(f, f) for f in region.gpu_families) or "—"
        if fitting:
            cheapest = fitting[0]
            fits = f"from ${cheapest.hourly_usd:.2f}/h ({cheapest.id})"
            rows.append(Choice(region.id, (region.id, region.city, gpus, fits), region,
                               detail=f"{region.id} {region.city}: {len(fitting)} of {len(offered)} "
                                      f"GPU types hold {tier_label}, {fits}"))
        else:
            largest = max(offered, key=lambda t: (vram_gb(t), t.hourly_usd), default=None)
            why = (f"no GPU type here holds {tier_label}" if largest is None else
                   f"no GPU type here holds {tier_label}: on {largest.id} {verdict(models, largest)[1]}")
            rows.append(Choice(region.id, (region.id, region.city, gpus, f"no type holds {tier_label}"),
                               region, dimmed=True, reason=why, detail=why))
    return rows


def default_region(rows: Sequence[Choice], wanted: str) -> str | None:
    """The settings' region when it offers a fitting type, else the first region that does."""
    usable = [r for r in rows if not r.dimmed]
    for row in usable:
        if row.id == wanted:
            return row.id
    return usable[0].id if usable else (rows[0].id if rows else None)


# --- step 3: GPU type -----------------------------------------------------------------------------

def type_choices(region_id: str, types: Sequence[GpuType], models: Sequence[ModelSpec]) -> list[Choice]:
    """The region's types with GPUs, VRAM, $/h and the fit verdict; those that cannot hold it dimmed."""
    rows = []
    for gpu in types_in(region_id, types):
        fits, said = verdict(models, gpu)
        vram = f"{vram_gb(gpu):.0f} GB" if gpu.family else "?"
        cells = (gpu.id, str(gpu.gpus), vram, f"{gpu.hourly_usd:.2f}", said)
        family = gpu.family.short_name if gpu.family else "unknown GPU"
        detail = f"{gpu.gpus}x {family}, {vram} VRAM, ${gpu.hourly_usd:.2f}/h: {said}"
        rows.append(Choice(gpu.id, cells, gpu, dimmed=not fits,
                           reason="" if fits else f"{gpu.id} cannot hold it: {said[5:]}", detail=detail))
    return rows


def default_type(rows: Sequence[Choice], wanted: str) -> str | None:
    """The cheapest type that holds the tier (rows are cheapest first), as the region step's "from $X/h"
    promised; the settings' type is marked on its row instead of being picked when it costs more."""
    usable = [r for r in rows if not r.dimmed]
    return usable[0].id if usable else (rows[0].id if rows else None)


def mark_settings_type(rows: list[Choice], chosen: str | None, wanted: str) -> list[Choice]:
    """Say on the settings' type row why the cheaper `chosen` is highlighted instead."""
    if chosen is None or chosen == wanted:
        return rows
    return [dataclasses.replace(r, detail=f"{r.detail} · your settings' type; {chosen} is cheaper and "
                                          "holds it too") if r.id == wanted and not r.dimmed else r
            for r in rows]


# --- step 4: model --------------------------------------------------------------------------------

def model_choices(gpu: GpuType, models: Sequence[ModelSpec], settings: Settings,
                  profile_of: Callable[[str], Profile] = builtin_profile) -> list[Choice]:
    """The tier's models that fit `gpu`, largest first, each with the context it would launch with
    (`deploy.launch.default_context`: the settings', the profile's limit, or the most that fits)."""
    wanted = {m.id for m in models}
    custom = [m for m in models if m.id not in {c.id for c in catalog.models()}]
    reports = [r for r in catalog.models_that_fit(gpu) if r.model.id in wanted]
    reports += [r for r in (catalog.fit(m, gpu) for m in custom) if r.fits]
    rows = []
    for report in reports:
        spec = report.model
        layout = f"TP {report.tensor_parallel_size}" + (
            f" PP {report.pipeline_parallel_size}" if report.pipeline_parallel_size > 1 else "")
        size = f"{spec.params_b:.1f}B"
        planned = launch_context(spec, gpu, settings, profile_of(spec.id))
        if planned is None:  # it fits in vLLM's usual share of each GPU, not in the settings' smaller one
            share = settings.vllm.gpu_memory_utilization
            rows.append(Choice(spec.id, (spec.short_name, size, layout, "none", f"{spec.id}"), report,
                               dimmed=True, reason=f"no context fits in {share:.0%} of each GPU's memory",
                               detail=f"{spec.id} does not fit in {share:.0%} of each GPU's memory: raise "
                                      "vllm.gpu_memory_utilization in the settings or choose a smaller model."))
            continue
        cells = (spec.short_name, size, layout, catalog.context_label(planned),
                 f"{report.weights_per_gpu_gb:.1f} GB · {spec.id}")
        most = "" if planned == report.max_context else f" (up to {catalog.context_label(report.max_context)} fits)"
        rows.append(Choice(spec.id, cells, report,
                           detail=f"{spec.id}: context {catalog.context_label(planned)}{most}; {report.reason}"))
    fitted = {r.model.id for r in reports}
    for spec in models:
        if spec.id in fitted or any(catalog.fit(spec, t).fits for t in catalog.gpu_types()):
            continue  # one VM of this or another plan holds it: several are offered only when none does
        if several := cluster_choice(spec, gpu, settings, profile_of(spec.id)):
            rows.append(several)
    return rows


def cluster_choice(spec: ModelSpec, gpu: GpuType, settings: Settings, profile: Profile) -> Choice | None:
    """A model no single VM of `gpu` holds, on the fewest VMs of it that do (vLLM on a Ray cluster,
    TP within each VM, PP across them); None when even catalog.cluster.MAX_NODES VMs do not."""
    from ...catalog.cluster import USEFUL_CONTEXT, fewest_nodes, fit_nodes
    from ...catalog.sizes import GIB, weight_bytes

    plan = fewest_nodes(spec, gpu, start=2)
    if plan is None:
        return None
    fewer = fit_nodes(spec, gpu, plan.nodes - 1) if plan.nodes > 2 else None
    tight = (f" ({fewer.nodes} VMs hold its weights, but with KV cache for only "
             f"{catalog.context_label(fewer.report.max_context)} of context, under the "
             f"{catalog.context_label(USEFUL_CONTEXT)} aider needs)" if fewer is not None and fewer.fits else "")
    planned = launch_context(spec, gpu, settings, profile, nodes=plan.nodes)
    if planned is None:
        return None
    report = plan.report
    cells = (spec.short_name, f"{spec.params_b:.1f}B", f"{plan.nodes} VMs·TP{report.tensor_parallel_size}",
             catalog.context_label(planned), f"{report.weights_per_gpu_gb:.1f} GB · {spec.id}")
    weights = weight_bytes(spec).total / GIB
    detail = (f"No single {gpu.short_name} VM holds {spec.id} ({weights:.0f} GB of weights); {plan.nodes} VMs of it "
              f"do{tight}, ${plan.hourly_usd:.2f}/h together: TP {report.tensor_parallel_size} within each VM, PP "
              f"{report.pipeline_parallel_size} across them, context {catalog.context_label(planned)}. "
              f"{plan.link.describe()[:1].upper()}{plan.link.describe()[1:]}.")
    return Choice(spec.id, cells, report, detail=detail, nodes=plan.nodes)


def default_model(rows: Sequence[Choice], wanted: str) -> str | None:
    """The settings' model when it fits, else the largest that fits (rows are largest first)."""
    usable = [row for row in rows if not row.dimmed]
    for row in usable:
        if row.id.lower() == wanted.lower():
            return row.id
    return usable[0].id if usable else None


def default_context(report: FitReport, settings: Settings, profile: Profile | None = None,
                    nodes: int = 1) -> int | None:
    """The context the model step starts from: `deploy.launch.default_context`."""
    return launch_context(report.model, report.gpu_type, settings, profile, nodes=nodes)


def plan_context(spec: ModelSpec, gpu: GpuType, text: str, nodes: int = 1) -> tuple[FitReport | None, str]:
    """Re-plan for a typed context length: (the report when it fits, what to tell the user)."""
    text = text.strip().lower().replace(",", "").replace("_", "")
    try:
        tokens = int(text[:-1]) * 1024 if text.endswith("k") else int(text)
    except ValueError:
        return None, "The context is a number of tokens, like 32768 or 32k."
    if tokens < 256:
        return None, "The context must be at least 256 tokens (vLLM's minimum here)."
    report = fit_on(spec, gpu, nodes, max_model_len=tokens)
    if not report.fits:
        return None, f"Cannot continue: {report.reason}."
    # A name cut in the model column shows whole here.
    full = f" Full name: {spec.id}." if len(spec.short_name) > dict(MODEL_COLUMNS)["MODEL"] else ""
    return report, f"Planned: {report.reason}.{full}"


# --- step 5: review -------------------------------------------------------------------------------

CLOUD_INIT_MIN = 8.0  # NVIDIA driver and Docker on a fresh VM
IMAGE_MIN = 4.0  # pulling the vLLM image
DOWNLOAD_GB_PER_MIN = 0.2 * 60  # ~200 MB/s from the hub
LOAD_GB_PER_MIN = 1.0 * 60  # ~1 GB/s from disk into VRAM, plus a minute of CUDA graphs


def minutes_to_ready(report: FitReport) -> int:
    """A rough time from launch to ready for this plan, in whole minutes."""
    download = report.weights_gb / DOWNLOAD_GB_PER_MIN
    load = 1.0 + report.weights_gb / LOAD_GB_PER_MIN
    return max(1, round(CLOUD_INIT_MIN + IMAGE_MIN + download + load))


# --- all steps ------------------------------------------------------------------------------------

def step_rows(step: int, settings: Settings, *, models: Sequence[ModelSpec], tier_label: str,
              regions: Any = None, types: Any = None, region: Region | None = None,
              gpu: GpuType | None = None, loading: str = "",
              profile_of: Callable[[str], Profile] = builtin_profile) -> tuple[list[Choice], str | None, str, str]:
    """A step's (rows, default id, box title, note for when there is nothing to list).

    `regions` and `types` are the provider's Catalogued answers (None while loading).
    """
    if step == CAPABILITY:
        return (capability_choices(), default_capability(settings.vllm.model),
                "What should the model be able to do?", "")
    if regions is None or types is None:
        return [], None, "GPU regions", loading
    source = SOURCE_WORDS[types.source]
    # Offline: the built-in catalog stands in, and the title says why the API could not be asked.
    offline = f" · {types.message}" if types.source == "offline" and types.message else ""
    if step == REGION:
        rows = region_choices(regions.items, types.items, models, tier_label)
        return (rows, default_region(rows, settings.provider.region),
                f"GPU regions ({SOURCE_WORDS[regions.source]}){offline}", "No GPU regions.")
    if step == GPU_TYPE:
        if region is None:  # the region step comes first
            return [], None, "GPU types", "Choose a region first."
        rows = type_choices(region.id, types.items, models)
        chosen = default_type(rows, settings.provider.type)
        return (mark_settings_type(rows, chosen, settings.provider.type), chosen,
                f"GPU types in {region.id} ({source}){offline}", "No GPU types in this region.")
    if gpu is None:  # the GPU type step comes first
        return [], None, "Models", "Choose a GPU type first."
    rows = model_choices(gpu, models, settings, profile_of)
    return (rows, default_model(rows, settings.vllm.model),
            f"Models of {tier_label} that fit {gpu.id}", "No model of this tier fits.")


def step_marks(tier_label: str, region: Region | None, gpu: GpuType | None,
               report: FitReport | None) -> list[StepMark]:
    """The header's steps, each done one with what was chosen."""
    chosen = [tier_label,
              f"{region.id} {region.city}" if region else "",
              gpu.id if gpu else "",
              f"{report.model.short_name} {catalog.context_label(report.max_model_len)}" if report else "",
              ""]
    return [StepMark(title, chosen[i]) for i, title in enumerate(STEP_TITLES)]
