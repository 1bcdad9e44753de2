"""SSH keys: a session's client key and the VM's host key (ed25519, made here, so the first
connection is verified against a key we pinned), and the forms a key may be given in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Union

import asyncssh

from .ssh_errors import SshError


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key: the private key as OpenSSH PEM, the public key as an `ssh-ed25519 AAAA...` line."""

    private_pem: str
    public_line: str

    def private_key(self) -> asyncssh.SSHKey:
        return asyncssh.import_private_key(self.private_pem)


def generate_keypair(comment: str = "maider-tui") -> KeyPair:
    """A fresh ed25519 pair: the client key (public line to authorized_keys) or the VM's host key
    (cloud-init `ssh_keys`: ed25519_private / ed25519_public; its public line is what we pin)."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    return KeyPair(key.export_private_key("openssh").decode(),
                   key.export_public_key("openssh").decode().strip())


def keypair_from_private(private_pem: str) -> KeyPair:
    """The pair of a private key kept on disk: a session's keys are made once and read back after."""
    key = asyncssh.import_private_key(private_pem)
    return KeyPair(private_pem, key.export_public_key("openssh").decode().strip())


KeyLike = Union[KeyPair, str, PurePath, asyncssh.SSHKey]
"""A key as given: a KeyPair, private PEM text, the path of a key file, or asyncssh's own key."""


def load_key(key: KeyLike) -> asyncssh.SSHKey:
    """An asyncssh key from a key object, PEM text, a KeyPair or a path to a key file."""
    if isinstance(key, KeyPair):
        return key.private_key()
    if isinstance(key, str) and "PRIVATE KEY" in key:
        return asyncssh.import_private_key(key)
    if isinstance(key, (str, PurePath)):
        try:
            return asyncssh.read_private_key(key)
        except (OSError, asyncssh.KeyImportError) as exc:
            raise SshError(f"cannot read the SSH key {key}: {exc}") from None
    return key
