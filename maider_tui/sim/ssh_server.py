"""sshd of a simulated VM: a real asyncssh server on 127.0.0.1 in front of a `SimVm`.

It keeps its port from create to delete. Until the VM is up and sshd has started, the port is bound
but not listening, so a client gets "connection refused" as from a booting machine. Only the
instance's authorized keys get in (no passwords), the host key is the one cloud-init pinned, exec
requests go to the VM's shell, SFTP to its in-memory disk, and direct-tcpip only to the VM's own
published ports (vLLM 8000, Open WebUI 3000) on localhost.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import socket
import stat as statmod
import time
from collections.abc import AsyncIterator, Awaitable

import asyncssh

from maider_tui.sim.shell import Shell
from maider_tui.sim.vm import MemFile, ShellIo, SimVm

log = logging.getLogger(__name__)

POLL_S = 0.02  # real seconds between looks at the VM's state
_LOCAL = ("127.0.0.1", "localhost", "::1", "ip6-localhost")


class VmSshd:
    """The SSH endpoint of one VM: its port, its listener, its connections, and counts of both."""

    def __init__(self, vm: SimVm, host: str = "127.0.0.1") -> None:
        self.vm = vm
        self.host = host
        self.handshakes = 0
        self.accepted = 0  # TCP connections that reached SSH, logged in or not (a refused host key too)
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._reserved: socket.socket | None = None
        self._watch: asyncio.Task[None] | None = None
        self.port = self._reserve(0)

    def _reserve(self, port: int) -> int:
        """Bind the port without listening: connections are refused, and nobody else gets it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        self._reserved = sock
        return sock.getsockname()[1]

    @property
    def listening(self) -> bool:
        return self._acceptor is not None

    def watch(self) -> None:
        """Follow the VM: listen while sshd would be up, refuse while it boots or reboots."""
        self._watch = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while not self.vm.stopped:
            ready = self.vm.sshd_ready()  # also lets the world fire a pending "vanish" fault
            if ready and not self.listening:
                await self._listen()
            elif not ready and self.listening:
                await self.go_down()
            await asyncio.sleep(POLL_S)

    async def _listen(self) -> None:
        sock, self._reserved = self._reserved, None
        self._acceptor = await asyncssh.listen(
            sock=sock, server_factory=lambda: _Sshd(self), server_host_keys=[self.vm.host_key],
            process_factory=self._process, sftp_factory=lambda chan: MemSftp(chan, self.vm),
            encoding="utf-8", allow_scp=False, line_editor=False, agent_forwarding=False,
            x11_forwarding=False, keepalive_interval=0)

    async def go_down(self, *, refuse: bool = True) -> None:
        """sshd stops: open connections drop; the port refuses again unless the VM is gone."""
        acceptor, self._acceptor = self._acceptor, None
        for conn in list(self.connections):
            conn.abort()
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()
        if refuse and self._reserved is None and not self.vm.stopped:
            self._reserve(self.port)

    async def close(self) -> None:
        """The VM was deleted: nothing answers on the port any more."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await self.go_down(refuse=False)
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def _process(self, process: asyncssh.SSHServerProcess) -> None:
        """Run one exec request through the VM's shell."""
        command = process.command
        if command is None:
            process.stderr.write("This simulated VM runs commands (ssh host CMD), not a shell.\n")
            process.exit(1)
            return
        io = ShellIo(process.stdout.write, process.stderr.write, drain=process.stdout.drain,
                     closed=process.channel.is_closing)
        try:
            status = await Shell(self.vm, io).run(command)
        except (BrokenPipeError, ConnectionError, asyncssh.Error):
            return  # the client went away mid-command
        except Exception as exc:  # a bug in the sim must read like a failed command, not hang the client
            log.exception("sim VM %s failed running %r", self.vm.instance.id, command)
            process.stderr.write(f"sim: internal error: {exc}\n")
            status = 1
        if not process.channel.is_closing():
            process.exit(status)


class _Sshd(asyncssh.SSHServer):
    """Per-connection policy: keys only, handshake counting, the drop fault, which forwards are allowed."""

    def __init__(self, sshd: VmSshd) -> None:
        self._sshd = sshd
        self._conn: asyncssh.SSHServerConnection | None = None
        self._drop: asyncio.TimerHandle | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._sshd.accepted += 1
        self._sshd.connections.add(conn)
        after = self._sshd.vm.faults.ssh_drop_after_s
        if after is not None:
            self._drop = asyncio.get_running_loop().call_later(after, conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drop is not None:
            self._drop.cancel()
        if self._conn is not None:
            self._sshd.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if username != "root":  # Linode installs the API's authorized_keys for root only
            return False
        for line in self._sshd.vm.instance.authorized_keys:
            try:
                if asyncssh.import_public_key(line.strip()).public_data == key.public_data:
                    return True
            except (asyncssh.KeyImportError, ValueError):
                continue
        return False

    def auth_completed(self) -> None:
        self._sshd.handshakes += 1

    # asyncssh documents returning forward_connection()'s coroutine here; its annotation leaves it out.
    def connection_requested(  # type: ignore[override]
            self, dest_host: str, dest_port: int, orig_host: str, orig_port: int,
    ) -> Awaitable[asyncssh.SSHForwarder]:
        if dest_host not in _LOCAL:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            "only forwards to this VM's own localhost are allowed")
        real = self._sshd.vm.service_port(dest_port)
        if real is None or self._conn is None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "Connection refused")
        return self._conn.forward_connection("127.0.0.1", real)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False  # no remote forwards: the VM never reaches back into the user's machine


