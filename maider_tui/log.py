"""Logging to a file in the user log dir, never to the screen, never with a secret in it."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

_REDACT: set[str] = set()
# Shapes of tokens we handle, redacted even if nobody registered them.
_PATTERNS = [re.compile(r"hf_[A-Za-z0-9]{20,}"), re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._-]{16,}")]


def register_secret(value: str | None) -> None:
    """Make sure `value` never reaches the log file."""
    if value and len(value) >= 6:
        _REDACT.add(value)


def redact(text: str) -> str:
    for secret in _REDACT:
        text = text.replace(secret, "***")
    text = _PATTERNS[0].sub("hf_***", text)
    return _PATTERNS[1].sub(r"\1***", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(log_file: Path, level: int = logging.INFO) -> Path:
    """Send the `maider_tui` loggers to `log_file` (rotated), and nowhere else.

    Raises OSError when the folder or the file cannot be made; the command line checks the folders
    first (`AppPaths.unwritable`) and says so in one sentence."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("maider_tui")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return log_file
