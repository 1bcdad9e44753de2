"""Sample sessions for UI tests and snapshots (a fixed set, so pictures do not drift).

With a SimCloud given, the live sessions get real VMs in it (tagged as a launch tags them), so the
start-up recovery check finds them healthy instead of ending them as gone.
"""

from __future__ import annotations

from maider_tui.store import SessionRecord, Store

SAMPLES = [
    dict(name="qwen32b-20261122-093012", state="ready", stage="ready", region="us-ord",
         gpu_type="g2-gpu-rtx4000a2-s", gpu_count=2, model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
         hourly_usd=1.04, age_h=3.0),
    dict(name="qwen14b-20261122-101544", state="healing", stage="vllm", region="us-east",
         gpu_type="g1-gpu-rtx6000-2", gpu_count=2, model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ",
         hourly_usd=3.00, age_h=0.35),
]


def add_sample_sessions(store: Store, now: float, sim=None) -> None:
    hour = 3600.0
    for i, sample in enumerate(SAMPLES):
        sample = dict(sample)
        age = sample.pop("age_h")
        instance_id = 8211001 + i
        if sim is not None:
            async def create(name=sample["name"], region=sample["region"], plan=sample["gpu_type"]):
                # On the sim's own loop: its "created" listeners start the VM's SSH server there.
                return sim.world.create(name, region, plan, tags=["maider", f"maider-session:{name}"])

            instance_id = sim.call(create()).id
        store.add_session(SessionRecord(**sample, instance_id=instance_id, created_at=now - age * hour))
    store.add_session(SessionRecord(
        name="llama8b-20261121-181203", state="ended", stage="ready", instance_id=8211003,
        region="jp-osa", gpu_type="g2-gpu-rtx4000a1-s", gpu_count=1,
        model="meta-llama/Llama-3.1-8B-Instruct", hourly_usd=0.52, created_at=now - 20 * hour,
        ended_at=now - 18.33 * hour, cost_usd=0.87,
    ))
