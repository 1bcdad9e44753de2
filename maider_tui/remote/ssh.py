"""One SSH connection per session, carrying everything: commands, streams, SFTP and port forwards.

The VM's host key is pinned (cloud-init installs the key we generated): verified from the first
connection, and a different key refuses for good. Drops reconnect with backoff, reported through
`on_state`; forwards keep their local port, since the listener is ours and each accepted socket
tunnels over whichever connection is current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncssh

from maider_tui.clock import Clock, SystemClock

from .ssh_errors import (
    AuthRefused, HostKeyMismatch, RemoteFileError, SshClosed, SshDropped, SshError, SshTimeout,
    SshUnreachable,
)
from .ssh_keys import KeyLike, KeyPair, generate_keypair, keypair_from_private, load_key

# The errors and keys live beside this module; importers name them from here as before.
__all__ = [
    "HOST_KEY_CHANGED", "AuthRefused", "HostKeyMismatch", "KeyPair", "RemoteFileError", "RunResult",
    "SshClosed", "SshDropped", "SshError", "SshSession", "SshTimeout", "SshUnreachable", "generate_keypair",
    "keypair_from_private",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


STREAM_READ = 65536  # characters taken at most per read of a streamed command's output

HOST_KEY_CHANGED = ("the VM's host key changed: someone may be impersonating the VM (a man-in-the-middle) "
                    "or the address now belongs to another machine; refusing to connect")
_HOST_KEY_CHANGED = HOST_KEY_CHANGED


class SshSession:
    """A supervised asyncssh connection to one VM (see the module docstring).

    `state`: connecting, connected, reconnecting, closed, or refused (host key or our key rejected).
    """

    def __init__(self, host: str, port: int = 22, *, username: str = "root",
                 client_keys: Sequence[KeyLike] = (), known_host_key: str, clock: Clock | None = None,
                 connect_timeout: float = 15, backoff: Sequence[float] = (0.5, 1, 2, 4, 8)) -> None:
        self.host, self.port, self.username = host, port, username
        self._keys = [load_key(k) for k in client_keys]
        try:
            self._host_key = asyncssh.import_public_key(known_host_key.strip())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise SshError(f"the pinned host key is not a valid public key line: {exc}") from None
        self._clock = clock or SystemClock()
        self.connect_timeout = connect_timeout
        self.backoff = tuple(backoff) or (1.0,)
        self.state = "closed"
        self.error: SshError | None = None
        self.last_exit_status: int | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._connected = asyncio.Event()
        self._listeners: list[Callable[[str], None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._forwards: dict[int, asyncio.Server] = {}
        self._tunnels: set[asyncio.Task[None]] = set()

    # --- state ------------------------------------------------------------------------------------

    def on_state(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(state)` on every change; returns a function that unsubscribes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        (self._connected.set if state == "connected" else self._connected.clear)()
        for callback in list(self._listeners):
            try:
                callback(state)
            except Exception:  # a broken listener must not break the connection
                log.exception("ssh state listener failed")

    # --- connecting -------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect once (raising a typed SshError), then keep the connection up until `close()`."""
        if self.state in ("connected", "connecting", "reconnecting"):
            return
        self._set_state("connecting")
        try:
            self._conn = await self._open()
        except SshError as exc:
            self.error = exc
            self._set_state("refused" if isinstance(exc, (HostKeyMismatch, AuthRefused)) else "closed")
            raise
        self._set_state("connected")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _open(self) -> asyncssh.SSHClientConnection:
        where = f"{self.host}:{self.port}"
        try:
            return await asyncssh.connect(
                self.host, self.port, username=self.username, client_keys=self._keys,
                known_hosts=([self._host_key], [], []), agent_path=None, config=None, password=None,
                preferred_auth="publickey", connect_timeout=self.connect_timeout,
                keepalive_interval=15, keepalive_count_max=3)
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyMismatch(_HOST_KEY_CHANGED) from None
        except asyncssh.KeyExchangeFailed as exc:
            if "host key" in str(exc).lower():  # the VM offers no key of the pinned type at all
                raise HostKeyMismatch(_HOST_KEY_CHANGED) from None
            raise SshUnreachable(f"SSH to {where} failed during key exchange: {exc}") from None
        except asyncssh.PermissionDenied:
            raise AuthRefused(f"the VM at {where} refused our SSH key (user {self.username})") from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (
                str(exc).strip() or type(exc).__name__)
            raise SshUnreachable(f"cannot reach SSH at {where}: {reason}") from None

    async def _supervise(self) -> None:
        """Wait for the connection to drop, then reconnect with backoff until it works or is closed.

        Our own loop: asyncssh does not reconnect, no kept library retries, and the loop is short. It
        waits on the injected Clock (tests drive it), and its stops are the session's own states: closed
        by us, or refused for good by a changed host key or a rejected client key.
        """
        while self.state not in ("closed", "refused"):
            conn = self._conn
            if conn is not None:
                await conn.wait_closed()
            if self.state in ("closed", "refused"):
                return
            self._conn, self._sftp = None, None
            self._set_state("reconnecting")
            attempt = 0
            while self.state == "reconnecting":
                await self._clock.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                attempt += 1
                if self.state != "reconnecting":
                    return
                try:
                    self._conn = await self._open()
                except SshError as exc:
                    self.error = exc
                    if isinstance(exc, (HostKeyMismatch, AuthRefused)):  # never retried
                        self._set_state("refused")
                        return
                    log.info("ssh reconnect to %s:%s failed: %s", self.host, self.port, exc)
                    continue
                self._set_state("connected")

    async def close(self) -> None:
        """Close forwards and the connection; the session cannot be used afterwards."""
        if self.state != "refused":
            self._set_state("closed")
        for server in self._forwards.values():
            server.close()
        self._forwards.clear()
        for task in list(self._tunnels):
            task.cancel()
        await asyncio.gather(*self._tunnels, return_exceptions=True)
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)

    async def _ready(self, wait: float | None = None) -> asyncssh.SSHClientConnection:
        """The live connection, waiting up to `wait` seconds while a reconnect is under way."""
        if self.state == "refused" and self.error is not None:
            raise SshClosed(str(self.error))
        if self.state == "closed":
            raise SshClosed("the SSH session is closed")
        if self.state != "connected":
            try:
                async with asyncio.timeout(self.connect_timeout if wait is None else wait):
                    await self._connected.wait()
            except TimeoutError:
                raise SshDropped(f"not connected to {self.host}:{self.port} ({self.state})") from None
        assert self._conn is not None  # "connected" is only ever set after _conn
        return self._conn

    # --- commands ---------------------------------------------------------------------------------

    async def run(self, cmd: str, timeout: float | None = 60) -> RunResult:
        """Run a command to its end; a drop raises SshDropped (the command may or may not have run)."""
        conn = await self._ready()
        try:
            # Our own timeout, not conn.run's: on Python 3.11 asyncio.wait_for, which asyncssh uses for it,
            # can swallow a cancel that lands as the command ends, and a cancelled switch or launch ran on.
            async with await conn.create_process(cmd) as process, asyncio.timeout(timeout):
                result = await process.wait()
        except TimeoutError:
            raise SshTimeout(f"{_short(cmd)!r} did not finish within {timeout:g} s") from None
        except (asyncssh.Error, OSError) as exc:
            raise SshDropped(f"the SSH connection dropped while running {_short(cmd)!r}: {exc}") from None
        if result.exit_status is None:
            raise SshDropped(f"the SSH connection dropped while running {_short(cmd)!r}")
        return RunResult(result.exit_status, str(result.stdout or ""), str(result.stderr or ""))

    async def stream(self, cmd: str) -> AsyncIterator[str]:
        """A long-running command's stdout as it arrives, until it ends: each item is one or more whole
        lines joined by "\n", without the last line's ending (a partial last line comes at the end).

        Whole lines as read, not one item per line: nvidia-smi prints a line per GPU at once, and
        reading them one by one cost a pass through asyncssh's reader and each generator per line.
        Raises SshDropped when the connection goes first, so the caller can resume once reconnected.
        `last_exit_status` holds the command's status when it ended on its own.
        """
        conn = await self._ready()
        try:
            process = await conn.create_process(cmd)
        except (asyncssh.Error, OSError) as exc:
            raise SshDropped(f"could not start {_short(cmd)!r}: {exc}") from None
        try:
            partial = ""
            while chunk := await process.stdout.read(STREAM_READ):
                whole, _, partial = (partial + chunk).rpartition("\n")
                if whole := whole.rstrip("\r"):
                    yield whole
            if partial := partial.rstrip("\r"):
                yield partial
            await process.wait_closed()
        except (asyncssh.Error, OSError) as exc:
            raise SshDropped(f"the SSH connection dropped during {_short(cmd)!r}: {exc}") from None
        finally:
            if process.exit_status is None:
                process.close()
        if process.exit_status is None and process.exit_signal is None:
            raise SshDropped(f"the SSH connection dropped during {_short(cmd)!r}")
        self.last_exit_status = process.exit_status

    # --- files ------------------------------------------------------------------------------------

    async def _sftp_client(self) -> asyncssh.SFTPClient:
        conn = await self._ready()
        if self._sftp is None or self._conn is not conn:
            try:
                self._sftp = await conn.start_sftp_client()
            except (asyncssh.Error, OSError) as exc:
                raise SshDropped(f"could not start SFTP: {exc}") from None
        return self._sftp

    async def put(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Upload to a temporary name, set the mode, then rename over `path`: nobody reads half a file."""
        sftp = await self._sftp_client()
        folder, name = posixpath.split(path)
        tmp = posixpath.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            await self._remove_leftovers(sftp, folder, name)
            async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=mode)) as handle:
                await handle.write(data)
            await sftp.chmod(tmp, mode)  # the server's umask may have narrowed or widened it
            try:
                await sftp.posix_rename(tmp, path)
            except asyncssh.SFTPOpUnsupported:
                with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                    await sftp.remove(path)
                await sftp.rename(tmp, path)
        except asyncssh.SFTPError as exc:
            with contextlib.suppress(asyncssh.Error, OSError):
                await sftp.remove(tmp)
            raise RemoteFileError(f"upload of {path} failed: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:
            raise SshDropped(f"the SSH connection dropped while uploading {path}: {exc}") from None

    @staticmethod
    async def _remove_leftovers(sftp: asyncssh.SFTPClient, folder: str, name: str) -> None:
        """Temporary files of earlier uploads of `name` that a dropped connection left behind."""
        try:
            entries = await sftp.listdir(folder or ".")
        except asyncssh.SFTPNoSuchFile:
            return
        for entry in entries:
            entry = entry.decode() if isinstance(entry, bytes) else entry
            if entry.startswith(f".{name}.") and entry.endswith(".tmp"):
                with contextlib.suppress(asyncssh.SFTPError):
                    await sftp.remove(posixpath.join(folder, entry))

    async def get(self, path: str) -> bytes:
        """Download a file's bytes."""
        sftp = await self._sftp_client()
        try:
            async with sftp.open(path, "rb") as handle:
                data = await handle.read()
        except asyncssh.SFTPError as exc:
            missing = isinstance(exc, asyncssh.SFTPNoSuchFile)
            raise RemoteFileError(f"{path}: no such file on the VM" if missing
                                  else f"download of {path} failed: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:
            raise SshDropped(f"the SSH connection dropped while downloading {path}: {exc}") from None
        return data if isinstance(data, bytes) else data.encode()

    # --- port forwards ----------------------------------------------------------------------------

    async def forward(self, remote_port: int, local_port: int | None = None) -> int:
        """Forward 127.0.0.1:LOCAL to the VM's localhost:REMOTE_PORT; returns LOCAL.

        A requested port in use falls back to a free one. The listener binds 127.0.0.1 only.
        """
        await self._ready()
        if remote_port in self._forwards:
            return self._forwards[remote_port].sockets[0].getsockname()[1]

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = cast("asyncio.Task[None]", asyncio.current_task())
            self._tunnels.add(task)  # so close() can end tunnels still open
            try:
                await self._tunnel(remote_port, reader, writer)
            except asyncio.CancelledError:
                # close() ended it. Returning (not re-raising) keeps asyncio's stream server from
                # logging a traceback for a connection handler that was cancelled.
                if self.state not in ("closed", "refused"):
                    raise
            finally:
                self._tunnels.discard(task)

        try:
            server = await asyncio.start_server(accept, "127.0.0.1", local_port or 0)
        except OSError:
            if not local_port:
                raise
            log.info("local port %s is taken; forwarding from a free port instead", local_port)
            server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self._forwards[remote_port] = server
        return server.sockets[0].getsockname()[1]

    async def _tunnel(self, remote_port: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            conn = await self._ready()
            remote_reader, remote_writer = await conn.open_connection("127.0.0.1", remote_port)
        except (SshError, asyncssh.Error, OSError) as exc:
            log.info("forward to VM port %s refused: %s", remote_port, exc)
            writer.close()
            return

        async def pipe(src: Any, dst: Any) -> None:
            with contextlib.suppress(asyncssh.Error, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()

        try:
            await asyncio.gather(pipe(reader, remote_writer), pipe(remote_reader, writer))
        finally:
            remote_writer.close()
            writer.close()

    def forwards(self) -> dict[int, int]:
        """remote port -> local port of the forwards this session holds."""
        return {remote: server.sockets[0].getsockname()[1] for remote, server in self._forwards.items()}


def _short(cmd: str) -> str:
    return cmd if len(cmd) <= 60 else cmd[:57] + "..."
