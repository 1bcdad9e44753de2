"""A vLLM log as it really arrives, read back into whole messages.

vLLM's lines reach the app (or a user's paste) in three shapes besides the plain one: broken at the
terminal's width, behind prefixes (`docker compose logs`'s `vllm-1  | ` column, docker's timestamps,
Ray's `(RayWorkerWrapper pid=123, ip=...)` and vLLM's `(VllmWorkerProcess pid=...)` /
`(EngineCore_DP0 pid=...)` tags, the logger's `ERROR 08-23 08:25:25 [file.py:226]` header), and cut
so that only part of a traceback survives. `records(log_text)` undoes the first two: it joins the
lines a terminal broke and strips the prefixes, giving one `Record` per message with its level.
What a record means is heal.diagnose's business.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PREFIXES = (
    # One separating space only: what indentation is left tells a source line from a message.
    re.compile(r"^[\w.-]+\s+\| ?"),  # docker compose logs: "vllm-1  | ", or a container_name's "vllm  | "
    re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d) "),  # docker logs --timestamps
    # A process tag: "(EngineCore_DP0 pid=211)", "(RayWorkerWrapper pid=67451, ip=10.1.0.7)",
    # "(VllmWorker rank=0 pid=3013)", "(Worker_TP14 pid=116)", "(raylet)"; also one whose "(" a paste
    # cut off ("VllmWorkerProcess pid=214) ").
    re.compile(r"^\([A-Za-z_][\w./-]*(?: [A-Za-z_][\w./-]*)*(?:,? [\w.]+=[^\s()]+)+\) ?"),
    re.compile(r"^[A-Za-z_][\w./-]*(?:,? [\w.]+=[^\s()]+)+\) ?"),
    re.compile(r"^\((?:[A-Za-z_][\w./-]*|[\w.]+=[^\s()]+(?:,? [\w.]+=[^\s()]+)*)\) ?"),
    re.compile(r"^\[[A-Za-z][\w.-]*\]:\s?"),  # torch.distributed's "[rank0]: ", a runner's "[vllm]: "
)
# vLLM's logger: "INFO 01-11 15:51:02 [file.py:70] text" (newer) or "INFO 01-11 15:51:02 file.py:70] text".
_LEVEL = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+\d\d-\d\d\s+[\d:.]+\s+"
                    r"(?:\[[^\]]*\]|\S+\])\s?")
_RAY_REPEATED = re.compile(r"\s*\[repeated \d+x across cluster\]\s*$")
# Lines that start something of their own, so never continue the line before them.
_TRACEBACK = re.compile(r"^\s*(?:Traceback \(most recent call last\)|File \"|During handling of the above|"
                        r"The above exception was|Process \S+:$)")
EXCEPTION = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit)\b(?:\([^)]*\))?: ")
_MAX_CONTINUED = 10  # lines one message may take; past this the rest is something else
_MIN_WIDTH = 60  # narrower "terminals" are more likely short lines of equal length


@dataclass(frozen=True)
class Record:
    """One message: its logger level (None when it had no logger header) and its text after every
    prefix, with the lines a terminal broke joined. `tagged` is True when a prefix or a logger header
    was removed (what follows such a line can only continue it if a terminal broke it)."""

    level: str | None
    text: str
    tagged: bool = False

    @property
    def clean(self) -> str:
        """The whole message as evidence: prefixes, Ray's repeat counter and outer spaces removed."""
        return _RAY_REPEATED.sub("", self.text).strip()


def message(line: str) -> tuple[str | None, str, bool]:
    """(logger level or None, the text after every prefix, whether anything was removed)."""
    text, previous = line, None
    while text != previous:  # prefixes come in any order: compose's, docker's, vLLM's process tag
        previous = text
        for prefix in _PREFIXES:
            text = prefix.sub("", text, count=1)
    level = _LEVEL.match(text)
    if level:
        return level["level"], text[level.end():], True
    return None, text, text != line


