"""Where settings come from: pydantic-settings sources that forgive.

Each source (the TOML file, `.env`, the environment, and the old tool's flat keys in either) is a
pydantic-settings source. Files are read through `maider_tui.userfiles` (a regular file of at most
1 MiB, TOML nested at most 32 deep). Before a source hands its values on, it checks them against the
settings model on their own: each value pydantic refuses (its `ValidationError` location names the
key) is dropped from that source alone and recorded as a `SettingsProblem` with the file and the key
as the user wrote it, so the next lower source, or the default, shows through.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_origin

from dotenv.parser import parse_stream
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
    TomlConfigSettingsSource,
)

from maider_tui.records import problem_text
from maider_tui.userfiles import UnusableFile, parse_toml, read_text_capped

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

ENV_PREFIX = "MAIDER_"
NESTED_DELIMITER = "__"
ENVIRONMENT = "environment"
_FALLBACK = "the value from a lower source (or the default) is used."

Leaf = tuple[str, ...]


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong in the user's settings; the app carried on without it."""

    source: str  # the file it came from, or "environment"
    key: str  # the key as the user wrote it; empty when a whole file or line was skipped
    message: str  # what is wrong and what the app did instead
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source} line {self.line}" if self.line else self.source
        return f"{where}: {self.key} {self.message}" if self.key else f"{where}: {self.message}"


# --- The shape of the settings: groups, their fields, free-form tables, old keys -------------------

@cache
def groups(settings_cls: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The nested models of the settings by name (`keymap` is a plain table, not a group)."""
    return {name: info.annotation for name, info in settings_cls.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)}


@cache
def old_keys(settings_cls: type[BaseModel]) -> dict[str, Leaf]:
    """The old tool's flat `.env` keys (a field's `old` extra), each with the setting it sets."""
    return {old: (group, name)
            for group, model in groups(settings_cls).items()
            for name, info in model.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and isinstance(old := info.json_schema_extra.get("old"), str)}


def is_table(settings_cls: type[BaseModel], path: Leaf) -> bool:
    """True for `keymap` and `vllm.env`: free-form tables whose keys are the user's own."""
    fields = settings_cls.model_fields
    if len(path) == 2 and path[0] in groups(settings_cls):
        fields = groups(settings_cls)[path[0]].model_fields
    info = fields.get(path[-1]) if len(path) <= 2 else None
    return info is not None and get_origin(info.annotation) is dict


@cache
def _env_paths(settings_cls: type[BaseModel]) -> dict[str, Leaf]:
    """Every setting's MAIDER_ variable, upper-cased, with its path (tables included)."""
    paths: dict[str, Leaf] = {f"{ENV_PREFIX}{name}".upper(): (name,) for name in settings_cls.model_fields}
    for group, model in groups(settings_cls).items():
        paths |= {f"{ENV_PREFIX}{group}{NESTED_DELIMITER}{name}".upper(): (group, name)
                  for name in model.model_fields}
    return paths


def env_path(settings_cls: type[BaseModel], key: str) -> Leaf | None:
    """The path a MAIDER_ variable sets, or None; table keys keep their spelling (NCCL_DEBUG, binding ids).

    A group or a table given whole (`MAIDER_VLLM`, `MAIDER_KEYMAP` as JSON) is not a setting."""
    paths = _env_paths(settings_cls)
    path = paths.get(key.upper())
    if path is not None and path[0] in groups(settings_cls) and len(path) == 2 \
            and not is_table(settings_cls, path):
        return path
    head, _, name = key.rpartition(NESTED_DELIMITER)
    table = paths.get(head.upper())
    return (*table, name) if table and name and is_table(settings_cls, table) else None


# --- Reading the files --------------------------------------------------------------------------

def read_file(path: Path, parse: Callable[[str], dict], problems: list[SettingsProblem]) -> dict[str, Any]:
    """`parse` of the file's text; a missing file reads as empty, a broken one as one problem and empty."""
    try:
        return parse(read_text_capped(path))
    except FileNotFoundError:
        return {}
    except UnusableFile as exc:
        reason = str(exc).removeprefix("is ")  # shown after "FILE:", as "not valid TOML" is
        message = f"{reason}, so none of this file's settings were used."
        problems.append(SettingsProblem(str(path), "", message))
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        found = re.search(r"at line (\d+)", str(exc))
        what = "not valid TOML" if isinstance(exc, tomllib.TOMLDecodeError) else "not readable"
        message = f"{what} ({exc}), so none of this file's settings were used."
        problems.append(SettingsProblem(str(path), "", message, int(found[1]) if found else None))
        return {}


