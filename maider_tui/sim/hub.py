"""A simulated Hugging Face Hub: the files and model info the app's wizard and the VMs' vLLM ask for.

Served beside the fake Linode API, under /hf instead of /v4 (the app's Hub base URL is `<root>/hf`),
with no Linode token, faults or counting:

- `GET /hf/{owner}/{name}/resolve/{revision}/{file}`: the repo's config.json, as the Hub serves it;
- `GET /hf/api/models/{owner}/{name}`: the model info (gating, config summary, `safetensors.total`).

Errors as huggingface.co gives them, status, `X-Error-Code`/`X-Error-Message` headers and JSON body:
an unknown repo is 401 "Invalid username or password." without a token (the Hub does not tell a
missing repo from a private one) and 404 `RepoNotFound` with one; a gated repo's files are 401
`GatedRepo` without a token; a token the Hub does not know is 401 "Invalid credentials in
Authorization header" on every request. Any token of the form `hf_...` is a known user who has
accepted every licence. The VMs' vLLM asks `SimHub.vllm_model`: the same repos, the same rules.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from maider_tui import catalog
from maider_tui.catalog.errors import UnknownCatalogIdError
from maider_tui.models import ModelSpec
from maider_tui.sim.hub_models import REPOS, HubRepo

HUB_PREFIX = "/hf"
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
ANONYMOUS_NOT_FOUND = "Invalid username or password."
_DTYPE_KEYS = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


def gated_message(repo_id: str) -> str:
    return (f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
            "to access it. Please log in.")


class HubError(Exception):
    """An answer other than 200: status, the Hub's error code (or None) and its message."""

    def __init__(self, status: int, code: str | None, message: str, *, challenge: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge

    def response(self) -> web.Response:
        headers = {"X-Error-Message": self.message}
        if self.code:
            headers["X-Error-Code"] = self.code
        if self.challenge:
            headers["WWW-Authenticate"] = 'Bearer realm="Authentication required", charset="UTF-8"'
        return web.json_response({"error": self.message}, status=self.status, headers=headers)


class SimHub:
    """The Hub's repos and its access rules; `requests` counts "GET <what> <repo>" for tests."""

    def __init__(self, repos: Iterable[HubRepo] = REPOS) -> None:
        self.repos: dict[str, HubRepo] = {r.id.lower(): r for r in repos}
        self.requests: Counter[str] = Counter()

    @staticmethod
    def token_known(token: str) -> bool:
        return token.startswith("hf_") and len(token) > 3

    def find(self, repo_id: str) -> HubRepo | None:
        return self.repos.get(repo_id.strip("/").lower())

    def _repo(self, repo_id: str, token: str | None, *, files: bool) -> HubRepo:
        """The repo a caller with `token` may read (files: its files, else its public info)."""
        if token is not None and not self.token_known(token):
            raise HubError(401, None, INVALID_CREDENTIALS)
        repo = self.find(repo_id)
        if repo is None:
            if token is None:  # anonymous: a missing repo looks like a private one
                raise HubError(401, "RepoNotFound" if files else None, ANONYMOUS_NOT_FOUND, challenge=True)
            raise HubError(404, "RepoNotFound", "Repository not found")
        if files and repo.gated and token is None:
            raise HubError(401, "GatedRepo", gated_message(repo.id), challenge=True)
        return repo

    def resolve(self, repo_id: str, revision: str, filename: str, token: str | None) -> tuple[HubRepo, bytes]:
        """The bytes of `filename` at `revision`; raises HubError as the Hub answers."""
        self.requests[f"GET {filename} {repo_id}"] += 1
        repo = self._repo(repo_id, token, files=True)
        if revision not in ("main", repo.sha):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if filename != "config.json":
            raise HubError(404, "EntryNotFound", "Entry not found")
        return repo, json.dumps(repo.config, indent=2).encode()

    def model_info(self, repo_id: str, token: str | None) -> dict[str, Any]:
        """`GET /api/models/{repo_id}`: public even for a gated repo."""
        self.requests[f"GET info {repo_id}"] += 1
        repo = self._repo(repo_id, token, files=False)
        owner = repo.id.split("/", 1)[0]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24], "id": repo.id, "modelId": repo.id,
            "author": owner, "sha": repo.sha, "private": False, "disabled": False, "gated": repo.gated,
            "pipeline_tag": "text-generation", "library_name": "transformers", "tags": list(repo.tags),
            "config": {k: repo.config[k] for k in ("architectures", "model_type") if k in repo.config},
        }
        if repo.params is not None:
            key = _DTYPE_KEYS.get(str(repo.config.get("torch_dtype")), "BF16")
            info["safetensors"] = {"parameters": {key: repo.params}, "total": repo.params}
        return info

    def vllm_model(self, model_id: str, env: Mapping[str, str]) -> tuple[ModelSpec | None, str | None]:
        """What vLLM in a container with `env` learns of `model_id`: (spec, None), (None, "gated"), or
        (None, None) when the Hub has no such repo for it (a token it does not know included).

        A built-in model is the catalog's spec; any other is read from this Hub's config.json with the
        container's HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), sized from its safetensors as vLLM sizes it.
        """
        try:
            return catalog.model(model_id), None
        except UnknownCatalogIdError:
            pass
        token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None
        try:
            repo, _ = self.resolve(model_id, "main", "config.json", token)
        except HubError as exc:
            return None, "gated" if exc.code == "GatedRepo" else None
        quantized = isinstance(repo.config.get("quantization_config"), dict)  # the Hub counts packed tensors
        params_b = repo.params / 1e9 if repo.params and not quantized else None
        try:
            return catalog.custom_model(repo.config, model_id=model_id, params_b=params_b), None
        except ValueError:
            return None, None


HUB_KEY: web.AppKey[SimHub] = web.AppKey("hub", SimHub)


def _token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() or None if auth.startswith("Bearer ") else None


async def _resolve(request: web.Request) -> web.Response:
    m = request.match_info
    try:
        repo, body = request.app[HUB_KEY].resolve(f"{m['owner']}/{m['name']}", m["revision"], m["filename"],
                                                   _token(request))
    except HubError as exc:
        return exc.response()
    # Small files come straight from the repo (large ones redirect to the CDN), as text.
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(body).hexdigest()}"'})


async def _model_info(request: web.Request) -> web.Response:
    m = request.match_info
    try:
        info = request.app[HUB_KEY].model_info(f"{m['owner']}/{m['name']}", _token(request))
    except HubError as exc:
        return exc.response()
    return web.json_response(info)


def add_hub_routes(app: web.Application, hub: SimHub) -> None:
    """Serve `hub` under /hf on `app` (the fake Linode API's server)."""
    app[HUB_KEY] = hub
    app.router.add_get(HUB_PREFIX + "/api/models/{owner}/{name}", _model_info)
    app.router.add_get(HUB_PREFIX + "/{owner}/{name}/resolve/{revision}/{filename:.+}", _resolve)
