"""What the commands share: the cloud provider (or why there is none) and ops events as lines."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Callable

from ..ops.events import DestroyedEvent, FailedEvent, OpsEvent, WatchdogEvent
from ..words import duration

log = logging.getLogger(__name__)

Out = Callable[[str], None]


def say_error(message: str) -> int:
    """Print one line on stderr; the exit code 1."""
    print(message, file=sys.stderr)
    return 1


async def provider_or_say(context: Any, *, otherwise: str = "") -> Any:
    """The cloud provider (a blocking keyring look-up, so in a thread), or None after saying why there
    is none; `otherwise` ends the no-token sentence with what else the command can do."""
    from ..secrets import SecretError

    try:
        provider = await asyncio.to_thread(context.get_provider)
    except SecretError as exc:
        say_error(str(exc))
        return None
    if provider is None:
        say_error(f"No Linode token: add one with `maider-tui token set linode` or set LINODE_TOKEN{otherwise}.")
    return provider


def event_printer(out: Out, *, quiet: bool = False) -> Callable[[OpsEvent], None]:
    """Events as lines on the terminal; `quiet` keeps only the ones a script needs."""

    def show(event: OpsEvent) -> None:
        if isinstance(event, WatchdogEvent):
            line = f"{event.session}: {event.message}"  # the message names the state in words
        elif isinstance(event, DestroyedEvent):
            line = f"{event.session}: destroyed after {duration(event.hours)}, ${event.cost_usd:.2f}"
        elif isinstance(event, FailedEvent):
            line = "" if quiet else f"{event.session}: {event.message}"
        else:
            text = getattr(event, "text", getattr(event, "message", ""))
            line = "" if quiet else f"{event.session}: {text}"
        if line:
            log.info("%s", line)
            out(line)

    return show
