"""Provisioning a session over several VMs: vLLM on a Ray cluster over the session's private network.

The single-VM launch's stages (ops/provision.py), each done for every node at once:
token -> record (the session and its nodes) -> keys (one client key; a host key per VM) -> create
(the session's VPC, then every VM joined to it at its fixed address) -> running -> ssh -> cloud_init
-> upload (each node's own compose file, and .env) -> compose_up -> vllm (the Ray cluster forms: head
up, workers joined, every GPU counted; then vLLM loads on the head) -> tunnel -> aider -> ready.

Every VM id is recorded as its create returns (node records; the head's is the session's own), the
VPC id as soon as it exists, so a crash at any stage of any node leaves nothing unaccounted for:
destroy and recovery find the rest by label and tag. A resumed launch carries on with the network and
every VM a dead run made (found by id, else by label; their pinned host keys and the kept client key)
and makes only what is missing, then runs every later stage again on every node. Like the single-VM
launch, this never destroys anything on failure: the VMs are left for the user to inspect or destroy,
and they count down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from maider_tui.cloud import CreateSpec, Vm, home_tag, node_label, session_vms
from maider_tui.cloud.base import VpcJoin, VpcNetwork
from maider_tui.cloud.vpcs import SUBNET_CIDR, node_address, vpc_label
from maider_tui.deploy import cloud_init
from maider_tui.deploy.cluster import ClusterLayout, Node, cluster_config, render_node
from maider_tui.deploy.compose import COMPOSE_PATH, LLM_DIR
from maider_tui.ops import heal
from maider_tui.ops.cluster_status import wait_cluster
from maider_tui.ops.events import NodeEvent
from maider_tui.ops.launch_plan import SessionHandle
from maider_tui.ops.provision import ProvisionFailed, SessionEnded, _Launch
from maider_tui.ops.readiness import (CLUSTER_TITLES, StageFailed, VllmAttempt, connect_ssh, wait_cloud_init,
                                      wait_running, wait_vllm_healing)
from maider_tui.ops.session_files import (client_key_path, host_key_path, session_dir, write_private,
                                          write_ssh_files)
from maider_tui.ops.vm_compose import compose_up, put_env, put_file
from maider_tui.remote.ssh import KeyPair, SshSession, generate_keypair, keypair_from_private
from maider_tui.models import VllmConfig
from maider_tui.store import NodeRecord, SessionRecord, StoreError

T = TypeVar("T")
Host = tuple[str, "KeyPair | None"]  # a node's pinned host key line, and its pair when its VM is to be made


class ClusterLaunch(_Launch):
    """One provisioning run of a session over `plan.nodes` VMs of `plan.gpu_type`."""

    KEPT = " Its VMs are still running (the head is VM {id}): inspect them or destroy the session."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers: list[SshSession] = []
        self.env_kept: set[int] = set()  # nodes whose VM keeps the .env a dead run uploaded (resumed, no token)

    def _layout(self) -> ClusterLayout:
        gpus = self.plan.gpu_type.gpus
        return ClusterLayout(tuple(Node(i, node_address(SUBNET_CIDR, i), gpus) for i in range(self.plan.nodes)),
                             SUBNET_CIDR)

    def _new_record(self, name: str) -> SessionRecord:
        record = super()._new_record(name)
        nodes, gpu = self.plan.nodes, self.plan.gpu_type
        record.nodes, record.gpu_count, record.hourly_usd = nodes, gpu.gpus * nodes, gpu.hourly_usd * nodes
        return record

    def stage(self, stage: str, message: str | None = None, **fields: Any) -> None:
        super().stage(stage, message or CLUSTER_TITLES.get(stage), **fields)  # the words for every VM

    def node(self, index: int, step: str, message: str, **fields: object) -> None:
        """A node reached `step`: its record, the session's log, the screen's node column."""
        if fields:
            self.store.update_node(self.name, index, **fields)
        self.store.add_event(self.name, "node", f"node {index}: {message}", {"node": index, "step": step})
        self.emit(NodeEvent(self.name, index, step, message))

    async def _stages(self) -> SessionHandle:
        layout = self._layout()
        self._choose_name()
        self.stage("token")
        account = await self.provider.whoami()
        self.log(f"Linode account: {account.username}")
        self._record()
        recorded = {n.index for n in self.store.nodes(self.name)}
        self.store.add_nodes([NodeRecord(self.name, n.index, n.address) for n in layout.nodes
                              if n.index not in recorded])  # on a resume, those a crash kept from the record
        existing = await self._existing_nodes(layout) if self.resume is not None else {}
        self.stage("keys", f"Making the SSH keys for {len(layout.nodes) - len(existing)} VMs")
        client_pem, client_public, hosts = self._cluster_keys(layout, existing)
        if self.hf_token is None and self.store.session(self.name).extra.get("env_uploaded"):
            self.env_kept = set(existing)  # as on one VM: a resume without a token keeps the one uploaded
        self.stage("create", f"Making the session's private network in {self.plan.region}")
        network = await self._network()
        self.stage("create", f"Renting {len(layout.nodes) - len(existing)} VMs of "
                             f"{self.plan.gpu_type.short_name} in {self.plan.region}")
        vms = await self._all(self._node_vm(n, existing.get(n.index), network, client_public, hosts[n.index], layout)
                              for n in layout.nodes)
        self.stage("running")
        vms = await self._all(self._running(vm, i) for i, vm in enumerate(vms))
        self.stage("ssh")
        sessions = await self._all(self._connect(vm, i, client_pem, hosts[i][0]) for i, vm in enumerate(vms))
        self.ssh, self.workers = sessions[0], sessions[1:]
        self.stage("cloud_init")
        await self._all(self._cloud_init(ssh, i) for i, ssh in enumerate(sessions))
        self.stage("upload", "Uploading each VM's compose file and .env")
        self.config = cluster_config(self.config, layout)
        self.store.update_session(self.name, vllm_config=self.config.to_dict())
        await self._all(self._upload_node(ssh, layout.nodes[i], layout) for i, ssh in enumerate(sessions))
        record = self.store.session(self.name)
        self.store.update_session(self.name, extra={**record.extra, "env_uploaded": True})
        self.stage("compose_up", "Starting Ray and vLLM on every VM (docker compose up)")
        await self._all(self._compose_up(ssh, i) for i, ssh in enumerate(sessions))
        self.stage("vllm", f"Forming the Ray cluster: {len(layout.nodes)} VMs, {layout.total_gpus} GPUs")
        await wait_cluster(sessions[0], sessions[1:], nodes=len(layout.nodes), gpus=layout.total_gpus,
                           limits=self.limits, clock=self.clock, progress=self.log)
        self.store.add_event(self.name, "cluster", f"Ray cluster formed: {len(layout.nodes)} VMs, "
                                                   f"{layout.total_gpus} GPUs")
        self.stage("vllm", f"Waiting for vLLM to load {self.config.model} across {len(layout.nodes)} VMs")
        local_port = await sessions[0].forward(self.plan.compose.vllm_port)
        served = await self._vllm_healing_cluster(sessions, layout, local_port)
        for n in layout.nodes:
            self.store.update_node(self.name, n.index, state="ready")
        handle = self._finish(vms[0], sessions[0], local_port, served)
        handle.workers = list(sessions[1:])
        return handle

    async def _vllm_healing_cluster(self, sessions: list[SshSession], layout: ClusterLayout,
                                    local_port: int) -> VllmAttempt:
        """Wait for vLLM on the head, healing a failed start as one VM's launch does: the remedied
        flags go into every node's file, every node comes up again, and the cluster forms again."""

        async def apply(attempt: int, found: heal.Diagnosis, new: VllmConfig) -> None:
            self._healed(attempt, found, cluster_config(new, layout))
            for ssh, node in zip(sessions, layout.nodes):
                text = render_node(self.config, node, layout, self.plan.compose)
                await put_file(ssh, COMPOSE_PATH, text.encode(), 0o644, clock=self.clock,
                               retry_s=self.limits.poll_s, log=self.log)
            await self._all(self._compose_up(ssh, i) for i, ssh in enumerate(sessions))
            await wait_cluster(sessions[0], sessions[1:], nodes=len(layout.nodes), gpus=layout.total_gpus,
                               limits=self.limits, clock=self.clock, progress=self.log)

        return await wait_vllm_healing(sessions[0], local_port, lambda: self.config,
                                       gpu_count=self.plan.gpu_type.gpus, options=self.plan.compose,
                                       limits=self.limits, clock=self.clock, apply=apply, log=self.log)

    async def replace_workers(self, indexes: list[int], network: VpcNetwork,
                              layout: ClusterLayout) -> dict[int, SshSession]:
        """A VM in place of each lost worker at `indexes`, at once: created (recorded on its node as its
        create returns), booted, reached, set up and given its files; its containers are not started.
        Each new VM's connection by node index (ops/cluster_replace.py starts the cluster again)."""
        pem = await asyncio.to_thread(client_key_path(self.paths, self.name).read_text)
        client = keypair_from_private(pem)

        async def replace(node: Node) -> SshSession:
            host = self._host_key(node.index)
            self.store.update_node(self.name, node.index, state="replacing")
            vm = await self._create_node(node, network, client.public_line, host, layout)
            vm = await self._running(vm, node.index)
            ssh = await self._connect(vm, node.index, pem, host.public_line)
            try:
                await self._cloud_init(ssh, node.index)
                await self._upload_node(ssh, node, layout)
            except BaseException:
                await asyncio.shield(ssh.close())
                raise
            return ssh

        done = await asyncio.gather(*(replace(layout.nodes[i]) for i in indexes), return_exceptions=True)
        sessions = {i: ssh for i, ssh in zip(indexes, done) if isinstance(ssh, SshSession)}
        failed = [exc for exc in done if isinstance(exc, BaseException)]
        if failed:  # the ones that got through are of no use alone
            for ssh in sessions.values():
                await asyncio.shield(ssh.close())
            raise failed[0]
        return sessions

    async def _fail(self, stage: str, message: str, diagnosis: str | None = None) -> ProvisionFailed:
        if diagnosis is not None and diagnosis.startswith("node_lost"):  # no flag helps; a VM in its place does
            message = (f"A VM of {self.name} was lost while vLLM loaded, and the model cannot serve without it: "
                       "resume the launch (enter on its row) to rent it again and carry on.")
        return await super()._fail(stage, message, diagnosis)

    # --- the steps, per node ----------------------------------------------------------------------

    async def _all(self, steps: Iterable[Awaitable[T]]) -> list[T]:
        """Run one step on every node at once; the first failure stops the others (a cancel leaves each
        node's record where it got to)."""
        tasks = [asyncio.ensure_future(step) for step in steps]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _host_key(self, index: int) -> KeyPair:
        """A new host key for node `index`, pinned in its record (the head's in the session's), the
        private half kept 0600 for cloud-init."""
        key = generate_keypair(f"{node_label(self.name, index)} host")
        if index == 0:
            write_private(host_key_path(self.paths, self.name), key.private_pem)
            self.store.update_session(self.name, host_key=key.public_line)
        else:
            write_private(session_dir(self.paths, self.name) / f"host_key_node{index}", key.private_pem)
            self.store.update_node(self.name, index, host_key=key.public_line)
        return key

    def _cluster_keys(self, layout: ClusterLayout, existing: dict[int, Vm]) -> tuple[str, str, list[Host]]:
        """(client private PEM, client public line, each node's host key: its pinned public line, and the
        pair when its VM is still to be made). A fresh launch makes them all; a resumed one keeps the
        client key (the VMs that exist trust it) and the pinned key of every VM that exists."""
        if self.resume is None:
            client_pem, client_public, head = self._keys(False)
            assert head is not None  # a fresh launch always makes the head's
            keys = [head, *(self._host_key(n.index) for n in layout.nodes[1:])]
            return client_pem, client_public, [(k.public_line, k) for k in keys]
        client = self._kept_client_key(bool(existing))
        pinned = {n.index: n.host_key for n in self.store.nodes(self.name)}
        pinned[0] = self.store.session(self.name).host_key
        hosts: list[Host] = []
        for node in layout.nodes:
            if node.index not in existing:
                key = self._host_key(node.index)
                hosts.append((key.public_line, key))
                continue
            line = pinned.get(node.index)
            if not line:
                raise StageFailed("keys", f"VM {existing[node.index].id} of {self.name} has no pinned host key, so "
                                          "it cannot be trusted: destroy the session and launch it again.")
            hosts.append((line, None))
        return client.private_pem, client.public_line, hosts

    def _kept_client_key(self, needed: bool) -> KeyPair:
        """A resumed launch's client key: the kept one, which the VMs a dead run made trust (`needed`);
        when none of them exists and it is gone, a new one."""
        path = client_key_path(self.paths, self.name)
        try:
            return keypair_from_private(path.read_text())
        except (OSError, ValueError) as exc:
            if needed:
                raise StageFailed("keys", f"the SSH key of {self.name} cannot be read ({exc}), so its VMs cannot "
                                          "be reached: destroy the session and launch it again.") from None
        client = generate_keypair(f"maider-tui {self.name}")
        write_private(path, client.private_pem)
        return client

    async def _existing_nodes(self, layout: ClusterLayout) -> dict[int, Vm]:
        """On a resume: the VM of each node a dead run made, by its recorded id, else by its label (a
        create whose answer was never recorded). A recorded VM that is gone is said, and made again."""
        labelled = {vm.label: vm for vm in await session_vms(self.provider, self.name,
                                                             home_tag(self.paths.data_dir), nodes=True)}
        found: dict[int, Vm] = {}
        for node in self.store.nodes(self.name):
            vm = await self.provider.get(node.instance_id) if node.instance_id is not None else None
            if vm is None and node.instance_id is not None:
                self.warn(f"VM {node.instance_id} (node {node.index}) of {self.name} is gone; renting a new one.")
            vm = vm or labelled.get(node_label(self.name, node.index))
            if vm is not None:
                found[node.index] = vm
        return found

    async def _node_vm(self, node: Node, vm: Vm | None, network: VpcNetwork, client_public: str, host: Host,
                       layout: ClusterLayout) -> Vm:
        """The node's VM: the one a dead run made (`vm`, recorded again), else a new one."""
        if vm is None:
            assert host[1] is not None  # a VM to be made got a new host key
            return await self._create_node(node, network, client_public, host[1], layout)
        self.store.update_node(self.name, node.index, instance_id=vm.id)
        if node.index == 0:
            self.instance_id = vm.id
            self.store.update_session(self.name, instance_id=vm.id)
        self.node(node.index, "create", f"VM {vm.id} already exists; carrying on with it")
        return vm

    async def _network(self) -> VpcNetwork:
        if self.resume is not None:  # a dead run may have made it: its VMs are joined to that one
            found = await self.provider.vpcs.find(vpc_label(self.name))
            if found is not None:
                if self.store.update_session(self.name, vpc_id=found.id).ended:
                    raise SessionEnded()
                self.log(f"Private network {found.label} ({found.cidr}) already made; carrying on with it")
                return found
        home = home_tag(self.paths.data_dir)
        network = await self.provider.vpcs.create(self.name, self.plan.region,
                                                  f"maider-tui session {self.name} ({home})")
        if self.store.update_session(self.name, vpc_id=network.id).ended:
            raise SessionEnded()
        self.log(f"Private network {network.label} ({network.cidr}) made")
        return network

    async def _create_node(self, node: Node, network: VpcNetwork, client_public: str, host: KeyPair,
                           layout: ClusterLayout) -> Vm:
        user_data = cloud_init.render(host_key_private=host.private_pem, host_key_public=host.public_line,
                                      private_network=layout.private_network)
        spec = CreateSpec(label=node_label(self.name, node.index), region=self.plan.region,
                          type=self.plan.gpu_type.id, image=self.plan.image, authorized_keys=[client_public],
                          user_data=user_data, tags=[*self.plan.tags, home_tag(self.paths.data_dir)],
                          firewall_id=self.plan.firewall_id, vpc=VpcJoin(network.subnet_id, node.address),
                          session=self.name)
        vm = await self._settled(self.provider.create(spec), made=lambda made: self._made(made, node.index))
        await self._made(vm, node.index)
        if self.store.session(self.name).ended:  # destroyed while the creates were in flight
            await self._undo_create(vm)
            raise SessionEnded()
        return vm

    async def _made(self, vm: Vm, index: int) -> None:
        """Record a node's VM the moment its create returns: it costs money from now on."""
        try:
            self.store.update_node(self.name, index, instance_id=vm.id, state="booting")
            if index == 0:
                self.instance_id = vm.id
                self.store.update_session(self.name, instance_id=vm.id)
            self.store.add_event(self.name, "created", f"VM {vm.id} created (node {index})",
                                 {"instance_id": vm.id, "node": index})
        except StoreError as exc:
            raise StageFailed("create", await self._unrecorded(vm, exc)) from None
        self.emit(NodeEvent(self.name, index, "create", f"VM {vm.id} created"))

    async def _running(self, vm: Vm, index: int) -> Vm:
        vm = await wait_running(self.provider, vm.id, self.limits, self.clock)
        self.node(index, "running", "booted")
        return vm

    async def _connect(self, vm: Vm, index: int, client_pem: str, host_key: str) -> SshSession:
        address, port = self.provider.ssh_endpoint(vm)
        ssh = await connect_ssh(address, port, client_pem, host_key, self.limits, self.clock)
        if index == 0:
            self.store.update_session(self.name, ip=address, ssh_port=port)
            write_ssh_files(self.paths, self.name, host=address, port=port, host_key=host_key)
        self.node(index, "ssh", f"SSH answered at {address}", ip=address, ssh_port=port)
        return ssh

    async def _cloud_init(self, ssh: SshSession, index: int) -> None:
        await wait_cloud_init(ssh, self.limits, self.clock, self.warn)
        self.node(index, "cloud_init", "driver and Docker installed")

    async def _upload_node(self, ssh: SshSession, node: Node, layout: ClusterLayout) -> None:
        await ssh.run(f"mkdir -p {LLM_DIR}", timeout=self.limits.command_timeout_s)
        if node.index not in self.env_kept:
            await put_env(ssh, self.hf_token, clock=self.clock, limits=self.limits, log=self.log)
        text = render_node(self.config, node, layout, self.plan.compose)
        await put_file(ssh, COMPOSE_PATH, text.encode(), 0o644, clock=self.clock, retry_s=self.limits.poll_s,
                       log=self.log)
        self.node(node.index, "upload", "compose file and .env uploaded")

    async def _compose_up(self, ssh: SshSession, index: int) -> None:
        await compose_up(ssh, self.limits, lambda line: self.log(f"node {index}: {line}"))
        self.node(index, "compose_up", "Ray head starting" if index == 0 else "Ray worker starting")

    async def _close(self) -> None:
        workers, self.workers = self.workers, []
        for worker in workers:
            await asyncio.shield(worker.close())
        await super()._close()
