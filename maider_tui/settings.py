"""Settings: defaults < TOML file < `.env` < process environment (last wins), never fatal.

`Settings` is a pydantic-settings `BaseSettings` of nested groups: `MAIDER_VLLM__PORT=8001` in the
environment or `.env` sets `[vllm] port = 8001` of the TOML file, and the old tool's flat `.env` keys
(`VLLM_PORT=8001`) still work. The docstring under each field is its description, and so the docs.
The sources (maider_tui.settings_sources) forgive: a bad value is dropped from the source that gave it
and reported as a `SettingsProblem` naming the file and key, while the app starts on the value below.
`Settings()` reads the user's sources as any pydantic-settings class does; `load_settings()` reads
the ones it is given and returns the problems too. `Settings.defaults()` reads nothing.
Tokens are not settings: they live in `maider_tui.secrets`.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from maider_tui.records import Record, Text, Whole
from maider_tui.paths import AppPaths, config_file_path
from maider_tui.settings_sources import (
    ENV_PREFIX,
    ENVIRONMENT,
    NESTED_DELIMITER,
    DotEnvSource,
    SettingsProblem,
    groups,
    is_table,
    old_keys,
    user_sources,
)

__all__ = ["ENVIRONMENT", "LEGACY_KEYS", "LoadedSettings", "Settings", "SettingsProblem", "load_settings",
           "settings_reference_markdown"]


def _old(key: str) -> dict[str, Any]:
    """Field metadata naming the old tool's flat `.env` key for this setting."""
    return {"json_schema_extra": {"old": key}}


def _split_tags(value: Any) -> Any:
    return [tag.strip() for tag in value.split(",") if tag.strip()] if isinstance(value, str) else value


def _split_args(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"it is not a valid shell-style argument list ({exc})") from exc


# A string is split here, not read as JSON by pydantic-settings (NoDecode).
Tags = Annotated[list[str], NoDecode, BeforeValidator(_split_tags)]
Args = Annotated[list[str], NoDecode, BeforeValidator(_split_args)]


class ProviderSettings(Record):
    """Where the GPU VM is rented."""

    region: str = Field("us-ord", **_old("REGION"))
    """Linode region for new VMs; GPU plans exist only in some regions."""
    type: str = Field("g2-gpu-rtx4000a2-s", **_old("TYPE"))
    """Linode plan (instance type) for new VMs."""
    image: str = "linode/ubuntu22.04"
    """Linode OS image the VM boots."""
    firewall_id: Whole | None = Field(None, ge=1, **_old("FIREWALL_ID"))
    """Cloud Firewall to attach to new VMs; unset attaches none."""
    tags: Tags = Field(default_factory=lambda: ["maider"])
    """Tags put on every VM the app creates (a string is split on commas)."""


class VllmSettings(Record):
    """The vLLM server on the VM."""

    # Env values written as TOML numbers (NCCL_P2P_DISABLE = 1) are meant as strings.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    model: Text = Field("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", **_old("MODEL_ID"))
    """Hugging Face model id vLLM serves."""
    served_model_name: str | None = Field(None, **_old("SERVED_MODEL_NAME"))
    """Name clients use for the model; unset uses the model id."""
    image: str = Field("vllm/vllm-openai:v0.11.0", **_old("VLLM_IMAGE"))
    """vLLM container image, pinned so a deployment is reproducible."""
    port: Whole = Field(8000, ge=1, le=65535, **_old("VLLM_PORT"))
    """Port of vLLM's OpenAI-compatible API (on the VM's loopback, reached through the tunnel)."""
    gpu_memory_utilization: float = Field(0.90, ge=0.1, le=0.99, **_old("VLLM_GPU_MEMORY_UTILIZATION"))
    """Share of each GPU's memory vLLM may take, 0.1 to 0.99."""
    max_model_len: Whole | None = Field(None, ge=256, **_old("VLLM_MAX_MODEL_LEN"))
    """Context length in tokens; unset lets vLLM take the model's own."""
    max_num_seqs: Whole | None = Field(None, ge=1, **_old("VLLM_MAX_NUM_SEQS"))
    """Most sequences served at once; unset keeps vLLM's default."""
    tensor_parallel_size: Whole | None = Field(None, ge=1, **_old("VLLM_TENSOR_PARALLEL_SIZE"))
    """GPUs to split the model across; unset uses the VM's GPU count."""
    kv_cache_dtype: str = Field("auto", **_old("VLLM_KV_CACHE_DTYPE"))
    """Data type of the KV cache (`auto`, `fp8`, ...)."""
    dtype: str = Field("auto", **_old("VLLM_DTYPE"))
    """Data type of the weights and activations (`auto`, `half`, `bfloat16`, ...)."""
    extra_args: Args = Field(default_factory=list, **_old("VLLM_EXTRA_ARGS"))
    """More `vllm serve` arguments; a string is split shell-style."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the vLLM container."""


