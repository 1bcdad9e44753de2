"""The Provider on Linode, through linode_api4 (synchronous: every call runs in a worker thread).

linode_api4 would retry 408/429/502 on its own, POST included, so a create whose answer was lost
could make a second VM. Our client has the library's retries off; this module retries reads itself
(with backoff and Retry-After) and retries a create only after looking its label up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from linode_api4 import Instance, LinodeClient, Type
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from maider_tui import catalog
from maider_tui.clock import Clock, SystemClock
from maider_tui.cloud import convert
from maider_tui.cloud.base import HOME_TAG_PREFIX, SESSION_TAG, Account, Catalogued, CreateSpec, Vm, session_tag
from maider_tui.cloud.errors import API_EXCEPTIONS, MAYBE_DONE, ProviderError, create_once, from_api_error
from maider_tui.cloud.vpcs import LinodeVpcs
from maider_tui.log import register_secret
from maider_tui.models import GpuType, Region

if TYPE_CHECKING:
    from maider_tui.store import Store

log = logging.getLogger(__name__)
R = TypeVar("R")

CACHE_TTL_S = 3600.0
MAX_RETRY_AFTER_S = 60.0


class _TimeoutAdapter(HTTPAdapter):
    """No retries at all, and a timeout on every request (linode_api4 sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=Retry(total=0, redirect=0, raise_on_status=False))
        self._timeout = timeout

    def send(self, request: PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None, proxies: dict[str, str] | None = None) -> Response:
        return super().send(request, stream=stream, timeout=self._timeout if timeout is None else timeout,
                            verify=verify, cert=cert, proxies=proxies)


