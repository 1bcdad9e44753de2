"""What the app is started with: settings, paths, clock, store and secrets, bundled for injection.

Tests and the demo build their own context (a temporary home, a manual clock, the simulated
cloud); `cli.main` builds the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clock import Clock, SystemClock
from .paths import AppPaths

if TYPE_CHECKING:
    from pathlib import Path

    from .cloud.base import Provider
    from .secrets import Secrets
    from .settings import LoadedSettings
    from .store import Store, StoreError


@dataclass
class AppContext:
    """Settings and secrets load on first use, so the first frame is not kept waiting for the files
    and the keyring; whoever reads them first (the app after its first frame, a command) pays."""

    paths: AppPaths
    load: "Callable[[], tuple[LoadedSettings, Secrets]]"
    store: "Store | None" = None
    store_error: "StoreError | None" = None
    clock: Clock = field(default_factory=SystemClock)
    demo: bool = False
    provider: "Provider | None" = None
    cloud_speed: float = 1.0
    """How much faster than real time the cloud is (the demo's sim speed): readiness limits shrink by it."""
    hf_base_url: str | None = None
    """The Hugging Face Hub to read model configs from: None is huggingface.co; the demo's is the sim's."""
    sim_url: str | None = None
    """The API address of a `maider-tui sim` in another process, when the demo runs against one."""
    _loaded: "tuple[LoadedSettings, Secrets] | None" = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _settings_and_secrets(self) -> "tuple[LoadedSettings, Secrets]":
        """Load both once (blocking: the files, the keyring's backends)."""
        if self._loaded is None:
            with self._lock:  # the UI thread and a worker may ask at once
                if self._loaded is None:
                    self._loaded = self.load()
        return self._loaded

    @property
    def settings(self) -> "LoadedSettings":
        return self._settings_and_secrets()[0]

    @property
    def secrets(self) -> "Secrets":
        return self._settings_and_secrets()[1]

    def exports_dir(self) -> "Path":
        """Where reports, exports and screenshots the user asks for are written (`ops.exports`)."""
        from .ops.exports import exports_folder

        return exports_folder(self.paths, self.settings.settings)

    def hf_token(self) -> str | None:
        """The Hugging Face token's value, or None. Blocking (keyring, op read): call from a thread."""
        found = self.secrets.get("hf_token")
        return found.value.get_secret_value() if found else None

    def get_provider(self) -> "Provider | None":
        """The cloud provider: the one given (the demo's), else Linode with the user's token, else None.

        Blocking (keyring, maybe `op read`): call it from a worker thread.
        """
        if self.provider is None:
            token = self.secrets.get("linode_token")
            if token is None:
                return None
            from .cloud.linode import LinodeProvider  # lazy: the home screen must start fast

            self.provider = LinodeProvider(token.value.get_secret_value(), store=self.store, clock=self.clock)
        return self.provider

    def linode_factory(self) -> "Callable[[str], Provider]":
        """Makes a Linode provider for a token being checked, caching in this context's database and
        timing with its clock (as `get_provider`'s does)."""
        store, clock = self.store, self.clock

        def make(token: str) -> "Provider":
            from .cloud.linode import LinodeProvider

            return LinodeProvider(token, store=store, clock=clock)

        return make

    @property
    def problems(self) -> list[str]:
        """Everything wrong with the user's files, one sentence each, for the screen."""
        return [str(p) for p in self.settings.problems]

    def load_now(self) -> None:
        """Load settings and secrets now (from a worker thread, so the UI loop does not wait)."""
        self._settings_and_secrets()

    def profile_problems(self) -> list[str]:
        """What is wrong with the user's model profile files (each such file is skipped at launch).
        Reads the files: call it from a thread."""
        from .profiles import load_profiles

        return load_profiles(self.paths.profiles_dir)[1]


def build_context(
    paths: AppPaths,
    *,
    config_path: str | None = None,
    clock: Clock | None = None,
    demo: bool = False,
    environ: dict[str, str] | None = None,
    use_keyring: bool = True,
) -> AppContext:
    """Open the store, and say how to load settings and secrets; broken files become messages, not crashes."""
    import os

    from .store import StoreError, open_store

    env = dict(os.environ) if environ is None else environ
    clock = clock or SystemClock()

    def load() -> "tuple[LoadedSettings, Secrets]":
        from .secrets import Secrets
        from .settings import load_settings

        loaded = load_settings(config_path, environ=env, paths=paths)
        return loaded, Secrets(environ=env, dotenv_values=loaded.dotenv_values, use_keyring=use_keyring)

    store = None
    store_error = None
    try:
        store = open_store(paths.database, clock=clock)
    except StoreError as exc:
        store_error = exc
    return AppContext(
        paths=paths,
        load=load,
        store=store,
        store_error=store_error,
        clock=clock,
        demo=demo,
    )
