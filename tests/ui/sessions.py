"""Sample sessions for UI tests and snapshots (a fixed set, so pictures do not drift)."""

from __future__ import annotations

from maider_tui.store import SessionRecord, Store


def add_sample_sessions(store: Store, now: float) -> None:
    hour = 3600.0
    store.add_session(SessionRecord(
        name="qwen32b-20261122-093012", state="ready", stage="ready", instance_id=8211001,
        region="us-ord", gpu_type="g2-gpu-rtx4000a2-s", gpu_count=2,
        model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", hourly_usd=1.04, created_at=now - 3 * hour,
    ))
    store.add_session(SessionRecord(
        name="qwen14b-20261122-101544", state="healing", stage="wait_vllm", instance_id=8211002,
        region="us-east", gpu_type="g1-gpu-rtx6000-2", gpu_count=2,
        model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", hourly_usd=3.00, created_at=now - 0.35 * hour,
    ))
    store.add_session(SessionRecord(
        name="llama8b-20261121-181203", state="ended", stage="ready", instance_id=8211003,
        region="jp-osa", gpu_type="g2-gpu-rtx4000a1-s", gpu_count=1,
        model="meta-llama/Llama-3.1-8B-Instruct", hourly_usd=0.52, created_at=now - 20 * hour,
        ended_at=now - 18.33 * hour, cost_usd=0.87,
    ))
