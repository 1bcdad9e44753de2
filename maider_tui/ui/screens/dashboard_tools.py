"""The session's client programs, from the dashboard: aider and an SSH shell run in this terminal
(the app suspended, its loop, tunnel and watchdog still running), and the aider command copied."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from ...ops.session_files import aider_command, ssh_argv, ssh_command
from ...ops.terminal_program import run_program

if TYPE_CHECKING:
    from .dashboard import DashboardScreen


class ClientTools:
    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen
        self._shown: str | None = None

    @property
    def shown_command(self) -> str:
        """The aider command as the Endpoint panel shows it (the home folder as ~): made once, not
        every tick, since it depends only on the paths and the name."""
        if self._shown is None:
            from ...paths import display_path

            paths = self.screen.context.paths
            command = aider_command(paths, self.screen.session)
            self._shown = command.replace(str(paths.sessions_dir), display_path(paths.sessions_dir))
        return self._shown

    def copy_command(self) -> None:
        screen = self.screen
        screen.app.copy_to_clipboard(aider_command(screen.context.paths, screen.session))
        screen.notify("Copied the aider command: paste it in a terminal.", title="Aider")

    def aider(self) -> None:
        screen = self.screen
        if shutil.which("aider") is None:
            screen.notify("aider is not installed: install it with `pipx install aider-chat`, then press a again.",
                          title="Aider", severity="error")
            return
        self._run(["bash", "-c", aider_command(screen.context.paths, screen.session)], "aider")

    def shell(self) -> None:
        # ops wrote the session's ssh_config entry (pinned host key) when it got or reconnected its VM.
        screen = self.screen
        if screen.context.demo:
            command = ssh_command(screen.context.paths, screen.session) or "ssh HOST"
            text = ("The demo's VM is simulated: its SSH server runs one command at a time, not a login shell; "
                    f"try `{command} nvidia-smi` in another terminal.")
            screen.say("No shell: the demo's VM is simulated and its SSH server runs single commands only.")
            screen.notify(text, title="Shell", severity="warning", timeout=20)
            return
        argv = ssh_argv(screen.context.paths, screen.session) if screen.handle is not None else None
        if argv is None or shutil.which("ssh") is None:
            screen.notify("No ssh program or no pinned host key: cannot open a shell.", severity="error")
            return
        self._run(argv, "ssh", keep_stderr=True)

    def _run(self, argv: list[str], what: str, *, keep_stderr: bool = False) -> None:
        self.screen.run_worker(self._outside(argv, what, keep_stderr), exclusive=True, exit_on_error=False,
                               group="outside", description="Run a program in this terminal")

    async def _outside(self, argv: list[str], what: str, keep_stderr: bool) -> None:
        """Suspend the app and run `argv` in the terminal; the loop (tunnel, watchdog) keeps running.
        With `keep_stderr` (ssh), a failure is said with the program's own last error lines."""
        screen = self.screen
        try:
            with screen.app.suspend():
                outcome = await run_program(argv, keep_lines=3 if keep_stderr else 0)
        except Exception as exc:  # noqa: BLE001 - SuspendNotSupported (web, tests) or no such program
            screen.notify(f"Cannot run {what} here: {exc or type(exc).__name__}", severity="error")
            return
        screen.say(f"{what} exited ({outcome.code})")
        for line in outcome.stderr_tail if outcome.code != 0 else ():
            screen.say(f"{what}: {line}")
        if outcome.code != 0 and outcome.stderr_tail:
            screen.notify("\n".join(outcome.stderr_tail), title=f"{what} failed (exit status {outcome.code})",
                          severity="error", timeout=30)
