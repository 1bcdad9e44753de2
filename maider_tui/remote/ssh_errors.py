"""What can go wrong over SSH, each as one line a user can act on."""

from __future__ import annotations


class SshError(Exception):
    """Anything that went wrong over SSH, as one line a user can act on."""


class HostKeyMismatch(SshError):
    """The VM presented a host key other than the pinned one. Never retried."""


class AuthRefused(SshError):
    """The VM does not accept our key."""


class SshUnreachable(SshError):
    """No SSH connection could be made (refused, timed out, reset during the handshake)."""


class SshDropped(SshError):
    """The connection dropped under a command or stream; the session reconnects on its own."""


class SshTimeout(SshError):
    """A command ran past its timeout."""


class SshClosed(SshError):
    """The session was closed, or refused for good."""


class RemoteFileError(SshError):
    """An SFTP transfer failed (missing file, no such directory ...)."""
