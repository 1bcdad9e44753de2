"""The Endpoint panel: the OpenAI-compatible URL, the tunnel's state, Open WebUI and the aider command."""

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


def tunnel_label(tunnel: str) -> str:
    return {"ok": "(tunnel ok)", "reconnecting": "reconnecting", "closed": "(tunnel closed)"}.get(
        tunnel, f"({tunnel})")


class EndpointPanel(LinePanel):
    """The endpoint line first (what most users copy), then Open WebUI, then the aider command."""

    DEFAULT_CSS = """
    EndpointPanel { height: auto; }
    EndpointPanel.-reconnecting { color: $warning; }
    """

    def show(self, view: EndpointView) -> None:
        if view.endpoint is None:
            first: Line = ("not connected", "bold")
        else:
            style = "bold" if view.tunnel == "reconnecting" else "dim"
            first = Content.assemble(view.endpoint, "  ", (tunnel_label(view.tunnel), style))
        lines = [first]
        if view.webui:
            lines.append(f"Open WebUI {view.webui}")
        if view.aider:
            lines.append((view.aider, "dim"))
        self.set_class(view.tunnel == "reconnecting", "-reconnecting")
        self.show_lines(lines)
