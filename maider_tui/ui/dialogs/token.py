"""Ask for a Linode token, check it with the API, then keep it in the OS keyring.

The token is never shown, logged or put in a message: the Input is a password field, errors quote
the API's words (which never contain the token) and the keyring's reason.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

if TYPE_CHECKING:
    from ...cloud.base import Provider
    from ...secrets import Secrets


def token_problem(token: str) -> str | None:
    """Why `token` (already stripped) cannot be checked, before it is sent anywhere; None when it may be."""
    from ...secrets import OP_PREFIX, token_shape_problem

    if not token:
        return "Paste the token first."
    if token.startswith(OP_PREFIX):
        return ("This dialog takes the token itself; keep an op:// reference with "
                "`maider-tui token set linode` instead. Nothing was saved.")
    problem = token_shape_problem(token)
    if problem:
        return f"{problem}. Copy it again from Linode's Cloud Manager. Nothing was saved."
    return None


def _linode_provider(token: str) -> "Provider":
    from ...cloud.linode import LinodeProvider  # lazy: linode_api4 is slow to import

    return LinodeProvider(token)


class TokenDialog(ModalScreen["Provider | None"]):
    """Returns the provider the token was checked with once stored, or None when the user gave up."""

    DEFAULT_CSS = """
    TokenDialog {
        align: center middle;
    }
    TokenDialog > Vertical {
        width: 72;
        max-width: 96%;
        height: auto;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    TokenDialog #token-title {
        text-style: bold;
        margin-bottom: 1;
    }
    TokenDialog #token-message {
        margin-top: 1;
        color: $text-error;
    }
    TokenDialog #token-message.ok {
        color: $text-success;
    }
    TokenDialog Horizontal {
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    TokenDialog Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="token.cancel", tooltip="Close without saving a token"),
    ]

    def __init__(self, secrets: "Secrets", *,
                 provider_factory: Callable[[str], "Provider"] = _linode_provider) -> None:
        super().__init__()
        self.secrets = secrets
        self.provider_factory = provider_factory

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("A Linode token is needed", id="token-title", markup=False)
            yield Static("Paste a personal access token with read/write on Linodes. It is checked with "
                         "the API, then kept in your OS keyring; it never leaves this machine.", markup=False)
            yield Input(password=True, placeholder="Linode personal access token", id="token-input")
            yield Static("", id="token-message", markup=False)
            with Horizontal():
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Check and save (enter)", id="save", variant="primary")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.check_and_store(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.check_and_store(self.query_one("#token-input", Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def say(self, message: str, *, ok: bool = False) -> None:
        widget = self.query_one("#token-message", Static)
        widget.update(message)
        widget.set_class(ok, "ok")

    @work(exclusive=True, exit_on_error=False, group="token", description="Check the Linode token")
    async def check_and_store(self, token: str) -> None:
        """Ask the API who the token belongs to; store it only when it is accepted."""
        from ...cloud.errors import ProviderError
        from ...log import register_secret
        from ...secrets import SecretError

        token = token.strip()
        problem = token_problem(token)
        if problem:
            self.say(problem)
            return
        register_secret(token)  # before any request: even a refused token must never reach the log
        self.say("Checking the token with the API…", ok=True)
        try:
            provider: Provider = await asyncio.to_thread(self.provider_factory, token)
            account = await provider.whoami()
        except ProviderError as exc:
            self.say(f"{exc.message.rstrip('.')}. Nothing was saved.")
            return
        try:
            await asyncio.to_thread(self.secrets.set, "linode_token", token)
        except SecretError as exc:
            status = await asyncio.to_thread(self.secrets.keyring_status)
            detail = status.message if not status.available else str(exc)
            self.say(f"The token works (account {account.username}) but could not be saved: {detail} "
                     "Set LINODE_TOKEN in the environment instead.")
            return
        self.app.notify(f"Token saved for the Linode account {account.username}.", title="Linode")
        self.dismiss(provider)
