"""VllmClient against a small aiohttp server that speaks vLLM's OpenAI-compatible protocol over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from maider_tui.remote.vllm import StreamResult, TokenEvent, VllmClient, VllmError

API_KEY = "sk-test"
FIRST_TOKEN_DELAY = 0.10   # the server's "prefill": TTFT must reflect it
TOKEN_GAP = 0.02           # between content chunks
PIECES = ["Hello", ", wor", "ld"]
METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="coder"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="coder"} 0.125
vllm:generation_tokens_total{engine="0",model_name="coder"} 259.0
"""


@dataclass
class FakeVllm:
    """State of the fake server, so tests can flip health and read what was sent."""

    healthy: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)  # the client's address of each request's connection


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "coder",
                            "choices": [] if delta is None else [{"index": 0, "delta": delta,
                                                                  "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


def build_app(state: FakeVllm) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200 if state.healthy else 503)

    async def models(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return web.json_response({"object": "list", "data": [
            {"id": "coder", "object": "model", "root": "Qwen/Qwen2.5-Coder-7B-Instruct",
             "max_model_len": 32768},
            {"id": "lora-a", "object": "model", "root": None, "max_model_len": None},
        ]})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=METRICS, content_type="text/plain")

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.requests.append(body)
        state.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if body["model"] == "missing":  # the older flat error shape
            message = f"The model `{body['model']}` does not exist."
            return web.json_response({"object": "error", "message": message, "type": "NotFoundError",
                                      "param": None, "code": 404}, status=404)
        if body["max_tokens"] > 4096:  # the newer nested shape, with a newline to flatten
            message = "max_tokens is too large: 9999.\nThis model's maximum context length is 4096 tokens."
            return web.json_response({"error": {"message": message, "type": "BadRequestError",
                                                "param": None, "code": 400}}, status=400)
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-2", "object": "chat.completion", "model": "coder",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ready"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": ""}))
        await asyncio.sleep(FIRST_TOKEN_DELAY)
        for i, piece in enumerate(PIECES):
            if i:
                await asyncio.sleep(TOKEN_GAP)
            await response.write(chunk({"content": piece}))
        if body["model"] == "broken":
            await response.write(b'data: {"error": {"message": "EngineCore died", "code": 500}}\n\n')
            return response
        await response.write(b": keep-alive comment\n\ndata: {not json\n\n")
        await response.write(chunk({"content": ""}, finish="length"))
        if body.get("stream_options", {}).get("include_usage") and body["model"] != "no-usage":
            usage = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
            await response.write(chunk(usage=usage))
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeVllm, str]]:
    state = FakeVllm()
    runner = web.AppRunner(build_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield state, f"http://{host}:{port}"
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


MESSAGES = [{"role": "user", "content": "Say hello."}]


async def test_stream_chat_tokens_usage_and_timing(server):
    state, url = server
    async with VllmClient(url, api_key=API_KEY) as client:
        events = [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=8, extra={"seed": 1})]
    tokens, result = events[:-1], events[-1]
    assert all(isinstance(e, TokenEvent) for e in tokens) and isinstance(result, StreamResult)
    assert [t.text for t in tokens] == PIECES and [t.index for t in tokens] == [0, 1, 2]
    assert result.text == "Hello, world" and result.finish_reason == "length"
    assert (result.output_tokens, result.prompt_tokens, result.usage_reported) == (4, 12, True)
    # TTFT reflects the server's prefill delay; generous upper bound for a busy CI machine.
    assert FIRST_TOKEN_DELAY * 0.9 <= result.ttft_s < FIRST_TOKEN_DELAY + 0.4
    # Gaps are per-chunk arrival differences; a stalled reader may merge two, so check the span instead.
    assert len(result.inter_token_s) == 2 and min(result.inter_token_s) >= 0
    assert result.ttft_s + sum(result.inter_token_s) >= 0.9 * (FIRST_TOKEN_DELAY + 2 * TOKEN_GAP)
    assert result.inter_token_s[0] == pytest.approx(tokens[1].arrived_at - tokens[0].arrived_at)
    assert result.e2e_s >= result.ttft_s + sum(result.inter_token_s) - 1e-9
    sent = state.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert (sent["model"], sent["max_tokens"], sent["temperature"], sent["seed"]) == ("coder", 8, 0.0, 1)


