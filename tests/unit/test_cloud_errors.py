"""What linode_api4 and requests raise, turned into one line the user can act on."""

from __future__ import annotations

import pytest
import requests
import urllib3.exceptions
from linode_api4.errors import ApiError, UnexpectedResponseError

from maider_tui.cloud.errors import ProviderError, from_api_error
from maider_tui.log import register_secret


def api_error(status: int, *reasons: str | tuple[str, str], retry_after: str | None = None) -> ApiError:
    items = [{"reason": r} if isinstance(r, str) else {"field": r[0], "reason": r[1]} for r in reasons]
    body = {"errors": items}
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return ApiError(f"[{status}]", status=status, json=body, response=response)


def test_401_says_what_to_do():
    err = from_api_error(api_error(401, "Invalid Token"))
    assert err.kind == "auth" and not err.retryable
    assert str(err) == (
        "The Linode token was refused (401): check it or create a new one with Linodes read/write"
    )


def test_403_is_an_under_scoped_token():
    err = from_api_error(api_error(403, "Unauthorized"))
    assert err.kind == "forbidden" and "read/write" in str(err) and "Unauthorized" in str(err)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, ("type", "Linode type g2-gpu-rtx4000a2-s is not available in region us-east")),
        # Real wording, seen in linode/linode_api4-python#396 (a 403 for a plan a region lacks).
        (403, "The Linode plan you chose is not currently available in the selected region. Please "
              "select another region or plan type, or contact Support for assistance."),
    ],
)
def test_type_not_offered_in_region(status, reason):
    err = from_api_error(api_error(status, reason), type_id="g2-gpu-rtx4000a2-s", region="us-east")
    assert err.kind == "not_available"
    assert str(err) == "g2-gpu-rtx4000a2-s is not offered in us-east: pick a region that has RTX 4000 Ada"


def test_not_available_without_context_still_reads():
    err = from_api_error(api_error(400, "Region is not available"))
    assert err.kind == "not_available" and "pick another region or plan" in str(err)


def test_quota():
    err = from_api_error(api_error(400, "Account Limit reached. Please open a support ticket."))
    assert err.kind == "quota"
    assert str(err).startswith("Account limit reached: Account Limit reached.")


def test_label_errors_are_invalid_not_quota():
    err = from_api_error(api_error(400, ("label", "Label must be unique among your Linodes")))
    assert err.kind == "invalid" and "label: Label must be unique" in str(err)


def test_rate_limit_carries_retry_after():
    err = from_api_error(api_error(429, "Too Many Requests", retry_after="7"))
    assert err.kind == "rate_limited" and err.retryable and err.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(status):
    err = from_api_error(api_error(status, "Service Unavailable"))
    assert err.kind == "server" and err.retryable
    assert str(err) == f"Linode API kept answering {status}; try again in a minute"


def test_404_is_not_found():
    assert from_api_error(api_error(404, "Not found")).kind == "not_found"


def test_read_timeout_hidden_inside_a_connection_error():
    # What requests raises when urllib3 has no retries left:
    # ConnectionError(MaxRetryError(reason=ReadTimeoutError)).
    inner = urllib3.exceptions.ReadTimeoutError(None, "/v4/profile", "Read timed out. (read timeout=0.1)")
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v4/profile", inner))
    err = from_api_error(wrapped)
    assert err.kind == "timeout" and err.retryable
    assert from_api_error(requests.ReadTimeout("slow")).kind == "timeout"


def test_refused_connection_is_network():
    refused = "Failed to establish a new connection: [Errno 111] Connection refused"
    inner = urllib3.exceptions.NewConnectionError(None, refused)
    wrapped = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v4/profile", inner))
    err = from_api_error(wrapped)
    assert err.kind == "network" and "Connection refused" in str(err) and "network" in str(err)


def test_missing_token_before_any_request():
    err = from_api_error(RuntimeError("You do not have an API token!"))
    assert err.kind == "auth" and "maider-tui token set linode" in str(err)


def test_unreadable_answer_is_a_server_error():
    assert from_api_error(UnexpectedResponseError("Problem with response!")).kind == "server"


def test_provider_error_passes_through_and_rejects_unknown_kinds():
    err = ProviderError("x", "quota")
    assert from_api_error(err) is err
    with pytest.raises(ValueError):
        ProviderError("x", "oops")


def test_messages_never_carry_a_registered_secret():
    secret = "abcdef0123456789abcdef0123456789"
    register_secret(secret)
    err = from_api_error(api_error(400, f"bad value {secret}"))
    assert secret not in str(err) and "***" in str(err)


def test_the_home_tag_names_the_machine_and_data_folder_that_made_a_vm():
    from maider_tui.cloud import home_tag, made_elsewhere

    mine = home_tag("/home/me/.local/share/maider-tui", host="laptop")
    assert mine == home_tag("/home/me/.local/share/maider-tui", host="laptop")
    assert mine != home_tag("/home/me/.local/share/maider-tui", host="desktop")
    assert mine != home_tag("/home/me/.local/share/maider-tui/demo", host="laptop")
    assert mine.startswith("maider-home:") and len(mine) <= 50  # Linode's limit on a tag
    assert not made_elsewhere(["maider", mine], mine)
    assert made_elsewhere(["maider", home_tag("/x", host="other")], mine)
    assert not made_elsewhere(["maider", "maider-session:old"], mine), "older releases tagged no home"
