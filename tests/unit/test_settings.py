"""Settings: precedence, the old tool's `.env`, bad input turned into problems, and a loader that only reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maider_tui.paths import AppPaths
from maider_tui.settings import (
    LEGACY_KEYS,
    Settings,
    SettingsProblem,
    load_settings,
    settings_reference_markdown,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# The .env example from the old tool's documentation, as an existing user has it.
SEED_DOTENV = """\
# .env
HUGGING_FACE_HUB_TOKEN=hf_xxx
FIREWALL_ID=243627
REGION=us-east
TYPE=g1-gpu-rtx6000-2
MODEL_ID=Qwen/Qwen2.5-72B-Instruct-AWQ
SERVED_MODEL_NAME=coder-70b

# Multi-GPU configuration
VLLM_TENSOR_PARALLEL_SIZE=2
VLLM_MAX_MODEL_LEN=32768
VLLM_GPU_MEMORY_UTILIZATION=0.90
VLLM_MAX_NUM_SEQS=1
ENABLE_OPENWEBUI=true
ENABLE_HF_CACHE=false
VLLM_PORT=8001
WEBUI_PORT=3001
WATCHDOG_ENABLED=true
WATCHDOG_TIMEOUT_MINUTES=30
WATCHDOG_WARNING_MINUTES=5
"""


class Setup:
    """A home under tmp_path with a config file and a .env, and a loader that sees only them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = AppPaths.under(root / "home")
        self.toml = self.paths.config_file
        self.dotenv = root / "project" / ".env"
        self.dotenv.parent.mkdir(parents=True)

    def write_toml(self, text: str) -> None:
        self.toml.parent.mkdir(parents=True, exist_ok=True)
        self.toml.write_text(text, encoding="utf-8")

    def write_dotenv(self, text: str) -> None:
        self.dotenv.write_text(text, encoding="utf-8")

    def load(self, environ: dict[str, str] | None = None, **kwargs):
        return load_settings(environ=environ or {}, dotenv_path=self.dotenv, paths=self.paths, **kwargs)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_nothing_configured_gives_defaults_and_no_problems(setup: Setup) -> None:
    loaded = setup.load()
    assert loaded.settings == Settings.defaults()
    assert loaded.problems == []
    assert loaded.config_path == setup.toml
    assert loaded.settings.vllm.image.startswith("vllm/vllm-openai:v")
    assert loaded.settings.provider.tags == ["maider"]


def test_each_layer_beats_the_one_below_per_key(setup: Setup) -> None:
    setup.write_toml(
        "[vllm]\nport = 8001\nmax_num_seqs = 4\ndtype = 'half'\n"
        "[provider]\nregion = 'toml-region'\n[watchdog]\ntimeout_minutes = 40\n"
    )
    setup.write_dotenv("MAIDER_VLLM__PORT=8002\nMAIDER_VLLM__MAX_NUM_SEQS=5\nMAIDER_PROVIDER__REGION=dotenv-region\n")
    loaded = setup.load({"MAIDER_VLLM__PORT": "8003"})

    s = loaded.settings
    assert s.vllm.port == 8003  # environment > .env > TOML
    assert s.vllm.max_num_seqs == 5  # .env > TOML
    assert s.provider.region == "dotenv-region"  # .env > TOML
    assert s.watchdog.timeout_minutes == 40  # TOML > default
    assert s.vllm.dtype == "half"
    assert s.watchdog.warning_minutes == 5  # default
    assert loaded.problems == []


def test_nested_env_keys_with_double_underscore(setup: Setup) -> None:
    environ = {
        "MAIDER_VLLM__PORT": "8001",
        "MAIDER_WATCHDOG__TIMEOUT_MINUTES": "45",
        "maider_compose__enable_openwebui": "yes",  # variable names are case-insensitive
        "MAIDER_VLLM__ENV__NCCL_DEBUG": "INFO",
        "MAIDER_KEYMAP__quit": "ctrl+q",
        "MAIDER_NOPE__PORT": "1",
        "MAIDER_VLLM__NOPE": "1",
    }
    s = setup.load(environ).settings
    assert s.vllm.port == 8001
    assert s.watchdog.timeout_minutes == 45
    assert s.compose.enable_openwebui is True
    assert s.vllm.env == {"NCCL_DEBUG": "INFO"}
    assert s.keymap == {"quit": "ctrl+q"}


