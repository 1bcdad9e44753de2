"""The real app as a child process under a pseudo-terminal, for tests of what only a process shows:
SIGKILL, two apps at once, files another program holds.

`AppProcess` starts `python -m maider_tui ...` on a pty of a fixed size, drains its output in a
thread into a pyte screen (the terminal emulator the tests read what is on screen from), types keys
into it, and kills or quits it. Nothing here sleeps for a fixed time: every wait polls a condition
with a bound.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyte

# The checkout these tests belong to: the child runs its code, not whichever copy is installed.
REPO_ROOT = Path(__file__).resolve().parents[1]
KEYS = {"enter": "\r", "escape": "\x1b", "down": "\x1b[B", "up": "\x1b[A", "tab": "\t"}


class Terminal(pyte.Screen):
    """pyte's screen, which also keeps every piece of text drawn on it, in order (`drawn`)."""

    def __init__(self, cols: int, rows: int) -> None:
        super().__init__(cols, rows)
        self.drawn: list[str] = []

    def draw(self, data: str) -> None:
        self.drawn.append(data)
        super().draw(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.display)


class AppProcess:
    """`python -m maider_tui *args` on a pty of `size`; `env` replaces the environment entirely."""

    def __init__(self, args: list[str], env: dict[str, str], *, size: tuple[int, int] = (120, 40)) -> None:
        self.args, self.env, self.size = list(args), dict(env), size
        self.term = Terminal(*size)
        self._stream = pyte.Stream(self.term)  # keeps an escape sequence cut in two by a read
        self.proc: subprocess.Popen | None = None
        self._master: int | None = None
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> AppProcess:
        master, slave = os.openpty()
        cols, rows = self.size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-m", "maider_tui", *self.args], stdin=slave, stdout=slave,
                                     stderr=slave, env=self.env, close_fds=True, start_new_session=True)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._drain, name=f"pty {self.proc.pid}", daemon=True)
        self._reader.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _drain(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            text = decoder.decode(data)
            with self._lock:
                self._stream.feed(text)

    def screen(self) -> str:
        """What the terminal shows now, one line per row."""
        with self._lock:
            return self.term.text()

    def toasts(self) -> str:
        """The text of the notifications on screen, their wrapped lines joined with spaces."""
        parts = []
        for line in self.screen().splitlines():
            if "▌" in line:
                text = line.rsplit("▌", 1)[1].rstrip(" │╮╯─")
                if text.strip():
                    parts.append(text.strip())
        return " ".join(parts)

    def shown(self) -> str:
        """Everything the app ever drew, as plain text (toasts that timed out included)."""
        with self._lock:
            return "".join(self.term.drawn)

    def wait_for(self, check: str | Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
        """Poll until `check` (text on screen, or a callable's truthy result) holds; fail after `timeout`."""
        if isinstance(check, str):
            text = check
            check = lambda: text in self.screen()  # noqa: E731
            what = what or repr(text)
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}) waiting for {what}:\n"
                                     f"{self.shown()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}; the screen:\n{self.screen()}")
            time.sleep(0.02)

    def press(self, *keys: str) -> None:
        """Type keys: names from KEYS, or literal text."""
        assert self._master is not None
        for key in keys:
            os.write(self._master, KEYS.get(key, key).encode())

    def kill(self) -> None:
        """SIGKILL: the app gets no chance to clean anything up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.close()

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the child if it still runs and stop reading; safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the app: its own home, no token from the caller, no keyring service."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "MAIDER_HOME": str(home),
           "TERM": "xterm-256color", "TZ": "UTC", "LANG": "C.UTF-8",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "PYTHONPATH": str(REPO_ROOT)}
    env.update(extra)
    return env


def sim_app(sim, home: Path, *args: str, size: tuple[int, int] = (120, 40)) -> AppProcess:
    """The demo app (data under `home`/data/demo) against `sim`, a SimCloud running in the test process."""
    return AppProcess(["--sim-url", sim.linode_base_url, *args], app_env(home, MAIDER_SIM_TOKEN=sim.token),
                      size=size)


WIZARD_STEPS = ("GPU regions (", "GPU types in ", "Models of ", "Launch (enter)")


def launch_defaults(app: AppProcess, before_launch: Callable[[], None] | None = None) -> None:
    """From the sessions screen: `n`, then enter through the wizard's defaults to the review, then
    `before_launch()` (if given), then enter launches."""
    app.press("n")
    app.wait_for("30B-32B")
    for title in WIZARD_STEPS:
        app.press("enter")
        app.wait_for(title)
    if before_launch is not None:
        before_launch()
    app.press("enter")
