"""Per-session files: the aider env and metadata, written for the user only."""

from __future__ import annotations

import json
import stat

from maider_tui.ops.session_files import aider_command, aider_metadata, write_aider_files, write_private


def test_aider_metadata_limits_come_from_the_real_context():
    meta = aider_metadata("coder", 32768)
    entry = meta["openai/coder"]
    # a quarter of 32768 is 8192: the output cap; the rest is input
    assert entry["max_output_tokens"] == 8192
    assert entry["max_input_tokens"] == 32768 - 8192
    small = aider_metadata("coder", 2048)["openai/coder"]
    assert small["max_output_tokens"] == 1024 and small["max_input_tokens"] == 1024


def test_aider_files_are_private_and_hold_no_token(paths):
    env, meta = write_aider_files(paths, "qwen32b-20261122-093012", endpoint="http://127.0.0.1:8000/v1",
                                  served_name="coder", max_model_len=23552)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE(meta.stat().st_mode) == 0o600
    text = env.read_text()
    assert "OPENAI_API_BASE=http://127.0.0.1:8000/v1" in text and "AIDER_MODEL=openai/coder" in text
    assert json.loads(meta.read_text())["openai/coder"]["max_input_tokens"] == 23552 - 5888
    assert str(env) in aider_command(paths, "qwen32b-20261122-093012")


def test_write_private_replaces_atomically(tmp_path):
    target = tmp_path / "k" / "id_ed25519"
    write_private(target, "one")
    write_private(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["id_ed25519"]