def test_a_group_or_table_given_as_one_variable_is_not_a_setting_and_never_stops_the_load(setup: Setup) -> None:
    # pydantic-settings would read these as JSON, and fail the whole environment on a broken one.
    setup.write_dotenv("MAIDER_VLLM={not json\nMAIDER_KEYMAP=[1\nMAIDER_VLLM__PORT=8002\n")
    loaded = setup.load({"MAIDER_WATCHDOG": '{"timeout_minutes": 5}', "MAIDER_VLLM__ENV": "x",
                         "MAIDER_VLLM__MAX_NUM_SEQS": "2"})
    s = loaded.settings
    assert (s.vllm.port, s.vllm.max_num_seqs, s.watchdog.timeout_minutes) == (8002, 2, 30)
    assert (s.vllm.env, s.keymap, loaded.problems) == ({}, {}, [])


def test_tables_merge_across_sources(setup: Setup) -> None:
    setup.write_toml("[vllm.env]\nNCCL_P2P_DISABLE = 1\n[keymap]\nquit = 'ctrl+q'\n")
    s = setup.load({"MAIDER_VLLM__ENV__NCCL_DEBUG": "INFO", "MAIDER_KEYMAP__help": "f1"}).settings
    assert s.vllm.env == {"NCCL_P2P_DISABLE": "1", "NCCL_DEBUG": "INFO"}
    assert s.keymap == {"quit": "ctrl+q", "help": "f1"}


def test_the_old_tools_dotenv_just_works(setup: Setup) -> None:
    setup.write_dotenv(SEED_DOTENV)
    loaded = setup.load()
    s = loaded.settings
    assert loaded.problems == []
    assert s.provider.firewall_id == 243627
    assert (s.provider.region, s.provider.type) == ("us-east", "g1-gpu-rtx6000-2")
    assert (s.vllm.model, s.vllm.served_model_name) == ("Qwen/Qwen2.5-72B-Instruct-AWQ", "coder-70b")
    assert (s.vllm.tensor_parallel_size, s.vllm.max_model_len, s.vllm.max_num_seqs) == (2, 32768, 1)
    assert s.vllm.gpu_memory_utilization == pytest.approx(0.90)
    assert (s.compose.enable_openwebui, s.compose.enable_hf_cache) == (True, False)
    assert (s.vllm.port, s.compose.webui_port) == (8001, 3001)
    assert (s.watchdog.enabled, s.watchdog.timeout_minutes, s.watchdog.warning_minutes) == (True, 30, 5)


