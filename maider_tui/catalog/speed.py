"""A roofline estimate of single-stream decode speed, for recommendations with no benchmark yet.

Decoding one token streams every active weight from VRAM once, so
    tok/s = efficiency x bandwidth x TP ** 0.85 / bytes read per token.
TP ** 0.85 stands for the all-reduce cost of tensor parallelism (2 GPUs give 1.8x, 4 give 3.2x).
Pipeline stages run one after another for a single request, so only the TP degree of the plan
counts, not every GPU the plan uses. KV-cache reads are left out: short prompts dominate chat.

DEFAULT_EFFICIENCY: the seed reports ~38 tok/s for Qwen2.5-Coder-32B-AWQ on 2x RTX 4000 Ada.
That plan reads 17.77 GB per token (16.21 GB of 4-bit body + 1.56 GB lm_head) over 360 GB/s x
2 ** 0.85 = 649 GB/s, a ceiling of 36.5 tok/s: the seed's figure sits at the roofline itself.
0.95 gives 34.7 tok/s, within 4 of the seed without claiming more bandwidth than the cards have.
"""

from __future__ import annotations

from maider_tui.catalog.fit import fit
from maider_tui.catalog.lookup import as_gpu_type, as_model
from maider_tui.catalog.sizes import decode_bytes_per_token
from maider_tui.models import GpuType, ModelSpec

DEFAULT_EFFICIENCY = 0.95
TP_SCALING_EXPONENT = 0.85


def estimate_decode_tok_s(
    model: ModelSpec | str,
    gpu_type: GpuType | str,
    *,
    efficiency: float = DEFAULT_EFFICIENCY,
) -> float | None:
    """Estimated decode tokens/s of one request, or None when the GPU family (bandwidth) is unknown.

    Uses the TP degree the fit planner picks, even when the model does not fit (a what-if).
    """
    spec, gt = as_model(model), as_gpu_type(gpu_type)
    if gt.family is None:
        return None
    if efficiency <= 0:
        raise ValueError(f"efficiency must be positive, got {efficiency}")
    tp = fit(spec, gt).tensor_parallel_size
    bandwidth = gt.family.bandwidth_gbs * 1e9 * tp**TP_SCALING_EXPONENT
    return efficiency * bandwidth / decode_bytes_per_token(spec)
