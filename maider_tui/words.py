"""How counts and durations read in messages to the user: "1 run", "2 runs", "2 min", "1.5 h"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` and `word`, the word in the plural unless the count is one: "1 run", "0 runs", "3 boxes"
    with `many="boxes"`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def duration(hours: float) -> str:
    """A span of time as a person says it: seconds under a minute, minutes under an hour, then hours
    ("40 s", "2 min", "1.5 h")."""
    seconds = max(0.0, hours * 3600)
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:  # 59.5 min and above read as an hour
        return f"{seconds / 60:.0f} min"
    return f"{hours:.1f} h".replace(".0 h", " h")
