"""Updating a Static once a second without re-laying out the screen.

`Static.update` asks for a layout pass by default, and one layout pass re-arranges and redraws the
whole screen. The dashboard patches dozens of Statics a second; almost always only the digits change,
so `patch` skips what did not change and asks for a layout pass only when the widget's size can.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.visual import Visual
from textual.widgets import Static


def _line_widths(visual: Visual) -> list[int] | None:
    plain = getattr(visual, "plain", None)
    return None if plain is None else [cell_len(line) for line in plain.split("\n")]


def size_may_change(widget: Static, old: Visual, new: Visual) -> bool:
    """Whether showing `new` instead of `old` (visuals, as `Static.visual` holds them) may change the
    widget's size (True when unsure)."""
    if not widget.is_mounted or not widget.size.width:
        return True
    before, after = _line_widths(old), _line_widths(new)
    if before is None or after is None or len(before) != len(after):
        return True  # not plain text, or another number of lines: another height
    width = widget.styles.width
    if width is None or width.is_auto:
        return max(before) != max(after)  # the widest line sets the width
    room = widget.content_size.width
    return max(before) > room or max(after) > room  # a wrapped line may wrap onto more lines


def patch(widget: Static, content: Any) -> None:
    """`widget.update(content)`, skipped when nothing changed, without layout when the size cannot change.

    The new content is read as the widget reads it (markup or not): the update repaints only, then
    `Static.visual` before and after tell whether a layout pass is needed too."""
    old = widget.content
    if type(old) is type(content) and old == content:
        return
    before = widget.visual
    widget.update(content, layout=False)
    if size_may_change(widget, before, widget.visual):
        widget.refresh(layout=True)
