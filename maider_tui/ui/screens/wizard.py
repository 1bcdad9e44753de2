"""The launch wizard: capability -> region -> GPU type -> model -> review, then the provisioning screen.

Every step highlights a sensible default (from the settings, then the fit planner), so `enter`
five times launches a working session. The lists come from the provider (regions, types and
prices, read by wizard_sources.WizardSources), the verdicts from the fit planner; this screen only
turns keys into choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...paths import styles_dir
from ...ops.naming import session_name
from ..commands import PaletteCommand, key_commands
from ..messages import LaunchRequested
from ..widgets.steps_header import StepsHeader
from ..widgets.top_bar import TopBar
from . import wizard_steps as steps
from .wizard_custom import CustomModelPane
from .wizard_sources import WizardSources
from .wizard_review import ReviewEdits, ReviewForm, plan_summary
from .wizard_steps import CAPABILITY, GPU_TYPE, MODEL, REGION, REVIEW, Choice

if TYPE_CHECKING:
    from ...cloud.base import Catalogued, Provider
    from ...context import AppContext
    from ...models import Capability, FitReport, GpuType, ModelSpec, Region
    from ...profiles import Profile

COLUMNS = {CAPABILITY: steps.CAPABILITY_COLUMNS, REGION: steps.REGION_COLUMNS,
           GPU_TYPE: steps.TYPE_COLUMNS, MODEL: steps.MODEL_COLUMNS}


class WizardScreen(Screen[None]):
    """Five steps to a launch plan; `escape` goes back one step and keeps every choice made."""

    CSS_PATH = styles_dir() / "wizard.tcss"

    BINDING_GROUP_TITLE = "New session"
    BINDINGS = [
        # Priority: the filter Input has focus while typing, and enter/escape must still drive the steps.
        Binding("enter", "accept", "Choose", priority=True, id="wizard.accept",
                tooltip="Accept the highlighted choice; on the review, launch"),
        Binding("escape", "back", "Back", priority=True, id="wizard.back",
                tooltip="Go back one step, keeping what was chosen (closes the wizard on the first)"),
        Binding("ctrl+r", "refresh", "Refresh prices", id="wizard.refresh",
                tooltip="Ask the API again for regions, GPU types and prices"),
        Binding("down", "move(1)", "Next", show=False, id="wizard.down", tooltip="Highlight the next choice"),
        Binding("up", "move(-1)", "Previous", show=False, id="wizard.up",
                tooltip="Highlight the previous choice"),
    ]

    def __init__(self, context: "AppContext", *,
                 provider_factory: Callable[[str], "Provider"] | None = None) -> None:
        super().__init__()
        self.context = context
        self.settings = context.settings.settings
        self.provider_factory = provider_factory
        self.step = CAPABILITY
        self.cap: Capability | None = None
        self.custom: ModelSpec | None = None
        self.picked_region: Region | None = None
        self.gpu: GpuType | None = None
        self.report: FitReport | None = None
        self.nodes = 1  # VMs the chosen model's plan spans (a model no single VM holds spans several)
        self.remembered: dict[int, str] = {}  # the highlighted row of each step, kept when going back
        self.regions_data: Catalogued | None = None
        self.types_data: Catalogued | None = None
        self.loading_note = "Loading regions and GPU types from the API…"
        self.custom_open = False
        self.rows: list[Choice] = []
        self._wanted: str | None = None  # the row to highlight once the list is drawn
        self.taken: set[str] = set()  # the session names in use, read in a worker
        self._empty = ""  # what to say when the step has nothing to list
        self._review_key: tuple | None = None
        self._profiles: dict[str, Profile] | None = None
        self.sources = WizardSources(self)  # the token, the provider's lists, the names in use

    # --- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar(self.context.clock)
        yield StepsHeader(id="steps")
        with ContentSwitcher(initial="choose", id="panes"):
            with Vertical(id="choose"):
                yield Input(id="filter", placeholder="type to filter · ↑↓ move · enter choose")
                yield Static("", id="columns")
                yield OptionList(id="choices")
                with Horizontal(id="context-row"):
                    yield Label("Context (tokens)", classes="field-label")
                    yield Input(id="context", classes="field-input")
                yield Static("", id="detail", markup=False)
            yield CustomModelPane(self.context.hf_token, hf_base_url=self.context.hf_base_url, id="custom")
            yield ReviewForm(id="review")
        yield Footer()

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.title = "New session"
        bar.badge = "demo" if self.context.demo else ""
        self.query_one("#review").border_title = "Review"
        self.query_one("#custom").border_title = "Custom model"
        self.show_step()
        self.sources.find_token()
        self.sources.read_taken()

    # --- data -----------------------------------------------------------------------------------

    def redraw_lists(self) -> None:
        """Only the steps that show the provider's data change; elsewhere a redraw would lose the filter."""
        if self.step in (REGION, GPU_TYPE) and not self.custom_open:
            self.show_step()

    # --- what the steps show ----------------------------------------------------------------------

    @property
    def models(self) -> tuple["ModelSpec", ...]:
        return steps.models_of(self.cap, self.custom) if self.cap else ()

    @property
    def tier_label(self) -> str:
        return steps.tier_label(self.cap, self.custom)

    def rows_for(self, step: int) -> tuple[list[Choice], str | None, str, str]:
        """(rows, default id, box title, note for when there is nothing to list)."""
        return steps.step_rows(step, self.settings, models=self.models, tier_label=self.tier_label,
                               regions=self.regions_data, types=self.types_data, region=self.picked_region,
                               gpu=self.gpu, loading=self.loading_note, profile_of=self.profile_of)

    def profile_of(self, model_id: str) -> Profile:
        """The profile a model launches with (built-in, then the user's files, read once per wizard)."""
        from ...profiles import builtin_profile, load_profiles

        if self._profiles is None:
            self._profiles, _ = load_profiles(Path(self.context.paths.profiles_dir))
        return self._profiles.get(model_id, builtin_profile(model_id))

    def show_step(self) -> None:
        """Draw the current step: header, pane, rows (filtered), the highlighted row's verdict."""
        self.query_one(StepsHeader).show(
            steps.step_marks(self.tier_label, self.picked_region, self.gpu, self.report), self.step)
        switcher = self.query_one(ContentSwitcher)
        if self.step == REVIEW:
            switcher.current = "review"
            self.fill_review()
            self.query_one("#name", Input).focus()
            return
        if self.custom_open:
            switcher.current = "custom"
            self.query_one("#hf-id", Input).focus()
            return
        switcher.current = "choose"
        rows, default, title, empty = self.rows_for(self.step)
        self.rows = rows
        self._wanted = self.remembered.get(self.step, default)
        self._empty = empty
        self.query_one("#choose").border_title = title
        self.query_one("#columns", Static).update(steps.header_text(COLUMNS[self.step]))
        self.query_one("#context-row").display = self.step == MODEL
        filter_input = self.query_one("#filter", Input)
        with filter_input.prevent(Input.Changed):
            filter_input.value = ""
        self.apply_filter()
        filter_input.focus()

    def apply_filter(self) -> None:
        query = self.query_one("#filter", Input).value
        visible = [row for row in self.rows if row.matches(query)]
        options = self.query_one("#choices", OptionList)
        options.clear_options()
        options.add_options(Option(steps.row_text(r.cells, COLUMNS[self.step], dimmed=r.dimmed), id=r.id)
                            for r in visible)
        ids = [r.id for r in visible]
        usable = [r.id for r in visible if not r.dimmed]
        target = self._wanted if self._wanted in ids else (usable[0] if usable else (ids[0] if ids else None))
        if target is None:
            self.say(self._empty if not self.rows else
                     f"Nothing matches {query!r}: backspace to widen the filter.")
            return
        options.highlighted = ids.index(target)
        self.show_detail(self.row(target))

    def row(self, row_id: str | None) -> Choice | None:
        return next((r for r in self.rows if r.id == row_id), None)

    def highlighted(self) -> Choice | None:
        options = self.query_one("#choices", OptionList)
        if options.highlighted is None or options.option_count == 0:
            return None
        return self.row(options.get_option_at_index(options.highlighted).id)

    def say(self, message: str, *, warning: bool = False) -> None:
        detail = self.query_one("#detail", Static)
        detail.update(message)
        detail.set_class(warning, "warning")

    def show_detail(self, row: Choice | None) -> None:
        if row is None:
            return
        self.say(row.detail or row.reason, warning=row.dimmed)
        if self.step == MODEL:
            # Back on this step with the model chosen before: keep the context chosen with it.
            report = self.report
            if (report is not None and report.model.id == row.id and report.gpu_type == self.gpu
                    and self.nodes == row.nodes):
                context: int | None = report.max_model_len
            else:
                context = steps.default_context(row.value, self.settings, self.profile_of(row.id), row.nodes)
            self.query_one("#context", Input).value = "" if context is None else str(context)

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.apply_filter()

    @on(Input.Changed, "#context")
    def _context_changed(self, event: Input.Changed) -> None:
        row = self.highlighted()
        if row is None or self.step != MODEL or self.gpu is None:
            return
        report, message = steps.plan_context(row.value.model, self.gpu, event.value, row.nodes)
        self.say(message, warning=report is None)

    @on(OptionList.OptionHighlighted, "#choices")
    def _highlight_changed(self, event: OptionList.OptionHighlighted) -> None:
        self._wanted = event.option.id
        self.show_detail(self.row(event.option.id))

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.launch()

    @on(OptionList.OptionSelected, "#choices")
    def _clicked(self) -> None:
        self.action_accept()

    # --- keys -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "move":
            return self.step != REVIEW and not self.custom_open
        return True

    def action_move(self, delta: int) -> None:
        options = self.query_one("#choices", OptionList)
        if delta > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_refresh(self) -> None:
        self.notify("Asking the API for regions, GPU types and prices…", title="Prices")
        self.sources.load_catalog(refresh=True)

    def action_back(self) -> None:
        if self.custom_open:
            pane = self.query_one(CustomModelPane)
            if pane.manual_shown:
                pane.show_manual(False)
                pane.say("")
                return
            self.custom_open = False
        elif self.step == CAPABILITY:
            self.dismiss(None)
            return
        else:
            self.step -= 1
        self.show_step()

    def action_accept(self) -> None:
        if self.step == REVIEW:
            self.launch()
            return
        if self.custom_open:
            self.query_one(CustomModelPane).submit()
            return
        row = self.highlighted()
        if row is None:
            self.say("Nothing is highlighted: clear the filter or wait for the list to load.", warning=True)
            return
        if row.dimmed:
            self.say(f"{row.reason}. Choose another.", warning=True)
            return
        if self.remembered.get(self.step) != row.id:
            # A different choice: later steps start again from their defaults, not stale rows.
            self.remembered = {step: kept for step, kept in self.remembered.items() if step < self.step}
        self.remembered[self.step] = row.id
        if self.step == CAPABILITY:
            self.cap = row.value
            if self.cap.id == "custom":
                self.custom_open = True
                self.show_step()
                return
        elif self.step == REGION:
            self.picked_region = row.value
        elif self.step == GPU_TYPE:
            self.gpu = row.value
        elif self.step == MODEL:
            if self.gpu is None:  # the GPU type step sets it: back there
                self.step = GPU_TYPE
                self.show_step()
                return
            report, message = steps.plan_context(row.value.model, self.gpu,
                                                 self.query_one("#context", Input).value, row.nodes)
            if report is None:
                self.say(message, warning=True)
                return
            self.report, self.nodes = report, row.nodes
        self.step += 1
        self.show_step()

    # --- custom model -----------------------------------------------------------------------------

    @on(CustomModelPane.Chosen)
    def _custom_chosen(self, event: CustomModelPane.Chosen) -> None:
        self.custom_chosen(event.spec)

    def custom_chosen(self, spec: "ModelSpec") -> None:
        self.custom = spec
        self.custom_open = False
        self.remembered = {CAPABILITY: "custom"}  # a new model: the later defaults may differ
        self.step = REGION
        self.notify(f"{spec.id}: {spec.params_b:.1f}B parameters, {spec.layers} layers.",
                    title="Custom model")
        self.show_step()

    # --- review and launch ------------------------------------------------------------------------

    def taken_names(self) -> set[str]:
        """The session names in use, as last read (a launch under a name taken since is refused when
        it reserves the name)."""
        return self.taken

    def chosen(self) -> tuple[Region, FitReport] | None:
        """The region and the fit the review plans with; None (and back to the first step missing one)
        when the earlier steps have not both been chosen."""
        if self.picked_region is None or self.report is None:
            self.step = REGION if self.picked_region is None else MODEL
            self.show_step()
            return None
        return self.picked_region, self.report

    def fill_review(self) -> None:
        chosen = self.chosen()
        if chosen is None:
            return
        region, report = chosen
        key = (region.id, report.gpu_type.id, report.model.id, report.max_model_len, self.nodes)
        if key == self._review_key:
            return  # back and forth again: keep what the user typed
        self._review_key = key
        from ...profiles import describe, profile_for

        self.sources.read_taken()  # again, for the launch
        name = session_name(report.model.id, self.context.clock.now(), self.taken_names())
        # The model's profile flags appear in the editable fields, so the user sees and can change them.
        profile, _ = profile_for(report.model.id, self.context.paths)
        edits = ReviewEdits.from_settings(self.settings, name, profile)
        summary = plan_summary(region, report, self.nodes)
        settings_of_profile = describe(profile)[1:]  # the first line only names the profile
        summary.append(f"\nProfile ({profile.source}): " + ("; ".join(settings_of_profile) or "nothing extra"),
                       style="dim")
        self.query_one(ReviewForm).fill(summary, edits)

    def launch(self) -> None:
        """Check the edits, re-plan with them, and hand the plan to the provisioning screen."""
        chosen = self.chosen()
        if chosen is None:
            return
        region, report = chosen
        plan = self.query_one(ReviewForm).plan(self.settings, region.id, report, self.taken_names(),
                                               self.context.paths, nodes=self.nodes)
        if plan is None:
            return  # the form says what is wrong, next to the field
        app = self.app
        app.pop_screen()  # the wizard gives way to the provisioning screen
        app.post_message(LaunchRequested(plan))  # to the app: the wizard is off the screen stack now

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "wizard", {"accept": "choose / launch"}, skip=("move(1)", "move(-1)"))
