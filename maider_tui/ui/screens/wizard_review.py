"""The wizard's last step: the whole plan, its cost and time to ready, and the details one may edit."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Static

from ...catalog import context_label
from ...cloud.base import SESSION_TAG
from ...deploy.launch import LaunchEdits, attention_backend, defaults, resolve
from ...models import FitReport, Region
from ...ops.naming import MAX_LEN, validate_session_name
from ...ops.launch_plan import LaunchPlan
from ...profiles import builtin_profile
from .wizard_steps import minutes_to_ready

if TYPE_CHECKING:
    from maider_tui.profiles import Profile
    from maider_tui.settings import Settings
    from ...paths import AppPaths

KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
MAX_NUM_SEQS = 65_536  # far above what any GPU batches; a bigger number is a slip
MAX_WATCHDOG_MINUTES = 24 * 60  # the watchdog is there so an idle GPU is not paid for: a day at most
MAX_EXTRA_ARGS_CHARS = 2_000
# Flags the plan or the tunnel own: typed again here, vLLM would take the later one and undo the plan.
OWN_FLAGS = {
    "--model": "the model step chooses the model",
    "--port": "the tunnel depends on vLLM's port",
    "--host": "the tunnel depends on where vLLM listens",
    "--api-key": "a key here would be written into the compose file on the VM",
    "--served-model-name": "set vllm.served_model_name in the settings instead",
    "--max-model-len": "the context is set on the model step",
    "--tensor-parallel-size": "the plan sets the GPU layout",
    "-tp": "the plan sets the GPU layout",
    "--pipeline-parallel-size": "the plan sets the GPU layout",
    "-pp": "the plan sets the GPU layout",
    "--gpu-memory-utilization": "use the GPU memory use field",
    "--kv-cache-dtype": "use the KV-cache dtype field",
}


@dataclass(frozen=True)
class ReviewEdits:
    """What the user may change on the review step, as typed-checked values."""

    name: str
    gpu_memory_utilization: float
    max_num_seqs: int | None
    kv_cache_dtype: str
    extra_args: tuple[str, ...]
    openwebui: bool
    watchdog_minutes: int

    @classmethod
    def from_settings(cls, settings: Settings, name: str, profile: Profile | None = None) -> ReviewEdits:
        """The defaults the review starts from: the model profile's flags under the settings' vLLM,
        compose and watchdog values (`deploy.launch.defaults`), so each field shows what will run."""
        start = defaults(settings, profile or builtin_profile(""))
        return cls(name=name, gpu_memory_utilization=start.gpu_memory_utilization,
                   max_num_seqs=start.max_num_seqs, kv_cache_dtype=start.kv_cache_dtype,
                   extra_args=start.extra_args, openwebui=start.enable_openwebui,
                   watchdog_minutes=settings.watchdog.timeout_minutes)

    def launch_edits(self) -> LaunchEdits:
        return LaunchEdits(gpu_memory_utilization=self.gpu_memory_utilization, kv_cache_dtype=self.kv_cache_dtype,
                           max_num_seqs=self.max_num_seqs, extra_args=self.extra_args,
                           enable_openwebui=self.openwebui)


# (input id, label, placeholder): one row per editable detail.
FIELDS = (
    ("name", "Session name", "letters, digits, - _ ."),
    ("gpu-mem", "GPU memory use", "0.10 to 0.99"),
    ("max-seqs", "Max num seqs", "empty: vLLM's default"),
    ("kv-dtype", "KV-cache dtype", " / ".join(KV_CACHE_DTYPES)),
    ("extra-args", "Extra vLLM args", "flags, as on a command line"),
    ("watchdog", "Watchdog minutes", "idle minutes before destroy"),
)


def parse_edits(values: dict[str, str], openwebui: bool, taken: set[str]) -> tuple[ReviewEdits | None,
                                                                                    dict[str, str]]:
    """Check what was typed; (the edits, {}) or (None, {field id: one-sentence problem})."""
    errors: dict[str, str] = {}
    name = values["name"]
    problem = validate_session_name(name, taken)
    if problem:
        errors["name"] = problem
    mem = 0.0
    try:
        mem = float(values["gpu-mem"])
        if not 0.1 < mem <= 0.99:
            errors["gpu-mem"] = "Use a fraction above 0.10 and at most 0.99."
    except ValueError:
        errors["gpu-mem"] = "A fraction of the GPU's memory, like 0.90."
    seqs: int | None = None
    if values["max-seqs"].strip():
        try:
            seqs = int(values["max-seqs"])
            if not 1 <= seqs <= MAX_NUM_SEQS:
                errors["max-seqs"] = f"From 1 to {MAX_NUM_SEQS} (or empty for vLLM's default)."
        except ValueError:
            errors["max-seqs"] = "A whole number, or empty for vLLM's default."
    kv = values["kv-dtype"].strip() or "auto"
    if kv not in KV_CACHE_DTYPES:
        errors["kv-dtype"] = f"One of {', '.join(KV_CACHE_DTYPES)}."
    extra: tuple[str, ...] = ()
    try:
        extra = tuple(shlex.split(values["extra-args"]))
    except ValueError as exc:
        errors["extra-args"] = f"Cannot split these arguments: {exc}."
    owned = next((a.split("=", 1)[0] for a in extra if a.split("=", 1)[0] in OWN_FLAGS), None)
    if owned:
        errors["extra-args"] = f"Remove {owned}: {OWN_FLAGS[owned]}."
    if any(ord(c) < 32 and c != "\t" for c in values["extra-args"]):
        errors["extra-args"] = "Flags cannot hold control characters: type them again."
    if len(values["extra-args"]) > MAX_EXTRA_ARGS_CHARS:
        errors["extra-args"] = f"At most {MAX_EXTRA_ARGS_CHARS} characters of flags."
    watchdog = 0
    try:
        watchdog = int(values["watchdog"])
        if not 1 <= watchdog <= MAX_WATCHDOG_MINUTES:
            errors["watchdog"] = f"From 1 to {MAX_WATCHDOG_MINUTES} minutes (a day)."
    except ValueError:
        errors["watchdog"] = "A whole number of minutes, like 30."
    if errors:
        return None, errors
    return ReviewEdits(name, mem, seqs, kv, extra, openwebui, watchdog), {}


class ReviewForm(VerticalScroll):
    """The plan summary on top, one row per editable detail, a Launch button at the bottom."""

    def compose(self) -> ComposeResult:
        yield Static("", id="plan-summary")
        for field_id, label, placeholder in FIELDS:
            with Horizontal(classes="field-row"):
                yield Label(label, classes="field-label")
                if field_id == "name":  # as wide as the longest name, its problem on the line below
                    yield Input(id=field_id, placeholder=placeholder, classes="field-input name-input",
                                max_length=MAX_LEN)
                else:
                    yield Input(id=field_id, placeholder=placeholder, classes="field-input")
                    yield Static("", id=f"{field_id}-error", classes="field-error", markup=False)
            if field_id == "name":
                yield Static("", id="name-error", classes="field-error below", markup=False)
        with Horizontal(classes="field-row"):
            yield Label("Open WebUI", classes="field-label")
            yield Checkbox("on the VM, through the tunnel", id="openwebui")
        yield Static("", id="review-message", markup=False)
        yield Button("Launch (enter)", id="launch", variant="primary", compact=True)

    def fill(self, summary: Text, edits: ReviewEdits) -> None:
        """Show the plan and put the defaults in the fields."""
        self.query_one("#plan-summary", Static).update(summary)
        values = {
            "name": edits.name,
            "gpu-mem": f"{edits.gpu_memory_utilization:.2f}",
            "max-seqs": "" if edits.max_num_seqs is None else str(edits.max_num_seqs),
            "kv-dtype": edits.kv_cache_dtype,
            "extra-args": shlex.join(edits.extra_args),
            "watchdog": str(edits.watchdog_minutes),
        }
        for field_id, value in values.items():
            self.query_one(f"#{field_id}", Input).value = value
        self.query_one("#openwebui", Checkbox).value = edits.openwebui
        self.show_errors({})

    def read(self, taken: set[str]) -> tuple[ReviewEdits | None, dict[str, str]]:
        values = {field_id: self.query_one(f"#{field_id}", Input).value for field_id, _, _ in FIELDS}
        edits, errors = parse_edits(values, self.query_one("#openwebui", Checkbox).value, taken)
        self.show_errors(errors)
        return edits, errors

    def plan(self, settings: Settings, region_id: str, report: FitReport, taken: set[str],
             paths: AppPaths, *, nodes: int = 1) -> LaunchPlan | None:
        """The launch plan with the edits, re-planned with their memory use and KV dtype (and the model's
        profile under `paths`); None (and the reasons shown) when a field is wrong or the plan no longer fits."""
        edits, errors = self.read(taken)
        if edits is None:
            self.show_errors(errors, "Fix the fields marked above; nothing was launched.")
            return None
        from ...profiles import profile_for

        profile, problems = profile_for(report.model.id, paths)
        for problem in problems:
            self.notify(f"Model profile skipped: {problem}", severity="warning", timeout=20)
        replanned = resolve(report.model, report.gpu_type, settings, profile=profile,
                            context=report.max_model_len, edits=edits.launch_edits(), nodes=nodes).report
        if not replanned.fits:
            self.show_errors({"gpu-mem": "The plan no longer fits with this memory use."},
                             f"Not launched: {replanned.reason}.")
            return None
        return build_plan(settings, region_id, replanned, edits, profile, nodes=nodes)

    def show_errors(self, errors: dict[str, str], message: str = "") -> None:
        """Each problem next to its field; `message` for one that concerns the whole plan."""
        for field_id, _, _ in FIELDS:
            error = self.query_one(f"#{field_id}-error", Static)
            error.update(errors.get(field_id, ""))
            error.set_class(field_id in errors, "shown")
        self.query_one("#review-message", Static).update(message)


def plan_summary(region: Region, report: FitReport, nodes: int = 1) -> Text:
    """The whole plan in a few lines: hardware, place, model and layout, cost, time to ready; for a
    session over several VMs, the VMs, their network and what the link between them costs."""
    gpu, spec = report.gpu_type, report.model
    family = gpu.family.short_name if gpu.family else "unknown GPU"
    vram = f"{nodes * gpu.gpus * gpu.family.vram_mib / 1024:.0f} GB VRAM" if gpu.family else "VRAM unknown"
    minutes = minutes_to_ready(report)
    download = report.weights_gb * 1.074  # GiB -> GB as the hub counts
    hourly = gpu.hourly_usd * nodes
    layout = (f"TP {report.tensor_parallel_size} · PP {report.pipeline_parallel_size}" if nodes == 1 else
              f"TP {report.tensor_parallel_size} within each VM · PP {report.pipeline_parallel_size} across VMs")
    lines = [
        ("GPU type", f"{gpu.id} · {gpu.gpus}x {family} · {vram}" if nodes == 1 else
                     f"{nodes} VMs of {gpu.id} · {gpu.gpus}x {family} each · {vram} in all"),
        ("Region", f"{region.id} {region.city}"),
        ("Model", spec.id),
        ("Layout", f"{layout} · context {context_label(report.max_model_len)} · dtype {report.dtype} · "
                   f"{report.weights_per_gpu_gb:.1f} GB weights per GPU"),
        ("Attention", attention_backend(gpu, spec)),
        ("Cost", f"${hourly:.2f}/h · ${hourly * 24:.2f}/day" + (f" ({nodes} VMs, every one bills)" if nodes > 1 else "")),
        ("Ready in", f"about {minutes} min (cloud-init, vLLM image, {download:.0f} GB download, load)"),
    ]
    if nodes > 1:
        from ...catalog.cluster import fit_nodes

        link = fit_nodes(spec, gpu, nodes, max_model_len=report.max_model_len).link
        lines.insert(5, ("Network", "a private network (VPC) of its own: Ray and NCCL stay on it; "
                                    + link.describe()))
    text = Text()
    for index, (label, value) in enumerate(lines):
        text.append(f"{label:<10}", style="bold")
        text.append(value + ("\n" if index < len(lines) - 1 else ""))
    return text


def build_plan(settings: Settings, region_id: str, report: FitReport, edits: ReviewEdits,
               profile: Profile | None = None, *, nodes: int = 1) -> LaunchPlan:
    """The launch plan: `deploy.launch.resolve` with the review's edits, at the model step's context."""
    launch = resolve(report.model, report.gpu_type, settings, profile=profile, context=report.max_model_len,
                     edits=edits.launch_edits(), nodes=nodes)
    return LaunchPlan(region=region_id, gpu_type=report.gpu_type, config=launch.config, compose=launch.compose,
                      name=edits.name, image=settings.provider.image, firewall_id=settings.provider.firewall_id,
                      tags=tuple(t for t in settings.provider.tags if t != SESSION_TAG),
                      options={"watchdog_minutes": edits.watchdog_minutes}, nodes=nodes)
