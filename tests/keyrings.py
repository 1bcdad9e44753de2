"""A keyring backend for the tests: every test runs with one installed (conftest's `memory_keyring`)."""

from __future__ import annotations

import keyring.backend
import keyring.errors
from keyring.compat import properties


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring in a dict: install it with `keyring.set_keyring(MemoryKeyring())`."""

    @properties.classproperty
    def priority(cls) -> float:
        # keyring registers every backend class; refusing a priority keeps auto-detection from ever
        # choosing this one over a real keyring (or over saying that there is none).
        raise RuntimeError("MemoryKeyring is only used when installed explicitly")

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(f"no {username} stored for {service}")
