"""Samples of the Prometheus text exposition format, as vLLM's `/metrics` serves it.

Written here rather than taken from a library: none the app keeps parses it, and prometheus_client's
parser would be a new dependency that builds every sample of vLLM's histograms (most of a real
exposition), where `parse_samples` passes over the names its caller does not read before parsing
any label. The format's sample line is one regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from typing import NamedTuple

# name{label="value",...} value [timestamp]; label values may hold commas, braces, spaces, \" escapes.
_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][\w:]*)'
    r'(?:\{(?P<labels>(?:\s*[a-zA-Z_]\w*\s*=\s*"(?:[^"\\]|\\.)*"\s*,?)*)\s*\})?'
    r'\s+(?P<value>\S+)(?:\s+-?\d+)?\s*$'
)
_LABEL = re.compile(r'([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(.)")


class MetricSample(NamedTuple):
    """One line of Prometheus text: `name{labels} value`."""

    name: str
    labels: Mapping[str, str]
    value: float


def parse_samples(text: str, names: Container[str] | None = None) -> list[MetricSample]:
    """Every well-formed sample of a Prometheus text exposition; comments and garbage are skipped.

    With `names`, only samples of those names: the others (vLLM's histograms are most of its
    exposition) are passed over before their labels are parsed.
    """
    samples: list[MetricSample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if names is not None:
            head = line[:line.find("{")] if "{" in line else line
            if (head.split(None, 1) or ("",))[0] not in names:
                continue
        match = None if line.startswith("#") else _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {k: _ESCAPE.sub(lambda m: "\n" if m[1] == "n" else m[1], v)
                  for k, v in _LABEL.findall(match["labels"] or "")}
        samples.append(MetricSample(match["name"], labels, value))
    return samples
