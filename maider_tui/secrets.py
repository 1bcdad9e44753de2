"""The Linode and Hugging Face tokens: OS keyring first, then env vars and `.env`, `op://` resolved.

Tokens never go into a file of ours: where no keyring backend works, the app says so and the user
keeps them in the environment or `.env` (or in 1Password, referenced as `op://vault/item/field`).
Every call here may block (a keyring unlock prompt, `op`); the UI runs them in a worker.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from maider_tui.log import redact, register_secret

SERVICE = "maider-tui"
LINODE_TOKEN = "linode_token"
HF_TOKEN = "hf_token"
# Where else each token may come from, first wins: LINODE_TOKEN is linode-cli's name, the HF names
# are huggingface_hub's.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    LINODE_TOKEN: ("MAIDER_LINODE_TOKEN", "LINODE_TOKEN"),
    HF_TOKEN: ("MAIDER_HF_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
}
LABELS = {LINODE_TOKEN: "Linode token", HF_TOKEN: "Hugging Face token"}
OP_PREFIX = "op://"

log = logging.getLogger(__name__)


MAX_TOKEN_CHARS = 256  # Linode's are 64 characters, Hugging Face's about 37: far longer is another paste


def token_shape_problem(value: str) -> str | None:
    """Why `value` (already stripped) cannot be a token, in one sentence without the value; None when
    it may be one. An op:// reference passes: it is read when the token is needed."""
    if not value:
        return "No token given"
    if value.startswith(OP_PREFIX):
        return None
    if len(value) > MAX_TOKEN_CHARS or not all(33 <= ord(c) < 127 for c in value):
        return "That is not a token: a token is one word of letters and digits, without spaces"
    return None


class SecretError(Exception):
    """A token could not be read or stored; the message is one sentence for the user, without the token."""


@dataclass(frozen=True)
class ResolvedSecret:
    """A token and where it came from; printing it never shows the token."""

    value: SecretStr
    source: str  # "keyring", "env:MAIDER_LINODE_TOKEN", ".env:HF_TOKEN", ...
    reference: str | None = None  # the op:// reference it was read through, if any

    def __repr__(self) -> str:
        via = f", reference={self.reference!r}" if self.reference else ""
        return f"ResolvedSecret(source={self.source!r}{via}, value=SecretStr('**********'))"

    def __str__(self) -> str:
        return f"token from {self.source}" + (f" via {self.reference}" if self.reference else "")


@dataclass(frozen=True)
class KeyringStatus:
    """Whether tokens can be stored in the OS keyring, and a sentence saying so."""

    available: bool
    backend: str
    message: str


def _keyring():
    """The keyring package, imported on first use: the demo (no keyring) never loads it or its
    dependencies (about 2 MiB)."""
    import keyring
    import keyring.errors

    return keyring


def _no_keyring_message(backend: str, why: str) -> str:
    names = " and ".join(f"{ENV_NAMES[name][0]}/{ENV_NAMES[name][1]}" for name in (LINODE_TOKEN, HF_TOKEN))
    return (
        f"No usable keyring backend ({backend}: {why}), so tokens cannot be saved; "
        f"set {names} in the environment or .env instead (op:// references work there too)."
    )


