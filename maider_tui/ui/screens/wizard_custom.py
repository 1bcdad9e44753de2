"""The custom capability: a Hugging Face model id, read from the hub, or its shape typed by hand."""

from __future__ import annotations

import asyncio
import math
from typing import Callable

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from ... import catalog
from ...cloud import hf
from ...models import ModelSpec

# A vocabulary the size of Llama 3's: only the embeddings depend on it, and params B is given anyway.
MANUAL_VOCAB = 128256

# (input id, label, config.json key): the shape the fit planner needs, kept to what a model card shows.
MANUAL_FIELDS = (
    ("m-layers", "Layers", "num_hidden_layers"),
    ("m-heads", "Attention heads", "num_attention_heads"),
    ("m-kv-heads", "KV heads", "num_key_value_heads"),
    ("m-head-dim", "Head dim", "head_dim"),
    ("m-hidden", "Hidden size", "hidden_size"),
    ("m-params", "Params (B)", ""),
    ("m-positions", "Max positions", "max_position_embeddings"),
)
# The largest value each field may take: far above any model there is, so only a slip is refused.
MANUAL_LIMITS = {"m-layers": 1_000, "m-heads": 1_024, "m-kv-heads": 1_024, "m-head-dim": 4_096,
                 "m-hidden": 131_072, "m-params": 10_000, "m-positions": 16_777_216}


def manual_model(model_id: str, values: dict[str, str]) -> tuple[ModelSpec | None, str]:
    """A ModelSpec from typed numbers; (spec, "") or (None, what is wrong)."""
    problem = hf.check_model_id(model_id) if model_id else None
    if problem:
        return None, problem
    config: dict[str, object] = {"vocab_size": MANUAL_VOCAB}
    params_b = 0.0
    for field_id, label, key in MANUAL_FIELDS:
        text = values.get(field_id, "").strip()
        try:
            number = float(text) if not key else int(text)
        except ValueError:
            return None, f"{label}: type a {'number' if not key else 'whole number'}."
        if not math.isfinite(number) or number <= 0:
            return None, f"{label}: must be a number above zero."
        if number > MANUAL_LIMITS[field_id]:
            return None, f"{label}: {text} is far more than any model has (at most {MANUAL_LIMITS[field_id]:,})."
        if key:
            config[key] = number
        else:
            params_b = float(number)
    if config["num_key_value_heads"] > config["num_attention_heads"]:  # type: ignore[operator]
        return None, "KV heads: cannot be more than the attention heads."
    try:
        return catalog.custom_model(config, model_id=model_id or "custom/model", params_b=params_b), ""
    except ValueError as exc:
        return None, str(exc)


class CustomModelPane(Vertical):
    """Model id (and, when the config cannot tell, the parameter count); the by-hand form on demand.

    Posts `Chosen` with the planned ModelSpec; `hf_token` is the blocking token look-up (keyring),
    run in a thread; `hf_base_url` the Hub to ask (None: huggingface.co; the demo's simulated Hub).
    """

    class Chosen(Message):
        """The user's model, read from the hub or typed by hand."""

        def __init__(self, spec: ModelSpec) -> None:
            super().__init__()
            self.spec = spec

    def __init__(self, hf_token: Callable[[], str | None], *, hf_base_url: str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.hf_token = hf_token
        self.hf_base_url = hf_base_url

    def compose(self) -> ComposeResult:
        yield Static("A Hugging Face model id: its config.json is read from the hub "
                     "(with your HF token for gated models).", classes="muted", markup=False)
        with Horizontal(classes="field-row"):
            yield Label("Model id", classes="field-label")
            yield Input(id="hf-id", placeholder="owner/name, e.g. Qwen/Qwen2.5-Coder-7B-Instruct",
                        classes="field-input wide")
        with Horizontal(classes="field-row", id="params-row"):
            yield Label("Params (B)", classes="field-label")
            yield Input(id="hf-params", placeholder="total parameters, billions", classes="field-input")
        yield Static("", id="custom-message", markup=False)
        with Vertical(id="manual"):
            for field_id, label, key in MANUAL_FIELDS:
                with Horizontal(classes="field-row"):
                    yield Label(label, classes="field-label")
                    yield Input(id=field_id, classes="field-input",
                                placeholder=key or "total parameters, billions")

    def on_mount(self) -> None:
        self.show_params(False)
        self.show_manual(False)

    def show_params(self, shown: bool) -> None:
        self.query_one("#params-row").display = shown

    def show_manual(self, shown: bool) -> None:
        self.query_one("#manual").display = shown

    @property
    def manual_shown(self) -> bool:
        return bool(self.query_one("#manual").display)

    @property
    def params_shown(self) -> bool:
        return bool(self.query_one("#params-row").display)

    def say(self, message: str) -> None:
        self.query_one("#custom-message", Static).update(message)

    def model_id(self) -> str:
        return self.query_one("#hf-id", Input).value.strip()

    def params_b(self) -> tuple[float | None, str]:
        text = self.query_one("#hf-params", Input).value.strip()
        if not text:
            return None, ""
        try:
            value = float(text.rstrip("bB"))
        except ValueError:
            return None, "Params (B): type the parameter count in billions, like 30.5."
        if not math.isfinite(value) or value <= 0:
            return None, "Params (B): must be a number above zero."
        if value > MANUAL_LIMITS["m-params"]:
            return None, f"Params (B): {text} is far more than any model has (at most {MANUAL_LIMITS['m-params']:,})."
        return value, ""

    def manual_values(self) -> dict[str, str]:
        return {field_id: self.query_one(f"#{field_id}", Input).value for field_id, _, _ in MANUAL_FIELDS}

    @work(exclusive=True, exit_on_error=False, group="wizard-hf", description="Read the model's config.json")
    async def submit(self) -> None:
        """Read config.json from the hub (or take the typed numbers) and plan the custom model."""
        from ...cloud import hf  # looked up on the module each time, so tests can stand in for the hub

        model_id = self.model_id()
        if self.manual_shown:
            spec, problem = manual_model(model_id, self.manual_values())
            if spec is None:
                self.say(problem)
                return
            self.post_message(self.Chosen(spec))
            return
        id_problem = hf.check_model_id(model_id)
        params, params_problem = self.params_b()
        if id_problem or params_problem:
            self.say(id_problem or params_problem)
            return
        self.say(f"Reading the config.json of {model_id} from Hugging Face…")
        token = await asyncio.to_thread(self.hf_token)
        base_url = self.hf_base_url or hf.HF_BASE_URL
        try:
            spec = await hf.model_spec(model_id, token=token, base_url=base_url, params_b=params)
        except hf.HfError as exc:
            self.say(f"{exc.message}\nFill in the form below from the model's config.json on Hugging Face "
                     "(each box names its key there), then press enter.")
            self.show_manual(True)
            self.query_one("#m-layers", Input).focus()
            return
        except ValueError as exc:
            if params is None and "parameter count" in str(exc):
                self.show_params(True)
                self.say(f"{exc}: type it in Params (B) and press enter.")
                self.query_one("#hf-params", Input).focus()
                return
            self.say(f"{exc}.\nEnter the shape by hand below.")
            self.show_manual(True)
            return
        self.post_message(self.Chosen(spec))
