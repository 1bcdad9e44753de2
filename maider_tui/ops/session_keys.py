"""A session's SSH keys: a client key for its VM and the VM's host key, made once per session.

Both are written 0600 under the session's folder before anything is created, and kept until the
session ends (destroy removes the folder): a resumed launch reads them back, so a VM that a dead
run's create made, found now or later, still answers to them and is still pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from maider_tui.ops.session_files import client_key_path, host_key_path, write_private
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh_keys import KeyPair, generate_keypair, keypair_from_private
from maider_tui.store import Store


def session_keys(paths: AppPaths, store: Store, name: str, *, vm_exists: bool, resumed: bool,
                 warn: Callable[[str], None]) -> tuple[str, str, KeyPair | None]:
    """(client private PEM, client public line, host KeyPair or None when the VM already exists).

    A fresh launch makes both keys and pins the host key in the record; a resumed one reuses the
    kept pair when it matches the pinned key. FileNotFoundError: the VM exists but its client key
    is gone, so it cannot be reached.
    """
    path, host_path = client_key_path(paths, name), host_key_path(paths, name)
    if vm_exists:
        if not path.exists():
            raise FileNotFoundError(f"the SSH key of {name} is missing ({path}), so its VM cannot be reached; "
                                    "destroy the VM and launch again")
        return path.read_text(), "", None
    kept = _kept(path, host_path, store.session(name).host_key, name, warn) if resumed else None
    if kept is not None:
        client, host = kept
        return client.private_pem, client.public_line, host
    client = generate_keypair(f"maider-tui {name}")
    host = generate_keypair(f"{name} host")
    write_private(path, client.private_pem)
    write_private(host_path, host.private_pem)
    store.update_session(name, host_key=host.public_line)
    return client.private_pem, client.public_line, host


def _kept(path: Path, host_path: Path, pinned: str | None, name: str,
          warn: Callable[[str], None]) -> tuple[KeyPair, KeyPair] | None:
    """The keys an earlier run of this session made, if both are there and the host key is the pinned one."""
    if not (path.exists() and host_path.exists()):
        return None
    try:
        client = keypair_from_private(path.read_text())
        host = keypair_from_private(host_path.read_text())
    except (OSError, ValueError) as exc:
        warn(f"The kept SSH keys of {name} could not be read ({exc}); making new ones.")
        return None
    if pinned and host.public_line.split()[:2] != pinned.split()[:2]:
        return None  # not the key the record pins: a leftover, never trusted
    return client, host
