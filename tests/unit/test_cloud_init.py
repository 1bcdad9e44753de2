"""The VM's user-data: valid for cloud-init, in the right order, hardened, and without any token."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from maider_tui.deploy.cloud_init import render, runcmd

# A throwaway key that protects nothing; the app makes a fresh one per VM at launch.
PRIVATE = """\
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBUZXN0S2V5Rm9yTWFpZGVyVHVpVW5pdFRlc3RzT25seQAAAJBUZXN0S2V5
-----END OPENSSH PRIVATE KEY-----
"""
PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFRlc3RLZXlGb3JNYWlkZXJUdWlVbml0VGVzdHNPbmx5 test-only"
USER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVzZXJrZXlmb3J0ZXN0c29ubHlub3RyZWFsbHl1c2Vk me@laptop"


def rendered(**kwargs) -> str:
    return render(host_key_private=PRIVATE, host_key_public=PUBLIC, **kwargs)


def loaded(**kwargs) -> dict:
    return yaml.safe_load(rendered(**kwargs))


def position(commands: list[str], needle: str) -> int:
    return next(i for i, command in enumerate(commands) if needle in command)


@pytest.mark.skipif(shutil.which("cloud-init") is None,
                    reason="cloud-init's validator is not installed (apt-get install -y cloud-init)")
@pytest.mark.parametrize("kwargs", [{}, {"authorized_keys": [USER_KEY], "extra_packages": ["htop"],
                                         "driver_branch": "570-server-open",
                                         "marker_path": "/run/maider/done"}])
def test_the_official_validator_accepts_it(tmp_path: Path, kwargs):
    path = tmp_path / "user-data.yaml"
    path.write_text(rendered(**kwargs), encoding="utf-8")
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_it_is_a_cloud_config_with_packages_and_reboot_if_required():
    text = rendered()
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert data["package_update"] is True and data["package_upgrade"] is True
    assert data["package_reboot_if_required"] is True
    assert {"nvtop", "ufw", "curl", "ca-certificates", "gnupg"} <= set(data["packages"])


def test_driver_through_cloud_inits_drivers_module():
    data = loaded(driver_branch="580-server")
    assert data["drivers"] == {"nvidia": {"license-accepted": True, "version": "580-server"}}
    assert "install nvidia-utils-580-server" in " ".join(data["runcmd"])
    assert "install nvidia-utils-570-server" in " ".join(loaded(driver_branch="570-server-open")["runcmd"])


def test_runcmd_steps_come_in_order():
    commands = loaded()["runcmd"]
    assert commands[0] == "set -eux"  # stop at the first failure, so the marker means success
    order = [
        "nvidia-utils-",
        "download.docker.com/linux/ubuntu/gpg",
        "/etc/apt/sources.list.d/docker.sources",
        "libnvidia-container/gpgkey",
        "nvidia-container-toolkit.list",
        "install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin",
        "install nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=docker",
        "systemctl restart docker",
        "systemctl enable nvidia-persistenced",
        "nvidia-smi -pm 1",
        "/opt/llm",
        "ufw default deny incoming",
        "ufw allow 22/tcp",
        "ufw --force enable",
        "/var/lib/maider/ready",
    ]
    positions = [position(commands, needle) for needle in order]
    assert positions == sorted(positions)
    assert commands[-1] == "cat /proc/sys/kernel/random/boot_id > /var/lib/maider/ready"
    assert not any(command.strip().startswith(("reboot", "shutdown")) for command in commands)


def test_opt_llm_is_private_and_the_marker_path_is_configurable():
    commands = runcmd(marker_path="/run/maider/done")
    assert "install -d -m 0700 -o root -g root /opt/llm /opt/llm/hf-cache /opt/llm/vllm-cache" in commands
    assert commands[-2:] == ["install -d -m 0755 /run/maider",
                             "cat /proc/sys/kernel/random/boot_id > /run/maider/done"]


def test_pinned_host_key_replaces_the_images_keys():
    data = loaded()
    assert data["ssh_deletekeys"] is True
    assert data["ssh_keys"] == {"ed25519_private": PRIVATE, "ed25519_public": PUBLIC}
    assert "ed25519_private: |" in rendered()  # a readable block, not an escaped one-liner


def test_sshd_hardened_keys_only_root_by_key():
    data = loaded()
    assert data["ssh_pwauth"] is False
    assert data["disable_root"] is False  # Linode's authorized_keys are root's
    dropin = next(f for f in data["write_files"] if f["path"].startswith("/etc/ssh/sshd_config.d/"))
    lines = set(dropin["content"].splitlines())
    assert {"PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password"} <= lines
    assert dropin["permissions"] == "0644"
    assert Path(dropin["path"]).name < "50-cloud-init.conf"  # sshd keeps the first value it reads


def test_persistence_mode_survives_reboots():
    data = loaded()
    dropin = next(f for f in data["write_files"] if "nvidia-persistenced" in f["path"])
    assert "--persistence-mode" in dropin["content"] and "--no-persistence-mode" not in dropin["content"]


def test_reboot_only_when_needed():
    power = loaded()["power_state"]
    assert power["mode"] == "reboot" and power["delay"] == "now"
    assert "/var/run/reboot-required" in power["condition"] and "nvidia-smi" in power["condition"]


def test_authorized_keys_and_extra_packages():
    data = loaded(authorized_keys=[USER_KEY, " "], extra_packages=["htop", "nvtop"])
    assert data["ssh_authorized_keys"] == [USER_KEY]
    assert data["packages"].count("nvtop") == 1 and "htop" in data["packages"]
    assert "ssh_authorized_keys" not in loaded()


def test_no_secret_of_the_users_in_the_user_data():
    text = rendered(authorized_keys=[USER_KEY])
    for word in ("HF_TOKEN", "HUGGING_FACE", "hf_", "LINODE_TOKEN", "linode_token", "api_key", "password:"):
        assert word not in text
    # The renderer has no way to receive a token at all.
    import inspect
    assert not any("token" in name for name in inspect.signature(render).parameters)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"host_key_private": "not a key"}, "private half"),
    ({"host_key_public": "ssh-rsa AAAAB3 x"}, "ssh-ed25519"),
    ({"authorized_keys": ["hello"]}, "authorized key"),
    ({"driver_branch": "latest; rm -rf /"}, "driver branch"),
    ({"marker_path": "relative/ready"}, "marker path"),
    ({"extra_packages": ["htop; reboot"]}, "package name"),
])
def test_bad_input_is_refused_without_echoing_keys(kwargs, message):
    arguments = {"host_key_private": PRIVATE, "host_key_public": PUBLIC, **kwargs}
    with pytest.raises(ValueError, match=message) as info:
        render(**arguments)
    assert "b3BlbnNzaC1rZXkt" not in str(info.value)
