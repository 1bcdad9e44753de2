"""Lookup errors that name the nearest known ids, so a typo is one glance from its fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UnknownCatalogIdError(KeyError, ValueError):
    """An id the catalog does not hold. Both a KeyError (it is a lookup) and a ValueError (bad input)."""

    kind = "id"

    def __init__(self, wanted: str, known: Iterable[str]) -> None:
        self.wanted = wanted
        self.suggestions = close_matches(wanted, known)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"unknown {self.kind} {self.wanted!r}"
        if self.suggestions:
            text += "; did you mean " + ", ".join(self.suggestions) + "?"
        return text

    def __str__(self) -> str:
        # KeyError would print the repr of its argument, quotes and all.
        return self.message


class UnknownModelError(UnknownCatalogIdError):
    kind = "model"


class UnknownGpuTypeError(UnknownCatalogIdError):
    kind = "GPU type"


class UnknownRegionError(UnknownCatalogIdError):
    kind = "region"


class UnknownCapabilityError(UnknownCatalogIdError):
    kind = "capability"


def close_matches(wanted: str, known: Iterable[str], limit: int = 3) -> list[str]:
    """Up to `limit` known ids that look like `wanted`, compared without case."""
    by_lower = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(wanted.lower(), list(by_lower), n=limit, cutoff=0.5)
    return [by_lower[h] for h in hits]
