"""The command line: version, help, and the token helper that never prints a token."""

from __future__ import annotations

import pytest

from maider_tui import __version__
from maider_tui.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"maider-tui {__version__}"


def test_help_names_the_demo_and_token_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--demo" in out and "token" in out


def test_token_set_status_delete_never_prints_the_token(monkeypatch, capsys, memory_keyring):
    secret = "linode-secret-0123456789abcdef"
    monkeypatch.setattr("getpass.getpass", lambda prompt="": secret)
    assert main(["token", "set", "linode"]) == 0
    assert memory_keyring.get_password("maider-tui", "linode_token") == secret
    assert main(["token", "status"]) == 0
    assert main(["token", "delete", "linode"]) == 0
    out = capsys.readouterr().out
    assert secret not in out
    assert "linode: from keyring" in out
    assert memory_keyring.get_password("maider-tui", "linode_token") is None


def test_parser_rejects_unknown_token_name():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["token", "set", "aws"])


def test_sim_subcommand_hands_its_options_to_the_simulator(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--help"])
    assert exc.value.code == 0
    assert "--speed" in capsys.readouterr().out


@pytest.mark.parametrize("speed", ["0", "-5", "nan", "inf", "1e-300", "1e9", "fast"])
def test_demo_refuses_a_speed_that_is_not_a_positive_number(capsys, speed):
    with pytest.raises(SystemExit) as exc:
        main(["--demo", "--sim-speed", speed])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --sim-speed: {speed!r} is not a speed: give a number from 0.01 to 10000" in err


def test_plan_is_wired_and_creates_nothing(capsys, isolated_home):
    code = main(["plan", "--type", "g2-gpu-rtx4000a2-s", "--model", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
                 "--summary"])
    assert code == 0
    assert "TP 2" in capsys.readouterr().out
    assert not (isolated_home / "data").exists()
