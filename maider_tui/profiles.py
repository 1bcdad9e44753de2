"""Model profiles: the vLLM flags, environment, remote-code trust, context limit and image a model wants.

The seed kept one `models/<name>.env` per model so switching models carried each model's own
settings; this is that idea. Built-in profiles cover the catalog's models; user profiles are TOML
files in `AppPaths.profiles_dir`, one file per model, naming the model they apply to:

    model = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    extra_args = ["--max-num-seqs", "16"]
    max_model_len = 65536
    vllm_image = "vllm/vllm-openai:v0.11.0"
    notes = "why these choices"
    [env]
    VLLM_ALLREDUCE_USE_SYMM_MEM = "0"

A user file overrides the built-in profile key by key (`env` variable by variable). A bad file (TOML
syntax, a wrong type, an unknown key) is reported with the file and key and skipped, as settings are.
Pure except `load_profiles`, which only reads the directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .userfiles import UnusableFile, parse_toml, read_text_capped

if TYPE_CHECKING:
    from .paths import AppPaths

# key -> (type check, what the type should be, for the problem message)
_KEYS: dict[str, tuple[Callable[[object], bool], str]] = {
    "model": (lambda v: isinstance(v, str) and v.strip() != "", "a model id string"),
    "extra_args": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of strings"),
    "env": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()), "a table of strings"),
    "trust_remote_code": (lambda v: isinstance(v, bool), "true or false"),
    "max_model_len": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 256, "an integer >= 256"),
    "vllm_image": (lambda v: isinstance(v, str) and v.strip() != "", "an image name string"),
    "notes": (lambda v: isinstance(v, str), "a string"),
}


@dataclass(frozen=True)
class Profile:
    """What one model runs with. None / empty means "no opinion": the fit plan and settings decide."""

    model: str
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    trust_remote_code: bool | None = None
    max_model_len: int | None = None  # an upper bound on the context; the fit planner may go lower
    vllm_image: str | None = None  # None: the image from settings
    notes: str = ""
    source: str = "built-in"  # "built-in", or the user file(s) that changed it


_MOE_ALLOC = {"PYTORCH_ALLOC_CONF": "expandable_segments:True,max_split_size_mb:512"}
_COMMON = {"SAFETENSORS_FAST_GPU": "1", "VLLM_SLEEP_WHEN_IDLE": "0"}

BUILTIN: dict[str, Profile] = {p.model: p for p in (
    Profile("Qwen/Qwen2.5-Coder-7B-Instruct", env=_COMMON,
            notes="Dense 7B: vLLM's defaults serve it well; fast loading and no idle sleep."),
    Profile("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", env=_COMMON,
            notes="AWQ 4-bit: vLLM picks the Marlin kernel on its own."),
    Profile("meta-llama/Llama-3.1-8B-Instruct", env=_COMMON, max_model_len=32768,
            notes="131k positions, but a coding session rarely needs more than 32k; the rest is KV cache "
                  "for batching."),
    Profile("Qwen/Qwen2.5-Coder-14B-Instruct", env=_COMMON),
    Profile("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", env=_COMMON),
    Profile("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", env={**_COMMON, **_MOE_ALLOC}, trust_remote_code=True,
            max_model_len=32768,
            notes="Custom model code (--trust-remote-code); MoE, so expandable segments against fragmentation; "
                  "163k positions capped at 32k to leave KV cache."),
    Profile("Qwen/Qwen3-Coder-30B-A3B-Instruct", env={**_COMMON, **_MOE_ALLOC}, max_model_len=65536,
            extra_args=("--max-num-seqs", "16"),
            notes="MoE: expandable segments; 16 sequences keep TTFT steady over PCIe (the seed's tuning)."),
    Profile("Qwen/Qwen2.5-Coder-32B-Instruct", env=_COMMON),
    Profile("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", env=_COMMON,
            notes="The seed's reference model."),
    Profile("meta-llama/Llama-3.1-70B-Instruct", env=_COMMON, max_model_len=32768,
            extra_args=("--max-num-seqs", "16")),
    Profile("Qwen/Qwen2.5-72B-Instruct", env=_COMMON, extra_args=("--max-num-seqs", "16")),
    Profile("Qwen/Qwen2.5-72B-Instruct-AWQ", env=_COMMON, extra_args=("--max-num-seqs", "16")),
)}


def builtin_profile(model_id: str) -> Profile:
    """The built-in profile of `model_id`, or an empty one for a model the app has no opinion on."""
    return BUILTIN.get(model_id, Profile(model_id, source="none"))


def merge(base: Profile, override: Mapping[str, Any], source: str) -> Profile:
    """`base` with the keys of a checked user table on top (`env` merged variable by variable)."""
    changes: dict[str, Any] = {}
    for key, value in override.items():
        if key == "model":
            continue
        if key == "env":
            changes["env"] = {**base.env, **value}
        elif key == "extra_args":
            changes["extra_args"] = tuple(value)
        else:
            changes[key] = value
    origin = source if base.source in ("built-in", "none") else f"{base.source}, {source}"
    return dataclasses.replace(base, **changes, source=origin)


def check_table(table: Mapping[str, Any], where: str) -> list[str]:
    """Problems of one profile table: unknown keys, wrong types, a missing `model`."""
    problems = [f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})" for key in table if key not in _KEYS]
    for key, (ok, wanted) in _KEYS.items():
        if key in table and not ok(table[key]):
            problems.append(f"{where}: {key} must be {wanted}, got {table[key]!r}")
    if "model" not in table:
        problems.append(f"{where}: missing key 'model' (the model id this profile applies to)")
    return problems


def load_profiles(directory: Path) -> tuple[dict[str, Profile], list[str]]:
    """Built-in profiles with every valid `*.toml` in `directory` on top (sorted by file name).

    Returns (profiles by model id, problems); a file with any problem is skipped whole, so a typo
    never half-applies.
    """
    profiles = dict(BUILTIN)
    problems: list[str] = []
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    for path in files:
        try:
            table = parse_toml(read_text_capped(path))  # a device, a pipe or a huge file is not read
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, UnusableFile) as exc:
            problems.append(f"{path}: not read ({exc}); skipped")
            continue
        found = check_table(table, str(path))
        if found:
            problems += [p + "; file skipped" for p in found]
            continue
        model = table["model"].strip()
        profiles[model] = merge(profiles.get(model, builtin_profile(model)), table, path.name)
    return profiles, problems


def profile_for(model_id: str, paths: AppPaths) -> tuple[Profile, list[str]]:
    """The profile `model_id` launches with (built-in, then the user's files), and any file problems."""
    profiles, problems = load_profiles(Path(paths.profiles_dir))
    return profiles.get(model_id, builtin_profile(model_id)), problems


def image_for(profile: Profile, default: str) -> str:
    """The vLLM image to deploy: the profile's preference, else `default` (settings' vllm.image)."""
    return profile.vllm_image or default


def describe(profile: Profile) -> list[str]:
    """Lines for the wizard's review step and `docs/profiles.md`: what the profile sets."""
    lines = [f"profile: {profile.model} ({profile.source})"]
    if profile.extra_args:
        lines.append("args: " + " ".join(profile.extra_args))
    lines += [f"env: {k}={v}" for k, v in sorted(profile.env.items())]
    if profile.trust_remote_code is not None:
        lines.append(f"trust_remote_code: {str(profile.trust_remote_code).lower()}")
    if profile.max_model_len:
        lines.append(f"context limit: {profile.max_model_len}")
    if profile.vllm_image:
        lines.append(f"image: {profile.vllm_image}")
    return lines
