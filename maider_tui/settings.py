"""Settings: defaults < TOML file < `.env` < process environment (last wins), never fatal.

Each group is a frozen `Record` (maider_tui.typed): its fields carry their limits and the old
tool's flat `.env` key, and the docstring under each field becomes the docs. `load_settings()` reads
each source itself and merges them, so that a bad value can be traced to the file (and key) that
gave it, dropped from that source alone, and reported as a `SettingsProblem` while the app starts on
the value below it. The loader only reads.
Tokens are not settings: they live in `maider_tui.secrets`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_origin

from dotenv.parser import parse_stream

from maider_tui.paths import AppPaths, config_file_path
from maider_tui.typed import InvalidRecord, Record, default_of, field_docs, fields_of, setting
from maider_tui.userfiles import UnusableFile, parse_toml, read_text_capped

ENV_PREFIX = "MAIDER_"
NESTED_DELIMITER = "__"
ENVIRONMENT = "environment"


def _split_tags(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _split_args(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"it is not a valid shell-style argument list ({exc})") from exc


@dataclass(frozen=True)
class ProviderSettings(Record):
    """Where the GPU VM is rented."""

    region: str = setting("us-ord", old="REGION")
    """Linode region for new VMs; GPU plans exist only in some regions."""
    type: str = setting("g2-gpu-rtx4000a2-s", old="TYPE")
    """Linode plan (instance type) for new VMs."""
    image: str = "linode/ubuntu22.04"
    """Linode OS image the VM boots."""
    firewall_id: int | None = setting(None, ge=1, old="FIREWALL_ID")
    """Cloud Firewall to attach to new VMs; unset attaches none."""
    tags: list[str] = setting(factory=lambda: ["maider"], before=_split_tags)
    """Tags put on every VM the app creates (a string is split on commas)."""


@dataclass(frozen=True)
class VllmSettings(Record):
    """The vLLM server on the VM."""

    # Env values written as TOML numbers (NCCL_P2P_DISABLE = 1) are meant as strings.
    NUMBERS_AS_TEXT = True

    model: str = setting("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", min_length=1, old="MODEL_ID")
    """Hugging Face model id vLLM serves."""
    served_model_name: str | None = setting(None, old="SERVED_MODEL_NAME")
    """Name clients use for the model; unset uses the model id."""
    image: str = setting("vllm/vllm-openai:v0.11.0", old="VLLM_IMAGE")
    """vLLM container image, pinned so a deployment is reproducible."""
    port: int = setting(8000, ge=1, le=65535, old="VLLM_PORT")
    """Port of vLLM's OpenAI-compatible API (on the VM's loopback, reached through the tunnel)."""
    gpu_memory_utilization: float = setting(0.90, ge=0.1, le=0.99, old="VLLM_GPU_MEMORY_UTILIZATION")
    """Share of each GPU's memory vLLM may take, 0.1 to 0.99."""
    max_model_len: int | None = setting(None, ge=256, old="VLLM_MAX_MODEL_LEN")
    """Context length in tokens; unset lets vLLM take the model's own."""
    max_num_seqs: int | None = setting(None, ge=1, old="VLLM_MAX_NUM_SEQS")
    """Most sequences served at once; unset keeps vLLM's default."""
    tensor_parallel_size: int | None = setting(None, ge=1, old="VLLM_TENSOR_PARALLEL_SIZE")
    """GPUs to split the model across; unset uses the VM's GPU count."""
    kv_cache_dtype: str = setting("auto", old="VLLM_KV_CACHE_DTYPE")
    """Data type of the KV cache (`auto`, `fp8`, ...)."""
    dtype: str = setting("auto", old="VLLM_DTYPE")
    """Data type of the weights and activations (`auto`, `half`, `bfloat16`, ...)."""
    extra_args: list[str] = setting(factory=list, old="VLLM_EXTRA_ARGS", before=_split_args)
    """More `vllm serve` arguments; a string is split shell-style."""
    env: dict[str, str] = setting(factory=dict)
    """Extra environment variables for the vLLM container."""


