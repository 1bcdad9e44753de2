"""maider-tui: rent a cloud GPU, serve an open model with vLLM, and never pay for an idle one."""

__version__ = "0.1.0"
