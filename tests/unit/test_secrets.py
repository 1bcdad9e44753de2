"""Secrets: keyring first, then env vars and .env in order, op:// through a fake `op`, no keyring said plainly."""

from __future__ import annotations

import stat
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backends import fail, null

from maider_tui.log import redact
from tests.keyrings import MemoryKeyring
from maider_tui.secrets import (
    HF_TOKEN,
    LINODE_TOKEN,
    SERVICE,
    ResolvedSecret,
    SecretError,
    Secrets,
)

FAKE_OP = """#!/bin/sh
# A stand-in for the 1Password CLI: `op read <ref>`.
[ "$1" = read ] || exit 2
case "$2" in
  op://Private/HuggingFace/token) echo "hf_fromonepassword1234567890" ;;
  op://Private/Slow/token) exec sleep 5 ;;
  *) echo '[ERROR] 2024/01/01 "Missing" isn'"'"'t an item in the "Private" vault.' >&2; exit 1 ;;
esac
"""


class RaisingKeyring(MemoryKeyring):
    """A backend that is installed but broken, like a locked D-Bus secret service."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


@pytest.fixture
def use_keyring():
    """Install a keyring backend for one test and put the previous one back after."""
    previous = keyring.get_keyring()

    def install(backend):
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


@pytest.fixture
def memory(use_keyring) -> MemoryKeyring:
    return use_keyring(MemoryKeyring())


@pytest.fixture
def op_path(tmp_path: Path) -> str:
    """A PATH holding only the fake `op`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    op = bin_dir / "op"
    op.write_text(FAKE_OP)
    op.chmod(op.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(bin_dir)


def test_keyring_comes_first(memory: MemoryKeyring) -> None:
    memory.set_password(SERVICE, LINODE_TOKEN, "linode-from-keyring-123")
    secrets = Secrets(environ={"MAIDER_LINODE_TOKEN": "linode-from-env-123"}, dotenv_values={})
    found = secrets.get(LINODE_TOKEN)
    assert found is not None
    assert (found.value.get_secret_value(), found.source) == ("linode-from-keyring-123", "keyring")


@pytest.mark.parametrize(
    ("name", "environ", "dotenv", "source"),
    [
        (LINODE_TOKEN, {"MAIDER_LINODE_TOKEN": "a", "LINODE_TOKEN": "b"}, {}, "env:MAIDER_LINODE_TOKEN"),
        (LINODE_TOKEN, {"LINODE_TOKEN": "b"}, {"MAIDER_LINODE_TOKEN": "c"}, "env:LINODE_TOKEN"),
        (LINODE_TOKEN, {}, {"MAIDER_LINODE_TOKEN": "c", "LINODE_TOKEN": "d"}, ".env:MAIDER_LINODE_TOKEN"),
        (LINODE_TOKEN, {"LINODE_TOKEN": "  "}, {"LINODE_TOKEN": "d"}, ".env:LINODE_TOKEN"),
        (HF_TOKEN, {"MAIDER_HF_TOKEN": "a", "HF_TOKEN": "b", "HUGGING_FACE_HUB_TOKEN": "c"}, {}, "env:MAIDER_HF_TOKEN"),
        (HF_TOKEN, {"HF_TOKEN": "b", "HUGGING_FACE_HUB_TOKEN": "c"}, {}, "env:HF_TOKEN"),
        (HF_TOKEN, {"HUGGING_FACE_HUB_TOKEN": "c"}, {"MAIDER_HF_TOKEN": "x"}, "env:HUGGING_FACE_HUB_TOKEN"),
        (HF_TOKEN, {}, {"HF_TOKEN": "y", "HUGGING_FACE_HUB_TOKEN": "z"}, ".env:HF_TOKEN"),
        (HF_TOKEN, {}, {"HUGGING_FACE_HUB_TOKEN": "z"}, ".env:HUGGING_FACE_HUB_TOKEN"),
    ],
)
def test_env_order_after_the_keyring(memory, name: str, environ: dict, dotenv: dict, source: str) -> None:
    found = Secrets(environ=environ, dotenv_values=dotenv).get(name)
    assert found is not None and found.source == source
    var = source.split(":", 1)[1]
    expected = (environ if source.startswith("env:") else dotenv)[var]
    assert found.value.get_secret_value() == expected


def test_nothing_anywhere_is_none(memory: MemoryKeyring) -> None:
    secrets = Secrets(environ={"HF_TOKEN": "not the linode one"}, dotenv_values={})
    assert secrets.get(LINODE_TOKEN) is None


def test_unknown_name_is_a_programming_error(memory: MemoryKeyring) -> None:
    with pytest.raises(ValueError):
        Secrets(environ={}).get("aws_token")


def test_resolved_values_are_registered_for_redaction(memory: MemoryKeyring) -> None:
    value = "linode-registered-value-987"
    Secrets(environ={"LINODE_TOKEN": value}).get(LINODE_TOKEN)
    assert redact(f"calling with {value}") == "calling with ***"


def test_repr_and_str_never_show_the_value(memory: MemoryKeyring) -> None:
    value = "hf_shouldneverbeprinted12345"
    found = Secrets(environ={"HF_TOKEN": value}).get(HF_TOKEN)
    assert found is not None
    for text in (repr(found), str(found), f"{found}", repr([found]), repr(found.value)):
        assert value not in text
    assert "env:HF_TOKEN" in repr(found) and "env:HF_TOKEN" in str(found)
    assert isinstance(found, ResolvedSecret)


def test_op_reference_is_read_with_op(memory: MemoryKeyring, op_path: str) -> None:
    ref = "op://Private/HuggingFace/token"
    found = Secrets(environ={"PATH": op_path}, dotenv_values={"HUGGING_FACE_HUB_TOKEN": ref}).get(HF_TOKEN)
    assert found is not None
    assert found.value.get_secret_value() == "hf_fromonepassword1234567890"
    assert (found.source, found.reference) == (".env:HUGGING_FACE_HUB_TOKEN", ref)
    assert "hf_fromonepassword1234567890" not in repr(found)
    assert redact("hf_fromonepassword1234567890") != "hf_fromonepassword1234567890"


def test_op_reference_in_the_keyring_is_read_too(memory: MemoryKeyring, op_path: str) -> None:
    memory.set_password(SERVICE, HF_TOKEN, "op://Private/HuggingFace/token")
    found = Secrets(environ={"PATH": op_path}).get(HF_TOKEN)
    assert found is not None and found.source == "keyring"
    assert found.value.get_secret_value() == "hf_fromonepassword1234567890"


def test_op_failure_is_one_clear_sentence(memory: MemoryKeyring, op_path: str) -> None:
    ref = "op://Private/Missing/token"
    with pytest.raises(SecretError) as raised:
        Secrets(environ={"PATH": op_path, "HF_TOKEN": ref}).get(HF_TOKEN)
    message = str(raised.value)
    assert ref in message and "isn't an item" in message and "op signin" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_op_timeout_is_a_secret_error(memory: MemoryKeyring, op_path: str) -> None:
    ref = "op://Private/Slow/token"
    with pytest.raises(SecretError, match="no answer within 0.3 s"):
        Secrets(environ={"PATH": op_path, "LINODE_TOKEN": ref}, op_timeout=0.3).get(LINODE_TOKEN)


def test_missing_op_is_a_secret_error(memory: MemoryKeyring, tmp_path: Path) -> None:
    ref = "op://Private/HuggingFace/token"
    with pytest.raises(SecretError, match="not on PATH") as raised:
        Secrets(environ={"PATH": str(tmp_path), "HF_TOKEN": ref}).get(HF_TOKEN)
    assert ref in str(raised.value)


def test_set_get_delete_through_the_keyring(memory: MemoryKeyring) -> None:
    secrets = Secrets(environ={}, dotenv_values={})
    secrets.set(LINODE_TOKEN, "  linode-stored-123456  ")
    assert memory.passwords[(SERVICE, LINODE_TOKEN)] == "linode-stored-123456"
    found = secrets.get(LINODE_TOKEN)
    assert found is not None and found.value.get_secret_value() == "linode-stored-123456"
    assert secrets.delete(LINODE_TOKEN) is True
    assert secrets.delete(LINODE_TOKEN) is False
    assert secrets.get(LINODE_TOKEN) is None


def test_empty_token_is_not_saved(memory: MemoryKeyring) -> None:
    with pytest.raises(SecretError, match="empty"):
        Secrets(environ={}).set(HF_TOKEN, "   ")
    assert memory.passwords == {}


def test_memory_status_is_available(memory: MemoryKeyring) -> None:
    status = Secrets(environ={}).keyring_status()
    assert status.available and "MemoryKeyring" in status.backend


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring, RaisingKeyring], ids=["fail", "null", "raising"])
def test_no_usable_keyring_is_said_plainly(use_keyring, tmp_path: Path, backend) -> None:
    use_keyring(backend())
    before = sorted(tmp_path.rglob("*"))
    secrets = Secrets(environ={"LINODE_TOKEN": "linode-env-fallback-123"}, dotenv_values={"HF_TOKEN": "hf_dotenvfallback123456"})

    status = secrets.keyring_status()
    assert not status.available
    assert "No usable keyring" in status.message
    assert "MAIDER_LINODE_TOKEN" in status.message and "HF_TOKEN" in status.message

    with pytest.raises(SecretError) as raised:
        secrets.set(LINODE_TOKEN, "linode-never-written-123")
    assert str(raised.value) == status.message
    assert "linode-never-written-123" not in str(raised.value)
    with pytest.raises(SecretError):
        secrets.delete(LINODE_TOKEN)

    # Reading falls through the broken keyring to the variables.
    linode, hf = secrets.get(LINODE_TOKEN), secrets.get(HF_TOKEN)
    assert linode is not None and linode.source == "env:LINODE_TOKEN"
    assert hf is not None and hf.source == ".env:HF_TOKEN"
    assert sorted(tmp_path.rglob("*")) == before


