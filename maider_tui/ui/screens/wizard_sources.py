"""What the launch wizard reads from outside, in the screen's workers: a Linode token (asked for when
there is none), the provider's regions, GPU types and prices, and the session names in use.

The wizard owns one WizardSources; each read lands in the screen's attributes (`regions_data`,
`types_data`, `loading_note`, `taken`) and redraws the lists that show it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..messages import AccountCheckRequested

if TYPE_CHECKING:
    from ...cloud.base import Provider
    from .wizard import WizardScreen


class WizardSources:
    def __init__(self, screen: WizardScreen) -> None:
        self.screen = screen

    def find_token(self) -> None:
        """No token anywhere: ask for one before anything else; with one, load the regions."""
        self.screen.run_worker(self._find_token(), exclusive=True, exit_on_error=False, group="wizard-token",
                               description="Look for a Linode token")

    async def _find_token(self) -> None:
        screen, context = self.screen, self.screen.context
        if context.provider is not None or await asyncio.to_thread(context.secrets.has, "linode_token"):
            self.load_catalog()
            return
        from ..dialogs.token import TokenDialog

        factory = screen.provider_factory or context.linode_factory()
        screen.app.push_screen(TokenDialog(context.secrets, provider_factory=factory), self._token_given)

    def _token_given(self, provider: Provider | None) -> None:
        screen = self.screen
        if provider is None:
            screen.dismiss(None)  # no token, no wizard: the home screen says how to add one
            return
        screen.context.provider = provider  # the one the token was checked with
        self.load_catalog()
        screen.post_message(AccountCheckRequested())  # the sessions screen behind learns of the account too

    def load_catalog(self, refresh: bool = False) -> None:
        """The provider's regions and GPU types (with `refresh`, asked again rather than cached)."""
        self.screen.run_worker(self._load_catalog(refresh), exclusive=True, exit_on_error=False,
                               group="wizard-catalog", description="Load GPU regions and types")

    async def _load_catalog(self, refresh: bool) -> None:
        from ...cloud.errors import ProviderError

        screen = self.screen
        provider = await asyncio.to_thread(screen.context.get_provider)
        if provider is None:
            screen.loading_note = ("No Linode token: add one (maider-tui token set linode) "
                                   "or set LINODE_TOKEN.")
            screen.redraw_lists()
            return
        try:
            regions = await provider.regions(refresh=refresh)
            types = await provider.gpu_types(refresh=refresh)
        except ProviderError as exc:
            screen.loading_note = f"{exc.message.rstrip('.')}. Press ctrl+r to try again."
            screen.redraw_lists()
            return
        screen.regions_data, screen.types_data = regions, types
        if refresh:
            screen.notify(f"{len(types.items)} GPU types in {len(regions.items)} regions ({types.source}).",
                          title="Prices")
        screen.redraw_lists()

    def read_taken(self) -> None:
        """The session names in use, from the database (through ops.views)."""
        self.screen.run_worker(self._read_taken(), exclusive=True, exit_on_error=False, group="wizard-names",
                               description="Read the session names")

    async def _read_taken(self) -> None:
        from ...ops.views import Views

        self.screen.taken = await Views(self.screen.context).session_names()
