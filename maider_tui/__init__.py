"""maider-tui: rent a cloud GPU, serve an open model with vLLM, and never pay for an idle one."""

import warnings

__version__ = "0.1.0"

# asyncssh still names DSA keys, and a newer cryptography warns about that on import, ten lines on
# stderr that a user can do nothing about. Every entry point imports this package first, so the filter
# is in place before asyncssh is; matched by message (the category is a UserWarning subclass), so start-up
# does not import cryptography just to name it.
warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
