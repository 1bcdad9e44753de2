"""The simulated cloud: a fake Linode API, GPU VMs behind real SSH servers, and fake vLLM servers.

`SimCloud` starts it all in its own thread; `SimFaults` switches on what real clouds do wrong.
"""

from maider_tui.sim.cloud import SimCloud
from maider_tui.sim.faults import SimFaults

__all__ = ["SimCloud", "SimFaults"]
