"""Typed records: text read as people write it, limits checked, every bad field named at once."""

from __future__ import annotations

import dataclasses

import pytest

from maider_tui.models import VllmConfig
from maider_tui.secrets import SecretStr
from maider_tui.typed import InvalidRecord, Problem, Record, field_docs, setting


@dataclasses.dataclass(frozen=True)
class Inner(Record):
    port: int = setting(8000, ge=1, le=65535)
    """The port."""
    share: float = setting(0.9, gt=0.1, le=0.99)
    on: bool = True
    name: str = setting("x", min_length=1)
    limit: int | None = setting(None, ge=256)
    args: tuple[str, ...] = ()
    tags: list[str] = setting(factory=list, before=lambda text: text.split(","))
    env: dict[str, str] = setting(factory=dict)


@dataclasses.dataclass(frozen=True)
class TextyInner(Record):
    NUMBERS_AS_TEXT = True
    label: str = ""
    env: dict[str, str] = setting(factory=dict)


@dataclasses.dataclass(frozen=True)
class Outer(Record):
    inner: Inner = setting(factory=Inner)
    texty: TextyInner = setting(factory=TextyInner)


@pytest.mark.parametrize(("given", "expected"), [
    ({"port": "8001"}, ("port", 8001)),
    ({"port": " 8001 "}, ("port", 8001)),
    ({"port": 8001.0}, ("port", 8001)),
    ({"share": "0.5"}, ("share", 0.5)),
    ({"on": "off"}, ("on", False)),
    ({"on": "YES"}, ("on", True)),
    ({"on": 0}, ("on", False)),
    ({"limit": "4096"}, ("limit", 4096)),
    ({"limit": None}, ("limit", None)),
    ({"args": ["--a", "b"]}, ("args", ("--a", "b"))),
    ({"tags": "a,b"}, ("tags", ["a", "b"])),
    ({"tags": ("a",)}, ("tags", ["a"])),
    ({"env": {"A": "1"}}, ("env", {"A": "1"})),
])
def test_values_are_read_as_a_user_writes_them(given, expected) -> None:
    name, value = expected
    assert getattr(Inner.from_dict(given), name) == value


@pytest.mark.parametrize(("given", "message"), [
    ({"port": "abc"}, "it is not a whole number"),
    ({"port": "80.5"}, "it is not a whole number"),
    ({"port": True}, "it is not a whole number"),
    ({"port": 0}, "it must be at least 1"),
    ({"port": 70000}, "it must be at most 65535"),
    ({"share": 0.1}, "it must be more than 0.1"),
    ({"share": 1}, "it must be at most 0.99"),
    ({"share": "nan"}, "it is not a finite number"),
    ({"share": "lots"}, "it is not a number"),
    ({"on": "maybe"}, "it is not true or false"),
    ({"on": 2}, "it is not true or false"),
    ({"name": "  "}, "it must not be empty"),
    ({"name": 5}, "it is not text"),
    ({"limit": 100}, "it must be at least 256"),
    ({"args": "--a"}, "it is not a list"),
    ({"args": ["--a", 1]}, "every item must be text"),
    ({"env": ["A"]}, "it is not a table"),
    ({"env": {"A": 1}}, "every value must be text"),
])
def test_a_bad_value_names_its_field_and_says_why(given, message) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Inner.from_dict(given)
    [field] = given
    assert caught.value.problems == [Problem((field,), message)]


def test_every_bad_field_is_reported_at_once_with_its_path_and_unknown_keys_are_ignored() -> None:
    with pytest.raises(InvalidRecord) as caught:
        Outer.from_dict({"inner": {"port": "x", "on": "maybe", "new_key": 1}, "texty": "flat", "other": 2})
    assert caught.value.problems == [Problem(("inner", "port"), "it is not a whole number"),
                                     Problem(("inner", "on"), "it is not true or false"),
                                     Problem(("texty",), "it is not a table")]
    assert "inner.port: it is not a whole number" in str(caught.value)


def test_numbers_become_text_only_where_the_record_allows_it() -> None:
    texty = TextyInner.from_dict({"label": 3, "env": {"NCCL_P2P_DISABLE": 1}})
    assert (texty.label, texty.env) == ("3", {"NCCL_P2P_DISABLE": "1"})
    with pytest.raises(InvalidRecord):
        Inner.from_dict({"env": {"NCCL_P2P_DISABLE": 1}})


def test_a_before_hook_refusing_text_gives_its_reason() -> None:
    def refuse(text: str) -> list[str]:
        raise ValueError("it is not a valid list (unclosed quote)")

    @dataclasses.dataclass(frozen=True)
    class Hooked(Record):
        args: list[str] = setting(factory=list, before=refuse)

    with pytest.raises(InvalidRecord) as caught:
        Hooked(args="'x")
    assert caught.value.problems == [Problem(("args",), "it is not a valid list (unclosed quote)")]


def test_records_are_checked_when_made_directly_and_when_replaced() -> None:
    with pytest.raises(InvalidRecord):
        VllmConfig(model="m", tensor_parallel_size=0)
    config = VllmConfig(model="m", extra_args=["--x"])
    assert config.extra_args == ("--x",)  # a list given is kept as the declared tuple
    assert config.replace(max_model_len="4096").max_model_len == 4096
    with pytest.raises(InvalidRecord):
        config.replace(gpu_memory_utilization=1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = "other"  # type: ignore[misc]


def test_a_stored_config_round_trips_through_json_ready_data() -> None:
    config = VllmConfig(model="m", max_model_len=8192, extra_args=("--a", "1"), env={"X": "y"})
    data = config.to_dict()
    assert data["extra_args"] == ["--a", "1"] and data["env"] == {"X": "y"}
    assert VllmConfig.from_dict(data) == config
    assert VllmConfig.from_dict({**data, "field_of_a_newer_version": 1}) == config
    with pytest.raises(InvalidRecord) as caught:
        VllmConfig.from_dict({"max_model_len": 8192})
    assert caught.value.problems == [Problem(("model",), "it is required")]
    with pytest.raises(InvalidRecord):
        VllmConfig.from_dict(["not", "a", "table"])


def test_field_docs_are_the_strings_under_each_field() -> None:
    assert field_docs(Inner) == {"port": "The port."}


def test_a_secret_never_shows_itself() -> None:
    secret = SecretStr("linode-abcdef-123456")
    assert "abcdef" not in f"{secret} {secret!r} {[secret]}"
    assert secret.get_secret_value() == "linode-abcdef-123456"
    assert secret == SecretStr("linode-abcdef-123456") and secret != SecretStr("other")
    assert str(SecretStr("")) == ""
