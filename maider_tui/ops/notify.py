"""Telling the user something when the app may not be in front: in-app, desktop, ntfy.

Every channel is best effort: a missing `notify-send`, a hung `osascript` or an ntfy server that
refuses are logged and skipped, never raised, so a watchdog warning can never stop the watchdog.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import sys
from typing import TYPE_CHECKING, Any, Callable

from maider_tui.settings import NotificationSettings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
APP_NAME = "maider-tui"


def desktop_command(title: str, message: str, *, platform: str = sys.platform,
                    which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The argv that shows a desktop notification here, or None when this system has no way to."""
    if platform == "darwin":
        path = which("osascript")
        if path:
            script = f'display notification "{_applescript(message)}" with title "{_applescript(title)}"'
            return [path, "-e", script]
        return None
    path = which("notify-send")
    return [path, f"--app-name={APP_NAME}", title, message] if path else None


def _applescript(text: str) -> str:
    # AppleScript string literal: backslashes and quotes escaped, no raw newlines.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


class Notifier:
    """Sends (title, message) to every channel the settings enable; `await notifier(title, message)`."""

    def __init__(self, settings: NotificationSettings, *, in_app: Callable[[str, str], Any] | None = None,
                 run: Callable[..., Any] = asyncio.create_subprocess_exec,
                 http: Callable[..., httpx.AsyncClient] | None = None,
                 which: Callable[[str], str | None] = shutil.which, platform: str = sys.platform,
                 timeout: float = TIMEOUT_S) -> None:
        self.settings, self.in_app = settings, in_app
        self._run, self._http, self._which, self._platform = run, http, which, platform
        self.timeout = timeout

    async def __call__(self, title: str, message: str) -> None:
        await self.notify(title, message)

    async def notify(self, title: str, message: str) -> None:
        """In-app first (instant), then desktop and ntfy side by side; never raises."""
        if self.in_app is not None:
            try:
                result = self.in_app(title, message)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - a broken screen callback must not stop the others
                log.exception("in-app notification failed")
        await asyncio.gather(self.desktop(title, message), self.ntfy(title, message))

    async def desktop(self, title: str, message: str) -> bool:
        """Show a desktop notification through notify-send or osascript; False when none was shown."""
        if not self.settings.desktop:
            return False
        argv = desktop_command(title, message, platform=self._platform, which=self._which)
        if argv is None:
            return False
        try:
            proc = await self._run(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                                   stderr=asyncio.subprocess.DEVNULL)
        except OSError as exc:
            log.info("desktop notification not shown: %s", exc)
            return False
        try:
            async with asyncio.timeout(self.timeout):
                code = await proc.wait()
        except TimeoutError:
            # A desktop without a notification daemon can hang notify-send; don't keep it around.
            proc.kill()
            log.info("desktop notification timed out after %.0f s", self.timeout)
            return False
        return code == 0

    async def ntfy(self, title: str, message: str) -> bool:
        """POST the message to the ntfy topic URL, if one is set; False when none was delivered."""
        url = self.settings.ntfy_url
        if not url:
            return False
        import httpx  # only when there is somewhere to send to: not at the app's start-up

        # HTTP headers travel as latin-1; the title is decoration, the body carries the full text.
        headers = {"Title": title.encode("ascii", "replace").decode("ascii"), "Tags": "warning"}
        try:
            async with (self._http or httpx.AsyncClient)(timeout=self.timeout) as client:
                response = await client.post(url, content=message.encode("utf-8"), headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("ntfy notification to %s failed: %s", url, exc)
            return False
        if response.status_code >= 400:
            log.warning("ntfy notification to %s refused: HTTP %s", url, response.status_code)
            return False
        return True


async def say(notify: Callable[[str, str], Any], title: str, message: str, *, about: str = "") -> None:
    """Call a notifier (sync or async); a failing notification is logged, never raised: the watch
    that sends it must go on."""
    try:
        result = notify(title, message)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - a notification failing must not stop the watchdog
        log.exception("notification failed%s", f" for {about}" if about else "")
