"""Reading config.json from the Hugging Face hub, against an httpx MockTransport."""

from __future__ import annotations

import httpx
import pytest

from maider_tui.cloud import hf

CONFIG = {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28}


def transport(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


async def test_a_public_config_is_read():
    seen = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json=CONFIG)

    config = await hf.fetch_config("Qwen/Qwen2.5-Coder-7B-Instruct", transport=transport(answer))
    assert config == CONFIG
    assert seen["url"] == "https://huggingface.co/Qwen/Qwen2.5-Coder-7B-Instruct/resolve/main/config.json"
    assert seen["auth"] is None


async def test_the_token_goes_in_a_header_and_never_in_a_message():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == "Bearer hf_secret":
            return httpx.Response(403)
        return httpx.Response(500)

    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("meta-llama/Llama-3.1-8B-Instruct", token="hf_secret",
                              transport=transport(answer))
    assert caught.value.kind == "gated" and "licence" in caught.value.message
    assert "hf_secret" not in caught.value.message


GATED_HEADERS = {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model x/y is restricted."}


async def test_a_gated_model_without_a_token_says_to_add_one():
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("meta-llama/Llama-3.1-8B-Instruct",
                              transport=transport(lambda r: httpx.Response(401, headers=GATED_HEADERS)))
    assert caught.value.kind == "gated"
    assert "token" in caught.value.message and "HF_TOKEN" in caught.value.message


async def test_an_anonymous_401_without_gated_repo_is_a_missing_repo_not_a_gated_one():
    # The Hub answers a missing repo with 401 to a caller without a token (it hides private repos).
    headers = {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Invalid username or password."}
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("nobody/nothing",
                              transport=transport(lambda r: httpx.Response(401, headers=headers)))
    assert caught.value.kind == "not_found" and "was not found" in caught.value.message
    assert "gated" not in caught.value.message


async def test_a_token_the_hub_does_not_know_says_to_replace_it():
    headers = {"X-Error-Message": "Invalid credentials in Authorization header"}
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("Qwen/Qwen2.5-Coder-7B-Instruct", token="hf_revoked",
                              transport=transport(lambda r: httpx.Response(401, headers=headers)))
    assert caught.value.kind == "gated" and "does not accept your token" in caught.value.message
    assert "hf_revoked" not in caught.value.message


async def test_a_repo_without_config_json_says_so():
    headers = {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("someone/gguf-only",
                              transport=transport(lambda r: httpx.Response(404, headers=headers)))
    assert caught.value.kind == "not_found" and "has no config.json" in caught.value.message


async def test_not_found():
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("nobody/nothing", transport=transport(lambda r: httpx.Response(404)))
    assert caught.value.kind == "not_found" and "was not found" in caught.value.message


async def test_a_timeout_is_offline():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("Qwen/Qwen2.5-Coder-7B-Instruct", timeout_s=3, transport=transport(answer))
    assert caught.value.kind == "offline" and "within 3 s" in caught.value.message


async def test_no_connection_is_offline():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("Qwen/Qwen2.5-Coder-7B-Instruct", transport=transport(answer))
    assert caught.value.kind == "offline" and "ConnectError" in caught.value.message


async def test_not_json_is_a_bad_config():
    with pytest.raises(hf.HfError) as caught:
        await hf.fetch_config("a/b", transport=transport(lambda r: httpx.Response(200, text="<html>")))
    assert caught.value.kind == "bad_config"


@pytest.mark.parametrize("model_id", ["", "no-owner", "a/b/c", "a /b"])
async def test_a_malformed_id_is_refused_before_any_request(model_id):
    def answer(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not be called
        raise AssertionError("asked the hub")

    with pytest.raises(hf.HfError):
        await hf.fetch_config(model_id, transport=transport(answer))
