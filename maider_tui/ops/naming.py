"""Session names: made from the model and the launch time, or given by the user; unique, and valid
as Linode labels (the VM's label is the session name, so a crashed client can find its VM).

Auto names read like `qwen32b-20261122-093012`: a short model tag (family and size), then the UTC
date and time of the launch. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timezone

from maider_tui.catalog import UnknownCatalogIdError
from maider_tui.catalog import model as catalog_model

MIN_LEN, MAX_LEN = 3, 64  # Linode's label length limits
TAG_MAX = 24  # keeps the whole name, and its `maider-session:` tag, readable
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_DOUBLED = re.compile(r"--|__|\.\.")  # Linode refuses two separators of the same kind in a row
# "32B", "1.5B", "30B" in "30B-A3B": the first size in the repo name is the total size.
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)[Bb](?![A-Za-z0-9])")
_FAMILY = re.compile(r"^([A-Za-z]+)[-_ ]?(\d+(?:\.\d+)?)?")


def model_tag(model_id: str) -> str:
    """A short tag for the model: family plus size, e.g. `qwen32b`, `llama70b`, `qwen3-30b`.

    A whole-number family version stays (Qwen3 is a different generation from Qwen2.5, whose point
    release would only clutter the name); the size comes from the repo name, else the catalog.
    """
    repo = model_id.rstrip("/").rsplit("/", 1)[-1]
    family_match = _FAMILY.match(repo)
    family = family_match.group(1).lower() if family_match else ""
    version = family_match.group(2) if family_match else None
    if version and family_match and repo[family_match.end(2):family_match.end(2) + 1] in ("b", "B"):
        version = None  # "Mistral-7B": that number is the size, not a version
    if version and "." not in version:
        family = f"{family}{version}"
    size_match = _SIZE.search(repo)
    size = size_match.group(1) if size_match else _catalog_size(model_id)
    size = size.replace(".", "p") if size else ""  # "1.5" -> "1p5": dots read oddly before a date
    if family and size:
        # "qwen3" + "30b" would read as "qwen330b": keep a dash where two numbers meet.
        tag = f"{family}-{size}b" if family[-1].isdigit() else f"{family}{size}b"
    else:  # no size anywhere: the repo's own name says more than its first word
        tag = repo.lower()
    return _clean(tag)[:TAG_MAX].strip("-._") or "session"


def session_name(model_id: str, now: float | datetime, taken: Collection[str] = ()) -> str:
    """A fresh session name like `qwen32b-20261122-093012` (UTC), with -2, -3 ... when taken."""
    when = now if isinstance(now, datetime) else datetime.fromtimestamp(now, tz=timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return next_free(f"{model_tag(model_id)}-{when:%Y%m%d-%H%M%S}", taken)


def next_free(base: str, taken: Collection[str]) -> str:
    """`base`, or `base-2`, `base-3` ... whichever is not taken (case does not make a name new)."""
    used = {name.lower() for name in taken}
    name, count = base, 1
    while name.lower() in used:
        count += 1
        name = f"{base}-{count}"
    return name


def validate_session_name(name: str, taken: Collection[str] = ()) -> str | None:
    """What is wrong with a name the user typed, in one sentence; None when it can be used."""
    if not name or not name.strip():
        return "Give the session a name, or leave it empty for an automatic one."
    if name != name.strip():
        return "A session name cannot start or end with a space."
    if not MIN_LEN <= len(name) <= MAX_LEN:
        return f"A session name must be {MIN_LEN} to {MAX_LEN} characters long (this one has {len(name)})."
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return "A session name may hold only letters, digits, '-', '_' and '.'."
    if not _LABEL.match(name):
        return "A session name must start and end with a letter or a digit."
    if _DOUBLED.search(name):
        return "A session name cannot have '--', '__' or '..' in it."
    if name.lower() in {other.lower() for other in taken}:
        return f"A session named {name} already exists; choose another name."
    return None


def _catalog_size(model_id: str) -> str | None:
    try:
        spec = catalog_model(model_id)
    except UnknownCatalogIdError:
        return None
    return str(round(spec.params_b)) if spec.params_b >= 1 else f"{spec.params_b:g}"


def _clean(tag: str) -> str:
    tag = re.sub(r"[^a-z0-9._-]+", "", tag.lower())
    return _DOUBLED.sub("-", tag)