class Secrets:
    """Reads and stores the app's two tokens.

    `environ` stands for the process environment (also where `op` is looked up, through its PATH);
    `dotenv_values` is the raw `.env` mapping from `LoadedSettings`.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        dotenv_values: Mapping[str, str] | None = None,
        op_timeout: float = 10.0,
        use_keyring: bool = True,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._dotenv = dotenv_values or {}
        self._op_timeout = op_timeout
        # The demo must neither read a real token from the keyring nor write its fake one there:
        # with use_keyring False, tokens set during the run live in this dict and die with it.
        self._use_keyring = use_keyring
        self._memory: dict[str, str] = {}

    def get(self, name: str) -> ResolvedSecret | None:
        """The token `name` ("linode_token" or "hf_token"), or None when no source has it."""
        found = self._from_keyring(name) or self._from_env(name)
        if found is None:
            return None
        value, source = found
        reference = None
        if value.startswith(OP_PREFIX):
            reference, value = value, self._op_read(value)
        register_secret(value)
        return ResolvedSecret(SecretStr(value), source, reference)

    def has(self, name: str) -> bool:
        """Whether any source holds `name`, without resolving an `op://` reference (no subprocess)."""
        return (self._from_keyring(name) or self._from_env(name)) is not None

    def set(self, name: str, value: str) -> None:
        """Store the token `name` in the OS keyring; raises `SecretError` where there is none."""
        _check_name(name)
        value = value.strip()
        if not value:
            raise SecretError(f"The {LABELS[name]} is empty, so nothing was saved.")
        register_secret(value)
        if not self._use_keyring:
            self._memory[name] = value
            return
        status = self.keyring_status()
        if not status.available:
            raise SecretError(status.message)
        keyring = _keyring()
        try:
            keyring.set_password(SERVICE, name, value)
        except Exception as exc:  # noqa: BLE001 - backends raise anything from D-Bus to OS errors
            why = f"{status.backend}: {_why(exc)}"
            raise SecretError(f"Could not save the {LABELS[name]} in the keyring ({why}).") from None

    def delete(self, name: str) -> bool:
        """Remove the token `name` from the keyring; False when none was stored there."""
        _check_name(name)
        if not self._use_keyring:
            return self._memory.pop(name, None) is not None
        status = self.keyring_status()
        if not status.available:
            raise SecretError(status.message)
        keyring = _keyring()
        try:
            keyring.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:  # noqa: BLE001
            why = f"{status.backend}: {_why(exc)}"
            raise SecretError(f"Could not delete the {LABELS[name]} from the keyring ({why}).") from None
        return True

    def keyring_status(self) -> KeyringStatus:
        """Whether `set()` can work, checked with a harmless read."""
        try:
            backend = _keyring().get_keyring()
        except Exception as exc:  # noqa: BLE001
            return KeyringStatus(False, "unknown", _no_keyring_message("unknown", _why(exc)))
        name = getattr(backend, "name", type(backend).__name__)
        if _no_store(backend):
            why = "no secret store was found on this system"
            return KeyringStatus(False, name, _no_keyring_message(name, why))
        try:
            backend.get_password(SERVICE, "status-probe")
        except Exception as exc:  # noqa: BLE001 - a backend that raises on a read is as good as none
            return KeyringStatus(False, name, _no_keyring_message(name, _why(exc)))
        return KeyringStatus(True, name, f"Tokens are saved in the OS keyring ({name}).")

    def _from_keyring(self, name: str) -> tuple[str, str] | None:
        _check_name(name)
        if not self._use_keyring:
            value = self._memory.get(name)
            return (value, "this run only") if value else None
        keyring = _keyring()
        try:
            if _no_store(keyring.get_keyring()):
                return None  # the usual state on a headless Linux box, not worth a warning each time
            value = keyring.get_password(SERVICE, name)
        except Exception as exc:  # noqa: BLE001 - a broken keyring must not hide the env vars
            log.warning("keyring read of %s failed (%s); trying the environment", name, _why(exc))
            return None
        value = (value or "").strip()
        return (value, "keyring") if value else None

    def _from_env(self, name: str) -> tuple[str, str] | None:
        for label, mapping in (("env", self._environ), (".env", self._dotenv)):
            for var in ENV_NAMES[name]:
                value = (mapping.get(var) or "").strip()
                if value:
                    return value, f"{label}:{var}"
        return None

    def _op_read(self, reference: str) -> str:
        """Resolve a 1Password reference with `op read`, without a shell and within the timeout."""
        path = self._environ.get("PATH") or os.environ.get("PATH")
        op = shutil.which("op", path=path)
        if op is None:
            raise SecretError(
                f"{reference} is a 1Password reference but the 1Password CLI (op) is not on PATH; "
                "install it and run `op signin`, or put the token itself there."
            )
        try:
            # stdin closed: op must fail rather than wait for a password on the TUI's terminal.
            done = subprocess.run(
                [op, "read", reference],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._op_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SecretError(
                f"`op read {reference}` gave no answer within {self._op_timeout:g} s; "
                "unlock 1Password (`op signin`) and try again."
            ) from None
        except OSError as exc:
            raise SecretError(f"Could not run {op} to read {reference} ({exc.strerror}).") from None
        value = done.stdout.strip()
        if done.returncode != 0 or not value:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            detail = lines[0][:200] if lines else f"exit status {done.returncode}, no output"
            raise SecretError(
                f"`op read {reference}` failed ({redact(detail)}); "
                "check the reference and that you are signed in (`op signin`)."
            )
        return value


def _no_store(backend: object) -> bool:
    """True for keyring's stand-ins when it found no secret store: the fail, null and empty chain backends."""
    from keyring.backends import chainer, fail, null

    empty_chain = isinstance(backend, chainer.ChainerBackend) and not backend.backends
    return isinstance(backend, (fail.Keyring, null.Keyring)) or empty_chain


def _check_name(name: str) -> None:
    if name not in ENV_NAMES:
        raise ValueError(f"unknown secret {name!r}; expected one of {sorted(ENV_NAMES)}")


def _why(exc: BaseException) -> str:
    """A short, redacted reason for a backend's exception (never the token, which we registered)."""
    first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
