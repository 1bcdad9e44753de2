"""The dry run's text (`maider-tui plan`): the fit plan as the user reads it, and the placeholders
that stand in for the secrets a launch would make or upload. Pure: no network, no file."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from maider_tui.catalog import context_label
from maider_tui.deploy import compose
from maider_tui.deploy.launch import attention_backend
from maider_tui.deploy.cluster import RAY_PORT, ClusterLayout
from maider_tui.models import FitReport, VllmConfig

if TYPE_CHECKING:
    from maider_tui.catalog.cluster import ClusterFit

HF_TOKEN_PLACEHOLDER = "<your Hugging Face token>"
# Clearly not a key: at launch the app makes a fresh ed25519 host key for each VM and never reuses it.
HOST_KEY_PLACEHOLDER_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "<placeholder: a fresh ed25519 host key is made for each VM at launch>\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
HOST_KEY_PLACEHOLDER_PUBLIC = "ssh-ed25519 AAAAPLACEHOLDERnotARealKeyMadeFreshPerVM placeholder"


def summary(report: FitReport, config: VllmConfig, region: str | None = None, *,
            cluster: ClusterFit | None = None, nodes: ClusterLayout | None = None) -> str:
    """The fit plan as aligned lines of text; `region` is the chosen one, as the user should read it.
    `cluster` and `nodes`: a session over several VMs, with its VMs, network and link rows."""
    t, m = report.gpu_type, report.model
    family = t.family
    per_gpu = f"{t.vram_per_gpu_gb:.0f} GB" if t.vram_per_gpu_gb else "? GB"
    total = f"{t.total_vram_gb:.0f} GB" if t.total_vram_gb else "? GB"
    gpu_name = family.short_name if family else t.label
    where = region or ("any of " + ", ".join(t.regions) if t.regions else "no region right now")
    layout = f"TP {report.tensor_parallel_size}, PP {report.pipeline_parallel_size}"
    if report.gpus_used < t.gpus:
        layout += f" ({report.gpus_used} of {t.gpus} GPUs used)"
    context = (f"{context_label(report.max_model_len)} ({report.max_model_len} tokens; "
               f"the most that fits: {context_label(report.max_context)})")
    memory = (f"weights {report.weights_per_gpu_gb:.1f} GB + overhead {report.reserve_gb:.1f} GB + "
              f"KV cache {report.kv_cache_gb:.1f} GB, of {report.usable_gb:.1f} GB usable "
              f"({report.gpu_memory_utilization:.2f} x {per_gpu})")
    hourly = cluster.hourly_usd if cluster else t.hourly_usd
    rows = [
        ("GPU type", f"{t.id}: {t.gpus}x {gpu_name}, {per_gpu} each ({total})"),
        ("Region", where),
        ("Price", f"${hourly:.2f}/h, ${hourly * 24:.2f}/day (built-in prices)"
                  + (f", {cluster.nodes} VMs at ${t.hourly_usd:.2f}/h each" if cluster else "")),
        ("Model", f"{m.id} ({m.short_name})"),
        ("Layout", layout if cluster is None else f"TP {report.tensor_parallel_size} within each VM, "
                                                   f"PP {report.pipeline_parallel_size} across VMs"),
        ("Context", context),
        ("dtype", f"{config.dtype}, KV cache {config.kv_cache_dtype}"),
        ("Attention", attention_backend(t, m)),
        ("Memory/GPU", memory),
        ("Fit", report.reason),
        ("vLLM", "vllm serve " + shlex.join(compose.vllm_command(config))),
    ]
    if cluster is not None and nodes is not None:
        rows += [
            ("VMs", ", ".join(f"{n.role} {n.address}" for n in nodes.nodes)
             + f" on a private network (VPC {nodes.subnet})"),
            ("Ray", f"head {nodes.head.address}:{RAY_PORT}; vLLM waits for {nodes.total_gpus} GPUs, then serves"),
            ("Link", cluster.link.describe()),
        ]
    rows += [("Note", note) for note in report.notes]
    width = max(len(label) for label, _ in rows)
    lines = ["Plan (dry run: nothing is created)"] + [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines) + "\n"


def env_file_note() -> str:
    return (
        "# /opt/llm/.env beside this file: mode 0600, uploaded over SFTP, never in this file.\n"
        f"#   HF_TOKEN={HF_TOKEN_PLACEHOLDER}\n"
        f"#   HUGGING_FACE_HUB_TOKEN={HF_TOKEN_PLACEHOLDER}\n"
    )
