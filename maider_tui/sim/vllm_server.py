"""A simulated vLLM OpenAI-compatible server (aiohttp) that streams at the rate its StartupOutcome promises.

Endpoints as vLLM serves them: `/health` (503 once the engine died), `/v1/models`,
`/v1/chat/completions` and `/v1/completions` (SSE ending `data: [DONE]`, a usage chunk on
`stream_options.include_usage`), `/metrics` (Prometheus text, V1 names). Error bodies have the nested
shape of vLLM >= 0.10.1: `{"error": {"message", "type", "param", "code"}}`.

Timing is real time, never scaled by the sim's speed, so a benchmark measures the configured rate:
first token at arrival + 0.05 s + prompt / prefill rate, then tokens on an absolute timeline per
stream (each due 1 / rate after the previous one was due), so scheduling jitter never accumulates.
N running streams each get rate / (1 + 0.02 (N - 1)): a batch's total rises sublinearly. Requests
beyond max_num_seqs wait, first come first served. Prompt tokens: ceil(chars / 4) per message, plus 4
per message and 3 for the chat template; close to a BPE tokenizer on English and code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import random
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from maider_tui.models import VllmConfig
from maider_tui.sim.vllm_behaviour import StartupOutcome, extra_option
from maider_tui.sim.vllm_logs import API, ENGINE

DEFAULT_MAX_NUM_SEQS = 256  # vLLM's API-server default on GPUs under 70 GiB
BASE_TTFT_S = 0.05
BATCH_SLOWDOWN = 0.02
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                240.0, 480.0, 960.0, 1920.0, 7680.0)
_DEAD = "EngineCore encountered an issue. See stack trace (above) for the root cause."
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}
_WORDS = ("def", " parse", "_config", "(", "path", ")", ":", "\n", "    ", " return", " self", ".", "items",
          " =", " [", "]", " for", " key", " in", " value", ",", " if", " not", " None", " yield", " result",
          " async", " await", " client", " response", ".json", "()", " raise", " ValueError", " import")
DEFAULT_KEEP_ALIVE_S = 5.0  # vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE


class EngineDeadError(Exception):
    """The simulated engine died (`crash()`): what vLLM raises into every request in flight."""


@dataclass
class _Request:
    no: int
    prompt_tokens: int
    max_tokens: int
    finish: str  # "length" when max_tokens bounds the output, "stop" for a natural end
    words: list[str]
    arrived: float
    generated: int = 0

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens + self.generated,
                "completion_tokens": self.generated}


class _Histogram:
    def __init__(self, name: str, what: str, buckets: tuple[float, ...]) -> None:
        self.name, self.what, self.buckets = name, what, buckets
        self.counts, self.sum = [0] * (len(buckets) + 1), 0.0

    def observe(self, value: float) -> None:
        self.sum += value
        self.counts[next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))] += 1

    def lines(self, labels: str) -> list[str]:
        name, bounds, total = f"vllm:{self.name}", [*map(str, self.buckets), "+Inf"], 0
        out = [f"# HELP {name} Histogram of {self.what} in seconds.", f"# TYPE {name} histogram"]
        for bound, count in zip(bounds, self.counts):
            total += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {float(total)}')
        return out + [f"{name}_count{{{labels}}} {float(total)}", f"{name}_sum{{{labels}}} {self.sum}"]


def _error(status: int, message: str) -> web.Response:
    error = {"message": message, "type": _ERROR_TYPES[status], "param": None, "code": status}
    return web.json_response({"error": error}, status=status)


def _sse(payload: dict[str, Any] | str) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


def _prompt_tokens(body: dict[str, Any], chat: bool) -> int | None:
    """Tokens in the prompt (see the module docstring), None when there is none to count."""
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        contents = [m.get("content") if isinstance(m, dict) else m for m in messages]
        texts = ["".join(str(p.get("text", "")) for p in t if isinstance(p, dict)) if isinstance(t, list)
                 else str(t or "") for t in contents]  # content may be parts: [{"type": "text", "text": ...}]
        return 3 + sum(4 + math.ceil(len(t) / 4) for t in texts)
    raw = body.get("prompt")
    raw = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], (str, list)) else raw
    return len(raw) if isinstance(raw, list) else max(1, math.ceil(len(str(raw or "")) / 4))


class SimVllmServer:
    """One simulated `vllm serve` that is up: `port = await server.start()`, then `await server.stop()`.

    `on_request(path)` is called as each completion request arrives (the VM's idle tracking).
    `rate_override` (decode tok/s per stream) and `ttft_override` (seconds) let tests pin timing.
    `requests_running`, `requests_waiting`, `prompt_tokens_total`, `generation_tokens_total`: read-only.
    """

    def __init__(self, config: VllmConfig, outcome: StartupOutcome, *, seed: int = 0,
                 on_request: Callable[[str], None] | None = None) -> None:
        self.config, self.outcome = config, outcome
        self.model_name = config.served_model_name or config.model
        self.max_model_len = outcome.max_model_len or config.max_model_len or 4096
        self.max_num_seqs = config.max_num_seqs or DEFAULT_MAX_NUM_SEQS
        self.rate_override: float | None = None
        self.ttft_override: float | None = None
        self.last_request_at: float | None = None  # epoch seconds of the latest completion request
        self.requests_running = self.prompt_tokens_total = self.generation_tokens_total = 0
        self._seed, self._on_request = seed, on_request
        self._api_key = extra_option(config, "--api-key") or config.env.get("VLLM_API_KEY")
        self.requests_waiting = 0
        self._slots = asyncio.Semaphore(self.max_num_seqs)
        self._active: dict[int, _Request] = {}
        self._counted, self._dead, self._created = 0, False, time.time()
        self._finished: Counter[str] = Counter()
        self._ttft = _Histogram("time_to_first_token_seconds", "time to first token", _TTFT_BUCKETS)
        self._e2e = _Histogram("e2e_request_latency_seconds", "e2e request latency", _E2E_BUCKETS)
        self._util_rng = random.Random(seed)
        self._log: deque[str] = deque(maxlen=2000)
        self.clients: set[object] = set()  # (host, port) of every connection a request came on
        self._runner: web.AppRunner | None = None
        try:
            self.keep_alive_s = float(config.env.get("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", DEFAULT_KEEP_ALIVE_S))
        except ValueError:
            self.keep_alive_s = DEFAULT_KEEP_ALIVE_S

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0: a free port) and return the port bound."""
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/v1/chat/completions", functools.partial(self._complete, chat=True))
        app.router.add_post("/v1/completions", functools.partial(self._complete, chat=False))
        # Like vLLM's uvicorn: an idle connection is closed after VLLM_HTTP_TIMEOUT_KEEP_ALIVE s (5 by default).
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, keepalive_timeout=self.keep_alive_s)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening; streams still open are cut."""
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    def crash(self) -> None:
        """The engine dies as a GPU fault kills it: /health answers 503, requests and streams get errors."""
        if self._dead:
            return
        self._dead = True
        stamp = time.strftime("%m-%d %H:%M:%S", time.gmtime())
        self._log.extend([
            f"({ENGINE}) ERROR {stamp} [core.py:780] EngineCore encountered a fatal error.",
            f"({ENGINE}) ERROR {stamp} [core.py:780] RuntimeError: CUDA error: an illegal memory access was "
            "encountered",
            f"({API}) ERROR {stamp} [async_llm.py:480] AsyncLLM output_handler failed.",
            f"({API}) ERROR {stamp} [async_llm.py:480] vllm.v1.engine.exceptions.EngineDeadError: {_DEAD}"])

    # --- what the VM's nvidia-smi and docker logs read ----------------------------------------------

    @property
    def kv_cache_usage(self) -> float:
        """0-1: tokens held by running requests over the KV cache's capacity."""
        held = sum(r.prompt_tokens + r.generated for r in self._active.values())
        return min(1.0, held / self.outcome.kv_cache_tokens) if self.outcome.kv_cache_tokens else 0.0

    @property
    def log_lines(self) -> tuple[str, ...]:
        """Lines logged since start (access log, a crash), oldest first."""
        return tuple(self._log)

    def utilization(self) -> float:
        """GPU utilisation in percent: 0-3 idle, 85-99 while requests run, 0 once the engine died."""
        if self._dead:
            return 0.0
        if not self.requests_running:
            return round(self._util_rng.uniform(0.0, 3.0), 1)
        busy = 88.0 + 3.0 * math.log2(self.requests_running) + self._util_rng.uniform(-2.5, 1.5)
        return round(min(99.0, max(85.0, busy)), 1)

    # --- scheduling ----------------------------------------------------------------------------------

    def _stream_rate(self) -> float:
        base = self.rate_override or self.outcome.decode_tok_s or 1.0
        return base / (1.0 + BATCH_SLOWDOWN * (max(1, self.requests_running) - 1))

    def _ttft_s(self, prompt_tokens: int) -> float:
        if self.ttft_override is not None:
            return self.ttft_override
        return BASE_TTFT_S + prompt_tokens / (self.outcome.prefill_tok_s or 40.0 * self._stream_rate())

    async def _generate(self, req: _Request) -> AsyncGenerator[str, None]:
        """Wait for one of max_num_seqs slots, prefill, then yield one token each time it is due."""
        self.requests_waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.requests_waiting -= 1
        self.requests_running += 1
        loop = asyncio.get_running_loop()
        self._active[req.no] = req
        try:
            if self._dead:  # queued behind a request the crash ended
                raise EngineDeadError()
            due = loop.time() + self._ttft_s(req.prompt_tokens)
            for word in req.words:
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if self._dead:
                    raise EngineDeadError()
                if not req.generated:
                    self.prompt_tokens_total += req.prompt_tokens
                    self._ttft.observe(loop.time() - req.arrived)
                req.generated += 1
                self.generation_tokens_total += 1
                yield word
                due += 1.0 / self._stream_rate()
            self._finished[req.finish] += 1
            self._e2e.observe(loop.time() - req.arrived)
        finally:
            self._active.pop(req.no, None)
            self.requests_running -= 1
            self._slots.release()

    # --- HTTP ------------------------------------------------------------------------------------------

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        """The API key guards /v1 only (as `--api-key` does), and every request gets an access-log line."""
        response: web.StreamResponse
        self.clients.add(request.transport.get_extra_info("peername") if request.transport else None)
        if self._api_key and request.path.startswith("/v1") and \
                request.headers.get("Authorization") != f"Bearer {self._api_key}":
            response = web.json_response({"error": "Unauthorized"}, status=401)
        else:
            response = await handler(request)
        peer = f"{request.remote or '127.0.0.1'}:{41000 + len(self._log) % 20000}"
        self._log.append(f'({API}) INFO:     {peer} - "{request.method} {request.path} HTTP/1.1" '
                         f"{response.status} {response.reason}")
        return response

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(status=503 if self._dead else 200)

    async def _models(self, _: web.Request) -> web.Response:
        card = {"id": self.model_name, "object": "model", "created": int(self._created), "owned_by": "vllm",
                "root": self.config.model, "parent": None, "max_model_len": self.max_model_len}
        return web.json_response({"object": "list", "data": [card]})

    def _read(self, body: Any, chat: bool) -> _Request | web.Response:
        """Validate a request the way vLLM's OpenAI layer does; an error response when it fails."""
        if not isinstance(body, dict):
            return _error(400, "Expected a JSON object as the request body.")
        name = body.get("model") or self.model_name
        if name != self.model_name:
            return _error(404, f"The model `{name}` does not exist.")
        prompt, limit = _prompt_tokens(body, chat), self.max_model_len
        if prompt is None:
            return _error(400, "messages: Field required")
        if prompt >= limit:
            return _error(400, f"This model's maximum context length is {limit} tokens. However, your "
                          f"request has {prompt} input tokens. Please reduce the length of the input "
                          "messages.")
        asked = body.get("max_completion_tokens") or body.get("max_tokens") or (None if chat else 16)
        if asked is not None and (not isinstance(asked, int) or asked < 1):
            return _error(400, f"max_tokens must be at least 1, got {asked}.")
        if asked is not None and asked > limit - prompt:
            return _error(400, f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's "
                          f"maximum context length is {limit} tokens and your request has {prompt} input "
                          f"tokens ({asked} > {limit} - {prompt}).")
        self._counted += 1
        rng = random.Random(self._seed * 1_000_003 + self._counted)  # same seed, same text
        count = asked if asked is not None else min(rng.randint(48, 320), limit - prompt)
        return _Request(self._counted, prompt, count, "length" if asked is not None else "stop",
                        [rng.choice(_WORDS) for _ in range(count)], asyncio.get_running_loop().time())

    async def _complete(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        try:  # any content type: `curl -d '{...}'` on the VM sends no application/json header
            body = json.loads(await request.text())
        except ValueError:
            return _error(400, "Invalid JSON in the request body.")
        req = _error(500, _DEAD) if self._dead else self._read(body, chat)
        if isinstance(req, web.Response):
            return req
        self.last_request_at = time.time()
        if self._on_request:
            self._on_request(request.path)
        head: dict[str, Any] = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{random.Random(req.no).getrandbits(128):032x}",
                "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": self.model_name}
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, req, head, chat, usage)
        try:
            async with contextlib.aclosing(self._generate(req)) as tokens:
                text = "".join([w async for w in tokens])
        except EngineDeadError:
            return _error(500, _DEAD)
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": req.finish,
                                  "stop_reason": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text, "refusal": None, "tool_calls": [],
                                 "reasoning_content": None}
        else:
            choice["text"] = text
        return web.json_response({**head, "choices": [choice], "usage": req.usage()})

    async def _stream(self, request: web.Request, req: _Request, head: dict[str, Any], chat: bool,
                      include_usage: bool) -> web.StreamResponse:
        """SSE as vLLM sends it: role, a chunk per token (the last with finish_reason), usage, [DONE]."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        head = {**head, "object": head["object"] + (".chunk" if chat else "")}
        try:
            async with contextlib.aclosing(self._generate(req)) as tokens:
                async for word in tokens:
                    if chat and req.generated == 1:
                        role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                "finish_reason": None}
                        await response.write(_sse({**head, "choices": [role]}))
                    done = req.generated == req.max_tokens
                    end = {"finish_reason": req.finish, "stop_reason": None} if done else \
                        {"finish_reason": None}
                    piece = {"index": 0, **({"delta": {"content": word}} if chat else {"text": word})}
                    await response.write(_sse({**head, "choices": [{**piece, "logprobs": None, **end}]}))
            if include_usage:
                await response.write(_sse({**head, "choices": [], "usage": req.usage()}))
        except EngineDeadError:  # vLLM ends a broken stream with an error chunk, then [DONE]
            error = {"message": _DEAD, "type": "InternalServerError", "param": None, "code": 500}
            await response.write(_sse({"error": error}))
        except ConnectionError:
            return response  # the client went away: its slot is already released
        await response.write(_sse("[DONE]"))
        return response

    async def _metrics(self, _: web.Request) -> web.Response:
        labels = f'engine="0",model_name="{self.model_name}"'
        out: list[str] = []
        for name, kind, value, help_text in (
                ("num_requests_running", "gauge", self.requests_running,
                 "Number of requests in model execution batches."),
                ("num_requests_waiting", "gauge", self.requests_waiting,
                 "Number of requests waiting to be processed."),
                ("kv_cache_usage_perc", "gauge", self.kv_cache_usage,
                 "KV-cache usage. 1 means 100 percent usage."),
                ("prefix_cache_queries_total", "counter", self.prompt_tokens_total,
                 "Prefix cache queries, in terms of number of queried tokens."),
                ("prefix_cache_hits_total", "counter", 0,
                 "Prefix cache hits, in terms of number of cached tokens."),
                ("num_preemptions_total", "counter", 0, "Cumulative number of preemption from the engine."),
                ("prompt_tokens_total", "counter", self.prompt_tokens_total,
                 "Number of prefill tokens processed."),
                ("generation_tokens_total", "counter", self.generation_tokens_total,
                 "Number of generation tokens processed.")):
            out += [f"# HELP vllm:{name} {help_text}", f"# TYPE vllm:{name} {kind}",
                    f"vllm:{name}{{{labels}}} {float(value)}"]
            if kind == "counter":  # prometheus_client adds a _created sample to every counter
                out.append(f"vllm:{name.removesuffix('_total')}_created{{{labels}}} {self._created}")
        out += ["# HELP vllm:request_success_total Count of successfully processed requests.",
                "# TYPE vllm:request_success_total counter"]
        out += [f'vllm:request_success_total{{{labels},finished_reason="{why}"}} {float(self._finished[why])}'
                for why in ("stop", "length", "abort")]
        out += self._ttft.lines(labels) + self._e2e.lines(labels)
        return web.Response(text="\n".join(out) + "\n", content_type="text/plain", charset="utf-8")
