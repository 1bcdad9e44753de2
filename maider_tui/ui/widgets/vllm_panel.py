"""The vLLM panel: the model served, requests running and waiting, tokens/s and KV-cache use."""

from __future__ import annotations

from .lines import LinePanel
from ...ops.telemetry import VllmReading


def vllm_lines(model: str, reading: VllmReading | None) -> list[str]:
    """The model line and the load line; when vLLM is down, why, and what to press."""
    if reading is None:
        return [model, "waiting for /metrics …"]
    metrics = reading.metrics
    if metrics is None:
        return [model, f"vLLM down: {reading.error}", "h diagnoses and heals or restarts it · r reconnects"]
    rate = "— tok/s" if reading.generation_tok_s is None else f"{reading.generation_tok_s:.1f} tok/s"
    kv = "—" if metrics.kv_cache_usage is None else f"{metrics.kv_cache_usage * 100:.0f}%"
    load = (f"running {metrics.requests_running:.0f} · waiting {metrics.requests_waiting:.0f} · "
            f"{rate} · KV cache {kv}")
    return [model, load]


class VllmPanel(LinePanel):
    """Redrawn in place on every /metrics scrape: the load line alone, while vLLM is up."""

    DEFAULT_CSS = """
    VllmPanel { height: auto; }
    VllmPanel.-down { color: $warning; }
    """

    def show(self, model: str, reading: VllmReading | None) -> None:
        self.set_class(reading is not None and reading.metrics is None, "-down")
        self.show_lines(vllm_lines(model, reading))
