"""KeptConnection against real sockets: one connection kept between GETs, and every way it can fail."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from maider_tui.remote.http_get import GetError, KeptConnection
from maider_tui.remote.vllm import VllmClient, VllmError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(keepalive_s: float = 75.0) -> AsyncIterator[tuple[str, list[object]]]:
    """An aiohttp server that records the client address of each request's connection."""
    peers: list[object] = []

    async def hello(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        closing = request.query.get("close") == "1"
        await asyncio.sleep(float(request.query.get("delay", 0)))
        return web.Response(text="héllo", content_type="text/plain", charset="utf-8",
                            headers={"Connection": "close"} if closing else None)

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_s)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", peers
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def kept_to(url: str, **options: float) -> AsyncIterator[KeptConnection]:
    kept = KeptConnection(url, **options)
    try:
        yield kept
    finally:
        await kept.aclose()


async def raw_server(answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_gets_share_one_connection():
    async with serve() as (url, peers), kept_to(url) as kept:
        answers = [await kept.get("/hello") for _ in range(3)]
    assert [(a.status_code, a.text) for a in answers] == [(200, "héllo")] * 3
    assert kept.connections == 1 and len(set(peers)) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error():
    async with serve(keepalive_s=0.05) as (url, peers), kept_to(url) as kept:
        assert (await kept.get("/hello")).status_code == 200
        await asyncio.sleep(0.3)  # the server's keep-alive (0.05 s) runs out
        assert (await kept.get("/hello")).status_code == 200
    assert kept.connections == 2 and len(set(peers)) == 2


async def test_connection_close_and_long_idle_start_a_new_connection():
    async with serve() as (url, peers):
        async with kept_to(url, idle_reuse_s=0.0) as never_reused:  # as if every GET came after a long pause
            await never_reused.get("/hello")
            await never_reused.get("/hello")
        async with kept_to(url) as kept:
            await kept.get("/hello?close=1")
            await kept.get("/hello")
    assert never_reused.connections == kept.connections == 2 and len(set(peers)) == 4


async def test_a_get_cancelled_midway_leaves_the_next_one_a_clean_connection():
    async with serve() as (url, _), kept_to(url) as kept:
        await kept.get("/hello")
        slow = asyncio.create_task(kept.get("/hello?delay=1"))
        await asyncio.sleep(0.2)  # the request is out, its answer not yet
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        answer = await kept.get("/hello")
    assert (answer.status_code, answer.text, kept.connections) == (200, "héllo", 2)


async def test_refused():
    kept = KeptConnection(f"http://127.0.0.1:{free_port()}", timeout=2.0)
    with pytest.raises(GetError, match="connection refused"):
        await kept.get("/hello")


async def test_a_server_that_never_answers_times_out():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        await asyncio.sleep(5)

    server, url = await raw_server(silent)
    kept = KeptConnection(url, timeout=0.2)
    async with server:
        with pytest.raises(GetError, match="timed out after 0.2 s") as caught:
            await kept.get("/hello")
    assert caught.value.timed_out


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it",  # closed mid-body
    b"",  # closed at once on a fresh connection
    b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP at all
])
async def test_broken_answers_are_errors_not_hangs(answer):
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, url = await raw_server(broken)
    kept = KeptConnection(url, timeout=2.0)
    async with server:
        with pytest.raises(GetError):
            await kept.get("/hello")
        with pytest.raises(GetError):  # and again: a failed connection is not reused
            await kept.get("/hello")
    assert kept.connections == 2


async def test_vllm_client_errors_from_the_kept_connection():
    async with VllmClient(f"http://127.0.0.1:{free_port()}", timeout=2.0) as vllm:
        assert await vllm.health() is False
        with pytest.raises(VllmError, match=r"Cannot reach vLLM at http://127.0.0.1:\d+: connection refused"):
            await vllm.metrics()
