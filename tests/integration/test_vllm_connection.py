"""VllmClient's one httpx connection against real sockets: kept between polls, and every way it can fail."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from maider_tui.deploy.compose import SERVER_ENV
from maider_tui.remote.vllm import KEEPALIVE_S, VllmClient, VllmError
from maider_tui.ui.screens.dashboard import METRICS_S

METRICS = "vllm:num_requests_running{engine=\"0\",model_name=\"coder\"} 2.0\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(keepalive_s: float = 75.0, *, close: bool = False, delays: list[float] | None = None,
                ) -> AsyncIterator[tuple[str, list[object]]]:
    """An aiohttp server of `/metrics` that records the client address of each request's connection.

    `close`: it answers `Connection: close`; `delays`: it waits so long before each answer, in turn."""
    peers: list[object] = []
    waits = list(delays or [])

    async def metrics(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        await asyncio.sleep(waits.pop(0) if waits else 0)
        return web.Response(text=METRICS, content_type="text/plain",
                            headers={"Connection": "close"} if close else None)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_s)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", peers
    finally:
        await runner.cleanup()


async def raw_server(answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_an_idle_connection_outlives_the_dashboard_poll_and_not_vllms_own_keep_alive():
    assert METRICS_S < KEEPALIVE_S < float(SERVER_ENV["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"])


async def test_polls_share_one_connection():
    async with serve() as (url, peers), VllmClient(url) as vllm:
        readings = [await vllm.metrics() for _ in range(3)]
    assert [r.requests_running for r in readings] == [2.0] * 3
    assert len(peers) == 3 and len(set(peers)) == 1


async def test_the_connection_is_kept_for_as_long_as_asked_and_no_longer():
    async with serve() as (url, peers):
        async with VllmClient(url, keepalive_s=5.0) as kept:
            await kept.metrics()
            await asyncio.sleep(0.4)
            await kept.metrics()
        async with VllmClient(url, keepalive_s=0.1) as dropped:
            await dropped.metrics()
            await asyncio.sleep(0.4)
            await dropped.metrics()
    assert len(set(peers[:2])) == 1 and len(set(peers[2:])) == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error():
    async with serve(keepalive_s=0.05) as (url, peers), VllmClient(url) as vllm:
        assert (await vllm.metrics()).requests_running == 2.0
        await asyncio.sleep(0.3)  # the server's keep-alive (0.05 s) runs out
        assert (await vllm.metrics()).requests_running == 2.0
    assert len(peers) == 2 and len(set(peers)) == 2


async def test_a_get_the_server_drops_unanswered_on_a_kept_connection_is_sent_again():
    """The server closes the kept connection just as the next poll goes out (too late for an idle
    check to see it): the GET is sent once more, on a new connection, and the poll succeeds."""
    connections: list[int] = []

    async def once_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        await reader.readuntil(b"\r\n\r\n")
        body = METRICS.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the next GET arrives on the kept connection ...
        writer.close()  # ... and is dropped unanswered

    server, url = await raw_server(once_per_connection)
    async with server, VllmClient(url, timeout=2.0) as vllm:
        first, second = await vllm.metrics(), await vllm.metrics()
    assert (first.requests_running, second.requests_running, len(connections)) == (2.0, 2.0, 2)


async def test_a_post_the_server_drops_unanswered_is_not_sent_again():
    requests: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server, url = await raw_server(drop)
    async with server, VllmClient(url, timeout=2.0) as vllm:
        with pytest.raises(VllmError, match="Cannot reach vLLM"):
            await vllm.complete_chat("coder", [{"role": "user", "content": "hi"}])
    assert len(requests) == 1


async def test_connection_close_starts_a_new_connection():
    async with serve(close=True) as (url, peers), VllmClient(url) as vllm:
        await vllm.metrics()
        await vllm.metrics()
    assert len(set(peers)) == 2


async def test_a_get_cancelled_midway_leaves_the_next_one_a_clean_answer():
    async with serve(delays=[0, 1]) as (url, peers), VllmClient(url) as vllm:
        await vllm.metrics()
        slow = asyncio.create_task(vllm.metrics())
        await asyncio.sleep(0.2)  # the request is out, its answer not yet
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        answer = await vllm.metrics()
    assert answer.requests_running == 2.0 and len(peers) == 3


async def test_refused():
    async with VllmClient(f"http://127.0.0.1:{free_port()}", timeout=2.0) as vllm:
        assert await vllm.health() is False
        with pytest.raises(VllmError, match=r"Cannot reach vLLM at http://127.0.0.1:\d+: connection refused"):
            await vllm.metrics()


async def test_a_server_that_never_answers_times_out():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        await asyncio.sleep(5)

    server, url = await raw_server(silent)
    async with server, VllmClient(url, timeout=0.2) as vllm:
        with pytest.raises(VllmError, match="timed out"):
            await vllm.metrics()
        assert await vllm.health() is False


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it",  # closed mid-body
    b"",  # closed at once on a fresh connection
    b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP at all
])
async def test_broken_answers_are_errors_not_hangs(answer):
    connections: list[int] = []

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.read(1000)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, url = await raw_server(broken)
    async with server, VllmClient(url, timeout=2.0) as vllm:
        with pytest.raises(VllmError, match="Cannot reach vLLM"):
            await vllm.metrics()
        # and again: a failed connection is not reused
        with pytest.raises(VllmError, match="Cannot reach vLLM"):
            await vllm.metrics()
        assert await vllm.health() is False
    assert len(connections) >= 3