class _Handle:
    def __init__(self, path: str, append: bool) -> None:
        self.path, self.append = path, append


class MemSftp(asyncssh.SFTPServer):
    """SFTP over the VM's in-memory disk: files, directories, modes, atomic rename."""

    def __init__(self, chan: asyncssh.SSHServerChannel, vm: SimVm) -> None:
        super().__init__(chan)
        self._fs = vm.files

    def _path(self, path: bytes) -> str:
        return self._fs.norm(path.decode())

    def _node(self, path: str) -> MemFile:
        node = self._fs.files.get(path)
        if node is None:
            if self._fs.is_dir(path):
                raise asyncssh.SFTPFailure(f"{path} is a directory")
            raise asyncssh.SFTPNoSuchFile(f"No such file: {path}")
        return node

    def _attrs(self, path: str) -> asyncssh.SFTPAttrs:
        node = self._fs.files.get(path)
        if node is None and not self._fs.is_dir(path):
            raise asyncssh.SFTPNoSuchFile(f"No such file: {path}")
        kind, mode, size = ((statmod.S_IFREG, node.mode, len(node.data)) if node
                            else (statmod.S_IFDIR, 0o755, 4096))
        mtime = int(node.mtime if node else time.time())
        return asyncssh.SFTPAttrs(type=1 if node else 2, size=size, uid=0, gid=0, owner="root", group="root",
                                  permissions=kind | mode, atime=mtime, mtime=mtime)

    def realpath(self, path: bytes) -> bytes:
        return self._path(path).encode()

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _Handle:
        full = self._path(path)
        exists = full in self._fs.files
        if self._fs.is_dir(full):
            raise asyncssh.SFTPFailure(f"{full} is a directory")
        if pflags & asyncssh.FXF_EXCL and exists:
            raise asyncssh.SFTPFileAlreadyExists(f"{full} exists")
        if not exists or pflags & asyncssh.FXF_TRUNC:
            if not exists and not pflags & asyncssh.FXF_CREAT:
                raise asyncssh.SFTPNoSuchFile(f"No such file: {full}")
            mode = attrs.permissions & 0o7777 if attrs.permissions is not None else 0o644
            try:
                self._fs.write(full, b"", mode if not exists else self._fs.files[full].mode)
            except OSError:
                raise asyncssh.SFTPNoSuchFile(f"No such directory: {posixpath.dirname(full)}") from None
        return _Handle(full, bool(pflags & asyncssh.FXF_APPEND))

    def close(self, file_obj: object) -> None:
        return None

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, _Handle)
        return self._node(file_obj.path).data[offset:offset + size]

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        assert isinstance(file_obj, _Handle)
        node = self._node(file_obj.path)
        body = bytearray(node.data)
        offset = len(body) if file_obj.append else offset
        body[len(body):offset] = b"\0" * max(0, offset - len(body))
        body[offset:offset + len(data)] = data
        node.data, node.mtime = bytes(body), time.time()
        return len(data)

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(self._path(path))

    lstat = stat

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert isinstance(file_obj, _Handle)
        return self._attrs(file_obj.path)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        full = self._path(path)
        if attrs.permissions is not None and full in self._fs.files:
            self._fs.files[full].mode = attrs.permissions & 0o7777
        elif full not in self._fs.files and not self._fs.is_dir(full):
            raise asyncssh.SFTPNoSuchFile(f"No such file: {full}")

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        assert isinstance(file_obj, _Handle)
        self.setstat(file_obj.path.encode(), attrs)

    def remove(self, path: bytes) -> None:
        try:
            self._fs.remove(self._path(path))
        except OSError:
            raise asyncssh.SFTPNoSuchFile(f"No such file: {self._path(path)}") from None

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        if self._path(newpath) in self._fs.files:
            raise asyncssh.SFTPFileAlreadyExists(f"{self._path(newpath)} exists")
        self.posix_rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        try:
            self._fs.rename(self._path(oldpath), self._path(newpath))
        except OSError:
            raise asyncssh.SFTPNoSuchFile(f"No such file: {self._path(oldpath)}") from None

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        try:
            self._fs.mkdir(self._path(path))
        except FileExistsError:
            raise asyncssh.SFTPFileAlreadyExists(f"{self._path(path)} exists") from None
        except OSError:
            raise asyncssh.SFTPNoSuchFile(f"No such directory: {self._path(path)}") from None

    def rmdir(self, path: bytes) -> None:
        full = self._path(path)
        if not self._fs.is_dir(full):
            raise asyncssh.SFTPNoSuchFile(f"No such directory: {full}")
        if self._fs.listdir(full):
            raise asyncssh.SFTPFailure(f"{full}: directory not empty")
        self._fs.dirs.discard(full)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        full = self._path(path)
        if not self._fs.is_dir(full):
            raise asyncssh.SFTPNoSuchFile(f"No such directory: {full}")
        for name in (".", "..", *self._fs.listdir(full)):
            target = posixpath.normpath(posixpath.join(full, name))
            yield asyncssh.SFTPName(name.encode(), attrs=self._attrs(target))
