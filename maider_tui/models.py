"""Shared types: what the layers hand each other. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # `port = true` in a file is a mistake, not port 1
        raise ValueError("it is not a whole number")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("it must not be empty")
    return value


Whole = Annotated[int, BeforeValidator(_no_bool)]
"""A whole number that a boolean is not ("8000", 8000 and 8000.0 are)."""
Text = Annotated[str, AfterValidator(_not_blank)]
"""Text with something in it besides spaces."""


class Record(BaseModel):
    """A frozen pydantic model a user or a file feeds: unknown keys are ignored (a newer file still
    loads), NaN and infinity are refused, and the docstring under each field is its description."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, use_attribute_docstrings=True)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The record from a mapping (a stored JSON column, a TOML table); raises ValidationError."""
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (tuples become lists, nested records tables)."""
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, checked like a new record (model_copy alone would not check them)."""
        return self.model_validate({**dict(self), **changes})


# What each of pydantic's error types means, in the words the app's messages use.
_SAYS = {
    "int_parsing": "it is not a whole number", "int_type": "it is not a whole number",
    "int_from_float": "it is not a whole number", "float_parsing": "it is not a number",
    "float_type": "it is not a number", "finite_number": "it is not a finite number",
    "bool_parsing": "it is not true or false", "bool_type": "it is not true or false",
    "string_type": "it is not text", "string_too_short": "it must not be empty",
    "list_type": "it is not a list", "tuple_type": "it is not a list", "dict_type": "it is not a table",
    "model_type": "it is not a table", "model_attributes_type": "it is not a table",
    "missing": "it is required",
}
_LIMITS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def problem_text(error: Any) -> str:
    """One of pydantic's errors (an item of `ValidationError.errors()`) as the app says it:
    "it must be at least 1", "it is not a whole number"; the field is named by the caller (`loc`)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _LIMITS:
        key, words = _LIMITS[kind]
        return f"it must be {words} {ctx[key]:g}"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"].removeprefix("Value error, "))
    if kind == "string_type" and len(error["loc"]) > 1 and not isinstance(error["loc"][-1], str):
        return "every item must be text"
    return _SAYS.get(kind, error["msg"][:1].lower() + error["msg"][1:])


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(the top field's name, what is wrong) of the first error of `exc`."""
    error = exc.errors()[0]
    return (str(error["loc"][0]) if error["loc"] else "", problem_text(error))


class VllmConfig(Record):
    """The vLLM settings of one deployment; compose rendering, healing and model switching all speak it.

    Checked when made (`VllmConfig.from_dict` for a stored one, `.replace()` for a changed one);
    `.to_dict()` is what the session record stores.
    """

    model: str
    served_model_name: str | None = None
    tensor_parallel_size: Whole = Field(1, ge=1)
    pipeline_parallel_size: Whole = Field(1, ge=1)
    max_model_len: Whole | None = Field(None, ge=256)
    gpu_memory_utilization: float = Field(0.90, gt=0.1, le=0.99)
    max_num_seqs: Whole | None = Field(None, ge=1)
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    trust_remote_code: bool = False
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)


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
