"""The recommend form: task, budget and size preference -> the top 3 GPU type + model, measured or estimated.

`l` (or the "Launch this" button, or `enter` on the results list) opens the launch wizard with the
highlighted recommendation chosen (see `open_wizard_with`); `enter` on a radio set chooses its option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from ...paths import styles_dir
from ..commands import PaletteCommand, key_commands
from ...bench.recommend import Recommendation, recommend
from ..widgets.top_bar import TopBar
from .benchmarks_panes import CONFIDENCE_VARS, colour, gpu_label, model_label

if TYPE_CHECKING:
    from ...context import AppContext
    from ...ops.views import BenchRunRecord

# (value for bench.recommend, label), in the order the form shows them; the first is the default.
TASK_CHOICES = (("coding", "Coding"), ("context-heavy", "Context-heavy"), ("reasoning", "Reasoning"),
                ("mixed", "Mixed"))
BUDGET_CHOICES = (("none", "No limit"), ("under-1", "Under $1/h"), ("1-3", "$1–3/h"), ("over-3", "Over $3/h"))
SIZE_CHOICES = (("balanced", "Balanced"), ("smallest", "Smallest viable"), ("largest", "Largest available"))


def open_wizard_with(app: App[object], context: "AppContext", rec: Recommendation) -> str:
    """Open the launch wizard with `rec`'s GPU type and model chosen; return how it was prefilled.

    The wizard's remembered row per step is set (capability, region, GPU type, model), so `enter`
    walks straight through to the review.
    """
    from .wizard import WizardScreen

    wizard = WizardScreen(context)
    remembered = _remembered_rows(context, rec)
    if remembered is not None:
        wizard.remembered.update(remembered)
        app.push_screen(wizard)
        return "remembered"
    app.push_screen(wizard)
    app.notify(f"Choose {gpu_label(rec.gpu_type)} and {model_label(rec.model_id)} in the wizard.",
               title="Recommend")
    return "plain"


def _remembered_rows(context: "AppContext", rec: Recommendation) -> dict[int, str] | None:
    """The wizard's row id per step for `rec`, or None when the catalog cannot place it."""
    from ... import catalog
    from .wizard_steps import CAPABILITY, GPU_TYPE, MODEL, REGION

    try:
        model = catalog.model(rec.model_id)
        gpu = catalog.gpu_type(rec.gpu_type)
    except Exception:  # noqa: BLE001 - an imported model or plan the catalog does not know
        return None
    cap = next((c for c in catalog.capabilities() if model.category in c.categories), None)
    if cap is None or not gpu.regions:
        return None
    wanted = context.settings.settings.provider.region
    region = wanted if wanted in gpu.regions else gpu.regions[0]
    return {CAPABILITY: cap.id, REGION: region, GPU_TYPE: gpu.id, MODEL: model.id}


def recommendation_text(rec: Recommendation, colours: dict[str, str]) -> Text:
    """Two or more lines: rank, configuration, figures, confidence (or "estimated"), warnings."""
    text = Text()
    text.append(f"{rec.rank}. {gpu_label(rec.gpu_type)} · {model_label(rec.model_id)}", style="bold")
    text.append(f"   ${rec.hourly_usd:.2f}/h\n")
    cost = f"${rec.cost_per_1k_tokens:.4f}/1K" if rec.cost_per_1k_tokens is not None else "—/1K"
    eff = f"{rec.cost_efficiency:.1f}" if rec.cost_efficiency is not None else "—"
    text.append(f"   {rec.tokens_per_sec:.1f} tok/s · {cost} · efficiency {eff} · ")
    style = colour(colours, CONFIDENCE_VARS.get(rec.confidence, ""))
    if rec.estimated:
        text.append("estimated", style=f"italic {style}".strip())
    else:
        text.append(f"{rec.confidence} ({rec.runs} run{'s' if rec.runs != 1 else ''})",
                    style=f"bold {style}".strip())
    for warning in rec.warnings:
        text.append(f"\n   ⚠ {warning}", style=colour(colours, "warning"))
    return text


