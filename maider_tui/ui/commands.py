"""The command palette: one provider, namespaced titles, commands that fit the screen you are on."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, runtime_checkable

from textual.actions import parse
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen


@dataclass(frozen=True)
class PaletteCommand:
    title: str  # "namespace: verb", e.g. "session: destroy"
    help: str
    callback: Callable[[], object]
    action: str | None = None  # the key's action this command runs, when it mirrors a key


def key_commands(screen: Screen[Any], namespace: str, titles: Mapping[str, str] | None = None,
                 *, skip: Iterable[str] = ()) -> Iterator[PaletteCommand]:
    """One command per action of `screen`'s own keys that can act now (its `check_action`), so every
    key is in the palette too: "namespace: verb" (the key's description unless `titles` names the
    action otherwise; a title with its own namespace is kept whole), the key's tooltip as help. `skip`: actions that make no sense without a key
    (moving a highlight)."""
    titles = titles or {}
    seen = set(skip)
    for binding in Binding.make_bindings(screen.BINDINGS):
        action = binding.action
        if action in seen:
            continue
        seen.add(action)
        destination, name, parameters = parse(action)
        owner = screen.app if destination == "app" else screen
        if not owner.check_action(name, parameters):
            continue
        title = titles.get(action, binding.description.lower())
        yield PaletteCommand(title if ":" in title else f"{namespace}: {title}", binding.tooltip or binding.description,
                             partial(screen.app.run_action, action, screen), action=action)


@runtime_checkable
class OffersCommands(Protocol):
    """An app or screen with palette commands of its own."""

    def palette_commands(self) -> Iterable[PaletteCommand]: ...


class MaiderCommands(Provider):
    """Asks the app and the active screen which commands make sense right now."""

    def offered(self) -> Iterable[PaletteCommand]:
        """The screen's commands, then the app's global ones it does not already offer."""
        seen: set[str] = set()
        for source in (self.screen, self.app):
            if isinstance(source, OffersCommands):
                for command in source.palette_commands():
                    if command.title not in seen and (command.action is None or command.action not in seen):
                        seen.update({command.title, command.action or command.title})
                        yield command

    async def discover(self) -> Hits:
        for command in self.offered():
            yield DiscoveryHit(command.title, partial(command.callback), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.offered():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), partial(command.callback), help=command.help)