def test_a_backend_failing_on_write_is_a_secret_error(use_keyring) -> None:
    class WriteOnlyBroken(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.PasswordSetError(f"refused {password}")

    use_keyring(WriteOnlyBroken())
    with pytest.raises(SecretError) as raised:
        Secrets(environ={}).set(HF_TOKEN, "hf_leakedintoerror123456")
    assert "hf_leakedintoerror123456" not in str(raised.value)
    assert "PasswordSetError" in str(raised.value)


def test_memory_keyring_is_never_chosen_automatically() -> None:
    assert not MemoryKeyring.viable
    assert MemoryKeyring not in keyring.backend.KeyringBackend.get_viable_backends()


def test_has_does_not_resolve_op_references(tmp_path):
    from maider_tui.secrets import Secrets

    # No `op` on this PATH: has() must not try to run it, get() would fail.
    secrets = Secrets(environ={"LINODE_TOKEN": "op://vault/item/token", "PATH": str(tmp_path)})
    assert secrets.has("linode_token") is True
    assert secrets.has("hf_token") is False


def test_without_keyring_tokens_live_in_memory_only(memory_keyring):
    from maider_tui.secrets import Secrets

    memory_keyring.set_password("maider-tui", "linode_token", "real-account-token-123456")
    demo = Secrets(environ={"MAIDER_LINODE_TOKEN": "sim-abcdef"}, use_keyring=False)
    # A real token in the keyring is never seen by the demo ...
    assert demo.get("linode_token").value.get_secret_value() == "sim-abcdef"
    demo.set("hf_token", "hf_demoTokenForTheSimOnly0000")
    assert demo.get("hf_token").source == "this run only"
    # ... and the demo's tokens never reach the keyring.
    assert memory_keyring.get_password("maider-tui", "hf_token") is None
    assert demo.delete("hf_token") is True
    assert demo.get("hf_token") is None


def test_without_keyring_the_keyring_package_is_never_imported():
    """The demo reads and stores its tokens without keyring and its dependencies (about 2 MiB)."""
    import subprocess
    import sys

    script = ("import sys; from maider_tui.secrets import Secrets\n"
              "s = Secrets(environ={'MAIDER_LINODE_TOKEN': 'sim-abcdef'}, use_keyring=False)\n"
              "s.get('linode_token'); s.has('hf_token'); s.set('hf_token', 'hf_demo0000000000'); s.delete('hf_token')\n"
              "print(sorted(m for m in ('keyring', 'importlib_metadata', 'jaraco') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