class LinodeProvider:
    """Linode through linode_api4; see the Provider protocol in cloud/base.py."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.linode.com/v4",
        store: Store | None = None,
        clock: Clock | None = None,
        ssh_resolver: Callable[[int], tuple[str, int]] | None = None,
        timeout: float = 30,
        retry_delays: Sequence[float] = (1, 2, 4, 8),
    ) -> None:
        register_secret(token)
        self.base_url = base_url.rstrip("/")
        self._store = store
        self._clock = clock or SystemClock()
        self._ssh_resolver = ssh_resolver
        self._delays = tuple(retry_delays)
        self._client = LinodeClient(token, base_url=self.base_url, retry=False)
        adapter = _TimeoutAdapter(timeout)
        self._client.session.mount("http://", adapter)
        self._client.session.mount("https://", adapter)
        self._prices: dict[str, float] = {}
        self.vpcs = LinodeVpcs(self._client, self._call, self._delays, self._pause)
        """The account's VPCs: a multi-VM session's private network (cloud/vpcs.py)."""

    def __repr__(self) -> str:
        return f"LinodeProvider(base_url={self.base_url!r})"  # never the token

    # --- calls and retries --------------------------------------------------------------------

    async def _call(self, fn: Callable[[], R], *, retry: bool = True, **context: str) -> R:
        """Run `fn` in a thread; retry what may pass on a second try (429, 5xx, network) when `retry`.

        Not linode_api4's own retry (off above): urllib3 sleeps its thread on the wall clock, where this
        waits on the injected Clock that tests drive, caps the API's Retry-After, and logs each retry;
        and the caller decides per call (`retry=False`) what must not be sent twice.
        """
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(fn)
            except API_EXCEPTIONS as exc:
                err = from_api_error(exc, **context)
                cause = exc
            if not (retry and err.retryable and attempt < len(self._delays)):
                raise err from cause
            await self._pause(err, attempt)
            attempt += 1

    async def _pause(self, err: ProviderError, attempt: int) -> None:
        delay = max(self._delays[attempt], min(err.retry_after or 0.0, MAX_RETRY_AFTER_S))
        log.info("Linode API: %s; retry %d in %.1f s", err.message, attempt + 1, delay)
        await self._clock.sleep(delay)

    # --- account and catalog ------------------------------------------------------------------

    async def whoami(self) -> Account:
        """The token's user; ProviderError kind "auth" when Linode refuses the token."""

        def fetch() -> Account:
            profile = self._client.profile()
            return Account(str(profile.username), getattr(profile, "email", None))

        return await self._call(fetch)

    async def regions(self, *, refresh: bool = False) -> Catalogued[list[Region]]:
        """Regions with the "GPU Linodes" capability, and the GPU families each offers."""

        def fetch() -> list[dict[str, Any]]:
            availability = self._availability()
            found = (convert.region_record(r, availability) for r in self._client.regions())
            return [r for r in found if r is not None]

        return await self._catalogued(
            "regions", refresh, fetch, convert.region_from_record, lambda: list(catalog.regions())
        )

    async def gpu_types(self, *, refresh: bool = False) -> Catalogued[list[GpuType]]:
        """GPU plans (class "gpu") with prices, cheapest first, and the regions each can be had in."""

        def fetch() -> list[dict[str, Any]]:
            availability = self._availability()
            gpu_plans = self._client.linode.types(Type.type_class == "gpu")
            found = (convert.gpu_type_record(t, availability) for t in gpu_plans)
            return [t for t in found if t is not None]

        result = await self._catalogued(
            "gpu_types", refresh, fetch, convert.gpu_type_from_record, lambda: list(catalog.gpu_types())
        )
        items = sorted(result.items, key=lambda t: (t.hourly_usd, t.id))
        self._prices.update({t.id: t.hourly_usd for t in items})
        return Catalogued(items, result.source, result.message, result.fetched_at)

    def _availability(self) -> dict[str, dict[str, bool]] | None:
        """Per-plan availability, or None where the API has no such endpoint for us (older accounts)."""
        try:
            return convert.availability_map(self._client.regions.availability())
        except API_EXCEPTIONS as exc:
            err = from_api_error(exc)
            if err.kind in ("not_found", "forbidden", "invalid"):
                return None
            raise

    async def _catalogued(
        self,
        name: str,
        refresh: bool,
        fetch: Callable[[], list[dict[str, Any]]],
        build: Callable[[dict[str, Any]], R],
        builtin: Callable[[], list[R]],
    ) -> Catalogued[list[R]]:
        key = f"linode:{name}@{self.base_url}"
        if not refresh:  # the database in a thread: another program may hold it for seconds
            cached = await asyncio.to_thread(self._cache_get, key)
            if cached is not None:
                items = [build(r) for r in cached["items"]]
                return Catalogued(items, "cache", fetched_at=cached["fetched_at"])
        try:
            records = await self._call(fetch)
        except ProviderError as err:
            log.warning("Linode %s: %s; using the built-in catalog", name, err.message)
            return Catalogued(builtin(), "offline", offline_message(err))
        now = self._clock.now()
        await asyncio.to_thread(self._cache_put, key, {"fetched_at": now, "items": records})
        return Catalogued([build(r) for r in records], "api", fetched_at=now)

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        if self._store is None:
            return None
        try:
            value = self._store.cache_get(key)
        except Exception as exc:  # noqa: BLE001 - a broken cache only costs an API call
            log.warning("API cache read failed (%s); asking the API", exc)
            return None
        ok = isinstance(value, dict) and isinstance(value.get("items"), list) and "fetched_at" in value
        return value if ok else None

    def _cache_put(self, key: str, value: dict[str, Any]) -> None:
        if self._store is None:
            return
        try:
            self._store.cache_put(key, value, CACHE_TTL_S)
        except Exception as exc:  # noqa: BLE001 - the answer is good even if we cannot keep it
            log.warning("API cache write failed (%s)", exc)

    def _hourly(self, type_id: str) -> float | None:
        if type_id in self._prices:
            return self._prices[type_id]
        try:
            return catalog.gpu_type(type_id).hourly_usd
        except catalog.UnknownGpuTypeError:
            return None

    def _vm(self, instance: Any) -> Vm:
        return convert.vm_from_instance(instance, self._hourly(convert.slug(instance.type) or ""))

    # --- instances ----------------------------------------------------------------------------

    async def create(self, spec: CreateSpec) -> Vm:
        """Rent a VM labelled with the session name and tagged `maider` and `maider-session:<name>`.

        A create that may have reached Linode (5xx, timeout, lost connection) is retried only after
        the label was looked up and not found; if it was found, that VM is the answer.
        """
        tags = list(dict.fromkeys([SESSION_TAG, session_tag(spec.session or spec.label), *spec.tags]))

        def post() -> Vm:
            extra: dict[str, Any] = {"label": spec.label, "tags": tags}
            if spec.user_data is not None:
                extra["metadata"] = self._client.linode.build_instance_metadata(user_data=spec.user_data)
            if spec.vpc is not None:
                # The public interface first (eth0: SSH, the internet), the VPC one beside it (eth1).
                extra["interfaces"] = [{"purpose": "public"},
                                       {"purpose": "vpc", "subnet_id": spec.vpc.subnet_id,
                                        "ipv4": {"vpc": spec.vpc.address}}]
            try:
                made = self._client.linode.instance_create(
                    spec.type, spec.region, image=spec.image,
                    authorized_keys=list(spec.authorized_keys) or None, firewall=spec.firewall_id, **extra,
                )
            except ValueError as exc:  # linode_api4 reads a non-key string as a path and fails here
                raise ProviderError(f"An authorized key is not an SSH public key ({exc})", "invalid") from exc
            # Releases up to 5.43 answer (Instance, root password) when no password was given.
            instance = made[0] if isinstance(made, tuple) else made
            return self._vm(instance)

        async def find(failure: ProviderError) -> Vm | None:
            found = await self._find_after_failure(spec.label, failure, spec.tags)
            if found is not None:
                log.warning("create of %s: %s, but the VM exists (id %s)", spec.label, failure.message, found.id)
            return found

        return await create_once(lambda: self._call(post, retry=False, type_id=spec.type, region=spec.region),
                                 find, self._delays, self._pause)

    async def _find_after_failure(self, label: str, failure: ProviderError,
                                  tags: Sequence[str] = ()) -> Vm | None:
        try:
            # The VM this create made carries the home's tag: another home's VM of that label is not it.
            return await self.find_label(label, [t for t in tags if t.startswith(HOME_TAG_PREFIX)])
        except ProviderError as err:
            raise ProviderError(
                f"Creating {label} failed ({failure.message}) and checking whether Linode made it failed "
                f"too ({err.message}); look for a VM labelled {label} before launching again",
                failure.kind, status=failure.status,
            ) from err

    async def find_label(self, label: str, tags: Sequence[str] = ()) -> Vm | None:
        """Our VM (tagged `maider`, and `tags` too) with this label, or None."""

        def fetch() -> list[Vm]:
            found = self._client.linode.instances(Instance.label == label)
            return [self._vm(i) for i in found]

        ours = (vm for vm in await self._call(fetch)
                if vm.label == label and SESSION_TAG in vm.tags and all(t in vm.tags for t in tags))
        return next(ours, None)

    async def get(self, vm_id: int) -> Vm | None:
        """The VM, or None when Linode no longer has it."""

        def fetch() -> Vm:
            return self._vm(self._client.load(Instance, vm_id))

        try:
            return await self._call(fetch)
        except ProviderError as err:
            if err.kind == "not_found":
                return None
            raise

    async def list(self, tag: str = SESSION_TAG) -> list[Vm]:  # noqa: A003 - the protocol's name
        """VMs carrying `tag` (filtered by the API and checked again here), oldest first."""

        def fetch() -> list[Vm]:
            return [self._vm(i) for i in self._client.linode.instances(Instance.tags == tag)]

        vms = await self._call(fetch)
        return sorted((vm for vm in vms if tag in vm.tags), key=lambda vm: (vm.created, vm.id))

    async def destroy(self, vm_id: int) -> bool:
        """Delete the VM; False when it was already gone (404 is not an error)."""
        attempt = 0
        sent = False  # whether an earlier DELETE of ours may have gone through
        while True:
            try:
                await asyncio.to_thread(Instance(self._client, vm_id).delete)
                return True
            except API_EXCEPTIONS as exc:
                err = from_api_error(exc)
                cause = exc
            if err.kind == "not_found":
                # After a lost answer to our own DELETE, 404 means it worked.
                return sent
            sent = sent or err.kind in MAYBE_DONE
            if not (err.retryable and attempt < len(self._delays)):
                raise err from cause
            await self._pause(err, attempt)
            attempt += 1

    def ssh_endpoint(self, vm: Vm) -> tuple[str, int]:
        """(host, port) for SSH: the resolver's answer when given (the sim's ports), else ipv4[0]:22."""
        if self._ssh_resolver is not None:
            return self._ssh_resolver(vm.id)
        if not vm.ipv4:
            raise ProviderError(
                f"{vm.label} has no public IPv4 address yet; wait for it to boot", "not_found"
            )
        return vm.ipv4[0], 22


def offline_message(err: ProviderError) -> str:
    """Why the built-in catalog is shown, in one line."""
    as_of = getattr(catalog, "PRICES_AS_OF", None)  # the catalog may grow a date; say it when it does
    prices = f"built-in prices from {as_of}" if as_of else "built-in prices"
    why = err.detail or err.message
    if err.kind in ("network", "timeout", "server", "rate_limited"):
        return f"Linode API unreachable ({why}); showing {prices}"
    return f"Linode API refused the catalog request ({why}); showing {prices}"
