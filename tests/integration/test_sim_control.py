"""The sim's control plane and `RemoteSim`: how another process sees and steers a running cloud."""

from __future__ import annotations

import pytest

from maider_tui.cli import main
from maider_tui.sim.remote import RemoteSim, RemoteSimError
from tests.integration.test_simcloud import spec


async def test_remote_sim_sees_what_the_cloud_holds(sim_cloud):
    remote = RemoteSim(sim_cloud.linode_base_url, sim_cloud.token)
    try:
        provider = remote.provider()
        vm = await provider.create(spec("remote-view"))
        assert remote.ssh_address(vm.id) == sim_cloud.ssh_address(vm.id)
        assert provider.ssh_endpoint(vm) == sim_cloud.ssh_address(vm.id)
        assert remote.ssh_handshakes(vm.id) == 0
        stats = remote.stats()
        assert stats["instances"] == [vm.id] and stats["creates"] == 1
        before = sim_cloud.world.api_requests
        remote.stats()
        assert sim_cloud.world.api_requests == before, "control requests are not Linode traffic"
        await provider.destroy(vm.id)
        with pytest.raises(LookupError):
            remote.ssh_handshakes(vm.id)
    finally:
        remote.close()


def test_faults_are_set_remotely_and_never_hit_the_control_plane(sim_cloud):
    remote = RemoteSim(sim_cloud.linode_base_url, sim_cloud.token)
    try:
        answer = remote.set_faults(api_error_burst=3, idle_gpus=[1, 2], vllm_crash_after_s=30)
        assert answer["api_error_burst"] == 3 and answer["idle_gpus"] == [1, 2]
        assert sim_cloud.faults.idle_gpus == {1, 2} and sim_cloud.faults.vllm_crash_after_s == 30
        assert remote.faults()["api_error_burst"] == 3  # the burst is still there: not consumed by /sim
        with pytest.raises(RemoteSimError, match="unknown fault"):
            remote.set_faults(no_such_fault=1)
        with pytest.raises(RemoteSimError, match="takes a list"):
            remote.set_faults(idle_gpus=3)
    finally:
        remote.close()


def test_wrong_token_and_wrong_address_are_refused(sim_cloud):
    with pytest.raises(RemoteSimError, match="Invalid Token"):
        RemoteSim(sim_cloud.linode_base_url, "sim-wrong").stats()
    with pytest.raises(RemoteSimError, match="ends in /v4"):
        RemoteSim("http://127.0.0.1:1/api", sim_cloud.token)


def test_app_against_a_remote_sim_needs_its_token_and_its_address(monkeypatch, capsys, sim_cloud):
    monkeypatch.delenv("MAIDER_SIM_TOKEN", raising=False)
    assert main(["--sim-url", sim_cloud.linode_base_url]) == 2
    assert "MAIDER_SIM_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("MAIDER_SIM_TOKEN", "sim-wrong")
    assert main(["--sim-url", sim_cloud.linode_base_url]) == 2
    err = capsys.readouterr().err
    assert "No simulated cloud" in err and "Invalid Token" in err and "sim-wrong" not in err
