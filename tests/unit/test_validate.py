"""The pure half of validation: topology parsing, memory balance, logs, advice, Markdown export.

Topology outputs are real captures from public issue threads (cited per constant); excerpts that
the thread cut off mid-matrix are kept as they were, which the parser must tolerate.
"""

from __future__ import annotations

from maider_tui.models import VllmConfig
from maider_tui.ops.validate_report import (
    Advice, Finding, Measured, Throughput, ValidationReport, advice_finding, advise, idle_under_load,
    memory_balance, memory_findings, nccl_finding, parse_topology, tensor_parallel_from_logs, tp_finding,
)
from maider_tui.remote.gpu import GpuSample
from maider_tui.sim.gpus import topology

# noonghunna/club-3090 issue #1229: two consumer GPUs behind one host bridge (tabs, as nvidia-smi prints).
TWO_PHB = ("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
           "GPU0\t X \tPHB\t0-63\t0\t\tN/A\n"
           "GPU1\tPHB\t X \t0-63\t0\t\tN/A\n\n"
           "Legend:\n\n  X    = Self\n  SYS  = Connection traversing PCIe as well as the SMP interconnect\n")

# NVIDIA/nccl issue #1505: DGX A100, NV12 everywhere, NIC columns (excerpt ends after GPU3's row).
DGX_A100 = """        GPU0    GPU1    GPU2    GPU3    GPU4    GPU5    GPU6    GPU7    NIC0    NIC1    NIC2    NIC3    NIC4    NIC5    NIC6    NIC7    NIC8    NIC9    NIC10   NIC11   CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      NV12    NV12    NV12    NV12    NV12    NV12    NV12    PXB     PXB     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     48-63,176-191   3               N/A
GPU1    NV12     X      NV12    NV12    NV12    NV12    NV12    NV12    PXB     PXB     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     48-63,176-191   3               N/A
GPU2    NV12    NV12     X      NV12    NV12    NV12    NV12    NV12    SYS     SYS     PXB     PXB     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     16-31,144-159   1               N/A
GPU3    NV12    NV12    NV12     X      NV12    NV12    NV12    NV12    SYS     SYS     PXB     PXB     SYS     SYS     SYS     SYS     SYS     SYS     SYS     SYS     16-31,144-159   1               N/A
"""

# kubernetes/kubernetes issue #53497: 8 GPUs on two sockets, PIX pairs, PHB within and SYS across sockets.
EIGHT_PCIE = """        GPU0    GPU1    GPU2    GPU3    GPU4    GPU5    GPU6    GPU7    mlx4_0  CPU Affinity
GPU0     X      PIX     PHB     PHB     SYS     SYS     SYS     SYS     PHB     0-9,20-29
GPU1    PIX      X      PHB     PHB     SYS     SYS     SYS     SYS     PHB     0-9,20-29
GPU2    PHB     PHB      X      PIX     SYS     SYS     SYS     SYS     PHB     0-9,20-29
GPU3    PHB     PHB     PIX      X      SYS     SYS     SYS     SYS     PHB     0-9,20-29
GPU4    SYS     SYS     SYS     SYS      X      PIX     PHB     PHB     SYS     10-19,30-39
"""


def test_topology_two_gpus_one_host_bridge():
    topo = parse_topology(TWO_PHB)
    assert topo.gpus == ("GPU0", "GPU1") and topo.links == {(0, 1): "PHB"}
    assert topo.interconnect == "pcie"


def test_topology_nvlink_with_nic_columns_and_truncated_rows():
    topo = parse_topology(DGX_A100)
    assert len(topo.gpus) == 8
    assert topo.links[(0, 7)] == "NV12" and topo.links[(3, 6)] == "NV12"
    assert topo.kinds() == {"nvlink"} and topo.interconnect == "nvlink"  # NIC columns are not GPU links


def test_topology_across_sockets_is_the_slowest_path():
    topo = parse_topology(EIGHT_PCIE)
    assert topo.links[(0, 1)] == "PIX" and topo.links[(0, 4)] == "SYS" and topo.links[(4, 5)] == "PIX"
    assert topo.interconnect == "sys"


def test_topology_of_the_sim_and_ansi_and_nonsense():
    assert parse_topology(topology(4)).links == {(0, 1): "PHB", (0, 2): "SYS", (0, 3): "SYS", (1, 2): "SYS",
                                                  (1, 3): "SYS", (2, 3): "PHB"}
    assert parse_topology(topology(1)).interconnect == "single"
    underlined = TWO_PHB.replace("\tGPU0\tGPU1", "\t\x1b[4mGPU0\tGPU1\x1b[0m")
    assert parse_topology(underlined).links == {(0, 1): "PHB"}
    assert parse_topology("No devices were found").links == {}


def gpus(*used_gb: float, total_gb: float = 48.0, util: float = 0.0) -> list[GpuSample]:
    return [GpuSample(i, "NVIDIA RTX 6000 Ada", u * 1024, total_gb * 1024, util) for i, u in enumerate(used_gb)]


def test_memory_balance_follows_the_seed_examples():
    good = memory_balance(gpus(42, 42, 41, 42), 4)
    assert good.idle == () and good.spread_pct < 3
    assert memory_findings(good, 4)[0].status == "pass"
    unbalanced = memory_balance(gpus(42, 35, 41, 42), 4)  # the seed's Issue 3: 35 GB vs 42 GB
    finding = memory_findings(unbalanced, 4)[0]
    assert finding.status == "warn" and "17%" in finding.title
    idle = memory_balance(gpus(42, 1, 1, 1), 4)  # the seed's Issue 1: only GPU 0 active
    finding = memory_findings(idle, 4)[0]
    assert idle.idle == (1, 2, 3) and finding.status == "fail" and "GPU 1: 1.0 GB / 48.0 GB (2%) - IDLE" in finding.evidence
    # a GPU the config never asked for is not "idle because TP broke"
    assert memory_balance(gpus(42, 42, 1, 1), 2).idle == ()


