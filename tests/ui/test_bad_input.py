"""Bad input everywhere a user types: each is refused with a message that says what is wrong, and
nothing is written (files under the home and the export folder byte for byte, the keyring, the
store) and nothing is rented on the simulated cloud.

One app run per surface, with a table of bad values typed one after another, keeps this fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Static

from maider_tui.app import MaiderApp
from maider_tui.cloud import hf
from maider_tui.cloud.linode import LinodeProvider
from maider_tui.store import SessionRecord
from maider_tui.ui.dialogs.export_path import PathDialog
from maider_tui.ui.dialogs.token import TokenDialog
from maider_tui.ui.screens.validation import ValidationScreen
from maider_tui.ui.screens.wizard_steps import CAPABILITY, MODEL, REVIEW

from .test_benchmarks import BenchApp, add_runs, answer, open_screen, wait_files
from .test_validation_screen import canned
from .test_wizard import detail, open_wizard, press


def tree(*roots: Path) -> dict[str, bytes]:
    """Every file under `roots` with its bytes: compared before and after, it shows nothing was written."""
    return {str(p): p.read_bytes() for root in roots if root.exists()
            for p in sorted(root.rglob("*")) if p.is_file()}


def text(widget: Static) -> str:
    return str(widget.render())


async def enter(app, pilot, index: int) -> None:
    """The first value of a table goes through the real enter key; the rest call what it is bound to,
    which keeps a long table fast (a key press waits for a screen refresh)."""
    if index == 0:
        await press(app, pilot, "enter")
        return
    app.screen.action_accept()
    await app.workers.wait_for_complete()


def nothing_rented(sim_cloud) -> bool:
    return not sim_cloud.world.instances and sim_cloud.world.creates == 0


SHELLY = "x; rm -rf ~ $(reboot) `id` | cat"
CONTEXT_CASES = [  # (typed, what the message says)
    ("", "number of tokens"), ("   ", "number of tokens"), ("lots", "number of tokens"),
    ("1e9", "number of tokens"), ("9" * 5000, "number of tokens"), ("-32k", "at least 256"),
    ("100", "at least 256"), ("99999999", "Cannot continue"), (SHELLY, "number of tokens"),
]
MODEL_ID_CASES = [
    ("", "Type a Hugging Face model id"), ("   ", "Type a Hugging Face model id"),
    ("no-slash", "owner/name"), ("a b/c", "owner/name"), ("../etc", "letters, digits"),
    ("owner/../../x", "owner/name"), ("owner/..", "letters, digits"), ("Qwen/x;reboot", "letters, digits"),
    (SHELLY, "owner/name"), ("o/" + "x" * 300, "up to 96"), ("-o/name", "letters, digits"),
]
PARAMS_CASES = [("lots", "like 30.5"), ("-7", "above zero"), ("0", "above zero"), ("nan", "above zero"),
                ("inf", "above zero"), ("1e9", "far more than any model")]
GOOD_SHAPE = {"m-layers": "32", "m-heads": "32", "m-kv-heads": "8", "m-head-dim": "128",
              "m-hidden": "4096", "m-params": "8", "m-positions": "32768"}
MANUAL_CASES = [  # (field, typed, message)
    ("m-layers", "", "Layers: type a whole number"), ("m-layers", "3.5", "whole number"),
    ("m-layers", "-4", "above zero"), ("m-layers", "99999999999", "far more than any model"),
    ("m-params", "nan", "above zero"), ("m-params", "inf", "above zero"),
    ("m-positions", "1" + "0" * 30, "far more"), ("m-kv-heads", "64", "cannot be more than the attention heads"),
    ("hf-id", "../../etc/passwd", "not a model id"),
]
REVIEW_CASES = [  # (field, typed, message next to the field)
    ("name", "", "Give the session a name"), ("name", "  ", "Give the session a name"),
    ("name", " padded ", "start or end with a space"), ("name", "a/b-c", "only letters"),
    ("name", "../up", "only letters"), ("name", SHELLY, "only letters"), ("name", "$(reboot)", "only letters"),
    ("name", "x" * 65, "3 to 64 characters"), ("name", "ab", "3 to 64 characters"),
    ("name", "-dash", "start and end with a letter"), ("name", "a--b", "'--'"),
    ("name", "TAKEN-session", "already exists"),
    ("gpu-mem", "", "A fraction"), ("gpu-mem", "nan", "at most 0.99"), ("gpu-mem", "-1", "above 0.10"),
    ("gpu-mem", "95", "at most 0.99"),
    ("max-seqs", "-1", "From 1 to"), ("max-seqs", "1.5", "A whole number"), ("max-seqs", "999999999", "65536"),
    ("kv-dtype", "fp4", "One of auto"), ("extra-args", "'--unclosed", "Cannot split"),
    ("extra-args", "--x " * 600, "At most 2000"), ("extra-args", "--port 9000", "Remove --port: the tunnel"),
    ("extra-args", "--enforce-eager --host=0.0.0.0", "Remove --host"), ("extra-args", "--api-key s3cret", "compose file"),
    ("extra-args", "--max-model-len 131072", "context is set on the model step"),
    ("extra-args", "--enforce-eager\x00--x", "control characters"),
    ("watchdog", "", "A whole number of minutes"), ("watchdog", "0", "From 1 to 1440"),
    ("watchdog", "-5", "From 1 to 1440"), ("watchdog", "9" * 20, "From 1 to 1440"),
]


async def test_the_wizard_refuses_bad_input_and_rents_nothing(sim_context, sim_cloud, isolated_home, monkeypatch):
    fetched: list[str] = []

    async def not_on_the_hub(model_id, **_):
        fetched.append(model_id)
        raise hf.HfError("not_found", f"{model_id} was not found on Hugging Face; check the id.")

    monkeypatch.setattr(hf, "fetch_config", not_on_the_hub)
    context = sim_context()
    context.store.add_session(SessionRecord(
        name="taken-session", state="ended", stage="ready", instance_id=1, region="us-ord", gpu_type="g2-gpu-rtx4000a1-s",
        gpu_count=1, model="Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", hourly_usd=0.52, created_at=0.0, ended_at=60.0))
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        before = tree(isolated_home)
        said = lambda: text(wizard.query_one("#custom-message", Static))  # noqa: E731

        # The filter: anything may be typed; what matches nothing says so and enter stays put.
        await pilot.press(*"../$(x)")
        await pilot.pause()
        assert "Nothing matches '../$(x)'" in detail(wizard)
        await press(app, pilot, "enter")
        assert wizard.step == CAPABILITY and "Nothing is highlighted" in detail(wizard)
        wizard.query_one("#filter", Input).value = ""

        # The custom model: the id, then the parameter count, refused before the hub is asked.
        await press(app, pilot, "down", "down", "enter")
        assert wizard.custom_open
        for i, (typed, expected) in enumerate(MODEL_ID_CASES):
            wizard.query_one("#hf-id", Input).value = typed
            await enter(app, pilot, i)
            assert expected in said(), (typed, said())
        assert fetched == [] and wizard.custom_open
        wizard.query_one("#hf-id", Input).value = "someone/Coder-8B"
        for i, (typed, expected) in enumerate(PARAMS_CASES):
            wizard.query_one("#hf-params", Input).value = typed
            await enter(app, pilot, i)
            assert expected in said(), (typed, said())
        assert fetched == []
        wizard.query_one("#hf-params", Input).value = ""
        await press(app, pilot, "enter")  # not on the hub: the by-hand form opens
        assert fetched == ["someone/Coder-8B"] and wizard.query_one("#manual").display
        for i, (field, typed, expected) in enumerate(MANUAL_CASES):
            for field_id, value in {**GOOD_SHAPE, "hf-id": "someone/Coder-8B", field: typed}.items():
                wizard.query_one(f"#{field_id}", Input).value = value
            await enter(app, pilot, i)
            assert wizard.custom_open and expected in said(), (field, typed, said())
        assert wizard.custom is None
        await press(app, pilot, "escape", "escape")
        assert wizard.step == CAPABILITY and not wizard.custom_open

        # The context length on the model step.
        await press(app, pilot, "up", "enter", "enter", "enter")  # 30B-32B (custom stays highlighted)
        assert wizard.step == MODEL
        context = wizard.query_one("#context", Input)
        for i, (typed, expected) in enumerate(CONTEXT_CASES):
            context.value = typed
            await enter(app, pilot, i)
            assert wizard.step == MODEL and expected in detail(wizard), (typed, detail(wizard))
        context.value = "16k"
        await press(app, pilot, "enter")
        assert wizard.step == REVIEW

        # The review: each bad value alone, the rest as filled in.
        defaults = {field: wizard.query_one(f"#{field}", Input).value for field, _, _ in REVIEW_CASES}
        for i, (field, typed, expected) in enumerate(REVIEW_CASES):
            wizard.query_one(f"#{field}", Input).value = typed
            await enter(app, pilot, i)
            error = text(wizard.query_one(f"#{field}-error", Static))
            assert app.screen is wizard and expected in error, (field, typed, error)
            assert "nothing was launched" in text(wizard.query_one("#review-message", Static))
            wizard.query_one(f"#{field}", Input).value = defaults[field]
        assert wizard.step == REVIEW and app.screen is wizard
        assert tree(isolated_home) == before  # while the app runs: closing checkpoints the database
        assert [r.name for r in app.context.store.list_sessions()] == ["taken-session"]
    assert nothing_rented(sim_cloud)


TOKEN_CASES = [  # (typed, message, whether the API may be asked)
    ("", "Paste the token first", False), ("  \t ", "Paste the token first", False),
    ("two words", "That is not a token", False), ("tök€n-with-accents", "That is not a token", False),
    ("a" * 1000, "That is not a token", False), ("line\nbreak", "That is not a token", False),
    ("op://Private/Linode Token/credential", "keep an op:// reference", False),
    ("sim-not-the-right-token", "read/write. Nothing was saved.", True),
]


async def test_the_token_dialog_refuses_bad_tokens_and_stores_nothing(make_context, sim_cloud, isolated_home,
                                                                       memory_keyring, tmp_path):
    asked: list[str] = []

    def factory(token: str):
        asked.append(token)
        return LinodeProvider(token, base_url=sim_cloud.linode_base_url)

    app = MaiderApp(make_context())
    async with app.run_test(size=(120, 40)) as pilot:
        await open_wizard(app, pilot, provider_factory=factory)
        dialog = app.screen
        assert isinstance(dialog, TokenDialog)
        before = tree(isolated_home)
        for typed, expected, sent in TOKEN_CASES:
            asked.clear()
            dialog.query_one("#token-input", Input).value = typed
            await press(app, pilot, "enter")
            said = text(dialog.query_one("#token-message", Static))
            assert app.screen is dialog and expected in said, (typed[:20], said)
            assert bool(asked) == sent
            assert not typed.strip() or typed.strip() not in said  # the token is never shown back
            assert memory_keyring.get_password("maider-tui", "linode_token") is None
        assert tree(isolated_home) == before
        # A screenshot with a token typed in shows dots, not the token.
        typed = "sim-CANARY-typed-0123456789abcdef"
        dialog.query_one("#token-input", Input).value = typed
        await pilot.pause()
        shot = Path(app.save_screenshot(path=str(tmp_path)))
        assert typed not in shot.read_text() and "•" in shot.read_text()
    assert not app.context.secrets.has("linode_token")
    assert nothing_rented(sim_cloud)


@pytest.fixture
def bench_app(make_context, clock):
    context = make_context()
    add_runs(context.store, clock.now())
    return BenchApp(context)


async def test_path_dialogs_refuse_bad_paths_and_write_nothing(bench_app, tmp_path, isolated_home, monkeypatch):
    app = bench_app
    exports = tmp_path / "exports"
    (exports / "folder.csv").mkdir(parents=True)
    (exports / "a-file").write_text("kept\n")
    cases = {  # key -> [(typed, message in the dialog)]
        "x": [("", "Type a file name"), ("   ", "Type a file name"), (str(exports / "table.txt"), ".csv, .json or .md"),
              (str(exports / "folder.csv"), "is a folder"), (str(exports / "missing" / "t.csv"), "does not exist"),
              (str(exports / "a-file" / "t.csv"), "is a file, not a folder"), ("t\x00.csv", "control characters"),
              ("~nobody-here/t.csv", "whose home folder ~nobody-here"), ("n" * 300 + ".csv", "File name too long")],
        "E": [("", "Type a file name"), (str(exports), "is a folder"),
              (str(exports / "missing" / "db.json"), "does not exist")],
    }
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        before = tree(isolated_home, exports)
        runs_before = len(app.context.store.bench_runs())
        for key, refused in cases.items():
            await pilot.press(key)
            await pilot.pause()
            dialog = app.screen
            for i, (typed, expected) in enumerate(refused):
                if i == 0:
                    await answer(pilot, typed)
                else:
                    dialog.submit(typed)  # what enter is bound to, without waiting for a refresh
                error = text(dialog.query_one("#path-error", Static))
                assert app.screen is dialog and expected in error, (key, typed, error)
            await pilot.press("escape")
            await pilot.pause()
        # Accepted by the dialog, refused by the disk (a read-only folder): said, nothing half-written.
        from maider_tui.bench import export

        def read_only(path, text):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(export, "write_atomically", read_only)
        await pilot.press("x")
        await pilot.pause()
        await answer(pilot, str(exports / "table.csv"))
        await wait_files(pilot)
        assert "Permission denied. Choose another path." in screen.last_file_message
        # Import: a file that is not there, and a folder.
        for i, typed in enumerate((str(exports / "nothing-here.json"), str(exports), "~nobody-here/db.json",
                                   "db\x00.json")):
            if i == 0:
                await pilot.press("i")
                await pilot.pause()
                await answer(pilot, typed)
            else:
                screen.import_db(typed)  # what the dialog's answer starts
            await wait_files(pilot)
            assert screen.last_file_message.startswith("Nothing imported: cannot read"), screen.last_file_message
        assert not isinstance(app.screen, PathDialog)
        assert len(app.context.store.bench_runs()) == runs_before
        assert tree(isolated_home, exports) == before


async def test_the_validation_export_refuses_bad_paths(make_context, clock, tmp_path, isolated_home):
    context = make_context()
    report = canned(clock)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = ValidationScreen(context, None, report.session, report=report)
        await app.push_screen(screen)
        await pilot.press("x")
        await pilot.pause()
        (tmp_path / "out").mkdir()
        before = tree(isolated_home, tmp_path / "out")
        for typed, expected in [("", "Type a path"), ("  ", "Type a path"), (str(tmp_path / "out"), "it is a folder"),
                                (str(tmp_path / "missing" / "r.md"), "its folder does not exist"),
                                ("~nobody-here/r.md", "Nothing written"), ("r\x00.md", "Nothing written")]:
            screen.query_one("#val-path", Input).value = typed
            if typed:
                screen.export(typed.strip(), report.to_markdown())  # what enter starts
                await app.workers.wait_for_complete()
            else:
                await press(app, pilot, "enter")
            assert expected in screen.message_text, (typed, screen.message_text)
        assert screen.query_one("#val-export").display  # still asking
        # The command palette: a query that matches nothing runs nothing.
        await press(app, pilot, "escape", "ctrl+p")
        # Each key settled: an enter that lands before the search answers runs the command still
        # highlighted from the unfiltered list (the first: save a screenshot).
        await press(app, pilot, *"zz../$(rm -rf)")
        await press(app, pilot, "enter")
        if isinstance(app.screen, CommandPalette):
            await press(app, pilot, "escape")
        assert app.screen is screen and len(app.screen_stack) == 2
        assert tree(isolated_home, tmp_path / "out") == before and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("which", ["linode", "hf"])
def test_token_set_on_the_command_line_refuses_what_cannot_be_a_token(which, monkeypatch, capsys, memory_keyring,
                                                                       isolated_home):
    from maider_tui.cli import main

    key = {"linode": "linode_token", "hf": "hf_token"}[which]
    for typed, expected in [("", "No token given"), ("  ", "No token given"), ("two words", "That is not a token"),
                            ("tök€n", "That is not a token"), ("a" * 1000, "That is not a token")]:
        monkeypatch.setattr("getpass.getpass", lambda prompt="", typed=typed: typed)
        assert main(["token", "set", which]) == 1
        err = capsys.readouterr().err
        assert expected in err and "nothing stored" in err and (not typed.strip() or typed not in err)
        assert memory_keyring.get_password("maider-tui", key) is None
    reference = "op://Private/Linode Token/credential"  # read with the 1Password CLI when needed: kept as typed
    monkeypatch.setattr("getpass.getpass", lambda prompt="": reference)
    assert main(["token", "set", which]) == 0
    assert memory_keyring.get_password("maider-tui", key) == reference