def test_every_old_key_reaches_its_setting(setup: Setup) -> None:
    old = {
        "REGION": ("provider.region", "us-sea", "us-sea"),
        "TYPE": ("provider.type", "g1-gpu-rtx6000-4", "g1-gpu-rtx6000-4"),
        "FIREWALL_ID": ("provider.firewall_id", "12", 12),
        "MODEL_ID": ("vllm.model", "org/model", "org/model"),
        "SERVED_MODEL_NAME": ("vllm.served_model_name", "coder", "coder"),
        "VLLM_TENSOR_PARALLEL_SIZE": ("vllm.tensor_parallel_size", "4", 4),
        "VLLM_MAX_MODEL_LEN": ("vllm.max_model_len", "16384", 16384),
        "VLLM_GPU_MEMORY_UTILIZATION": ("vllm.gpu_memory_utilization", "0.85", 0.85),
        "VLLM_MAX_NUM_SEQS": ("vllm.max_num_seqs", "8", 8),
        "VLLM_EXTRA_ARGS": ("vllm.extra_args", "--a b", ["--a", "b"]),
        "VLLM_KV_CACHE_DTYPE": ("vllm.kv_cache_dtype", "fp8", "fp8"),
        "VLLM_DTYPE": ("vllm.dtype", "half", "half"),
        "VLLM_IMAGE": ("vllm.image", "vllm/vllm-openai:v0.10.2", "vllm/vllm-openai:v0.10.2"),
        "VLLM_PORT": ("vllm.port", "8001", 8001),
        "OPENWEBUI_IMAGE": ("compose.openwebui_image", "ow:1", "ow:1"),
        "WEBUI_PORT": ("compose.webui_port", "3001", 3001),
        "ENABLE_OPENWEBUI": ("compose.enable_openwebui", "1", True),
        "ENABLE_HF_CACHE": ("compose.enable_hf_cache", "0", False),
        "ENABLE_HEALTHCHECKS": ("compose.enable_healthchecks", "no", False),
        "ENABLE_NCCL_ENV": ("compose.enable_nccl_env", "false", False),
        "WATCHDOG_ENABLED": ("watchdog.enabled", "no", False),
        "WATCHDOG_TIMEOUT_MINUTES": ("watchdog.timeout_minutes", "45", 45),
        "WATCHDOG_WARNING_MINUTES": ("watchdog.warning_minutes", "10", 10),
        "WATCHDOG_POLL_SECONDS": ("watchdog.poll_seconds", "30", 30),
        "NTFY_URL": ("notifications.ntfy_url", "https://ntfy.sh/me", "https://ntfy.sh/me"),
    }
    assert set(old) == set(LEGACY_KEYS)
    setup.write_dotenv("".join(f"{key}={raw}\n" for key, (_, raw, _) in old.items()))
    loaded = setup.load()
    assert loaded.problems == []
    dumped = loaded.settings.to_dict()
    for key, (path, _, expected) in old.items():
        group, name = path.split(".")
        assert dumped[group][name] == expected, key


def test_maider_key_beats_flat_key_from_the_same_source(setup: Setup) -> None:
    setup.write_dotenv("VLLM_PORT=8001\nMAIDER_VLLM__PORT=8002\nREGION=flat\n")
    s = setup.load({"VLLM_MAX_NUM_SEQS": "3", "MAIDER_VLLM__MAX_NUM_SEQS": "4", "TYPE": "env-flat"}).settings
    assert s.vllm.port == 8002
    assert s.vllm.max_num_seqs == 4
    assert s.provider.region == "flat"
    assert s.provider.type == "env-flat"


def test_a_flat_key_in_the_environment_beats_a_maider_key_in_dotenv(setup: Setup) -> None:
    setup.write_dotenv("MAIDER_VLLM__PORT=8002\n")
    assert setup.load({"VLLM_PORT": "8005"}).settings.vllm.port == 8005


@pytest.mark.parametrize(
    ("toml", "dotenv", "environ"),
    [
        ("[vllm]\nextra_args = '--enable-prefix-caching --chat-template \"my template.jinja\"'\n", "", {}),
        ("", "VLLM_EXTRA_ARGS='--enable-prefix-caching --chat-template \"my template.jinja\"'\n", {}),
        ("", "", {"MAIDER_VLLM__EXTRA_ARGS": "--enable-prefix-caching --chat-template 'my template.jinja'"}),
        ("[vllm]\nextra_args = ['--enable-prefix-caching', '--chat-template', 'my template.jinja']\n", "", {}),
    ],
)
def test_extra_args_string_is_split_shell_style(setup: Setup, toml: str, dotenv: str, environ: dict) -> None:
    setup.write_toml(toml)
    setup.write_dotenv(dotenv)
    loaded = setup.load(environ)
    assert loaded.settings.vllm.extra_args == ["--enable-prefix-caching", "--chat-template", "my template.jinja"]
    assert loaded.problems == []


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("yes", True), ("YES", True),
                                               ("false", False), ("0", False), ("no", False)])
def test_booleans_accept_the_usual_spellings(setup: Setup, raw: str, expected: bool) -> None:
    assert setup.load({"ENABLE_HEALTHCHECKS": raw}).settings.compose.enable_healthchecks is expected


def test_tags_string_is_split_on_commas(setup: Setup) -> None:
    assert setup.load({"MAIDER_PROVIDER__TAGS": "maider, team-a"}).settings.provider.tags == ["maider", "team-a"]


def test_empty_values_mean_unset(setup: Setup) -> None:
    setup.write_toml("[provider]\nfirewall_id = 5\n")
    setup.write_dotenv("FIREWALL_ID=\nVLLM_MAX_MODEL_LEN=\n")
    loaded = setup.load()
    assert loaded.settings.provider.firewall_id == 5
    assert loaded.settings.vllm.max_model_len is None
    assert loaded.problems == []


