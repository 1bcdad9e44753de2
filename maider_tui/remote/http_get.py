"""Small HTTP/1.1 GETs over one kept-alive connection: vLLM's `/metrics`, `/health` and `/v1/models`.

The dashboard polls `/metrics` and `/health` every few seconds for as long as it is open. Through
httpx each of those GETs runs some 1,500 Python calls (request and URL models, auth and redirect
flows, the connection pool, anyio), about 1.5 ms of CPU in an app that is otherwise idle between
polls. `KeptConnection` speaks the protocol with h11, the parser httpx itself uses underneath, over
one asyncio connection that stays open between polls: a tenth of the CPU, and no new TCP connection
(so no new SSH channel through the tunnel) per poll. Streams and POSTs stay on httpx.

A kept connection the server has closed meanwhile (vLLM closes idle ones after
`VLLM_HTTP_TIMEOUT_KEEP_ALIVE` seconds) is found out on the next GET, which is then sent once more on
a new connection: GETs are safe to repeat.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11

READ_CHUNK = 65536
# Reused only while idle for less than this: servers close idle connections on their own clock
# (vLLM after 5 s unless told otherwise), and a GET that meets a closed one costs a retry.
IDLE_REUSE_S = 20.0


class GetError(Exception):
    """The GET got no complete answer: refused, reset, closed early, timed out or not HTTP."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class _Stale(Exception):
    """A reused connection was closed by the server before it answered: send again on a new one."""


@dataclass(frozen=True)
class GetResponse:
    """A complete answer; the names are httpx.Response's, so code reading either needs no branch."""

    status_code: int
    reason_phrase: str
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        charset = "utf-8"
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.text)


class KeptConnection:
    """GETs to one server (`base_url` is its root), one at a time, over a connection kept between them."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 60.0,
                 connect_timeout: float = 10.0, ssl_context: Callable[[], ssl.SSLContext] | None = None,
                 idle_reuse_s: float = IDLE_REUSE_S) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = [("Host", parts.netloc), *(headers or {}).items()]
        self._timeout, self._connect_timeout = timeout, min(connect_timeout, timeout)
        self._ssl_context, self._idle_reuse_s = ssl_context, idle_reuse_s
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._protocol: h11.Connection | None = None
        self._idle_since = 0.0
        self.connections = 0  # opened so far: tests count them

    async def get(self, path: str) -> GetResponse:
        """GET `path` (below the base URL's path); raises GetError when no complete answer came."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._get(self._prefix + path)
            except TimeoutError as exc:
                self._drop()
                raise GetError(f"timed out after {self._timeout:g} s", timed_out=True) from exc
            except (OSError, h11.ProtocolError, _Stale) as exc:
                self._drop()
                raise GetError(_reason(exc)) from exc
            except asyncio.CancelledError:
                self._drop()  # cut mid-answer: the rest of it would arrive as the next GET's answer
                raise

    async def aclose(self) -> None:
        async with self._lock:
            writer = self._writer
            self._drop()
            if writer is not None:
                try:
                    await writer.wait_closed()
                except OSError:
                    pass

    async def _get(self, target: str) -> GetResponse:
        reused = self._writer is not None and time.monotonic() - self._idle_since < self._idle_reuse_s
        if not reused:
            await self._connect()
        try:
            return await self._exchange(target)
        except (_Stale, ConnectionError):
            if not reused:
                raise
        await self._connect()
        return await self._exchange(target)

    async def _connect(self) -> None:
        self._drop()
        context = (self._ssl_context() if self._ssl_context else ssl.create_default_context()) if self._tls else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self._host, self._port, ssl=context, limit=READ_CHUNK)
        except TimeoutError as exc:
            raise OSError(f"connect timed out after {self._connect_timeout:g} s") from exc
        self._protocol = h11.Connection(h11.CLIENT)
        self.connections += 1

    async def _exchange(self, target: str) -> GetResponse:
        protocol, reader, writer = self._protocol, self._reader, self._writer
        assert protocol is not None and reader is not None and writer is not None
        if protocol.our_state is h11.DONE:
            protocol.start_next_cycle()
        writer.write(protocol.send(h11.Request(method="GET", target=target, headers=self._headers))
                     + protocol.send(h11.EndOfMessage()))
        await writer.drain()
        head: h11.Response | None = None
        body: list[bytes] = []
        answered = False
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(READ_CHUNK)
                if not data and not answered:
                    raise _Stale("the server closed the connection without answering")
                answered = True
                protocol.receive_data(data)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the server closed the connection mid-answer")
        assert head is not None
        if protocol.our_state is h11.MUST_CLOSE or protocol.their_state is not h11.DONE:
            self._drop()  # `Connection: close`, or an HTTP/1.0 server: the next GET connects anew
        else:
            self._idle_since = time.monotonic()
        content_type = next((v.decode("latin-1") for k, v in head.headers if k == b"content-type"), "")
        return GetResponse(head.status_code, head.reason.decode("latin-1"), content_type, b"".join(body))

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = self._protocol = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return text or type(exc).__name__
