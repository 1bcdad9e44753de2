"""The Endpoint panel: the OpenAI-compatible URL, the tunnel's state, Open WebUI and the aider command.

The aider command holds two long paths: the panel breaks its lines between words and, inside a path
too long for a line, after a `/`, so each part of a path stays whole and readable (`c` copies the
command in one piece).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content

from .lines import Line, LinePanel


@dataclass(frozen=True)
class EndpointView:
    endpoint: str | None
    tunnel: str  # "ok", "reconnecting", "closed", "not connected"
    webui: str | None = None
    aider: str | None = None


def fold(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells: broken at spaces, then after a `/` inside a word too long
    for a line; only a part with no `/` in `width` cells is cut where the line ends."""
    if width <= 0 or len(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) <= width:
            line += " " + word
            continue
        if line:
            lines.append(line)
        line = ""
        while len(word) > width:
            cut = word.rfind("/", 0, width) + 1 or width  # after the last / that fits, else at the edge
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def tunnel_label(tunnel: str) -> str:
    return {"ok": "(tunnel ok)", "reconnecting": "reconnecting", "closed": "(tunnel closed)"}.get(
        tunnel, f"({tunnel})")


class EndpointPanel(LinePanel):
    """The endpoint line first (what most users copy), then Open WebUI, then the aider command."""

    DEFAULT_CSS = """
    EndpointPanel { height: auto; }
    EndpointPanel.-reconnecting { color: $warning; }
    """

    shown_view: EndpointView | None = None

    def on_resize(self) -> None:
        if self.shown_view is not None:
            self.show(self.shown_view)  # another width: the command folds anew

    def show(self, view: EndpointView) -> None:
        self.shown_view = view
        width = self.content_size.width
        if view.endpoint is None:
            first: Line = ("not connected", "bold")
        else:
            style = "bold" if view.tunnel == "reconnecting" else "dim"
            first = Content.assemble(view.endpoint, "  ", (tunnel_label(view.tunnel), style))
        lines = [first]
        if view.webui:
            lines.append(f"Open WebUI {view.webui}")
        if view.aider:
            lines.extend((part, "dim") for part in fold(view.aider, width))
        self.set_class(view.tunnel == "reconnecting", "-reconnecting")
        self.show_lines(lines)
