"""vLLM's OpenAI-compatible server: an async client (`/metrics` is read by `vllm_metrics.parse_metrics`).

`VllmClient` sends everything (the GETs of `/health`, `/metrics` and
`/v1/models`, polled while a session is watched, and the completions and streams) through one
`httpx.AsyncClient` whose connection is kept between polls; every failure it reports is a `VllmError`
with a one-line message fit for the log pane.

The streams' server-sent events are read in `stream_chat` (httpx has no reader for them; httpx-sse
would be a new dependency for one prefix test), the Prometheus text in `vllm_metrics.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from maider_tui.clock import Clock, SystemClock
from maider_tui.remote.vllm_metrics import VllmMetrics, parse_metrics
from maider_tui.tls import shared_context

# parse_metrics and VllmMetrics are named from here too (the contract `remote.vllm.parse_metrics`).
__all__ = ["KEEPALIVE_S", "ChatCompletion", "ModelInfo", "StreamResult", "TokenEvent", "VllmClient",
           "VllmError", "VllmMetrics", "parse_metrics"]

# An idle connection is kept this long: past the dashboard's 5 s poll, so each poll reuses it (through
# the tunnel, a new connection is a new SSH channel), and short of vLLM's own limit, which the compose
# file sets to 30 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE). A server that closes sooner (vLLM's default is 5 s)
# is seen by httpx before reuse, as a socket readable while idle, and a new connection is opened.
KEEPALIVE_S = 20.0


class VllmError(Exception):
    """A failed call to vLLM; `str()` is one line saying what happened, `status` the HTTP code if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        line = " ".join(str(message).split())  # bodies and tracebacks carry newlines; the log pane can't
        super().__init__(line if len(line) <= 300 else line[:299] + "…")
        self.status = status


@dataclass(frozen=True)
class ModelInfo:
    """One entry of `GET /v1/models`: the served name, the weights it came from, its context limit."""

    id: str
    root: str
    max_model_len: int | None = None


@dataclass(frozen=True)
class TokenEvent:
    """A streamed piece of output and when it arrived (the client clock's `monotonic()`)."""

    text: str
    arrived_at: float
    index: int


@dataclass(frozen=True)
class StreamResult:
    """The last event of `stream_chat`: timings and token counts of the whole request."""

    ttft_s: float | None
    inter_token_s: tuple[float, ...]
    output_tokens: int
    prompt_tokens: int | None
    e2e_s: float
    finish_reason: str | None
    text: str
    usage_reported: bool


StreamEvent = TokenEvent | StreamResult


@dataclass(frozen=True)
class ChatCompletion:
    """A non-streamed completion, e.g. the readiness test."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    e2e_s: float
    model: str


def _body_message(body: Any) -> str | None:
    """vLLM's error text from the shapes it has used: `message`, `error.message`, FastAPI's `detail`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    found = ((error.get("message") if isinstance(error, dict) else error)
             or body.get("message") or body.get("detail"))
    return None if not found else found if isinstance(found, str) else json.dumps(found)


def _http_error(response: httpx.Response) -> VllmError:
    try:
        message = _body_message(response.json())
    except ValueError:
        message = response.text.strip() or None
    status = response.status_code
    summary = f"vLLM answered HTTP {status}: {message}" if message else (
        f"vLLM answered HTTP {status} {response.reason_phrase}".rstrip())
    return VllmError(summary, status=status)


def _refused(exc: BaseException | None) -> bool:
    """Whether a connection refusal is behind `exc` (anyio wraps it in "All connection attempts failed")."""
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(_refused(inner) for inner in exc.exceptions)
        exc = exc.__cause__ or exc.__context__
    return False


def _transport_error(url: str, exc: httpx.TransportError) -> VllmError:
    reason = str(exc).strip() or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        reason = f"timed out ({type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError) and _refused(exc):
        reason = "connection refused"
    return VllmError(f"Cannot reach vLLM at {url}: {reason}")


