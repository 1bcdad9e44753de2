"""Read a model's `config.json` from the Hugging Face hub, to plan a model the catalog does not hold.

Async (httpx), bounded by timeouts, and every failure becomes an `HfError` whose message says what
happened and what to do next in one sentence. The token is sent as a header and never appears in a
message.

The Hub's status alone does not say what went wrong: without a token a missing repo is a 401 like a
gated one. Its `X-Error-Code` header does (`RepoNotFound`, `GatedRepo`, `EntryNotFound`,
`RevisionNotFound`), and "Invalid credentials in Authorization header" marks a token it does not know.
`base_url` is the Hub's address: huggingface.co, or the simulated Hub of `--demo` (sim/hub.py).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import httpx

from maider_tui.models import ModelSpec

HF_BASE_URL = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 10.0

HfErrorKind = Literal["offline", "not_found", "gated", "bad_config", "http"]


class HfError(Exception):
    """The config could not be read; `kind` lets the wizard offer the by-hand form where it helps."""

    def __init__(self, kind: HfErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def config_url(model_id: str, base_url: str = HF_BASE_URL) -> str:
    """Where the hub serves the main branch's config.json of `model_id`."""
    return f"{base_url.rstrip('/')}/{model_id.strip('/')}/resolve/main/config.json"


# The hub's own rule for each half of "owner/name": letters, digits, '-', '_', '.', starting and ending
# with a letter, digit or '_', at most 96 characters, and no '--' or '..'.
_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")


def check_model_id(model_id: str) -> str | None:
    """What is wrong with a typed model id ("owner/name"), or None when it looks usable."""
    model_id = model_id.strip()
    if not model_id:
        return "Type a Hugging Face model id, like Qwen/Qwen2.5-Coder-7B-Instruct."
    parts = model_id.split("/")
    shown = model_id if len(model_id) <= 60 else model_id[:57] + "..."
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in model_id):
        return (f"{shown!r} is not a model id: it should read owner/name, "
                "like Qwen/Qwen2.5-Coder-7B-Instruct.")
    if not all(_REPO_PART.fullmatch(part) for part in parts) or "--" in model_id or ".." in model_id:
        return (f"{shown!r} is not a model id: owner and name hold letters, digits, '-', '_' and '.' "
                "(up to 96 each, no '--' or '..').")
    return None


async def fetch_config(
    model_id: str,
    *,
    token: str | None = None,
    base_url: str = HF_BASE_URL,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """The parsed config.json of `model_id`; raises HfError (offline, not found, gated, bad JSON).

    `transport` lets tests answer with an httpx.MockTransport instead of the network.
    """
    problem = check_model_id(model_id)
    if problem:
        raise HfError("not_found", problem)
    model_id = model_id.strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        # follow_redirects: the hub answers /resolve/ with a redirect to its CDN for large files.
        async with httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=True) as client:
            response = await client.get(config_url(model_id, base_url), headers=headers)
    except httpx.TimeoutException:
        raise HfError("offline", f"Hugging Face did not answer within {timeout_s:.0f} s; "
                                 "check the connection or enter the parameters by hand.") from None
    except httpx.HTTPError as exc:
        raise HfError("offline", f"Could not reach Hugging Face ({type(exc).__name__}); "
                                 "check the connection or enter the parameters by hand.") from None
    _raise_for_status(response, model_id, token)
    try:
        config = json.loads(response.content)
    except ValueError:
        raise HfError("bad_config", f"The config.json of {model_id} is not valid JSON; "
                                    "enter the parameters by hand.") from None
    if not isinstance(config, dict):
        raise HfError("bad_config", f"The config.json of {model_id} is not a JSON object; "
                                    "enter the parameters by hand.")
    return config


ADD_TOKEN = "maider-tui token set hf, or HF_TOKEN"


def _raise_for_status(response: httpx.Response, model_id: str, token: str | None) -> None:
    """An HfError for any answer but success, told apart by the Hub's X-Error-Code header."""
    status = response.status_code
    if status < 400:
        return
    code = response.headers.get("X-Error-Code", "")
    message = response.headers.get("X-Error-Message", "")
    if status == 401 and token and "Invalid credentials" in message:
        raise HfError("gated", f"Hugging Face does not accept your token; replace it ({ADD_TOKEN}) "
                               "and try again.")
    if code == "GatedRepo" or (status == 403 and token):
        if token:
            raise HfError("gated", f"{model_id} is gated and your Hugging Face token was refused for it; "
                                   "accept its licence on huggingface.co or use another token.")
        raise HfError("gated", f"{model_id} is gated: accept its licence on huggingface.co, then add your "
                               f"Hugging Face token ({ADD_TOKEN}) and try again.")
    if code == "RepoNotFound" or status in (401, 403) or (status == 404 and code != "EntryNotFound"):
        private = "" if token else f", or is private (then add a Hugging Face token: {ADD_TOKEN})"
        raise HfError("not_found", f"{model_id} was not found on Hugging Face{private}; "
                                   "check the id or enter the parameters by hand.")
    if status == 404:
        raise HfError("not_found", f"{model_id} has no config.json on Hugging Face; "
                                   "enter the parameters by hand.")
    raise HfError("http", f"Hugging Face answered {status} for {model_id}; try again later "
                          "or enter the parameters by hand.")


def model_info_url(model_id: str, base_url: str = HF_BASE_URL) -> str:
    """Where the hub serves `model_id`'s model info (public even for a gated repo)."""
    return f"{base_url.rstrip('/')}/api/models/{model_id.strip('/')}"


async def fetch_params_b(
    model_id: str,
    *,
    token: str | None = None,
    base_url: str = HF_BASE_URL,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.AsyncBaseTransport | None = None,
) -> float | None:
    """Parameters stored in `model_id`'s safetensors (billions), from its model info; None when the
    hub does not say or cannot be asked. Quantized checkpoints count packed tensors: ask only for
    16-bit models."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=True) as client:
            response = await client.get(model_info_url(model_id.strip(), base_url), headers=headers)
        total = response.json()["safetensors"]["total"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return total / 1e9 if isinstance(total, int) and total > 0 else None


async def model_spec(model_id: str, *, token: str | None = None, base_url: str = HF_BASE_URL,
                     params_b: float | None = None) -> ModelSpec:
    """A custom model's `ModelSpec` from the Hub, as the wizard and `maider-tui plan` both read it:
    its config.json, and for a 16-bit MoE or MLA model without `params_b` the parameter count from
    its model info. Raises HfError (the Hub) or ValueError (a config the planner cannot use; "give
    its parameter count" when the Hub does not say it either)."""
    from maider_tui.catalog.custom import custom_model

    config = await fetch_config(model_id, token=token, base_url=base_url)
    model_id = model_id.strip()
    if params_b is None and not isinstance(config.get("quantization_config"), dict):
        try:
            return custom_model(config, model_id=model_id)
        except ValueError as exc:
            if "parameter count" not in str(exc):
                raise
        params_b = await fetch_params_b(model_id, token=token, base_url=base_url)
    return custom_model(config, model_id=model_id, params_b=params_b)