def test_broken_toml_is_one_problem_naming_file_and_line_and_the_rest_still_loads(setup: Setup) -> None:
    setup.write_toml("[vllm]\nport = 8001\n[watchdog\ntimeout_minutes = 9\n")
    setup.write_dotenv("REGION=us-east\n")
    loaded = setup.load()
    assert loaded.settings.vllm.port == 8000  # the broken file's values are all skipped
    assert loaded.settings.provider.region == "us-east"
    [problem] = loaded.problems
    assert problem.source == str(setup.toml)
    assert problem.line == 3
    assert str(setup.toml) in str(problem) and "line 3" in str(problem)


def test_unreadable_toml_is_a_problem_not_a_crash(setup: Setup) -> None:
    setup.toml.parent.mkdir(parents=True)
    setup.toml.write_bytes(b"[vllm]\nmodel = '\xff\xfe'\n")
    loaded = setup.load()
    assert loaded.settings == Settings.defaults()
    assert [p.source for p in loaded.problems] == [str(setup.toml)]


@pytest.mark.parametrize("kind", ["deep arrays", "deep inline tables", "deep dotted tables", "too big",
                                  "folder", "fifo", "device"])
def test_a_file_that_cannot_be_settings_is_one_problem_and_read_no_further(setup: Setup, kind: str) -> None:
    """Nesting that would exhaust the stack, 1 MiB and more, and anything not a regular file (never
    opened: a FIFO would block, /dev/zero would never end); `.env` files go through the same reader."""
    import os

    setup.toml.parent.mkdir(parents=True)
    config: Path | str = setup.toml
    if kind == "deep arrays":
        setup.write_toml("a = " + "[" * 5000 + "]" * 5000 + "\n")
    elif kind == "deep inline tables":
        setup.write_toml("a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n")
    elif kind == "deep dotted tables":
        setup.write_toml("[" + ".".join(["k"] * 5000) + "]\nx = 1\n")
    elif kind == "too big":
        setup.write_toml("[watchdog]\ntimeout_minutes = 9\n" + "# padding\n" * 120_000)
    elif kind == "folder":
        setup.toml.mkdir()
    elif kind == "fifo":
        os.mkfifo(setup.toml)
    else:
        config = "/dev/zero"
    deep = kind.startswith("deep")
    if not deep:  # the same file as `.env` too (its parser does not recurse)
        os.symlink(config, setup.dotenv)
    loaded = setup.load(config_path=str(config))
    assert loaded.settings == Settings.defaults()
    assert [p.source for p in loaded.problems] == [str(config)] + ([] if deep else [str(setup.dotenv)])
    expected = {"too big": "larger than 1 MiB", "folder": "a folder, not a file", "fifo": "not a regular file",
                "device": "not a regular file"}.get(kind, "nests tables or arrays more than 32 levels deep")
    for problem in loaded.problems:
        assert f"{problem.source}: {expected}" in str(problem)
        assert "none of this file's settings" in str(problem)


def test_bad_dotenv_line_is_a_problem_and_the_others_still_count(setup: Setup) -> None:
    setup.write_dotenv("REGION=us-east\nthis is not an assignment\nVLLM_PORT=8001\n")
    loaded = setup.load()
    assert (loaded.settings.provider.region, loaded.settings.vllm.port) == ("us-east", 8001)
    [problem] = loaded.problems
    assert (problem.source, problem.line) == (str(setup.dotenv), 2)


def test_bad_value_in_toml_falls_back_to_the_default(setup: Setup) -> None:
    setup.write_toml('[vllm]\nport = "abc"\nmax_num_seqs = 2\n')
    loaded = setup.load()
    assert loaded.settings.vllm.port == 8000
    assert loaded.settings.vllm.max_num_seqs == 2  # the good key next to it still counts
    [problem] = loaded.problems
    assert (problem.source, problem.key) == (str(setup.toml), "vllm.port")
    assert str(setup.toml) in str(problem) and "vllm.port" in str(problem) and "'abc'" in str(problem)