def parse_dotenv(text: str, path: Path, problems: list[SettingsProblem]) -> dict[str, str]:
    """KEY=value lines; a line that is not one is a problem and skipped (python-dotenv's parser, which
    pydantic-settings uses too, says which line; its `dotenv_values` would only log it)."""
    values: dict[str, str] = {}
    # Parsed without interpolation, so the real environment never leaks into the file's values.
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            skipped = "this line is not KEY=value, so it was skipped."
            problems.append(SettingsProblem(str(path), "", skipped, binding.original.line))
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def _leaves(data: Mapping[str, Any], prefix: Leaf = ()) -> Iterator[tuple[Leaf, Any]]:
    """(leaf path, value) of every non-table value in nested tables."""
    for key, value in data.items():
        path = prefix + (str(key),)
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield path, value


def _overlaps(a: Leaf, b: Leaf) -> bool:
    """True when one path is the other or lies inside it."""
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


# --- The sources ------------------------------------------------------------------------------------

class _Forgiving:
    """What every source here shares: its name, where its problems go, and `forgive()`."""

    name: str
    problems: list[SettingsProblem]
    settings_cls: type[BaseSettings]
    keys: dict[Leaf, str]  # the key each path was given by, as the user wrote it, where not `a.b`

    def key_of(self, path: Leaf) -> str:
        """The key of `path` as the user wrote it."""
        return self.keys.get(path, ".".join(path))

    def checked(self, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What `read` gives, forgiven; a source pydantic-settings cannot read at all is one problem."""
        try:
            data = read()
        except SettingsError as exc:  # pragma: no cover - the variables passed on are all plain text
            self.problems.append(SettingsProblem(self.name, "", f"could not be read ({exc}), so none of its "
                                                 "settings were used."))
            return {}
        return self.forgive(data)

    def forgive(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` without the values the settings model refuses, each one a problem."""
        while True:
            errors = refused(self.settings_cls, data)
            if not errors:
                return data
            leaves = [path for path, _ in _leaves(data)]
            bad: dict[Leaf, Any] = {}  # every path to drop, with the error that condemns it
            for error in errors:
                loc = tuple(str(part) for part in error["loc"])
                # The values under the error's location, or the (empty) table standing where one belongs.
                for path in [p for p in leaves if _overlaps(p, loc)] or [_deepest(data, loc)]:
                    if path:
                        bad.setdefault(path, error)
            for path, error in bad.items():
                if any(_overlaps(path, other) and len(other) < len(path) for other in bad):
                    continue  # a table around it goes whole
                value = _pop(data, path)
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                message = f"= {shown} was ignored because {problem_text(error)}; {_FALLBACK}"
                self.problems.append(SettingsProblem(self.name, self.key_of(path), message))
            if not bad:  # pragma: no cover - every error lies under a value; a guard against a loop
                return {}


def refused(settings_cls: type[BaseModel], data: Mapping[str, Any]) -> list[Any]:
    """pydantic's errors for `data`, each field checked by its own type (validating the settings class
    itself would read its sources again); each error's `loc` starts with the field's name."""
    errors = []
    for name, value in data.items():
        if name in settings_cls.model_fields:
            try:
                _adapter(settings_cls, name).validate_python(value)
            except ValidationError as exc:
                errors += [{**error, "loc": (name, *error["loc"])} for error in exc.errors()]
    return errors


@cache
def _adapter(settings_cls: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """The validator of one field of `settings_cls`, by its own type."""
    annotation = settings_cls.model_fields[name].annotation
    if annotation is None:  # pydantic refuses a model field without a type
        raise TypeError(f"{settings_cls.__name__}.{name} has no type")
    return TypeAdapter(annotation)


def _deepest(data: Mapping[str, Any], loc: Leaf) -> Leaf:
    """The longest start of `loc` that `data` holds."""
    node: Any = data
    for depth, part in enumerate(loc):
        if not isinstance(node, Mapping) or part not in node:
            return loc[:depth]
        node = node[part]
    return loc


def _pop(data: dict[str, Any], path: Leaf) -> Any:
    """Remove the value at `path`, and the tables its going leaves empty."""
    nodes = [data]
    for part in path[:-1]:
        nodes.append(nodes[-1][part])
    value = nodes[-1].pop(path[-1])
    for depth in range(len(path) - 1, 0, -1):
        if not nodes[depth]:
            del nodes[depth - 1][path[depth - 1]]
    return value


def _normalised(settings_cls: type[BaseSettings], mapping: Mapping[str, Any],
                keys: dict[Leaf, str]) -> dict[str, str]:
    """The MAIDER_ variables of `mapping` that are settings, named as pydantic-settings looks them up
    (lower case, but a table's own keys as written); `keys` learns each one's spelling."""
    found: dict[str, str] = {}
    for key, value in mapping.items():
        # An empty value means unset (`KEY=` in a `.env` file does not blank a setting).
        path = env_path(settings_cls, key) if isinstance(value, str) and value else None
        if path is None:
            continue
        own = len(path) == 3 or (len(path) == 2 and path[0] not in groups(settings_cls))
        parts = [part.lower() for part in path[:-1]] + [path[-1] if own else path[-1].lower()]
        found[ENV_PREFIX.lower() + NESTED_DELIMITER.join(parts)] = value
        keys[path] = key
    return found


class EnvSource(_Forgiving, EnvSettingsSource):
    """The MAIDER_ variables of a process environment (`environ`, the real one by default)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str],
                 problems: list[SettingsProblem], name: str = ENVIRONMENT) -> None:
        self.raw, self.name, self.problems, self.keys = environ, name, problems, {}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return _normalised(self.settings_cls, self.raw, self.keys)

    def __call__(self) -> dict[str, Any]:
        return self.checked(super().__call__)


class DotEnvSource(_Forgiving, DotEnvSettingsSource):
    """The MAIDER_ keys of a `.env` file; `raw` keeps every key of it (tokens too) for the secrets."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, problems: list[SettingsProblem]) -> None:
        self.path, self.name, self.problems, self.keys = path, str(path), problems, {}
        self.raw: dict[str, str] = {}
        super().__init__(settings_cls, env_file=path)

    def _read_env_files(self) -> Mapping[str, str | None]:
        parse = lambda text: parse_dotenv(text, self.path, self.problems)  # noqa: E731
        self.raw = read_file(self.path, parse, self.problems)
        return _normalised(self.settings_cls, self.raw, self.keys)

    def __call__(self) -> dict[str, Any]:
        return self.checked(super().__call__)


class OldKeysSource(_Forgiving, PydanticBaseSettingsSource):
    """The old tool's flat keys (MODEL_ID, VLLM_IMAGE, ...) of a `.env` file or an environment; the
    MAIDER_ keys of the same place beat them."""

    def __init__(self, settings_cls: type[BaseSettings], mapping: Mapping[str, str], name: str,
                 problems: list[SettingsProblem]) -> None:
        super().__init__(settings_cls)
        self.mapping, self.name, self.problems, self.keys = mapping, name, problems, {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        legacy = old_keys(self.settings_cls)
        data: dict[str, Any] = {}
        for key, value in self.mapping.items():
            path = legacy.get(key.upper())
            if path is not None and isinstance(value, str) and value:
                data.setdefault(path[0], {})[path[1]] = value
                self.keys[path] = key
        return self.forgive(data)


class TomlSource(_Forgiving, TomlConfigSettingsSource):
    """The TOML settings file, read through `maider_tui.userfiles` (so never a device, never past 1 MiB)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, problems: list[SettingsProblem]) -> None:
        self.path, self.name, self.problems, self.keys = path, str(path), problems, {}
        super().__init__(settings_cls, toml_file=path)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        return read_file(self.path, parse_toml, self.problems)

    def __call__(self) -> dict[str, Any]:
        return self.checked(super().__call__)


def user_sources(settings_cls: type[BaseSettings], toml_path: Path, dotenv_path: Path | None,
                 environ: Mapping[str, str],
                 problems: list[SettingsProblem]) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources of the user's settings, highest first as pydantic-settings takes them: the
    environment, then `.env`, then the TOML file (each place's MAIDER_ keys above its old flat keys).
    The files are read lowest first, so their problems are listed in that order."""
    toml = TomlSource(settings_cls, toml_path, problems)
    dotenv = DotEnvSource(settings_cls, dotenv_path, problems) if dotenv_path is not None else None
    in_file: tuple[PydanticBaseSettingsSource, ...] = ()
    if dotenv is not None:
        in_file = (dotenv, OldKeysSource(settings_cls, dotenv.raw, str(dotenv_path), problems))
    return (EnvSource(settings_cls, environ, problems),
            OldKeysSource(settings_cls, environ, ENVIRONMENT, problems), *in_file, toml)
