"""What went wrong talking to the cloud, as one line the user can act on, and whether to try again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from linode_api4.errors import ApiError, UnexpectedResponseError

from maider_tui import catalog
from maider_tui.log import redact

KINDS = (
    "auth", "forbidden", "not_available", "quota", "rate_limited", "server", "timeout", "not_found",
    "invalid", "network",
)
# Kinds worth asking again after a pause; the rest will answer the same way every time.
RETRYABLE = frozenset({"rate_limited", "server", "timeout", "network"})
# Kinds after which a create may have reached Linode even though we got no answer.
MAYBE_DONE = frozenset({"server", "timeout", "network"})

# What linode_api4 and the HTTP stack under it raise; anything else is a bug and stays loud.
API_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ApiError, UnexpectedResponseError, requests.RequestException, urllib3.exceptions.HTTPError, OSError,
)

_NOT_AVAILABLE = ("not available", "not currently available", "not offered", "sold out", "unavailable")
_QUOTA = ("limit", "quota", "exceed")
_NO_TOKEN = "You do not have an API token"  # linode_api4 raises this before any request


class ProviderError(Exception):
    """A cloud call failed; `str()` is one sentence for the user, `kind` says what sort of failure."""

    def __init__(
        self,
        message: str,
        kind: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}")
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.detail = redact(detail) if detail else None
        """The bare cause ("HTTP 503: Service Unavailable", "ConnectionRefusedError: ...")."""

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def __repr__(self) -> str:
        return f"ProviderError({self.message!r}, kind={self.kind!r}, status={self.status!r})"


def from_api_error(
    exc: BaseException, *, type_id: str | None = None, region: str | None = None
) -> ProviderError:
    """Turn what linode_api4 (or requests/urllib3 under it) raised into a ProviderError.

    `type_id` and `region` name the plan and region of a create, so "not available" can say which.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ApiError):
        err = _from_status(exc.status, _reasons(exc), _retry_after(exc), type_id, region)
        err.detail = redact(f"HTTP {exc.status}: {'; '.join(_reasons(exc)) or 'no reason given'}")
        return err
    if isinstance(exc, UnexpectedResponseError):
        return ProviderError(
            f"The Linode API gave an answer we could not read ({exc}); try again", "server",
            detail=f"unreadable answer: {exc}",
        )
    chain = _chain(exc)
    # urllib3 makes NewConnectionError (a refused connection) a subclass of ConnectTimeoutError.
    refused_types = (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)
    refused = any(isinstance(e, refused_types) for e in chain)
    if not refused and any(isinstance(e, _TIMEOUTS) for e in chain):
        return ProviderError(
            "The Linode API did not answer in time; check your connection and try again", "timeout",
            detail="no answer in time",
        )
    if isinstance(exc, RuntimeError) and _NO_TOKEN in str(exc):
        return ProviderError(
            "No Linode token is set: add one with `maider-tui token set linode`", "auth", detail="no token"
        )
    detail = _short(exc)
    return ProviderError(
        f"Cannot reach the Linode API ({detail}); check your network connection", "network", detail=detail
    )


def _from_status(
    status: int, reasons: list[str], retry_after: float | None, type_id: str | None, region: str | None
) -> ProviderError:
    said = "; ".join(reasons) or "no reason given"
    lowered = said.lower()
    if status == 401:
        return ProviderError(
            "The Linode token was refused (401): check it or create a new one with Linodes read/write",
            "auth", status=status,
        )
    if status in (400, 403) and any(word in lowered for word in _NOT_AVAILABLE):
        return ProviderError(_not_available(said, type_id, region), "not_available", status=status)
    if status in (400, 403) and any(word in lowered for word in _QUOTA) and "label" not in lowered:
        return ProviderError(
            f"Account limit reached: {said}; free up resources or ask Linode support to raise it",
            "quota", status=status,
        )
    if status == 403:
        return ProviderError(
            f"The Linode token may not do this (403: {said}): give it Linodes read/write", "forbidden",
            status=status,
        )
    if status == 404:
        return ProviderError(f"Linode has no such resource (404: {said})", "not_found", status=status)
    if status == 408:
        return ProviderError(
            "The Linode API timed out handling the request (408); try again", "timeout", status=status
        )
    if status == 429:
        return ProviderError(
            "The Linode API is rate limiting us (429); wait a minute and try again", "rate_limited",
            status=status, retry_after=retry_after,
        )
    if status >= 500:
        return ProviderError(
            f"Linode API kept answering {status}; try again in a minute", "server", status=status,
            retry_after=retry_after,
        )
    return ProviderError(f"Linode refused the request ({status}: {said})", "invalid", status=status)