def test_bad_value_in_dotenv_falls_back_to_toml(setup: Setup) -> None:
    setup.write_toml("[watchdog]\ntimeout_minutes = 40\n")
    setup.write_dotenv("WATCHDOG_TIMEOUT_MINUTES=soon\n")
    loaded = setup.load()
    assert loaded.settings.watchdog.timeout_minutes == 40
    [problem] = loaded.problems
    assert (problem.source, problem.key) == (str(setup.dotenv), "WATCHDOG_TIMEOUT_MINUTES")
    assert str(problem).startswith(f"{setup.dotenv}: WATCHDOG_TIMEOUT_MINUTES = 'soon' was ignored")


def test_bad_value_in_environment_falls_back_to_dotenv(setup: Setup) -> None:
    setup.write_dotenv("VLLM_GPU_MEMORY_UTILIZATION=0.8\n")
    loaded = setup.load({"MAIDER_VLLM__GPU_MEMORY_UTILIZATION": "1.5"})
    assert loaded.settings.vllm.gpu_memory_utilization == pytest.approx(0.8)
    [problem] = loaded.problems
    assert (problem.source, problem.key) == ("environment", "MAIDER_VLLM__GPU_MEMORY_UTILIZATION")
    assert "0.99" in problem.message


def test_bad_maider_key_falls_back_to_the_flat_key_of_the_same_source(setup: Setup) -> None:
    loaded = setup.load({"MAIDER_VLLM__PORT": "abc", "VLLM_PORT": "8009"})
    assert loaded.settings.vllm.port == 8009
    assert [p.key for p in loaded.problems] == ["MAIDER_VLLM__PORT"]


def test_bad_values_in_every_source_each_give_a_problem(setup: Setup) -> None:
    setup.write_toml("[vllm]\nport = 0\n")
    setup.write_dotenv("VLLM_PORT=99999\n")
    loaded = setup.load({"MAIDER_VLLM__PORT": "http"})
    assert loaded.settings.vllm.port == 8000
    assert sorted(p.source for p in loaded.problems) == sorted([str(setup.toml), str(setup.dotenv), "environment"])


def test_wrong_shapes_and_bad_shell_quoting_are_problems(setup: Setup) -> None:
    setup.write_toml("vllm = 'not a table'\n[watchdog.enabled]\nx = 1\n")
    loaded = setup.load({"VLLM_EXTRA_ARGS": "--chat-template 'unclosed"})
    assert loaded.settings == Settings.defaults()
    assert {p.key for p in loaded.problems} == {"vllm", "watchdog.enabled.x", "VLLM_EXTRA_ARGS"}
    assert "shell-style" in str([p for p in loaded.problems if p.key == "VLLM_EXTRA_ARGS"][0])


def test_problem_reads_as_one_sentence() -> None:
    problem = SettingsProblem("/x/config.toml", "vllm.port", "= 'abc' was ignored because it is not a number.")
    assert str(problem) == "/x/config.toml: vllm.port = 'abc' was ignored because it is not a number."


def test_config_path_argument_then_maider_config_then_user_config_dir(setup: Setup) -> None:
    chosen = setup.root / "chosen.toml"
    chosen.write_text("[vllm]\nport = 8101\n")
    from_env = setup.root / "from-env.toml"
    from_env.write_text("[vllm]\nport = 8102\n")
    setup.write_toml("[vllm]\nport = 8103\n")
    assert setup.load({"MAIDER_CONFIG": str(from_env)}, config_path=chosen).settings.vllm.port == 8101
    assert setup.load({"MAIDER_CONFIG": str(from_env)}).settings.vllm.port == 8102
    assert setup.load().settings.vllm.port == 8103


def test_missing_files_are_not_problems(setup: Setup) -> None:
    loaded = load_settings(setup.root / "nope.toml", environ={}, dotenv_path=setup.root / "nope.env", paths=setup.paths)
    assert loaded.problems == [] and loaded.dotenv_values == {}


