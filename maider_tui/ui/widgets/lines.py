"""A panel of a few lines of text that repaints only the lines that changed.

A Static redraws all of itself on every update: its content, and through Textual's line cache every
line of its box, border and title included. The dashboard's panels change one line a second (a
countdown, a cost), so `LinePanel` keeps each line's drawing and, when a line's text changes, repaints
that line alone. It draws the lines as a Static would draw the same text: same wrapping, same styles,
and the border, padding, title and colours come from CSS as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.content import Content
from textual.geometry import Region
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget

# One line: plain text, or text with a style (a Textual style string such as "dim"), or a Content.
Line = str | tuple[str, str] | Content


def as_content(line: Line) -> Content:
    if isinstance(line, Content):
        return line
    if isinstance(line, tuple):
        text, style = line
        return Content.styled(text, style) if style else Content(text)
    return Content(line)


def _key(line: Content) -> tuple:
    """What must be equal for two lines to draw the same (Content's own == compares the text only)."""
    return line.plain, tuple(line.spans)


class LinePanel(Widget):
    """Lines of text set with `show_lines`; an update repaints only the lines whose text changed.

    A line that changes repaints alone when it fits the width before and after; a line that wraps,
    or another number of lines, lays the panel out again and repaints all of it (its height may change).
    """

    DEFAULT_CSS = """
    LinePanel { height: auto; }
    """

    def __init__(self, *lines: Line, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        # Plain text, never a link: no link styling to apply to each line drawn (nor on mouse hover).
        self.set_reactive(Widget.auto_links, False)
        self._lines: tuple[Content, ...] = tuple(as_content(line) for line in lines)
        self._keys = tuple(_key(line) for line in self._lines)
        self._drawn: dict[int, list[Strip]] = {}  # each line's strips (several when it wraps), by line
        self._drawn_for: int | None = None  # the width they were drawn at

    @property
    def lines(self) -> tuple[str, ...]:
        """The lines shown, as plain text."""
        return tuple(line.plain for line in self._lines)

    def show_lines(self, lines: Sequence[Line]) -> None:
        """Show `lines`; nothing is repainted when they are what is shown."""
        new = tuple(as_content(line) for line in lines)
        keys = tuple(_key(line) for line in new)
        if keys == self._keys:
            return
        old, self._lines, self._keys = self._keys, new, keys
        width = self.content_size.width
        if not self.is_mounted or not width or len(keys) != len(old):
            self._repaint_all()
            return
        changed = [y for y, (before, after) in enumerate(zip(old, keys)) if before != after]
        if any(cell_len(old[y][0]) > width or new[y].cell_length > width for y in changed):
            self._repaint_all()  # a wrapped line: the lines below may move, the height may change
            return
        for y in changed:
            self._drawn.pop(y, None)
        self.refresh(*(Region(0, y, width, 1) for y in changed))

    def _repaint_all(self) -> None:
        self._drawn.clear()
        self.refresh(layout=True)

    def render(self) -> Content:
        """All the lines as one text: what layout measures and a text selection copies."""
        return Content("\n").join(self._lines)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self.text_selection is not None:
            return super().render_line(y)  # a selection spans lines: drawn whole, as a Static draws it
        if self._drawn_for != width:
            self._drawn_for = width
            self._drawn.clear()
        for index, line in enumerate(self._lines):
            strips = self._drawn.get(index)
            if strips is None:
                strips = self._drawn[index] = self._draw(index, line, width)
            if y < len(strips):
                return strips[y]
            y -= len(strips)
        return Strip.blank(width, self.visual_style.rich_style)

    def _draw(self, index: int, line: Content, width: int) -> list[Strip]:
        """Line `index`'s strips, as drawing all the lines at once would make them.

        Each character carries its (column, line) for mouse selection: drawn after `index` blank
        lines, the line's characters carry its own line number.
        """
        visual = Content("\n" * index) + line if index else line
        strips = Visual.to_strips(self, visual, width, None, self.visual_style)[index:]
        return strips or [Strip.blank(0)]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()  # another colour or text style: every line is drawn anew

    def selection_updated(self, selection: Selection | None) -> None:
        self._drawn.clear()
        super().selection_updated(selection)
