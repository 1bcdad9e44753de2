"""Records a user or a file feeds (the settings groups, `VllmConfig`) are pydantic models: text read as
people write it, limits checked, every bad field named at once in the app's own words."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from maider_tui.models import VllmConfig
from maider_tui.records import first_problem, problem_text
from maider_tui.settings import ProviderSettings, Settings, VllmSettings, WatchdogSettings


def said(exc: ValidationError) -> list[tuple[tuple, str]]:
    return [(tuple(str(part) for part in error["loc"]), problem_text(error)) for error in exc.errors()]


@pytest.mark.parametrize(("given", "expected"), [
    ({"port": "8001"}, ("port", 8001)),
    ({"port": " 8001 "}, ("port", 8001)),
    ({"port": 8001.0}, ("port", 8001)),
    ({"gpu_memory_utilization": "0.5"}, ("gpu_memory_utilization", 0.5)),
    ({"max_model_len": "4096"}, ("max_model_len", 4096)),
    ({"max_model_len": None}, ("max_model_len", None)),
    ({"extra_args": ["--a", "b"]}, ("extra_args", ["--a", "b"])),
    ({"extra_args": "--a 'b c'"}, ("extra_args", ["--a", "b c"])),
    ({"env": {"A": "1"}}, ("env", {"A": "1"})),
    ({"env": {"NCCL_P2P_DISABLE": 1}}, ("env", {"NCCL_P2P_DISABLE": "1"})),  # numbers are text here
])
def test_values_are_read_as_a_user_writes_them(given, expected) -> None:
    name, value = expected
    assert getattr(VllmSettings.from_dict(given), name) == value


@pytest.mark.parametrize(("on", "expected"), [("off", False), ("YES", True), (0, False), ("1", True)])
def test_booleans_take_the_usual_spellings(on, expected) -> None:
    assert WatchdogSettings.from_dict({"enabled": on}).enabled is expected


@pytest.mark.parametrize(("given", "message"), [
    ({"port": "abc"}, "it is not a whole number"),
    ({"port": "80.5"}, "it is not a whole number"),
    ({"port": True}, "it is not a whole number"),
    ({"port": 0}, "it must be at least 1"),
    ({"port": 70000}, "it must be at most 65535"),
    ({"gpu_memory_utilization": 0.05}, "it must be at least 0.1"),
    ({"gpu_memory_utilization": 1}, "it must be at most 0.99"),
    ({"gpu_memory_utilization": "nan"}, "it is not a finite number"),
    ({"gpu_memory_utilization": "lots"}, "it is not a number"),
    ({"model": "  "}, "it must not be empty"),
    ({"max_model_len": 100}, "it must be at least 256"),
    ({"extra_args": 5}, "it is not a list"),
    ({"env": ["A"]}, "it is not a table"),
    ({"extra_args": "--chat-template 'unclosed"},
     "it is not a valid shell-style argument list (No closing quotation)"),
])
def test_a_bad_value_names_its_field_and_says_why(given, message) -> None:
    with pytest.raises(ValidationError) as caught:
        VllmSettings.from_dict(given)
    [field] = given
    assert said(caught.value) == [((field,), message)]


@pytest.mark.parametrize(("given", "message"), [
    ({"enabled": "maybe"}, "it is not true or false"),
    ({"enabled": 2}, "it is not true or false"),
])
def test_a_bad_boolean_says_so(given, message) -> None:
    with pytest.raises(ValidationError) as caught:
        WatchdogSettings.from_dict(given)
    assert said(caught.value) == [(("enabled",), message)]


def test_text_items_and_values_must_be_text_where_numbers_are_not_text() -> None:
    with pytest.raises(ValidationError) as caught:
        VllmConfig.from_dict({"model": 5, "extra_args": ["--a", 1], "env": {"A": 1}})
    assert said(caught.value) == [(("model",), "it is not text"),
                                  (("extra_args", "1"), "every item must be text"),
                                  (("env", "A"), "it is not text")]


def test_every_bad_field_is_reported_at_once_with_its_path_and_unknown_keys_are_ignored() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_dict({"vllm": {"port": "x", "new_key": 1}, "watchdog": {"enabled": "maybe"},
                            "provider": "flat", "other": 2})
    assert said(caught.value) == [(("provider",), "it is not a table"),
                                  (("vllm", "port"), "it is not a whole number"),
                                  (("watchdog", "enabled"), "it is not true or false")]


def test_tags_given_as_text_are_split_on_commas() -> None:
    assert ProviderSettings.from_dict({"tags": "a, b,,c"}).tags == ["a", "b", "c"]
    assert ProviderSettings.from_dict({"tags": ("a",)}).tags == ["a"]


def test_records_are_checked_when_made_directly_and_when_replaced() -> None:
    with pytest.raises(ValidationError) as caught:
        VllmConfig(model="m", tensor_parallel_size=0)
    assert first_problem(caught.value) == ("tensor_parallel_size", "it must be at least 1")
    config = VllmConfig(model="m", extra_args=["--x"])
    assert config.extra_args == ("--x",)  # a list given is kept as the declared tuple
    assert config.replace(max_model_len="4096").max_model_len == 4096
    with pytest.raises(ValidationError):
        config.replace(gpu_memory_utilization=1.5)
    with pytest.raises(ValidationError):
        config.model = "other"  # type: ignore[misc]  # frozen
    with pytest.raises(ValidationError):
        Settings.defaults().vllm.port = 1  # type: ignore[misc]


def test_a_stored_config_round_trips_through_json_ready_data() -> None:
    config = VllmConfig(model="m", max_model_len=8192, extra_args=("--a", "1"), env={"X": "y"})
    data = config.to_dict()
    assert data["extra_args"] == ["--a", "1"] and data["env"] == {"X": "y"}
    assert VllmConfig.from_dict(data) == config
    assert VllmConfig.from_dict({**data, "field_of_a_newer_version": 1}) == config
    with pytest.raises(ValidationError) as caught:
        VllmConfig.from_dict({"max_model_len": 8192})
    assert said(caught.value) == [(("model",), "it is required")]
    with pytest.raises(ValidationError):
        VllmConfig.from_dict(["not", "a", "table"])


def test_field_docs_are_the_strings_under_each_field() -> None:
    info = WatchdogSettings.model_fields["timeout_minutes"]
    assert info.description == "Idle minutes before the VM is destroyed."
    assert Settings.model_fields["keymap"].description.startswith("Key overrides")


def test_a_secret_never_shows_itself() -> None:
    secret = SecretStr("linode-abcdef-123456")
    assert "abcdef" not in f"{secret} {secret!r} {[secret]}"
    assert secret.get_secret_value() == "linode-abcdef-123456"
    assert secret == SecretStr("linode-abcdef-123456") and secret != SecretStr("other")
    assert str(SecretStr("")) == ""
