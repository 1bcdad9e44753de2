"""Shared types: what the layers hand each other. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maider_tui.records import VllmConfig


def __getattr__(name: str) -> Any:
    # VllmConfig is a pydantic model (maider_tui.records): imported on first use, so that the catalog
    # types below, which the app needs before its first frame, do not load pydantic.
    if name == "VllmConfig":
        from maider_tui.records import VllmConfig

        return VllmConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- Catalog types: GPUs, regions, models and the fit planner's verdict --------------------------
# Plain frozen dataclasses, unchecked: they are built from trusted built-in data or from
# values the catalog has already checked, and they must be cheap to create in tight loops.
#
# "GB" in this app means GiB (bytes / 2**30), as nvidia-smi users read memory: a 20475 MiB card
# is a "20.0 GB" card. Prices and bandwidth (GB/s) stay decimal, as vendors quote them.

_MIB = 1024**2


@dataclass(frozen=True, slots=True)
class GpuFamily:
    """One GPU model as the hardware really is (not as a plan's marketing name suggests)."""

    id: str
    name: str  # exactly as `nvidia-smi --query-gpu=name` prints it
    short_name: str  # for tables: "RTX 4000 Ada"
    vram_mib: int  # memory.total as nvidia-smi reports it
    bandwidth_gbs: float  # peak memory bandwidth, decimal GB/s
    compute_capability: tuple[int, int]
    bf16: bool  # vLLM needs --dtype half where this is False
    fp8: bool  # native FP8 (Ada and newer): fp8 KV cache and fp8 weights

    @property
    def vram_gb(self) -> float:
        """Memory per GPU in GiB (MiB / 1024)."""
        return self.vram_mib / 1024

    @property
    def vram_bytes(self) -> int:
        return self.vram_mib * _MIB

    @property
    def compute_capability_str(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


@dataclass(frozen=True, slots=True)
class GpuType:
    """A rentable plan (a Linode type): how many GPUs of which family, at what price, where."""

    id: str
    label: str
    gpus: int
    family: GpuFamily | None  # None: a plan we do not know; its VRAM is unknown, never guessed
    hourly_usd: float
    monthly_usd: float
    regions: tuple[str, ...] = ()
    memory_mb: int | None = None  # the VM's RAM, not the GPU's
    vcpus: int | None = None
    disk_mb: int | None = None

    @property
    def vram_per_gpu_gb(self) -> float | None:
        """GiB per GPU, or None when the family is unknown."""
        return self.family.vram_gb if self.family else None

    @property
    def total_vram_gb(self) -> float | None:
        """GiB over all GPUs, or None when the family is unknown."""
        return self.family.vram_gb * self.gpus if self.family else None

    @property
    def short_name(self) -> str:
        """Display name such as "2x RTX 4000 Ada"; the API label when the family is unknown."""
        return f"{self.gpus}x {self.family.short_name}" if self.family else self.label


@dataclass(frozen=True, slots=True)
class Region:
    """A data centre that offers GPU plans."""

    id: str
    city: str
    country: str  # ISO 3166 alpha-2, upper case
    gpu_families: tuple[str, ...]  # GpuFamily ids offered here

    @property
    def label(self) -> str:
        return f"{self.city}, {self.country}"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the fit planner needs to know about one model checkpoint (from its config.json)."""

    id: str  # Hugging Face repo id
    short_name: str
    category: str  # 7b, 14b, 30b, 70b, 70b-full
    params_b: float  # total parameters, billions, as stored in the checkpoint
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_positions: int
    active_params_b: float | None = None  # MoE: parameters used per token; None for dense models
    quant: str | None = None  # "awq", "gptq", "fp8" or None (16-bit)
    quant_bits: int = 16
    quant_group_size: int = 0  # 0: no per-group scales (16-bit or fp8)
    kv_layout: str = "gqa"  # "gqa" (standard/grouped KV heads) or "mla" (DeepSeek-V2 latent)
    kv_lora_rank: int = 0  # MLA only
    qk_rope_head_dim: int = 0  # MLA only
    trust_remote_code: bool = False
    coder: bool = False

    @property
    def is_moe(self) -> bool:
        return self.active_params_b is not None

    @property
    def params(self) -> int:
        return round(self.params_b * 1e9)


@dataclass(frozen=True, slots=True)
class Capability:
    """A wizard tier ("7B-14B" ...) and the model categories it offers."""

    id: str
    label: str
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FitReport:
    """The fit planner's verdict for one model on one GPU type. Sizes are GiB ("GB")."""

    model: ModelSpec
    gpu_type: GpuType
    fits: bool
    reason: str  # one line for the user
    weights_gb: float  # whole model
    weights_per_gpu_gb: float  # on the most loaded GPU of the plan
    kv_bytes_per_token: int  # whole model, all layers and KV heads
    kv_bytes_per_token_per_gpu: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len: int  # what to pass to vLLM; 0 when it does not fit
    max_context: int  # the largest context that fits (multiple of 1024, capped at max positions)
    usable_gb: float  # per GPU: VRAM x gpu_memory_utilization
    reserve_gb: float  # per GPU: activations, CUDA graphs, CUDA context
    kv_cache_gb: float  # per GPU: what is left for the KV cache
    per_gpu_gb: float  # per GPU: weights + reserve + KV cache the plan uses
    dtype: str  # "auto" or "half"
    kv_cache_dtype: str
    gpu_memory_utilization: float
    requested_max_model_len: int | None = None
    notes: tuple[str, ...] = ()  # warnings such as an fp8 KV cache falling back to 16-bit

    @property
    def gpus_used(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def to_vllm_config(self, served_model_name: str | None = None) -> VllmConfig:
        """The vLLM settings this plan stands for; raises ValueError when it does not fit."""
        from maider_tui.records import VllmConfig

        if not self.fits:
            raise ValueError(f"no vLLM config for a plan that does not fit: {self.reason}")
        return VllmConfig(
            model=self.model.id,
            served_model_name=served_model_name,
            tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size,
            max_model_len=self.max_model_len,
            gpu_memory_utilization=self.gpu_memory_utilization,
            dtype=self.dtype,
            kv_cache_dtype=self.kv_cache_dtype,
            trust_remote_code=self.model.trust_remote_code,
        )