@dataclass(frozen=True)
class ComposeSettings(Record):
    """What the generated docker-compose file on the VM contains."""

    enable_openwebui: bool = setting(False, old="ENABLE_OPENWEBUI")
    """Run Open WebUI beside vLLM."""
    enable_hf_cache: bool = setting(True, old="ENABLE_HF_CACHE")
    """Keep the Hugging Face download cache on the VM's disk across container restarts."""
    enable_healthchecks: bool = setting(True, old="ENABLE_HEALTHCHECKS")
    """Give the containers health checks."""
    enable_nccl_env: bool = setting(True, old="ENABLE_NCCL_ENV")
    """Set NCCL environment variables that make multi-GPU runs reliable."""
    openwebui_image: str = setting("ghcr.io/open-webui/open-webui:main", old="OPENWEBUI_IMAGE")
    """Open WebUI container image."""
    webui_port: int = setting(3000, ge=1, le=65535, old="WEBUI_PORT")
    """Port of Open WebUI (on the VM's loopback, reached through the tunnel)."""


@dataclass(frozen=True)
class WatchdogSettings(Record):
    """The client-side watchdog that destroys an idle VM."""

    enabled: bool = setting(True, old="WATCHDOG_ENABLED")
    """Destroy a VM after it has been idle for `timeout_minutes`."""
    timeout_minutes: int = setting(30, ge=1, old="WATCHDOG_TIMEOUT_MINUTES")
    """Idle minutes before the VM is destroyed."""
    warning_minutes: int = setting(5, ge=0, old="WATCHDOG_WARNING_MINUTES")
    """Minutes of warning before the destroy."""
    poll_seconds: int = setting(60, ge=1, old="WATCHDOG_POLL_SECONDS")
    """Seconds between activity checks."""
    unreachable_is_idle: bool = True
    """Count time the VM cannot be reached as idle time."""
    inspect_minutes: int = setting(0, ge=0)
    """Minutes a VM with no model serving (a launch interrupted or failed and kept for inspection, an
    unreachable or orphan VM) is kept before it is destroyed, when longer than the idle timeout."""


@dataclass(frozen=True)
class NotificationSettings(Record):
    """How warnings reach the user when the app is not in front."""

    desktop: bool = True
    """Send desktop notifications (notify-send or osascript)."""
    ntfy_url: str | None = setting(None, old="NTFY_URL")
    """ntfy.sh topic URL to post warnings to; unset sends none."""


@dataclass(frozen=True)
class ReadinessSettings(Record):
    """How long a launch may wait at each stage before it stops and says why (the VM is kept)."""

    running_minutes: float = setting(10, gt=0)
    """From create until Linode reports the VM running."""
    ssh_minutes: float = setting(20, gt=0)
    """Until SSH answers with the pinned host key."""
    cloud_init_minutes: float = setting(30, gt=0)
    """Until cloud-init has installed the driver, docker and the container toolkit."""
    vllm_minutes: float = setting(40, gt=0)
    """Per start attempt: image pull, model download and load, until vLLM serves."""


@dataclass(frozen=True)
class Settings(Record):
    """Every setting of the app; tokens are never here."""

    provider: ProviderSettings = setting(factory=ProviderSettings)
    vllm: VllmSettings = setting(factory=VllmSettings)
    compose: ComposeSettings = setting(factory=ComposeSettings)
    watchdog: WatchdogSettings = setting(factory=WatchdogSettings)
    notifications: NotificationSettings = setting(factory=NotificationSettings)
    readiness: ReadinessSettings = setting(factory=ReadinessSettings)
    keymap: dict[str, str] = setting(factory=dict)
    """Key overrides, binding id -> keys (for example `quit = "ctrl+q"`), given to Textual's keymap."""


# The groups of Settings by name; `keymap` is a plain table, not a group.
_GROUPS: dict[str, type[Record]] = {spec.name: hint for spec, hint in fields_of(Settings) if spec.name != "keymap"}