def _chat_body(model: str, messages: Sequence[Mapping[str, Any]], max_tokens: int, temperature: float,
               extra: Mapping[str, Any] | None) -> dict[str, Any]:
    # `extra` (seed, top_p, ignore_eos ...) goes first so it can never override the core fields.
    return {**dict(extra or {}), "model": model, "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens, "temperature": temperature}


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise VllmError(f"vLLM sent a {what} that is not the expected JSON", status=response.status_code)
    return payload


class VllmClient:
    """Async client for one vLLM server; use as `async with VllmClient(url) as vllm: ...`.

    `base_url` is the server root (`http://127.0.0.1:8000`, a trailing `/v1` is accepted). `transport`
    lets tests and the simulator plug in; `clock.monotonic()` times streamed tokens.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None, clock: Clock | None = None,
                 keepalive_s: float = KEEPALIVE_S) -> None:
        root = base_url.rstrip("/")
        self.base_url = root[:-3] if root.endswith("/v1") else root
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, transport=transport,
                                       verify=shared_context(),
                                       limits=httpx.Limits(max_connections=100, max_keepalive_connections=20,
                                                           keepalive_expiry=keepalive_s),
                                       timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self._clock = clock or SystemClock()

    async def __aenter__(self) -> VllmClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the kept connection."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to one request, any status; a VllmError when none came.

        A GET the server dropped before answering (`RemoteProtocolError`: it closed a kept connection
        just as the request went out, too late for httpx's check of an idle socket) is sent once more,
        on a new connection. This one retry is ours because httpx retries only connects, and a GET is
        safe to repeat; a POST is not, and is never sent twice.
        """
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.RemoteProtocolError as exc:
            if method != "GET":
                raise _transport_error(self.base_url, exc) from exc
        except httpx.TransportError as exc:
            raise _transport_error(self.base_url, exc) from exc
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _transport_error(self.base_url, exc) from exc

    async def _ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _http_error(response)
        return response

    async def health(self) -> bool:
        """True when `/health` answers 200; False while loading (refused), dead (503) or unreachable."""
        try:
            response = await self._request("GET", "/health")
        except VllmError:
            return False
        return response.status_code == 200

    async def models(self) -> list[ModelInfo]:
        """The models the server serves, from `GET /v1/models`."""
        entries = _json(await self._ok("GET", "/v1/models"), "model list").get("data") or []
        return [
            ModelInfo(id=str(e["id"]), root=str(e.get("root") or e["id"]),
                      max_model_len=e["max_model_len"] if isinstance(e.get("max_model_len"), int) else None)
            for e in entries if isinstance(e, dict) and e.get("id")
        ]

    async def metrics(self) -> VllmMetrics:
        """Scrape and parse `/metrics`."""
        response = await self._ok("GET", "/metrics")
        return parse_metrics(response.text)

    async def stream_chat(self, model: str, messages: Sequence[Mapping[str, Any]], *, max_tokens: int,
                          temperature: float = 0.0, extra: Mapping[str, Any] | None = None,
                          ) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion: a `TokenEvent` per content chunk, then one `StreamResult`.

        Output tokens come from the server's usage chunk (`stream_options.include_usage`) when it
        sends one, else from the number of content chunks (which undercounts when chunks merge).
        """
        body = _chat_body(model, messages, max_tokens, temperature, extra)
        body["stream"] = True
        body["stream_options"] = {**dict(body.get("stream_options") or {}), "include_usage": True}
        arrivals: list[float] = []
        pieces: list[str] = []
        usage: Mapping[str, Any] | None = None
        finish_reason: str | None = None
        start = self._clock.monotonic()
        try:
            async with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _http_error(response)
                done = False
                async for line in response.aiter_lines():
                    # Server-sent events, read here: httpx has no reader for them, and vLLM's are one
                    # `data:` line each, so a prefix test is the whole parser (comments, ids: skipped).
                    data = line[5:].strip() if line.startswith("data:") else ""
                    if done or data == "[DONE]":
                        # Read on to the body's end rather than leave: an unfinished response closes
                        # its connection, and the next request would pay for a new one (a new channel
                        # through the tunnel) inside its time to first token.
                        done = True
                        continue
                    try:
                        chunk = json.loads(data) if data else None
                    except ValueError:
                        chunk = None  # a torn or foreign line must not end a benchmark run
                    if not isinstance(chunk, dict):
                        continue
                    if chunk.get("error") or chunk.get("object") == "error":
                        raise VllmError(f"vLLM stopped the stream: {_body_message(chunk)}")
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        # Reasoning models stream their thinking first; it is generated output too.
                        text = (delta.get("content") or delta.get("reasoning_content")
                                or delta.get("reasoning"))
                        if text:
                            now = self._clock.monotonic()
                            arrivals.append(now)
                            pieces.append(text)
                            yield TokenEvent(text=text, arrived_at=now, index=len(arrivals) - 1)
                        if choice.get("finish_reason"):
                            finish_reason = str(choice["finish_reason"])
        except httpx.TransportError as exc:
            raise _transport_error(self.base_url, exc) from exc
        end = self._clock.monotonic()
        completion = usage.get("completion_tokens") if usage else None
        prompt = usage.get("prompt_tokens") if usage else None
        yield StreamResult(
            ttft_s=arrivals[0] - start if arrivals else None,
            inter_token_s=tuple(b - a for a, b in zip(arrivals, arrivals[1:])),
            output_tokens=completion if isinstance(completion, int) else len(arrivals),
            prompt_tokens=prompt if isinstance(prompt, int) else None,
            e2e_s=end - start,
            finish_reason=finish_reason,
            text="".join(pieces),
            usage_reported=isinstance(completion, int),
        )

    async def complete_chat(self, model: str, messages: Sequence[Mapping[str, Any]], *, max_tokens: int = 16,
                            temperature: float = 0.0, extra: Mapping[str, Any] | None = None,
                            ) -> ChatCompletion:
        """One non-streamed chat completion, e.g. the readiness test after a model loads."""
        body = _chat_body(model, messages, max_tokens, temperature, extra)
        start = self._clock.monotonic()
        payload = _json(await self._ok("POST", "/v1/chat/completions", json=body), "chat completion")
        elapsed = self._clock.monotonic() - start
        choice = (payload.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = payload.get("usage") or {}
        return ChatCompletion(
            text=str(message.get("content") or message.get("reasoning_content") or ""),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            e2e_s=elapsed,
            model=str(payload.get("model") or model),
        )
