"""Session names: short model tags, the launch time, uniqueness, and Linode's label rules."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from maider_tui.ops.naming import MAX_LEN, model_tag, session_name, validate_session_name

NOW = datetime(2026, 11, 22, 9, 30, 12, tzinfo=timezone.utc)
# Linode: 3-64 characters, letters, digits, '-', '_', '.'; alphanumeric at both ends; no doubled separator.
LINODE_LABEL = re.compile(r"^(?=.{3,64}$)[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


@pytest.mark.parametrize(("model_id", "tag"), [
    ("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "qwen32b"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "qwen32b"),
    ("Qwen/Qwen2.5-Coder-14B-Instruct", "qwen14b"),
    ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "qwen7b"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama8b"),
    ("meta-llama/Llama-3.1-70B-Instruct", "llama70b"),
    ("Qwen/Qwen2.5-72B-Instruct-AWQ", "qwen72b"),
    ("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", "deepseek16b"),  # no size in the name: the catalog's
    ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3-30b"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral7b"),
    ("Qwen/Qwen2.5-Coder-1.5B-Instruct", "qwen1p5b"),
    ("someone/my_model", "my_model"),
    ("org/Fancy Model!", "fancymodel"),
])
def test_model_tag(model_id, tag):
    assert model_tag(model_id) == tag


def test_session_name_is_tag_and_utc_time():
    assert session_name("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", NOW) == "qwen32b-20261122-093012"
    assert session_name("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", NOW.timestamp()) == "qwen32b-20261122-093012"


def test_session_name_is_unique():
    base = "qwen32b-20261122-093012"
    model = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
    assert session_name(model, NOW, {base}) == f"{base}-2"
    assert session_name(model, NOW, {base, f"{base}-2"}) == f"{base}-3"
    assert session_name(model, NOW, {base.upper()}) == f"{base}-2"  # Linode labels clash case-blind
    assert session_name(model, NOW, {"other"}) == base


@pytest.mark.parametrize("model_id", [
    "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", "x/---",
    "org/" + "VeryLongModelNameWithoutAnySize" * 4, "org/__weird..name--", "/", "",
])
def test_names_are_valid_linode_labels(model_id):
    name = session_name(model_id, NOW, {f"{model_tag(model_id)}-20261122-093012"})
    assert LINODE_LABEL.match(name) and not re.search(r"--|__|\.\.", name), name
    assert len(name) <= MAX_LEN and validate_session_name(name, set()) is None


@pytest.mark.parametrize(("name", "words"), [
    ("", "Give the session a name"),
    ("   ", "Give the session a name"),
    ("ab", "3 to 64 characters"),
    ("a" * 65, "3 to 64 characters"),
    ("my session", "only letters, digits"),
    ("qwen/32b", "only letters, digits"),
    ("ünicode", "only letters, digits"),
    ("-leading", "start and end with a letter or a digit"),
    ("trailing.", "start and end with a letter or a digit"),
    ("a--b", "'--', '__' or '..'"),
    ("a..b", "'--', '__' or '..'"),
    (" padded ", "start or end with a space"),
    ("taken-name", "already exists"),
    ("TAKEN-NAME", "already exists"),
])
def test_bad_user_names(name, words):
    message = validate_session_name(name, {"taken-name"})
    assert message is not None and words in message
    assert message.endswith(".")


@pytest.mark.parametrize("name", ["abc", "my-box", "qwen32b_test.1", "A1-b2_c3.d4", "x" * 64])
def test_good_user_names(name):
    assert validate_session_name(name, {"other"}) is None
