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


# --- reaching the VM with the system's ssh (pure: the dashboard writes the files) ------------------

def known_hosts_line(host: str, port: int, host_key: str) -> str:
    """A known_hosts line pinning the VM's host key; OpenSSH writes non-22 ports as `[host]:port`."""
    key_type, key_data = host_key.split()[:2]
    where = host if port == 22 else f"[{host}]:{port}"
    return f"{where} {key_type} {key_data}\n"


def ssh_config_entry(session: str, host: str, port: int, key_path: str, known_hosts: str) -> str:
    """The `Host maider-<session>` block that makes `ssh -F <data dir>/ssh_config maider-<session>` work."""
    return (f"Host maider-{session}\n"
            f"    HostName {host}\n"
            f"    Port {port}\n"
            "    User root\n"
            f"    IdentityFile \"{key_path}\"\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile \"{known_hosts}\"\n"
            "    StrictHostKeyChecking yes\n")


def merge_ssh_config(existing: str, session: str, entry: str | None) -> str:
    """`existing` with the session's block replaced by `entry` (or removed when None); others kept."""
    blocks: list[str] = []
    current: list[str] = []
    for line in existing.splitlines(keepends=True):
        if line.startswith("Host ") and current:
            blocks.append("".join(current))
            current = []
        current.append(line)
    if current:
        blocks.append("".join(current))
    mine = f"Host maider-{session}\n"
    kept = [b for b in blocks if not b.startswith(mine)]
    if entry is not None:
        kept.append(entry)
    return "".join(b if b.endswith("\n") else b + "\n" for b in kept)