def test_loader_writes_nothing(setup: Setup) -> None:
    setup.write_toml("[vllm]\nport = 'abc'\n[broken\n")
    setup.write_dotenv(SEED_DOTENV + "WATCHDOG_POLL_SECONDS=often\nnot a line\n")

    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(setup.root.rglob("*"))}

    before = snapshot()
    loaded = setup.load({"MAIDER_VLLM__PORT": "nope"})
    assert loaded.problems  # it did meet bad input, and still wrote nothing
    assert snapshot() == before
    assert not setup.paths.data_dir.exists() and not setup.paths.log_dir.exists()


def test_tokens_in_dotenv_never_reach_settings(setup: Setup) -> None:
    tokens = {
        "HUGGING_FACE_HUB_TOKEN": "hf_dotenvhubtoken1234567890",
        "HF_TOKEN": "hf_dotenvtoken1234567890",
        "LINODE_TOKEN": "linode-dotenv-token-123456",
        "MAIDER_LINODE_TOKEN": "maider-linode-token-123456",
        "MAIDER_HF_TOKEN": "hf_maidertoken1234567890",
    }
    setup.write_dotenv(SEED_DOTENV + "".join(f"{k}={v}\n" for k, v in tokens.items()))
    loaded = setup.load({"LINODE_TOKEN": "linode-env-token-123456"})
    dumped = json.dumps(loaded.settings.to_dict())
    for value in [*tokens.values(), "hf_xxx", "linode-env-token-123456"]:
        assert value not in dumped
    # The raw .env mapping keeps them for maider_tui.secrets.
    assert loaded.dotenv_values["HF_TOKEN"] == tokens["HF_TOKEN"]
    assert loaded.dotenv_values["REGION"] == "us-east"


def test_settings_alone_reads_the_users_sources_as_pydantic_settings_does(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.write_toml("[vllm]\nport = 8001\nmax_num_seqs = 2\n[watchdog]\ntimeout_minutes = 0\n")
    monkeypatch.setenv("MAIDER_CONFIG", str(setup.toml))
    monkeypatch.chdir(setup.dotenv.parent)
    setup.write_dotenv("MAIDER_VLLM__MAX_NUM_SEQS=3\nMODEL_ID=acme/Old\n")
    monkeypatch.setenv("MAIDER_VLLM__PORT", "9999")
    settings = Settings()
    # Environment over `.env` over the TOML file; a bad value (timeout 0) leaves the default.
    assert (settings.vllm.port, settings.vllm.max_num_seqs, settings.vllm.model) == (9999, 3, "acme/Old")
    assert settings.watchdog.timeout_minutes == 30
    assert Settings(_env_file=None).vllm.max_num_seqs == 2  # pydantic-settings' own switch for `.env`
    # Values given win; defaults() and from_dict() read nothing.
    assert Settings(vllm={"port": 7000}).vllm.port == 7000
    assert Settings.defaults().vllm.port == 8000 and Settings.from_dict({"vllm": {"port": 7001}}).vllm.port == 7001


def test_reference_table_lists_every_key() -> None:
    table = settings_reference_markdown()
    for group in ("provider", "vllm", "compose", "watchdog", "notifications"):
        for name in type(getattr(Settings.defaults(), group)).model_fields:
            assert f"`{group}.{name}`" in table
    assert "`MAIDER_WATCHDOG__TIMEOUT_MINUTES`" in table and "`WATCHDOG_TIMEOUT_MINUTES`" in table
    assert "`keymap.<binding id>`" in table
    assert all(line.count(" | ") >= 4 for line in table.splitlines())


def test_docs_contain_the_generated_table() -> None:
    assert settings_reference_markdown() in DOCS.read_text(encoding="utf-8"), (
        "docs/configuration.md is out of date: paste settings_reference_markdown() into it"
    )


def test_readiness_limits_come_from_settings(tmp_path) -> None:
    from maider_tui.ops.readiness import ReadinessLimits

    toml = tmp_path / "config.toml"
    toml.write_text("[readiness]\ncloud_init_minutes = 45\n")
    loaded = load_settings(toml, environ={"MAIDER_READINESS__VLLM_MINUTES": "60"}, dotenv_path=None)
    limits = ReadinessLimits.from_settings(loaded.settings.readiness)
    assert limits.cloud_init_s == 45 * 60 and limits.vllm_s == 60 * 60 and limits.running_s == 10 * 60
