"""What can go wrong in the simulated cloud, each fault switchable on its own.

Faults that real vLLM shows for a bad configuration (out of memory, KV cache too small, tensor
parallel size that does not divide the heads, bfloat16 on a Turing GPU) fire from the VM's actual
configuration, so the healing loop really has to fix them; the flags here only allow turning them off.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimFaults:
    # Linode API
    api_error_burst: int = 0
    """The next N API requests answer `api_error_status` (5xx) with a real error body."""
    api_error_status: int = 503
    api_rate_limit_burst: int = 0
    """The next N API requests answer 429 with `Retry-After: 1`."""
    api_delay_s: float = 0.0
    """Every API response waits this long (real seconds, not scaled by speed)."""
    create_response_lost: int = 0
    """The next N creates make the instance, then answer 502 as if the reply was lost on the way."""
    create_hold_s: float = 0.0
    """Every create is held this long (real seconds) before the VM is made and the answer sent: a
    create still in flight, for the races of a destroy or a resume against it."""
    # VM lifecycle
    slow_boot_factor: float = 1.0
    """Multiplies boot and cloud-init time."""
    vm_vanish_after_s: float | None = None
    """Sim seconds after running when the VM is deleted behind the client's back."""
    # SSH
    ssh_drop_after_s: float | None = None
    """Real seconds after which each SSH connection is dropped by the server."""
    # vLLM: failures decided from the configuration
    oom: bool = True
    kv_cache: bool = True
    tensor_parallel: bool = True
    bf16_on_turing: bool = True
    nccl_without_env: bool = True
    """TP > 1 without the NCCL environment variables fails with an NCCL error."""
    unsupported_models: set[str] = field(default_factory=set)
    """Model ids whose architecture this vLLM build refuses."""
    needs_trust_remote_code: bool = True
    """Models the catalog marks trust_remote_code fail without `--trust-remote-code`."""
    vllm_crash_after_s: float | None = None
    """Sim seconds after ready when the vLLM server dies."""
    # Several VMs: Ray over a VPC
    vpc_blocked: bool = False
    """Traffic between the VMs of a VPC is dropped (a firewall in the way): a Ray worker cannot reach its head."""
    ray_worker_lost_after_s: float | None = None
    """Sim seconds after a vLLM served across a Ray cluster is ready when its last worker VM is deleted
    behind the client's back (a pipeline stage lost)."""
    # GPUs of a running vLLM misbehaving (what validation must catch)
    idle_gpus: set[int] = field(default_factory=set)
    """GPU indexes that show no memory and no utilisation while vLLM runs, as if TP were broken."""
    unbalanced_gpu: int | None = None
    """A GPU holding 30% less memory than the others (the seed's "unbalanced GPU memory")."""
    nccl_warning_in_logs: bool = False
    """The running vLLM container's log carries an NCCL WARN line."""

    def take_api_fault(self) -> int | None:
        """The status the next API request should fail with, if a burst is under way."""
        if self.api_rate_limit_burst > 0:
            self.api_rate_limit_burst -= 1
            return 429
        if self.api_error_burst > 0:
            self.api_error_burst -= 1
            return self.api_error_status
        return None
