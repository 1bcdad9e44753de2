"""Typed records built from loose data, with every refused value named by its field.

The settings groups and `VllmConfig` are frozen dataclasses on `Record`. Creating one coerces each
field from what a user or a file gives (TOML values, `.env` and environment text, a stored JSON
column) and checks the limits its `setting()` declares; everything wrong is raised at once as an
`InvalidRecord` whose problems say where (`("vllm", "port")`) and what, in words for the user.

Text is read as people write it: "8000" is a whole number, "yes"/"off" are booleans, a number given
to a text field of a record that allows it (`NUMBERS_AS_TEXT`) becomes text. Unknown keys are
ignored, so a newer file still loads. The app keeps its own small checker rather than a validation
library because these are a few dozen scalar fields and such a library is several megabytes of
resident memory in a process that stays open all day (docs/performance.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, Self

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
_WHOLE = re.compile(r"[+-]?\d+")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One refused value: the path of field names to it, and why, as "it must be at least 1"."""

    loc: tuple[str, ...]
    message: str


class InvalidRecord(ValueError):
    """A record could not be made; `problems` holds every field that was wrong, not only the first."""

    def __init__(self, record: str, problems: list[Problem]) -> None:
        self.record = record
        self.problems = problems
        detail = "; ".join(f"{'.'.join(p.loc) or record}: {p.message}" for p in problems)
        super().__init__(f"invalid {record}: {detail}")


def setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
            old: str | None = None, ge: float | None = None, gt: float | None = None,
            le: float | None = None, min_length: int | None = None,
            before: Callable[[str], Any] | None = None) -> Any:
    """A dataclass field with limits: `ge`/`gt`/`le` for numbers, `min_length` for text.

    `old` names the old tool's flat `.env` key for a setting; `before` turns text into the field's
    type first (a comma list into tags), raising ValueError with the reason when it cannot.
    """
    metadata = {"old": old, "ge": ge, "gt": gt, "le": le, "min_length": min_length, "before": before}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Record:
    """Base of a frozen dataclass whose fields are coerced and checked when it is made."""

    NUMBERS_AS_TEXT: ClassVar[bool] = False  # a number given to a text field becomes text (env values)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        for spec, hint in fields_of(type(self)):
            value = getattr(self, spec.name)
            try:
                object.__setattr__(self, spec.name, _coerce(value, hint, spec.metadata, self.NUMBERS_AS_TEXT))
            except InvalidRecord as exc:
                problems += [Problem((spec.name, *p.loc), p.message) for p in exc.problems]
            except (TypeError, ValueError) as exc:
                problems.append(Problem((spec.name,), str(exc)))
        if problems:
            raise InvalidRecord(type(self).__name__, problems)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The record from a mapping; unknown keys are ignored, missing ones take their defaults."""
        if not isinstance(data, Mapping):
            raise InvalidRecord(cls.__name__, [Problem((), "it is not a table")])
        specs = {spec.name: spec for spec, _ in fields_of(cls)}
        missing = [name for name, spec in specs.items() if name not in data
                   and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING]
        if missing:
            raise InvalidRecord(cls.__name__, [Problem((name,), "it is required") for name in missing])
        return cls(**{key: value for key, value in data.items() if key in specs})

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (tuples become lists, nested records tables)."""
        return {spec.name: _plain(getattr(self, spec.name)) for spec, _ in fields_of(type(self))}

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, checked like a new record."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@cache
def fields_of(cls: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    """(field, resolved type) of a record class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return tuple((spec, hints[spec.name]) for spec in dataclasses.fields(cls))


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of `cls` (a string literal right after its line), by name."""
    import ast  # only the settings reference reads these: not loaded for the app
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def default_of(spec: dataclasses.Field) -> Any:
    """A field's default value (its factory called), or MISSING."""
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def optional_inner(hint: Any) -> Any | None:
    """`X` for `X | None`, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _coerce(value: Any, hint: Any, meta: Mapping[str, Any], numbers_as_text: bool) -> Any:
    before = meta.get("before")
    if before is not None and isinstance(value, str):
        value = before(value)
    inner = optional_inner(hint)
    if inner is not None:
        if value is None:
            return None
        hint = inner
    if isinstance(hint, type) and issubclass(hint, Record):
        if isinstance(value, hint):
            return value
        return hint.from_dict(value)
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError("it is not a list")
        items = [_text(item, numbers_as_text, "every item") for item in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError("it is not a table")
        return {str(key): _text(item, numbers_as_text, "every value") for key, item in value.items()}
    if hint is bool:
        return _bool(value)
    if hint is int:
        return _check(_int(value), meta)
    if hint is float:
        return _check(_float(value), meta)
    if hint is str:
        text = _text(value, numbers_as_text, "it")
        if meta.get("min_length") and len(text.strip()) < meta["min_length"]:
            raise ValueError("it must not be empty")
        return text
    return value


def _text(value: Any, numbers_as_text: bool, what: str) -> str:
    if isinstance(value, str):
        return value
    if numbers_as_text and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError("it is not text" if what == "it" else f"{what} must be text")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("it is not true or false")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError("it is not a whole number")


def _float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("it is not a number") from None
    else:
        raise ValueError("it is not a number")
    if not math.isfinite(number):
        raise ValueError("it is not a finite number")
    return number


def _check(number: int | float, meta: Mapping[str, Any]) -> int | float:
    ge, gt, le = meta.get("ge"), meta.get("gt"), meta.get("le")
    if ge is not None and number < ge:
        raise ValueError(f"it must be at least {ge:g}")
    if gt is not None and number <= gt:
        raise ValueError(f"it must be more than {gt:g}")
    if le is not None and number > le:
        raise ValueError(f"it must be at most {le:g}")
    return number