class ComposeSettings(Record):
    """What the generated docker-compose file on the VM contains."""

    enable_openwebui: bool = Field(False, **_old("ENABLE_OPENWEBUI"))
    """Run Open WebUI beside vLLM."""
    enable_hf_cache: bool = Field(True, **_old("ENABLE_HF_CACHE"))
    """Keep the Hugging Face download cache on the VM's disk across container restarts."""
    enable_healthchecks: bool = Field(True, **_old("ENABLE_HEALTHCHECKS"))
    """Give the containers health checks."""
    enable_nccl_env: bool = Field(True, **_old("ENABLE_NCCL_ENV"))
    """Set NCCL environment variables that make multi-GPU runs reliable."""
    openwebui_image: str = Field("ghcr.io/open-webui/open-webui:main", **_old("OPENWEBUI_IMAGE"))
    """Open WebUI container image."""
    webui_port: Whole = Field(3000, ge=1, le=65535, **_old("WEBUI_PORT"))
    """Port of Open WebUI (on the VM's loopback, reached through the tunnel)."""


class WatchdogSettings(Record):
    """The client-side watchdog that destroys an idle VM."""

    enabled: bool = Field(True, **_old("WATCHDOG_ENABLED"))
    """Destroy a VM after it has been idle for `timeout_minutes`."""
    timeout_minutes: Whole = Field(30, ge=1, **_old("WATCHDOG_TIMEOUT_MINUTES"))
    """Idle minutes before the VM is destroyed."""
    warning_minutes: Whole = Field(5, ge=0, **_old("WATCHDOG_WARNING_MINUTES"))
    """Minutes of warning before the destroy."""
    poll_seconds: Whole = Field(60, ge=1, **_old("WATCHDOG_POLL_SECONDS"))
    """Seconds between activity checks."""
    unreachable_is_idle: bool = True
    """Count time the VM cannot be reached as idle time."""
    inspect_minutes: Whole = Field(0, ge=0)
    """Minutes a VM with no model serving (a launch interrupted or failed and kept for inspection, an
    unreachable or orphan VM) is kept before it is destroyed, when longer than the idle timeout."""


class NotificationSettings(Record):
    """How warnings reach the user when the app is not in front."""

    desktop: bool = True
    """Send desktop notifications (notify-send or osascript)."""
    ntfy_url: str | None = Field(None, **_old("NTFY_URL"))
    """ntfy.sh topic URL to post warnings to; unset sends none."""


class FilesSettings(Record):
    """Where the files you ask for are written."""

    exports_dir: str | None = None
    """Folder for validation reports, benchmark exports and screenshots; unset uses `exports` in the data
    folder. A name typed without a folder lands here."""


class ReadinessSettings(Record):
    """How long a launch may wait at each stage before it stops and says why (the VM is kept)."""

    running_minutes: float = Field(10, gt=0)
    """From create until Linode reports the VM running."""
    ssh_minutes: float = Field(20, gt=0)
    """Until SSH answers with the pinned host key."""
    cloud_init_minutes: float = Field(30, gt=0)
    """Until cloud-init has installed the driver, docker and the container toolkit."""
    vllm_minutes: float = Field(40, gt=0)
    """Per start attempt: image pull, model download and load, until vLLM serves."""


