"""Records a user or a file feeds, as pydantic models: `VllmConfig`, and the base of the settings groups.

Apart from `maider_tui.models` so that the catalog types there cost no pydantic: the app imports
them before its first frame (the cloud client does), and pydantic loads only with the settings or a
session's vLLM config, after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # `port = true` in a file is a mistake, not port 1
        raise ValueError("it is not a whole number")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("it must not be empty")
    return value


Whole = Annotated[int, BeforeValidator(_no_bool)]
"""A whole number that a boolean is not ("8000", 8000 and 8000.0 are)."""
Text = Annotated[str, AfterValidator(_not_blank)]
"""Text with something in it besides spaces."""


class Record(BaseModel):
    """A frozen pydantic model a user or a file feeds: unknown keys are ignored (a newer file still
    loads), NaN and infinity are refused, and the docstring under each field is its description."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False, use_attribute_docstrings=True)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The record from a mapping (a stored JSON column, a TOML table); raises ValidationError."""
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (tuples become lists, nested records tables)."""
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, checked like a new record (model_copy alone would not check them)."""
        return self.model_validate({**dict(self), **changes})


# What each of pydantic's error types means, in the words the app's messages use.
_SAYS = {
    "int_parsing": "it is not a whole number", "int_type": "it is not a whole number",
    "int_from_float": "it is not a whole number", "float_parsing": "it is not a number",
    "float_type": "it is not a number", "finite_number": "it is not a finite number",
    "bool_parsing": "it is not true or false", "bool_type": "it is not true or false",
    "string_type": "it is not text", "string_too_short": "it must not be empty",
    "list_type": "it is not a list", "tuple_type": "it is not a list", "dict_type": "it is not a table",
    "model_type": "it is not a table", "model_attributes_type": "it is not a table",
    "missing": "it is required",
}
_LIMITS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def problem_text(error: ErrorDetails) -> str:
    """One of pydantic's errors (an item of `ValidationError.errors()`) as the app says it:
    "it must be at least 1", "it is not a whole number"; the field is named by the caller (`loc`)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _LIMITS:
        key, words = _LIMITS[kind]
        return f"it must be {words} {ctx[key]:g}"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"].removeprefix("Value error, "))
    if kind == "string_type" and len(error["loc"]) > 1 and not isinstance(error["loc"][-1], str):
        return "every item must be text"
    return _SAYS.get(kind, error["msg"][:1].lower() + error["msg"][1:])


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(the top field's name, what is wrong) of the first error of `exc`."""
    error = exc.errors()[0]
    return (str(error["loc"][0]) if error["loc"] else "", problem_text(error))


class VllmConfig(Record):
    """The vLLM settings of one deployment; compose rendering, healing and model switching all speak it.

    Checked when made (`VllmConfig.from_dict` for a stored one, `.replace()` for a changed one);
    `.to_dict()` is what the session record stores.
    """

    model: str
    served_model_name: str | None = None
    tensor_parallel_size: Whole = Field(1, ge=1)
    pipeline_parallel_size: Whole = Field(1, ge=1)
    max_model_len: Whole | None = Field(None, ge=256)
    gpu_memory_utilization: float = Field(0.90, gt=0.1, le=0.99)
    max_num_seqs: Whole | None = Field(None, ge=1)
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    trust_remote_code: bool = False
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