class RecommendScreen(Screen[None]):
    """Pick task, budget and size; the top three follow every change; `l` launches the highlighted one."""

    CSS_PATH = styles_dir() / "recommend.tcss"

    BINDING_GROUP_TITLE = "Recommend"
    BINDINGS = [
        # Not `enter`: that key chooses an option of the radio set that has focus.
        Binding("l", "launch", "Launch this", id="recommend.launch",
                tooltip="Open the launch wizard with the highlighted recommendation"),
        Binding("escape", "back", "Back", id="recommend.back", tooltip="Back to the previous screen"),
    ]

    def __init__(self, context: "AppContext") -> None:
        super().__init__()
        self.context = context
        # The form's answers; not attributes of their own, since Screen has `size` and `task` already.
        self.form = {"task": TASK_CHOICES[0][0], "budget": BUDGET_CHOICES[0][0], "size": SIZE_CHOICES[0][0]}
        self.results: list[Recommendation] = []
        self.runs: list[BenchRunRecord] = []  # every benchmark run, read in a worker

    def compose(self) -> ComposeResult:
        yield TopBar(self.context.clock)
        with Horizontal(id="rec-form"):
            for name, title, choices in (("task", "Task", TASK_CHOICES), ("budget", "Budget", BUDGET_CHOICES),
                                         ("size", "Size", SIZE_CHOICES)):
                with Vertical(classes="rec-field"):
                    yield Static(title, classes="rec-label")
                    with RadioSet(id=f"rec-{name}"):
                        for i, (value, label) in enumerate(choices):
                            yield RadioButton(label, value=i == 0, name=value)
        with Vertical(id="rec-results-box"):
            yield OptionList(id="rec-results")
            with Horizontal(id="rec-actions"):
                yield Static("", id="rec-note", markup=False)
                yield Button("Launch this", id="rec-launch", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.title = "Recommend"
        bar.badge = "demo" if self.context.demo else ""
        self.query_one("#rec-results-box").border_title = "Top 3"
        self.read_runs()
        self.query_one("#rec-task").focus()

    @on(RadioSet.Changed)
    def _changed(self, event: RadioSet.Changed) -> None:
        field = (event.radio_set.id or "").removeprefix("rec-")
        if field in ("task", "budget", "size") and event.pressed.name:
            self.form[field] = event.pressed.name
            self.update_results()

    def choose(self, *, task: str | None = None, budget: str | None = None, size: str | None = None) -> None:
        """Set the form's answers as if clicked (tests, the palette); the results follow."""
        for field, value in (("task", task), ("budget", budget), ("size", size)):
            if value is None:
                continue
            for button in self.query_one(f"#rec-{field}", RadioSet).query(RadioButton):
                if button.name == value:
                    button.value = True

    @work(exclusive=True, exit_on_error=False, group="recommend-runs", description="Read the benchmark runs")
    async def read_runs(self) -> None:
        """The runs measured so far, then the results from them."""
        from ...ops.views import Views

        self.runs = await Views(self.context).bench_runs()
        self.update_results()

    def update_results(self) -> None:
        """Ask bench.recommend for the top three with the form's answers and list them."""
        self.results = recommend(self.runs, task=self.form["task"], budget=self.form["budget"],
                                 size=self.form["size"],
                                 now=self.context.clock.now())
        colours = self.app.get_css_variables()
        options = self.query_one("#rec-results", OptionList)
        options.clear_options()
        items: list[Option | None] = []
        for r in self.results:
            items += [None] if items else []  # a separator line between recommendations
            items.append(Option(recommendation_text(r, colours), id=str(r.rank)))
        options.add_options(items)
        if self.results:
            options.highlighted = 0
        measured = sum(1 for r in self.results if not r.estimated)
        if not self.results:
            note = "Nothing fits this budget: widen it or choose another size."
        else:
            how = ("all measured" if measured == len(self.results) else
                   f"{measured} measured, {len(self.results) - measured} estimated from the catalog")
            note = f"{how.capitalize()}. l opens the launch wizard with the highlighted one."
        self.query_one("#rec-note", Static).update(note)
        self.query_one("#rec-launch", Button).disabled = not self.results
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch":
            return True if self.results else None
        return True

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_launch()

    @on(Button.Pressed, "#rec-launch")
    def _launch_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_launch()

    def action_launch(self) -> None:
        options = self.query_one("#rec-results", OptionList)
        if options.highlighted is None:
            return
        rank = options.get_option_at_index(options.highlighted).id  # separators shift the indexes
        chosen = next((r for r in self.results if str(r.rank) == rank), None)
        if chosen is not None:
            open_wizard_with(self.app, self.context, chosen)

    def action_back(self) -> None:
        self.app.pop_screen()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "recommend", {"launch": "launch this"})
