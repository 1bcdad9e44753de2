"""The simulated vLLM server over real HTTP: the official openai client, the app's VllmClient, timing,
/metrics, errors, queueing beyond max_num_seqs, and an engine crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from openai import AsyncOpenAI, NotFoundError

from maider_tui import catalog
from maider_tui.remote.vllm import StreamResult, VllmClient, VllmError, parse_metrics
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.vllm_behaviour import config_from_args, startup_outcome
from maider_tui.sim.vllm_server import SimVllmServer

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
RATE = 400.0  # tok/s per stream: fast enough for quick tests, slow enough to time
MESSAGES = [{"role": "user", "content": "Write a function that parses a config file."}]


def make_server(*flags: str, env: dict[str, str] | None = None, **kwargs: object) -> SimVllmServer:
    config = config_from_args([MODEL, "--served-model-name", "coder", "--max-model-len", "8192", *flags], env)
    outcome = startup_outcome(config, catalog.gpu_type("g2-gpu-rtx4000a1-s"), catalog.model(MODEL),
                              faults=SimFaults())
    assert outcome.ok
    server = SimVllmServer(config, outcome, seed=7, **kwargs)  # type: ignore[arg-type]
    server.rate_override = RATE
    return server


@pytest.fixture
async def served() -> AsyncIterator[tuple[SimVllmServer, str]]:
    server = make_server()
    port = await server.start()
    yield server, f"http://127.0.0.1:{port}"
    await server.stop()


async def test_official_openai_client_streams_with_usage(served):
    server, url = served
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x")
    stream = await client.chat.completions.create(
        model="coder", messages=MESSAGES, max_tokens=12, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 12 and content[-1].choices[0].finish_reason == "length"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens == 12
    assert usage.usage.prompt_tokens > 0 and usage.usage.total_tokens == usage.usage.prompt_tokens + 12
    whole = await client.chat.completions.create(model="coder", messages=MESSAGES, max_tokens=5)
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 5
    assert whole.choices[0].message.role == "assistant" and whole.choices[0].message.content
    text = await client.completions.create(model="coder", prompt="def parse(", max_tokens=4)
    assert text.object == "text_completion" and text.usage.completion_tokens == 4 and text.choices[0].text
    streamed = await client.completions.create(model="coder", prompt=[1, 2, 3], max_tokens=3, stream=True)
    pieces = [c async for c in streamed]
    assert [p.choices[0].finish_reason for p in pieces] == [None, None, "length"]
    models = await client.models.list()
    assert [m.id for m in models.data] == ["coder"] and models.data[0].owned_by == "vllm"
    with pytest.raises(NotFoundError):
        await client.chat.completions.create(model="gpt-4", messages=MESSAGES, max_tokens=2)
    await client.close()
    assert server.last_request_at is not None


async def test_vllm_client_measures_the_configured_rate_and_ttft(served):
    server, url = served
    server.ttft_override = 0.05
    async with VllmClient(url) as client:
        events = [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=80)]
    result = events[-1]
    assert isinstance(result, StreamResult) and result.usage_reported and result.output_tokens == 80
    measured = (result.output_tokens - 1) / sum(result.inter_token_s)
    assert measured == pytest.approx(RATE, rel=0.08)  # four workers share two cores in the suite
    assert result.ttft_s == pytest.approx(0.05, abs=0.030)


async def test_ttft_follows_the_prompt_length(served):
    server, url = served
    prompt = [{"role": "user", "content": "x" * 1600}]  # ~400 prompt tokens
    async with VllmClient(url) as client:
        result = [e async for e in client.stream_chat("coder", prompt, max_tokens=2)][-1]
    expected = 0.05 + result.prompt_tokens / server.outcome.prefill_tok_s
    assert 400 < result.prompt_tokens < 420
    assert result.ttft_s == pytest.approx(expected, abs=0.02)


async def test_metrics_count_tokens_in_vllm_v1_names(served):
    server, url = served
    async with VllmClient(url) as client:
        before = await client.metrics()
        [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=10)]
        after = await client.metrics()
    async with httpx.AsyncClient() as http:
        raw = (await http.get(f"{url}/metrics")).text
    assert parse_metrics(raw).generation_tokens_total == after.generation_tokens_total
    assert before.reported and before.generation_tokens_total == 0
    assert after.generation_tokens_total == 10 and after.prompt_tokens_total > 0
    assert after.model_names == ("coder",) and after.engine_count == 1
    assert after.kv_cache_usage == 0.0 and after.requests_running == 0
    for line in ("# TYPE vllm:generation_tokens_total counter", "vllm:num_preemptions_total",
                 "# TYPE vllm:time_to_first_token_seconds histogram",
                 'vllm:num_requests_waiting{engine="0",model_name="coder"}'):
        assert line in raw
    assert server.generation_tokens_total == 10 and server.prompt_tokens_total == after.prompt_tokens_total


async def test_errors_use_vllms_shape(served):
    _, url = served
    async with httpx.AsyncClient(base_url=url) as http:
        missing = await http.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES})
        too_long = await http.post("/v1/chat/completions",
                                   json={"model": "coder", "messages": MESSAGES, "max_tokens": 9000})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "The model `nope` does not exist.",
                                        "type": "NotFoundError", "param": None, "code": 404}}
    assert too_long.status_code == 400
    assert too_long.json()["error"]["message"].startswith(
        "'max_tokens' or 'max_completion_tokens' is too large: 9000. This model's maximum context length "
        "is 8192 tokens")
    async with VllmClient(url) as client:
        with pytest.raises(VllmError, match=r"HTTP 404: The model `nope` does not exist\.") as caught:
            await client.complete_chat("nope", MESSAGES)
    assert caught.value.status == 404


async def test_requests_above_max_num_seqs_wait():
    server = make_server("--max-num-seqs", "2")
    url = f"http://127.0.0.1:{await server.start()}"
    try:
        async with VllmClient(url) as client:
            async def one() -> StreamResult:
                # 0.3 s a stream: room for all four to arrive on a loaded machine before two finish
                return [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=120)][-1]

            tasks = [asyncio.create_task(one()) for _ in range(4)]
            for _ in range(200):  # until all four reached the server (slow on a loaded machine)
                if server.requests_running + server.requests_waiting == 4:
                    break
                await asyncio.sleep(0.01)
            assert (server.requests_running, server.requests_waiting) == (2, 2)
            seen = await client.metrics()
            assert (seen.requests_running, seen.requests_waiting) == (2, 2)
            assert 85 <= server.utilization() <= 99 and 0 < seen.kv_cache_usage < 1
            results = await asyncio.gather(*tasks)
        assert all(r.output_tokens == 120 for r in results)
        first, last = sorted(r.ttft_s for r in results)[0], sorted(r.ttft_s for r in results)[-1]
        assert last > first + 0.05  # the queued ones waited for a slot
        assert (server.requests_running, server.requests_waiting) == (0, 0)
        assert server.utilization() <= 3
    finally:
        await server.stop()


async def test_batching_slows_each_stream_gently():
    server = make_server()
    url = f"http://127.0.0.1:{await server.start()}"
    server.ttft_override = 0.0
    # 8 streams at 400 tok/s each would be ~2,700 chunks/s through one Python loop: on a busy 2-core
    # machine the client, not the sim, would set the pace. 100 tok/s keeps the sim in charge.
    rate = 100.0
    server.rate_override = rate
    try:
        async with VllmClient(url) as client:
            async def one() -> StreamResult:
                return [e async for e in client.stream_chat("coder", MESSAGES, max_tokens=30)][-1]

            results = await asyncio.gather(*(one() for _ in range(8)))
        rates = [(r.output_tokens - 1) / sum(r.inter_token_s) for r in results]
        for measured in rates:  # 8 streams: each at 1 / (1 + 0.02 x 7) of the single-stream rate
            assert measured == pytest.approx(rate / 1.14, rel=0.08)  # still tells 1.14 from none on busy cores
    finally:
        await server.stop()


async def test_crash_makes_health_fail_and_ends_streams(served):
    server, url = served
    async with VllmClient(url) as client:
        assert await client.health() is True

        async def long_stream() -> None:
            async for _ in client.stream_chat("coder", MESSAGES, max_tokens=400):
                pass

        running = asyncio.create_task(long_stream())
        await asyncio.sleep(0.1)
        server.crash()
        with pytest.raises(VllmError, match="EngineCore encountered an issue"):
            await running
        assert await client.health() is False
        with pytest.raises(VllmError) as caught:
            await client.complete_chat("coder", MESSAGES)
        assert caught.value.status == 500
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/health")).status_code == 503
    assert any("EngineDeadError" in line for line in server.log_lines)
    assert server.utilization() == 0.0


async def test_api_key_guards_v1_only():
    server = make_server("--api-key", "sk-sim")
    url = f"http://127.0.0.1:{await server.start()}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/v1/models")).status_code == 401
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
        async with VllmClient(url, api_key="sk-sim") as client:
            assert [m.id for m in await client.models()] == ["coder"]
    finally:
        await server.stop()


async def test_same_seed_same_text_and_on_request_sees_each_completion():
    seen: list[str] = []
    texts = []
    for _ in range(2):
        server = make_server(on_request=seen.append)
        url = f"http://127.0.0.1:{await server.start()}"
        try:
            async with VllmClient(url) as client:
                texts.append((await client.complete_chat("coder", MESSAGES, max_tokens=6)).text)
                assert (await client.models())[0].max_model_len == 8192  # not a completion: not reported
        finally:
            await server.stop()
    assert texts[0] == texts[1] and texts[0]
    assert seen == ["/v1/chat/completions", "/v1/chat/completions"]
    curl_style = make_server()  # a body without a JSON content type, as `curl -d` sends it
    url = f"http://127.0.0.1:{await curl_style.start()}"
    try:
        async with httpx.AsyncClient() as http:
            body = '{"model": "coder", "prompt": "def", "max_tokens": 2}'
            answer = await http.post(f"{url}/v1/completions", content=body,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 2
    finally:
        await curl_style.stop()


async def test_vllm_polls_keep_one_connection_to_the_sims_server_for_as_long_as_it_keeps_it():
    """The compose file sets VLLM_HTTP_TIMEOUT_KEEP_ALIVE; the sim's server, like vLLM, honours it."""
    seen: list[int] = []

    async def poll(keep_alive: str) -> int:
        server = make_server(env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": keep_alive})
        port = await server.start()
        try:
            async with VllmClient(f"http://127.0.0.1:{port}", timeout=5.0) as vllm:
                for _ in range(3):
                    await vllm.metrics()
                    assert await vllm.health()
                    await asyncio.sleep(0.15)
            seen.append(len(server.clients))
        finally:
            await server.stop()
        return seen[-1]

    assert await poll("30") == 1
    assert await poll("0.05") == 3  # closed between polls: each poll reconnects, none fails