# The old tool's flat `.env` keys, so an existing user's `.env` keeps working.
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    spec.metadata["old"]: (group, spec.name)
    for group, model in _GROUPS.items()
    for spec in fields(model)
    if spec.metadata.get("old")
}

Leaf = tuple[str, ...]

# Every setting's MAIDER_ variable, upper-cased, with its path; `keymap` is a table of its own.
_ENV_PATHS: dict[str, Leaf] = {
    f"{ENV_PREFIX}{group}{NESTED_DELIMITER}{name}".upper(): (group, name)
    for group, model in _GROUPS.items()
    for name in (spec.name for spec in fields(model))
} | {f"{ENV_PREFIX}KEYMAP": ("keymap",)}


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


@dataclass
class LoadedSettings:
    """What `load_settings()` found: the settings, what was wrong, and where it looked."""

    settings: Settings
    problems: list[SettingsProblem]
    config_path: Path
    dotenv_values: dict[str, str] = field(default_factory=dict)  # raw `.env`, tokens included, for secrets


@dataclass
class _Source:
    name: str
    values: dict[Leaf, tuple[Any, str]]  # leaf path -> (raw value, key as written)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = Path(".env"),
    paths: AppPaths | None = None,
) -> LoadedSettings:
    """Read the TOML file, `.env` and the environment into `Settings`; bad input becomes `problems`."""
    env = os.environ if environ is None else environ
    paths = paths or AppPaths.default()
    # Passing an override always keeps config_file_path from consulting os.environ behind `environ`.
    toml_path = config_file_path(paths, config_path or env.get("MAIDER_CONFIG") or paths.config_file)
    problems: list[SettingsProblem] = []
    toml_values = _read(toml_path, parse_toml, problems)
    dotenv: dict[str, str] = {}
    if dotenv_path is not None:
        dotenv = _read(dotenv_path, lambda text: _parse_dotenv(text, dotenv_path, problems), problems)
    # Lowest first; a bad value dropped from one source lets the next one down show through.
    sources = [
        _Source(str(toml_path), {path: (value, ".".join(path)) for path, value in _flatten(toml_values)}),
        *_env_sources(str(dotenv_path), dotenv),
        *_env_sources(ENVIRONMENT, env),
    ]
    return LoadedSettings(_validate(sources, problems), problems, toml_path, dotenv)


def _read(path: Path, parse: Callable[[str], dict], problems: list[SettingsProblem]) -> dict[str, Any]:
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


def _parse_dotenv(text: str, path: Path, problems: list[SettingsProblem]) -> dict[str, str]:
    values: dict[str, str] = {}
    # Parsed without interpolation, so the real environment never leaks into the file's values.
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            skipped = "this line is not KEY=value, so it was skipped."
            problems.append(SettingsProblem(str(path), "", skipped, binding.original.line))
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def _flatten(data: Mapping[str, Any], prefix: Leaf = ()) -> Iterator[tuple[Leaf, Any]]:
    """Yield (leaf path, value) for every non-table value in nested tables."""
    for key, value in data.items():
        path = prefix + (str(key),)
        if isinstance(value, dict):
            yield from _flatten(value, path)
        else:
            yield path, value


def _is_table(path: Leaf) -> bool:
    """True for `keymap` and `vllm.env`: free-form tables whose keys are the user's own."""
    model = _GROUPS.get(path[0]) if len(path) == 2 else None
    hint = dict(_hints(model)).get(path[1]) if model else None
    return path == ("keymap",) or get_origin(hint) is dict


def _hints(model: type[Record]) -> list[tuple[str, Any]]:
    return [(spec.name, hint) for spec, hint in fields_of(model)]


def _env_path(key: str) -> Leaf | None:
    """The path a MAIDER_ variable sets, or None; table keys keep their spelling (NCCL_DEBUG, binding ids)."""
    path = _ENV_PATHS.get(key.upper())
    if path is not None and not _is_table(path):
        return path
    head, _, name = key.rpartition(NESTED_DELIMITER)
    table = _ENV_PATHS.get(head.upper())
    return (*table, name) if table and name and _is_table(table) else None


