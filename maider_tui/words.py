"""How counts and durations read in messages to the user: "1 run", "2 runs", "2 min", "1 h 30 min"."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` and `word`, the word in the plural unless the count is one: "1 run", "0 runs", "3 boxes"
    with `many="boxes"`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def duration(hours: float) -> str:
    """A span of time as a person says it: seconds under a minute, then minutes, then hours and minutes
    ("40 s", "2 min", "1 h 30 min", "3 h")."""
    seconds = round(max(0.0, hours) * 3600)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    whole, rest = divmod(minutes, 60)
    return f"{whole} h {rest} min" if rest else f"{whole} h"
