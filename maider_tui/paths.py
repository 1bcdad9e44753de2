"""Every path the app touches, in one place.

The user's directories come from platformdirs. `MAIDER_HOME` moves all of them under one folder
(the demo and the tests use it so they never touch a real user's sessions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "maider-tui"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def profiles_dir(self) -> Path:
        return self.config_dir / "profiles"

    @property
    def database(self) -> Path:
        return self.data_dir / "maider.sqlite3"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "maider-tui.log"

    @property
    def sessions_dir(self) -> Path:
        """Per-session files a user reads (aider env and metadata)."""
        return self.data_dir / "sessions"

    def unwritable(self) -> str | None:
        """Why the app cannot make its data and log folders ("FOLDER: the reason"), or None.

        Only looks: for each folder, the nearest part that exists must be a folder this process may
        write into, so a refused start leaves nothing behind (no half-made tree)."""
        for folder in (self.data_dir, self.log_dir):
            existing = folder
            while not os.path.lexists(existing) and existing.parent != existing:
                existing = existing.parent
            if not existing.is_dir():
                return f"{folder}: {existing} is a file, not a folder"
            if not os.access(existing, os.W_OK | os.X_OK):
                return f"{folder}: {existing} is not writable"
        return None

    @classmethod
    def under(cls, home: Path) -> "AppPaths":
        home = Path(home)
        return cls(home / "config", home / "data", home / "log", home / "cache")

    @classmethod
    def default(cls) -> "AppPaths":
        home = os.environ.get("MAIDER_HOME")
        if home:
            return cls.under(Path(home))
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME)),
            Path(platformdirs.user_data_dir(APP_NAME)),
            Path(platformdirs.user_log_dir(APP_NAME)),
            Path(platformdirs.user_cache_dir(APP_NAME)),
        )


def config_file_path(paths: AppPaths, override: str | os.PathLike[str] | None = None) -> Path:
    """The TOML settings file: `--config`, then `MAIDER_CONFIG`, then the user config dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("MAIDER_CONFIG")
    if env:
        return Path(env).expanduser()
    return paths.config_file


def styles_dir() -> Path:
    """The .tcss files: inside the installed package, or `styles/` beside it in a source checkout."""
    inside = PACKAGE_DIR / "styles"
    if inside.is_dir():
        return inside
    return PACKAGE_DIR.parent / "styles"


def display_path(path: Path | str) -> str:
    """A path as a user reads it: the home directory shown as `~`."""
    path = Path(path)
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
