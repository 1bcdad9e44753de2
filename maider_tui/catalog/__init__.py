"""The catalog: GPU families and plans, GPU regions, models, and the fit planner.

Pure: no I/O, no network, no UI. Live Linode data (types, prices, regions) comes in through
`gpu_type_from_api`; the built-in tables are the fallback when the API cannot be asked.
"""

from __future__ import annotations

from maider_tui.catalog.custom import custom_model, estimate_params_b
from maider_tui.catalog.errors import (
    UnknownCapabilityError,
    UnknownCatalogIdError,
    UnknownGpuTypeError,
    UnknownModelError,
    UnknownRegionError,
)
from maider_tui.catalog.fit import RESERVE_GB, candidate_plans, context_label, fit, valid_tensor_parallel
from maider_tui.catalog.gpus import QUADRO_RTX6000, RTX4000_ADA, family_for_type_id, gpu_type_from_api
from maider_tui.catalog.lookup import (
    capabilities,
    capability,
    gpu_families,
    gpu_type,
    gpu_types,
    model,
    models,
    models_for_capability,
    region,
    regions,
)
from maider_tui.catalog.sizes import decode_bytes_per_token, kv_bytes_per_token, weight_bytes
from maider_tui.catalog.speed import DEFAULT_EFFICIENCY, estimate_decode_tok_s
from maider_tui.models import FitReport, GpuType


def models_that_fit(gpu_type: GpuType | str, *, max_model_len: int | None = None) -> tuple[FitReport, ...]:
    """Fit reports of the built-in models that fit `gpu_type`, largest model first.

    Among models of the same size, the longer context comes first (a 4-bit twin usually wins).
    Worked out by `fit`, never read from a table of model sizes per GPU.
    """
    reports = (fit(m, gpu_type, max_model_len=max_model_len) for m in models())
    fitting = [r for r in reports if r.fits]
    return tuple(sorted(fitting, key=lambda r: (-round(r.model.params_b), -r.max_context, r.model.id)))


__all__ = [
    "DEFAULT_EFFICIENCY",
    "QUADRO_RTX6000",
    "RESERVE_GB",
    "RTX4000_ADA",
    "UnknownCapabilityError",
    "UnknownCatalogIdError",
    "UnknownGpuTypeError",
    "UnknownModelError",
    "UnknownRegionError",
    "candidate_plans",
    "capabilities",
    "capability",
    "context_label",
    "custom_model",
    "decode_bytes_per_token",
    "estimate_decode_tok_s",
    "estimate_params_b",
    "family_for_type_id",
    "fit",
    "gpu_families",
    "gpu_type",
    "gpu_type_from_api",
    "gpu_types",
    "kv_bytes_per_token",
    "model",
    "models",
    "models_for_capability",
    "models_that_fit",
    "region",
    "regions",
    "valid_tensor_parallel",
    "weight_bytes",
]
