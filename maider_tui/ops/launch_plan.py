"""What a launch is: the plan (where, on which GPU type, with which vLLM config) and, once ready, the
handle that keeps its SSH connection and tunnel open."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from maider_tui import catalog
from maider_tui.cloud import SESSION_TAG, Vm
from maider_tui.deploy import compose
from maider_tui.models import GpuType, VllmConfig
from maider_tui.remote.ssh import SshSession
from maider_tui.store import SessionRecord

if TYPE_CHECKING:
    from maider_tui.profiles import Profile
    from maider_tui.settings import Settings

DEFAULT_IMAGE = "linode/ubuntu24.04"


def compose_options_of(stored: Mapping[str, Any], settings: Settings | None = None) -> compose.ComposeOptions:
    """The compose options a session was launched with (provisioning keeps them in its record's
    options under "compose"), so a resume, a switch or a heal neither adds nor drops Open WebUI;
    options a newer or older version no longer knows are dropped. Without any: the settings' own
    (`settings` None: the defaults). The one place a session's ComposeOptions are rebuilt."""
    saved = stored.get("compose")
    if isinstance(saved, dict):
        known = {f.name for f in dataclasses.fields(compose.ComposeOptions)}
        return compose.ComposeOptions(**{k: v for k, v in saved.items() if k in known})
    return compose.ComposeOptions.from_settings(settings) if settings is not None else compose.ComposeOptions()


@dataclass(frozen=True)
class LaunchPlan:
    """What to launch: where, on which plan, with which vLLM settings. `name` None: made automatically.

    `options` holds what other workflows read back from the session (watchdog minutes ...).
    """

    region: str
    gpu_type: GpuType
    config: VllmConfig
    compose: compose.ComposeOptions = field(default_factory=compose.ComposeOptions)
    name: str | None = None
    image: str = DEFAULT_IMAGE
    firewall_id: int | None = None
    tags: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    auto_name: bool = False
    """`name` was made automatically: if another launch reserves it first, this one takes the next free one."""
    nodes: int = 1
    """VMs of `gpu_type` the session spans: above 1, vLLM on a Ray cluster over a private network."""

    @property
    def model(self) -> str:
        return self.config.model

    @classmethod
    def from_settings(cls, settings: Settings, *, gpu_type: GpuType | str | None = None,
                      model: str | None = None, region: str | None = None, max_model_len: int | None = None,
                      name: str | None = None, profile: Profile | None = None) -> LaunchPlan:
        """The plan the settings describe for the model on the GPU type: `deploy.launch.resolve` (the
        fit plan, the model's profile, the user's own vLLM settings, in that order)."""
        from ..deploy.launch import resolve

        gpu = gpu_type if isinstance(gpu_type, GpuType) else catalog.gpu_type(
            gpu_type or settings.provider.type)
        spec = catalog.model(model or settings.vllm.model)
        launch = resolve(spec, gpu, settings, profile=profile, context=max_model_len)
        if not launch.report.fits:
            raise ValueError(f"{spec.id} does not fit {gpu.id}: {launch.report.reason}")
        return cls(region=region or settings.provider.region, gpu_type=gpu, config=launch.config,
                   compose=launch.compose, name=name,
                   image=settings.provider.image, firewall_id=settings.provider.firewall_id,
                   tags=tuple(t for t in settings.provider.tags if t != SESSION_TAG),
                   options={"watchdog_minutes": settings.watchdog.timeout_minutes})

    def stored_options(self) -> dict[str, Any]:
        """What the session record keeps so the plan can be rebuilt (`from_record`)."""
        return {**self.options, "compose": dataclasses.asdict(self.compose), "image": self.image,
                "firewall_id": self.firewall_id, "tags": list(self.tags)}

    @classmethod
    def from_record(cls, record: SessionRecord) -> LaunchPlan:
        """The plan of a recorded session (for resuming it), its config as last healed."""
        try:
            gpu = catalog.gpu_type(record.gpu_type)
        except catalog.UnknownGpuTypeError:  # a plan the API knows and the catalog does not
            gpu = GpuType(record.gpu_type, record.gpu_type, record.gpu_count,
                          catalog.family_for_type_id(record.gpu_type), record.hourly_usd, 0.0)
        opts = dict(record.options)
        options = compose_options_of({"compose": opts.pop("compose", None) or {}})
        return cls(region=record.region, gpu_type=gpu, config=VllmConfig.from_dict(record.vllm_config),
                   compose=options, name=record.name, image=opts.pop("image", DEFAULT_IMAGE),
                   firewall_id=opts.pop("firewall_id", None), tags=tuple(opts.pop("tags", ())), options=opts,
                   nodes=record.nodes)


@dataclass
class SessionHandle:
    """A ready session: the SSH connection and the tunnel stay open for the dashboard until `close()`."""

    name: str
    record: SessionRecord
    vm: Vm
    ssh: SshSession
    local_port: int
    endpoint: str
    config: VllmConfig
    max_model_len: int
    heals: int = 0
    workers: list[SshSession] = field(default_factory=list)
    """A session over several VMs: one SSH connection per worker VM (`ssh` is the head's)."""

    async def close(self) -> None:
        """Close the tunnel and the SSH connections; the VMs keep running."""
        await self.ssh.close()
        for worker in self.workers:
            await worker.close()