async def test_streams_one_after_another_share_one_connection(server):
    """A stream read to its end leaves its connection for the next request: a benchmark's prompts
    then do not each pay a new connection (through the tunnel, a new SSH channel) in their TTFT."""
    state, url = server
    async with VllmClient(url, api_key=API_KEY) as client:
        for _ in range(3):
            events = [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=8)]
            assert events[-1].text == "Hello, world"
    assert len(state.peers) == 3 and len(set(state.peers)) == 1


async def test_stream_chat_counts_chunks_without_a_usage_chunk(server):
    _, url = server
    async with VllmClient(url) as client:
        events = [e async for e in client.stream_chat("no-usage", MESSAGES, max_tokens=8)]
    result = events[-1]
    assert (result.output_tokens, result.prompt_tokens, result.usage_reported) == (3, None, False)


async def test_stream_error_chunk_becomes_vllm_error(server):
    _, url = server
    async with VllmClient(url) as client:
        with pytest.raises(VllmError, match="EngineCore died"):
            async for _ in client.stream_chat("broken", MESSAGES, max_tokens=8):
                pass


async def test_400_error_body_becomes_one_line_vllm_error(server):
    _, url = server
    async with VllmClient(url) as client:
        with pytest.raises(VllmError) as caught:
            async for _ in client.stream_chat("coder", MESSAGES, max_tokens=9999):
                pass
        with pytest.raises(VllmError) as non_streamed:
            await client.complete_chat("coder", MESSAGES, max_tokens=9999)
    for error in (caught.value, non_streamed.value):
        assert error.status == 400 and "\n" not in str(error)
        assert str(error).startswith("vLLM answered HTTP 400: max_tokens is too large: 9999. This model's")


async def test_404_flat_error_shape(server):
    _, url = server
    async with VllmClient(url) as client:
        with pytest.raises(VllmError, match=r"HTTP 404: The model `missing` does not exist\.") as caught:
            await client.complete_chat("missing", MESSAGES)
    assert caught.value.status == 404


async def test_complete_chat(server):
    state, url = server
    async with VllmClient(url + "/v1/") as client:  # a trailing /v1 is accepted
        done = await client.complete_chat("coder", MESSAGES, max_tokens=4)
    assert (done.text, done.finish_reason) == ("ready", "stop")
    assert (done.prompt_tokens, done.completion_tokens) == (9, 2)
    assert done.model == "coder" and done.e2e_s >= 0
    assert "stream" not in state.requests[-1]


async def test_health_200_and_503(server):
    state, url = server
    async with VllmClient(url) as client:
        assert await client.health() is True
        state.healthy = False
        assert await client.health() is False


async def test_connection_refused():
    async with VllmClient(f"http://127.0.0.1:{free_port()}", timeout=2.0) as client:
        assert await client.health() is False
        with pytest.raises(VllmError, match="Cannot reach vLLM at http://127.0.0.1:") as caught:
            await client.models()
        assert caught.value.status is None
        with pytest.raises(VllmError, match="Cannot reach vLLM"):
            async for _ in client.stream_chat("coder", MESSAGES, max_tokens=1):
                pass


async def test_models_with_and_without_the_api_key(server):
    _, url = server
    async with VllmClient(url, api_key=API_KEY) as client:
        models = await client.models()
    assert [(m.id, m.root, m.max_model_len) for m in models] == [
        ("coder", "Qwen/Qwen2.5-Coder-7B-Instruct", 32768), ("lora-a", "lora-a", None)]
    async with VllmClient(url) as anonymous:
        with pytest.raises(VllmError, match="HTTP 401: Unauthorized"):
            await anonymous.models()


async def test_metrics(server):
    _, url = server
    async with VllmClient(url) as client:
        metrics = await client.metrics()
    assert metrics.requests_running == 1.0 and metrics.kv_cache_usage == 0.125
    assert metrics.generation_tokens_total == 259.0 and metrics.engine_count == 1
