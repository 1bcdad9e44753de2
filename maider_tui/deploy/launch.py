"""One truth for a launch: what the wizard's model step and review, `maider-tui plan` and the compose
file that reaches the VM all show, worked out in one place and one order.

The order, each step on top of the one before:

1. **Context.** The length typed (the model step's field, `plan --context`), else the settings'
   `vllm.max_model_len` when it fits, else the model profile's limit (a default that leaves KV cache
   for batching), else the longest that fits.
2. **Fit plan** (`catalog.fit`) at that context with the memory use and KV-cache dtype in force: GPU
   layout, dtype, context.
3. **Model profile** (`maider_tui.profiles`): its environment, `trust_remote_code`, image and flags;
   its `--max-num-seqs` becomes the max-num-seqs value, so it shows where that value is edited.
4. **The user's own settings** (`[vllm]`: served name, dtype, max_num_seqs, extra args, env), then
   **the review's edits** (memory use, KV-cache dtype, max num seqs, extra args, Open WebUI), which
   start from steps 3-4 and so replace their flags rather than add to them.

Pure: no I/O. Profiles are passed in (`profiles.profile_for` reads the user's files).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maider_tui import catalog
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.models import FitReport, GpuType, ModelSpec, VllmConfig
from maider_tui.profiles import Profile, builtin_profile, image_for

if TYPE_CHECKING:
    from maider_tui.settings import Settings

MAX_NUM_SEQS_FLAG = "--max-num-seqs"
# Turing's shared memory (64 KB a block) is too small for the Triton and Flex kernels at these head sizes.
TURING_MAX_HEAD_DIM = 256


def attention_backend(gpu: GpuType, model: ModelSpec) -> str:
    """Which attention kernels vLLM (the pinned v0.11 image) picks on this GPU, in a few words.

    vLLM's CUDA platform (`vllm/platforms/cuda.py`, `get_attn_backend_cls`, V1 engine) takes
    FlashAttention from compute capability 8.0 and FlexAttention below it: FlashAttention-2 has no
    Turing (SM 7.5) kernels (vllm-project/vllm#4246, Dao-AILab/flash-attention#542). FlexAttention
    serves the catalog's head sizes (64-128) on Turing, so nothing is forced; head sizes of 512 need
    more shared memory than Turing has (vllm-project/vllm#57712, #39018), which the note says.
    MLA models (DeepSeek-V2) get Triton's MLA kernels below SM 9.0, in the same function.
    """
    family = gpu.family
    if family is None:
        return "vLLM's choice (unknown GPU)"
    if model.kv_layout == "mla":  # FlashMLA and FlashAttention-MLA want SM 9.0: Triton's MLA kernels here
        return f"Triton MLA (SM {family.compute_capability_str})"
    if family.compute_capability >= (8, 0):
        return f"FlashAttention (SM {family.compute_capability_str})"
    note = (f"; head size {model.head_dim} may exceed Turing's shared memory"
            if model.head_dim > TURING_MAX_HEAD_DIM else "")
    return f"FlexAttention (SM {family.compute_capability_str}: no FlashAttention before SM 8.0{note})"


@dataclass(frozen=True)
class LaunchEdits:
    """What the user may change before launching; `defaults()` gives what the review starts from."""

    gpu_memory_utilization: float
    kv_cache_dtype: str
    max_num_seqs: int | None
    extra_args: tuple[str, ...]
    enable_openwebui: bool


@dataclass(frozen=True)
class Launch:
    """The resolved launch: the fit report, the vLLM config and the compose options, in agreement."""

    report: FitReport
    config: VllmConfig
    compose: ComposeOptions
    profile: Profile
    edits: LaunchEdits

    @property
    def context(self) -> int:
        return self.config.max_model_len or self.report.max_model_len


def split_flag(args: tuple[str, ...] | list[str], flag: str) -> tuple[int | None, tuple[str, ...]]:
    """(the integer value of `flag` in `args`, the args without it): `--flag N` and `--flag=N` alike."""
    value: int | None = None
    rest: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        name, _, inline = arg.partition("=")
        if name.replace("_", "-") == flag:
            text = inline if inline else (args[index + 1] if index + 1 < len(args) else "")
            skip = not inline
            try:
                value = int(text)
            except ValueError:
                rest.extend([arg] if inline else [arg, text] if text else [arg])
            continue
        rest.append(arg)
    return value, tuple(rest)


def defaults(settings: Settings, profile: Profile) -> LaunchEdits:
    """Steps 3-4 as editable values: the profile's flags under the settings' own."""
    vllm = settings.vllm
    profile_seqs, profile_args = split_flag(profile.extra_args, MAX_NUM_SEQS_FLAG)
    own_seqs, own_args = split_flag(tuple(vllm.extra_args), MAX_NUM_SEQS_FLAG)
    own_flags = {a.split("=", 1)[0] for a in own_args if a.startswith("--")}
    kept: list[str] = []
    skipping = False
    for arg in profile_args:  # a flag the user's settings set too is the user's
        if arg.startswith("-"):
            skipping = arg.split("=", 1)[0] in own_flags
        if not skipping:
            kept.append(arg)
    seqs = vllm.max_num_seqs or own_seqs or profile_seqs
    return LaunchEdits(gpu_memory_utilization=vllm.gpu_memory_utilization, kv_cache_dtype=vllm.kv_cache_dtype,
                       max_num_seqs=seqs, extra_args=(*kept, *own_args),
                       enable_openwebui=settings.compose.enable_openwebui)


def fit_on(model: ModelSpec, gpu: GpuType, nodes: int = 1, *, max_model_len: int | None = None,
           gpu_memory_utilization: float = 0.90, kv_cache_dtype: str = "auto") -> FitReport:
    """The fit plan on one VM (`catalog.fit`) or on `nodes` VMs of the plan (`catalog.cluster.fit_nodes`)."""
    if nodes == 1:
        return catalog.fit(model, gpu, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                           kv_cache_dtype=kv_cache_dtype)
    from maider_tui.catalog.cluster import fit_nodes

    return fit_nodes(model, gpu, nodes, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                     kv_cache_dtype=kv_cache_dtype).report


def default_context(model: ModelSpec, gpu: GpuType, settings: Settings, profile: Profile | None = None,
                    *, gpu_memory_utilization: float | None = None, kv_cache_dtype: str | None = None,
                    nodes: int = 1) -> int | None:
    """Step 1 without a typed length: the context the model step starts from (None: nothing fits)."""
    profile = profile or builtin_profile(model.id)
    utilization: float = gpu_memory_utilization or settings.vllm.gpu_memory_utilization
    kv_dtype: str = kv_cache_dtype or settings.vllm.kv_cache_dtype
    most = fit_on(model, gpu, nodes, gpu_memory_utilization=utilization, kv_cache_dtype=kv_dtype).max_context
    wanted = settings.vllm.max_model_len
    if wanted and fit_on(model, gpu, nodes, max_model_len=wanted, gpu_memory_utilization=utilization,
                         kv_cache_dtype=kv_dtype).fits:
        return wanted
    if profile.max_model_len and most:
        return min(profile.max_model_len, most)
    return most or None


def resolve(model: ModelSpec, gpu: GpuType, settings: Settings, *, profile: Profile | None = None,
            context: int | None = None, edits: LaunchEdits | None = None, nodes: int = 1) -> Launch:
    """Steps 1-4 (see the module docstring). `report.fits` False: nothing may be launched, and
    `config` holds only the model. `nodes` > 1: a session over that many VMs of `gpu` (TP within a
    VM, PP across them; `deploy.cluster` adds Ray's flags per node); it serves the API only."""
    profile = profile or builtin_profile(model.id)
    edits = edits or defaults(settings, profile)
    vllm = settings.vllm
    length = context or default_context(model, gpu, settings, profile,
                                        gpu_memory_utilization=edits.gpu_memory_utilization,
                                        kv_cache_dtype=edits.kv_cache_dtype, nodes=nodes)
    report = fit_on(model, gpu, nodes, max_model_len=length, gpu_memory_utilization=edits.gpu_memory_utilization,
                    kv_cache_dtype=edits.kv_cache_dtype)
    options = dataclasses.replace(ComposeOptions.from_settings(settings),
                                  enable_openwebui=edits.enable_openwebui and nodes == 1,
                                  vllm_image=image_for(profile, vllm.image))
    if not report.fits:  # nothing to deploy: the report says why
        return Launch(report, VllmConfig(model=model.id), options, profile, edits)
    config = VllmConfig(
        model=model.id, served_model_name=vllm.served_model_name,
        tensor_parallel_size=report.tensor_parallel_size, pipeline_parallel_size=report.pipeline_parallel_size,
        max_model_len=report.max_model_len, gpu_memory_utilization=report.gpu_memory_utilization,
        dtype=vllm.dtype if vllm.dtype != "auto" else report.dtype, kv_cache_dtype=report.kv_cache_dtype,
        trust_remote_code=model.trust_remote_code if profile.trust_remote_code is None
        else profile.trust_remote_code,
        max_num_seqs=edits.max_num_seqs, extra_args=tuple(edits.extra_args),
        env={**profile.env, **vllm.env})
    return Launch(report, config, options, profile, edits)