def _not_available(said: str, type_id: str | None, region: str | None) -> str:
    if not (type_id and region):
        return f"That plan is not offered there ({said}): pick another region or plan"
    family = catalog.family_for_type_id(type_id)
    if family is None:
        return f"{type_id} is not offered in {region}: pick another region or plan"
    return f"{type_id} is not offered in {region}: pick a region that has {family.short_name}"


def _reasons(exc: ApiError) -> list[str]:
    """The error reasons with their field, as `field: reason`."""
    body: Any = exc.json if isinstance(exc.json, dict) else {}
    items = body.get("errors") if isinstance(body.get("errors"), list) else []
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("reason"):
            out.append(f"{item['field']}: {item['reason']}" if item.get("field") else str(item["reason"]))
    return out or [str(r) for r in exc.errors if r]


def _retry_after(exc: ApiError) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough that our own backoff will do
    return seconds if seconds is not None and seconds >= 0 else None


_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps.

    requests hides a read timeout as ConnectionError(MaxRetryError(reason=ReadTimeoutError)).
    """
    seen = [exc]
    while len(seen) < 10:
        inner = seen[-1]
        wrapped = [getattr(inner, "reason", None), inner.__cause__, inner.__context__, *inner.args]
        nxt = next((w for w in wrapped if isinstance(w, BaseException) and w not in seen), None)
        if nxt is None:
            break
        seen.append(nxt)
    return seen


def _short(exc: BaseException) -> str:
    """The innermost cause's class and first words: urllib3 wraps a refused connection three deep."""
    inner = _chain(exc)[-1]
    text = str(inner).split("\n", 1)[0]
    if ": " in text and isinstance(inner, urllib3.exceptions.NewConnectionError):
        text = text.rsplit(": ", 1)[-1]
    return f"{type(inner).__name__}: {text[:120]}" if text else type(inner).__name__


def label_taken(err: ProviderError) -> bool:
    """Linode refused a create because another of the account's VMs has that label."""
    return err.kind == "invalid" and "label" in err.message.lower() and "unique" in err.message.lower()


T = TypeVar("T")


async def create_once(post: Callable[[], Awaitable[T]], find: Callable[[ProviderError], Awaitable[T | None]],
                      delays: Sequence[float], pause: Callable[[ProviderError, int], Awaitable[None]]) -> T:
    """Send a create that must not make its thing twice (Linode's client would retry a POST on its own).

    A failure that may have made it (`MAYBE_DONE`: a 5xx, a timeout, a lost answer), or "label must be
    unique" after such a failure (the earlier attempt landed), is looked up with `find(failure)` before
    anything is sent again; what it finds is the answer. A rate limit is waited out; any other failure,
    or the last of `delays`, is raised."""
    attempt, sent = 0, False  # sent: an earlier attempt of ours may have made it
    while True:
        try:
            return await post()
        except ProviderError as err:
            failure = err
        if failure.kind in MAYBE_DONE or (sent and label_taken(failure)):
            found = await find(failure)
            if found is not None:
                return found
            sent = True
        elif failure.kind != "rate_limited":
            raise failure
        if attempt >= len(delays):
            raise failure
        await pause(failure, attempt)
        attempt += 1