def test_idle_under_load():
    rows = [(0.0, (90.0, 88.0, 0.0)), (2.0, (91.0, 89.0, 2.0))]
    assert idle_under_load(rows, 3) == (2,) and idle_under_load(rows, 2) == () and idle_under_load([], 2) == ()


LOG = """(APIServer pid=1) INFO 11-22 12:00:01 [api_server.py:1839] non-default args: {'model': 'Qwen/Qwen2.5-Coder-32B-Instruct-AWQ', 'tensor_parallel_size': 4}
INFO 11-22 12:00:09 [core.py:77] Initializing a V1 LLM engine (v0.11.0) with config: model='Qwen', tensor_parallel_size=4, pipeline_parallel_size=1
(VllmWorker TP0 pid=90) INFO 11-22 12:00:20 [pynccl.py:103] vLLM is using nccl==2.27.3
"""


def test_tensor_parallel_from_logs_against_gpus():
    assert tensor_parallel_from_logs(LOG) == 4 and tensor_parallel_from_logs("nothing") is None
    config = VllmConfig(model="m", tensor_parallel_size=4)
    assert tp_finding(4, config, 4).status == "pass"
    assert tp_finding(None, config, 4).status == "warn"  # matches, but only the config says so
    short = tp_finding(2, VllmConfig(model="m", tensor_parallel_size=2), 4)
    assert short.status == "warn" and "2 of 4" in short.title


def test_nccl_lines():
    assert nccl_finding(LOG).status == "pass"
    warn = nccl_finding(LOG + "host:301:341 [0] init.cc:1590 NCCL WARN ncclSystemError: bootstrap\n")
    assert warn.status == "warn" and "init.cc:1590 NCCL WARN" in warn.evidence[0]
    error = nccl_finding(LOG + "RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO)\n")
    assert error.status == "fail"


def test_advice_chosen_by_what_was_measured():
    config = VllmConfig(model="m", tensor_parallel_size=2)
    healthy_pcie = advise(Measured(gpu_count=2, interconnect="pcie", tok_s=80, expected_tok_s=90), config)
    assert [a.setting for a in healthy_pcie] == ["VLLM_ALLREDUCE_USE_SYMM_MEM=0", "--max-num-seqs 16"]
    assert advice_finding(healthy_pcie).status == "pass"  # tuning options, not problems
    tuned = config.replace(**{"env": {"VLLM_ALLREDUCE_USE_SYMM_MEM": "0"}, "max_num_seqs": 16})
    assert advise(Measured(gpu_count=2, interconnect="pcie"), tuned) == []
    assert advise(Measured(gpu_count=2, interconnect="nvlink"), config) == []
    idle = advise(Measured(gpu_count=4, interconnect="nvlink", idle_gpus=(1, 2, 3)), config)
    assert idle[0].setting == "--tensor-parallel-size 4" and idle[0].problem
    assert advice_finding(idle).status == "warn"
    unbalanced = advise(Measured(gpu_count=4, interconnect="nvlink", spread_pct=20), config)
    assert "restart vLLM" in unbalanced[0].setting
    nccl = advise(Measured(gpu_count=2, interconnect="nvlink", nccl="warn"), config)
    assert nccl[0].setting == "NCCL_DEBUG=WARN NCCL_IB_DISABLE=1 NCCL_P2P_DISABLE=0"
    slow = advise(Measured(gpu_count=4, interconnect="nvlink", tok_s=15, expected_tok_s=45, mean_util_pct=95), config)
    assert [a.setting for a in slow] == ["--max-num-seqs 1", "--enable-chunked-prefill"]
    assert "wait on each other" in slow[0].why


def test_throughput_rate_is_decode_after_the_first_token():
    assert Throughput(32, 101, 0.5, 2.5).tok_s == 50.0
    assert Throughput(32, 1, None, 0.5).tok_s == 2.0


def test_markdown_export():
    report = ValidationReport("full", "qwen-1", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "g2-gpu-rtx4000a2-s",
                              1_795_351_260.0)
    report.findings += [Finding("hardware", "pass", "Found 2 GPUs", ("GPU 0: NVIDIA RTX 4000 Ada | 20 GB",)),
                        Finding("nccl", "warn", "1 NCCL warning | see log", ("x NCCL WARN y",))]
    report.throughput.append(Throughput(128, 101, 0.25, 1.25))
    report.utilisation += [(1_795_351_270.0, (90.0, 88.0)), (1_795_351_272.0, (92.0, 86.0))]
    report.advice.append(Advice("VLLM_ALLREDUCE_USE_SYMM_MEM=0", "no NVLink"))
    text = report.to_markdown()
    assert report.status == "warn" and report.counts() == {"pass": 1, "warn": 1, "fail": 0}
    assert text.startswith("# GPU validation (full): qwen-1\n")
    assert "**warn** (1 pass, 1 warn, 0 fail)" in text
    assert "| warn | nccl | 1 NCCL warning \\| see log |" in text  # pipes in titles escaped
    assert "```\nx NCCL WARN y\n```" in text
    assert "| 128 | 101 | 0.25 | 100.0 |" in text
    assert "| Time | GPU0 | GPU1 | Avg |" in text and "| 12:41:10 | 90% | 88% | 89% |" in text
    assert "- `VLLM_ALLREDUCE_USE_SYMM_MEM=0`: no NVLink" in text