class Settings(BaseSettings):
    """Every setting of the app; tokens are never here."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, env_file=".env", env_ignore_empty=True,
        dotenv_filtering="only_existing", extra="ignore", frozen=True, allow_inf_nan=False,
        use_attribute_docstrings=True)

    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    compose: ComposeSettings = Field(default_factory=ComposeSettings)
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    keymap: dict[str, str] = Field(default_factory=dict)
    """Key overrides, binding id -> keys (for example `quit = "ctrl+q"`), given to Textual's keymap."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values given to Settings(...) win; then the environment, `.env` (Settings(_env_file=...) names
        # another, None none) and the TOML file (MAIDER_CONFIG, else the user config dir). A bad value
        # is dropped quietly here; load_settings() builds the same sources and returns the problems.
        env_file = getattr(dotenv_settings, "env_file", None)
        dotenv = Path(env_file) if isinstance(env_file, (str, os.PathLike)) else None
        toml = config_file_path(AppPaths.default())
        return (init_settings, *user_sources(settings_cls, toml, dotenv, os.environ, []))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The settings from `data` alone (nested tables, as the TOML file has them), reading no file and
        no environment; raises pydantic's ValidationError."""
        return cls(_build_sources=((InitSettingsSource(cls, dict(data)),), {}))

    @classmethod
    def defaults(cls) -> Self:
        """The settings with every value at its default, reading no file and no environment."""
        return cls.from_dict({})

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return self.model_dump(mode="json")


_GROUPS = groups(Settings)

LEGACY_KEYS: dict[str, tuple[str, ...]] = old_keys(Settings)
"""The old tool's flat `.env` keys, so an existing user's `.env` keeps working."""


@dataclass
class LoadedSettings:
    """What `load_settings()` found: the settings, what was wrong, and where it looked."""

    settings: Settings
    problems: list[SettingsProblem]
    config_path: Path
    dotenv_values: dict[str, str] = field(default_factory=dict)  # raw `.env`, tokens included, for secrets


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
    sources = user_sources(Settings, toml_path, dotenv_path, env, problems)
    try:
        settings = Settings(_build_sources=(sources, {}))
    except ValidationError:  # pragma: no cover - each source checked its own values; a safety net
        settings = Settings.defaults()
    # Lowest source first, as a user reads them: the file, then `.env`, then the environment.
    order = [str(toml_path), str(dotenv_path), ENVIRONMENT]
    problems.sort(key=lambda problem: order.index(problem.source) if problem.source in order else 0)
    dotenv = next((source.raw for source in sources if isinstance(source, DotEnvSource)), {})
    return LoadedSettings(settings, problems, toml_path, dict(dotenv))


def settings_reference_markdown() -> str:
    """A Markdown table of every setting: TOML key, env var, old `.env` key, default, description."""
    legacy = {path: key for key, path in LEGACY_KEYS.items()}
    rows = [
        "| TOML key | Environment variable | Old `.env` key | Default | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    fields = [((group, name), info)
              for group, model in _GROUPS.items() for name, info in model.model_fields.items()]
    fields.append((("keymap", "<binding id>"), Settings.model_fields["keymap"]))
    for path, info in fields:
        # Binding ids keep their spelling in the variable name; group and field names are upper-cased.
        env = ENV_PREFIX + NESTED_DELIMITER.join(part if part[0] == "<" else part.upper() for part in path)
        env += f"{NESTED_DELIMITER}<NAME>" if is_table(Settings, path) else ""
        old = f"`{legacy[path]}`" if path in legacy else ""
        default = info.get_default(call_default_factory=True)
        # JSON spells these defaults (strings, numbers, booleans, lists, empty tables) as TOML does.
        shown = "unset" if default is None else f"`{json.dumps(default)}`"
        desc = " ".join((info.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{'.'.join(path)}` | `{env}` | {old} | {shown} | {desc} |")
    return "\n".join(rows) + "\n"