def _env_sources(name: str, mapping: Mapping[str, str]) -> list[_Source]:
    """The old flat keys, then the MAIDER_ keys (which beat them), of one `.env` file or environment."""
    legacy, modern = _Source(name, {}), _Source(name, {})
    for key, value in mapping.items():
        # An empty value means unset (`KEY=` in a `.env` file does not blank a setting).
        if not isinstance(value, str) or value == "":
            continue
        if key.upper() in LEGACY_KEYS:
            legacy.values[LEGACY_KEYS[key.upper()]] = (value, key)
        path = _env_path(key)
        if path is not None:
            modern.values[path] = (value, key)
    return [legacy, modern]


def _overlaps(a: Leaf, b: Leaf) -> bool:
    """True when one path is the other or lies inside it: setting one replaces the other."""
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _merge(sources: list[_Source]) -> tuple[dict[str, Any], dict[Leaf, _Source]]:
    """The nested data to validate, and which source each leaf of it came from."""
    leaves: dict[Leaf, tuple[Any, _Source]] = {}
    for source in sources:
        for path, (value, _) in source.values.items():
            leaves = {other: item for other, item in leaves.items() if not _overlaps(other, path)}
            leaves[path] = (value, source)
    nested: dict[str, Any] = {}
    for path, (value, _) in leaves.items():
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested, {path: source for path, (_, source) in leaves.items()}


_FALLBACK = "the value from a lower source (or the default) is used."


def _validate(sources: list[_Source], problems: list[SettingsProblem]) -> Settings:
    """Validate the merged sources, dropping each bad value from the source that gave it until valid."""
    while True:
        data, owners = _merge(sources)
        try:
            return Settings.from_dict(data)
        except InvalidRecord as exc:
            errors = exc.problems
        dropped = False
        for error in errors:
            loc = error.loc
            hits = [path for path in owners if _overlaps(path, loc)]
            # The highest source among the overlapping leaves is the one whose value won.
            source = max((owners[path] for path in hits), key=sources.index, default=None)
            bad = [path for path in hits if owners[path] is source and path in source.values]
            if bad:
                value, key = source.values[bad[0]]
                for path in bad:
                    del source.values[path]
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                reason = error.message
                message = f"= {shown} was ignored because {reason[:1].lower()}{reason[1:]}; {_FALLBACK}"
                problems.append(SettingsProblem(source.name, key, message))
                dropped = True
        if not dropped:  # pragma: no cover - every leaf has an owner; a safety net against a loop
            return Settings()


def settings_reference_markdown() -> str:
    """A Markdown table of every setting: TOML key, env var, old `.env` key, default, description."""
    legacy = {path: key for key, path in LEGACY_KEYS.items()}
    rows = [
        "| TOML key | Environment variable | Old `.env` key | Default | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows_of = [((group, spec.name), spec, field_docs(model)) for group, model in _GROUPS.items()
               for spec in fields(model)]
    keymap = next(spec for spec in fields(Settings) if spec.name == "keymap")
    rows_of.append((("keymap", "<binding id>"), keymap, field_docs(Settings)))
    for path, spec, docs in rows_of:
        # Binding ids keep their spelling in the variable name; group and field names are upper-cased.
        env = ENV_PREFIX + NESTED_DELIMITER.join(part if part[0] == "<" else part.upper() for part in path)
        env += f"{NESTED_DELIMITER}<NAME>" if _is_table(path) else ""
        old = f"`{legacy[path]}`" if path in legacy else ""
        default = default_of(spec)
        # JSON spells these defaults (strings, numbers, booleans, lists, empty tables) as TOML does.
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        desc = " ".join(docs.get(spec.name, "").split()).replace("|", "\\|")
        rows.append(f"| `{'.'.join(path)}` | `{env}` | {old} | {shown} | {desc} |")
    return "\n".join(rows) + "\n"