def records(log_text: str) -> list[Record]:
    """The log's messages in order: ANSI colours dropped, prefixes stripped, broken lines joined.

    A line continues the one before it when it starts nothing of its own (no prefix, no logger
    header, no traceback line, no new exception, not blank) and either the line before filled the
    terminal's width (the longest line length, met at least twice: a terminal breaks every
    long line there), or it visibly goes on mid-word, or it follows an exception's first line (Python
    prints a message's further lines bare, and pastes break long ones).
    """
    raw = [_ANSI.sub("", line).rstrip("\r") for line in log_text.splitlines()]
    width = _wrap_width(raw)
    out: list[Record] = []
    whole: list[str] = []  # each record's physical line, joined again: its prefixes are read from it
    joined = 0  # continuation lines taken into out[-1]
    previous = ""
    for line in raw:
        level, text, tagged = message(line)
        how = _continues(out[-1] if out else None, previous, line, tagged, width, joined)
        if how is not None:
            whole[-1] = _join(whole[-1], line, how)
            out[-1] = Record(*message(whole[-1]))  # a break may have split a prefix or the header
            joined += 1
        else:
            out.append(Record(level, text, tagged))
            whole.append(line)
            joined = 0
        previous = line
    return out


def _wrap_width(lines: list[str]) -> int | None:
    """The width a terminal broke the lines at, if it did: the longest length, met twice or more."""
    lengths = Counter(len(line) for line in lines if len(line) >= _MIN_WIDTH)
    if not lengths:
        return None
    longest = max(lengths)
    return longest if lengths[longest] >= 2 else None


def _continues(last: Record | None, previous: str, line: str, tagged: bool, width: int | None,
               joined: int) -> str | None:
    """How `line` continues the record before it: "width" (a terminal's break: joined as is),
    "word" (broken mid-word), "message" (an exception's further line: joined with a space), or None."""
    if last is None or not line.strip() or not previous.strip() or joined >= _MAX_CONTINUED:
        return None
    if width is not None and len(previous) == width and not _starts_line(line):
        return "width"  # a terminal's break may fall anywhere, even before "ERROR ..." or "Error: "
    if tagged or _TRACEBACK.match(line) or EXCEPTION.match(line):
        return None
    if line.startswith(("  ", "\t")):
        return None  # indented: a source line or a new block, not the rest of a sentence
    if len(previous) >= _MIN_WIDTH and _mid_word(previous[-1], line[0]):
        return "word"  # "... (4.26 GiB KV cach" / "e is needed ..."
    # Python prints an exception's further lines bare; a `raise X("...` line cut from its traceback
    # goes on the same way when a paste broke it.
    opened = EXCEPTION.match(last.text) or last.text.lstrip().startswith("raise ")
    return "message" if opened else None


def _starts_line(line: str) -> bool:
    """What only ever starts a physical line: a prefix (compose's column, a timestamp, a process
    tag) or a traceback's own line."""
    return any(prefix.match(line) for prefix in _PREFIXES) or _TRACEBACK.match(line) is not None


def _mid_word(before: str, after: str) -> bool:
    """A break between these two characters splits a word: "cach|e", "G|PU", "(5|2)"; not "0|V", more
    often one line's end ("version 0.11.0") and the next one's start."""
    if not (before.isalnum() and after.isalnum()):
        return False
    return after.islower() or after.isdigit() or before.isupper() and after.isupper()


def _join(text: str, line: str, how: str) -> str:
    """A terminal's or a mid-word break joins as is; an exception's next line joins with one space,
    except after an opening bracket or before a closing one ("KV cache (" / "7344). Try")."""
    if how != "message" or text.endswith(" ") or line.startswith(" "):
        return text + line
    text, line = text.rstrip(), line.lstrip()
    glue = "" if text[-1:] in "([{/_-=" or line[:1] in ")]},.;:" else " "
    return text + glue + line
