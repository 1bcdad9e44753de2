"""The real app started on broken files: a damaged or locked database, a config file and a model
profile that are not valid TOML. It starts, says what is wrong, and leaves every file as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from maider_tui.paths import AppPaths
from maider_tui.store import SessionRecord, open_store
from tests.proc import AppProcess, app_env


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def database_with_a_session(paths: AppPaths) -> Path:
    with open_store(paths.database) as store:
        store.add_session(SessionRecord(name="kept", state="ready", instance_id=7, hourly_usd=0.52))
    return paths.database


def test_a_damaged_database_and_broken_settings_files_are_reported_and_left_alone(tmp_path: Path):
    home = tmp_path / "home"
    paths = AppPaths.under(home)
    data = bytearray(database_with_a_session(paths).read_bytes())
    data[4096:4296] = b"\xff" * 200  # the header survives; a page behind it does not
    paths.database.write_bytes(bytes(data))
    paths.profiles_dir.mkdir(parents=True)
    paths.config_file.write_text("[watchdog\ntimeout_minutes = = 3\n")
    profile = paths.profiles_dir / "qwen.toml"
    profile.write_text("model = 'Qwen/Qwen2.5-Coder-7B-Instruct-AWQ'\nmax_model_len = [\n")
    files = [paths.database, paths.config_file, profile]
    before = {f: digest(f) for f in files}

    with AppProcess([], app_env(home)) as app:
        app.wait_for("The session database cannot be read")
        assert "~/data/maider.sqlite3 is not a maider-tui database" in app.screen()
        app.wait_for(lambda: "Model profile skipped" in app.toasts(), what="the profile's problem")
        toasts = app.toasts()
        assert "Settings" in toasts and "not valid TOML" in toasts and "none of this file's settings" in toasts
        assert "qwen.toml: not read" in toasts
        app.press("n")  # keep the database as it is
        app.wait_for(lambda: "Running without a database" in app.toasts(), what="the answer taken")
        app.press("q")
        assert app.wait_exit() == 0
    assert {f: digest(f) for f in files} == before
    assert not list(paths.data_dir.glob("*.broken-*")), "moved aside without consent"


def test_a_database_locked_by_another_program_is_waited_for_then_reported(tmp_path: Path):
    home = tmp_path / "home"
    paths = AppPaths.under(home)
    before = digest(database_with_a_session(paths))
    other = sqlite3.connect(paths.database, isolation_level=None)
    try:
        # Another program holding the whole file: in exclusive locking mode nobody else may even read.
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE sessions SET state = 'ended'")
        with AppProcess([], app_env(home)) as app:
            # The app waits the store's busy timeout (5 s), then starts and says so; it does not hang.
            app.wait_for(lambda: "still locked by another program" in app.toasts(), timeout=30,
                         what="the locked database reported")
            assert "close other maider-tui windows" in app.toasts()
            app.press("q")
            assert app.wait_exit() == 0
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert digest(paths.database) == before
    with open_store(paths.database) as store:
        assert store.get_session("kept").state == "ready"
