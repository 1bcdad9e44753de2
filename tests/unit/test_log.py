"""Logs go to a file, never to the screen, and never carry a token."""

from __future__ import annotations

import logging

from maider_tui.log import register_secret, setup_logging


def test_log_file_redacts_registered_and_shaped_tokens(tmp_path, capsys):
    path = setup_logging(tmp_path / "log" / "maider-tui.log")
    register_secret("linode-very-secret-token-42")
    log = logging.getLogger("maider_tui.test")
    log.info("using token linode-very-secret-token-42 and hf_abcdefghijklmnopqrstuvwxyz012345")
    log.info("header Authorization: Bearer abcdefghijklmnopqrstuvwxyz")
    for handler in logging.getLogger("maider_tui").handlers:
        handler.flush()
    text = path.read_text()
    assert "linode-very-secret-token-42" not in text
    assert "hf_abcdefghijklmnopqrstuvwxyz012345" not in text
    assert "abcdefghijklmnopqrstuvwxyz" not in text
    assert text.count("***") == 3
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
