"""The command palette: one provider, namespaced titles, commands that fit the screen you are on."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    title: str  # "namespace: verb", e.g. "session: destroy"
    help: str
    callback: Callable[[], object]


@runtime_checkable
class OffersCommands(Protocol):
    """An app or screen with palette commands of its own."""

    def palette_commands(self) -> Iterable[PaletteCommand]: ...


class MaiderCommands(Provider):
    """Asks the app and the active screen which commands make sense right now."""

    def _commands(self) -> Iterable[PaletteCommand]:
        for source in (self.app, self.screen):
            if isinstance(source, OffersCommands):
                yield from source.palette_commands()

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, partial(command.callback), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), partial(command.callback), help=command.help)
