"""The VM's user-data: a `#cloud-config` that turns a stock Ubuntu 22.04/24.04 GPU VM into a vLLM host.

Pure: no I/O. It holds no secret of the user's: no Hugging Face token (that goes over SFTP into
`/opt/llm/.env`) and no Linode token (which never leaves the user's machine). The only private
material is the VM's own SSH host key, made fresh for this VM and used nowhere else, so that the
first SSH connection can be verified instead of trusted.

Order on the VM (cloud-init's own module order does most of it):
1. packages: apt update + upgrade, reboot at once if the upgrade asks for it (new kernel);
   the rest of the final stage then runs on the new kernel.
2. NVIDIA driver through cloud-init's `drivers:` module (see DRIVER_CHOICE).
3. runcmd: nvidia-smi, Docker's apt repo + Engine + compose plugin, the NVIDIA container toolkit
   wired into Docker, persistence mode, /opt/llm, the firewall, and last the ready marker.
4. power_state: reboot only when a reboot is pending or nvidia-smi cannot reach the driver yet.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

# Why cloud-init's `drivers: nvidia` module rather than NVIDIA's CUDA repo: it runs
# `ubuntu-drivers install --gpgpu nvidia:<branch>`, Canonical's signed, precompiled kernel modules
# (no DKMS build, no compiler, minutes faster), pre-answers the licence debconf question, is checked
# by the schema validator, and runs in the right place: after the package upgrade (so on the new
# kernel), before runcmd (so Docker's toolkit finds the driver's libraries).
DRIVER_CHOICE = "cloud-init drivers module (ubuntu-drivers --gpgpu)"
DEFAULT_DRIVER_BRANCH = "580-server"  # vLLM's CUDA 12.9/13 images need R580+
DEFAULT_MARKER = "/var/lib/maider/ready"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/10-maider.conf"  # sshd keeps the first value it reads: sort first
PERSISTENCED_DROPIN = "/etc/systemd/system/nvidia-persistenced.service.d/10-maider.conf"
BASE_PACKAGES = ("ca-certificates", "curl", "gnupg", "ufw", "nvtop")
DOCKER_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                   "docker-compose-plugin")
_APT = "apt-get -y -o DPkg::Lock::Timeout=600"  # first boot: unattended-upgrades may hold the lock
_TOOLKIT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
_TOOLKIT_URL = "https://nvidia.github.io/libnvidia-container"
_TOOLKIT_LIST = "/tmp/nvidia-container-toolkit.list"
# 0 = reboot, 1 = not needed (cloud-init runs this with /bin/sh after all modules).
REBOOT_CONDITION = "test -f /var/run/reboot-required || ! nvidia-smi > /dev/null 2>&1"

_BRANCH = re.compile(r"^\d{3,}(-server)?(-open)?$")
_PRIVATE_HEAD = "-----BEGIN OPENSSH PRIVATE KEY-----"
_PUBLIC_KEY = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")

SSHD_CONFIG = """\
# maider-tui: keys only. Root logs in by key, because Linode puts the API's authorized_keys on root.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin prohibit-password
X11Forwarding no
"""

# Ubuntu's unit starts the daemon with --no-persistence-mode; persistence keeps the driver loaded
# between nvidia-smi calls, so the dashboard's 1 Hz telemetry stays cheap.
PERSISTENCED_CONFIG = """\
[Service]
ExecStart=
ExecStart=/usr/bin/nvidia-persistenced --persistence-mode --verbose
"""


def render(
    *,
    host_key_private: str,
    host_key_public: str,
    authorized_keys: list[str] | None = None,
    driver_branch: str = DEFAULT_DRIVER_BRANCH,
    extra_packages: Iterable[str] = (),
    marker_path: str = DEFAULT_MARKER,
    private_network: PrivateNetwork | None = None,
) -> str:
    """The `#cloud-config` user-data for one GPU VM.

    host_key_private/public: the VM's pinned ed25519 host key (OpenSSH format), made for this VM.
    authorized_keys: extra public keys for root (the Linode API installs its own on root anyway).
    driver_branch: the Ubuntu NVIDIA branch, e.g. "580-server". marker_path: written last by runcmd,
    holding the boot id of the boot that finished setup. private_network: a multi-VM session's VPC
    (its interface and subnet), the only place the firewall lets Ray and NCCL in from. Raises
    ValueError for malformed input, without echoing any key.
    """
    _check_host_key(host_key_private, host_key_public)
    keys = [k.strip() for k in authorized_keys or [] if k.strip()]
    for key in keys:
        if not _PUBLIC_KEY.match(key):
            raise ValueError("an authorized key is not an OpenSSH public key line")
    if not _BRANCH.match(driver_branch):
        raise ValueError(f"driver branch {driver_branch!r} is not like '580-server'")
    if not marker_path.startswith("/") or any(ch in marker_path for ch in " '\"$`\\;&|"):
        raise ValueError(f"marker path {marker_path!r} must be a plain absolute path")
    extras = [p for p in extra_packages if p]
    for package in extras:
        if not re.match(r"^[a-z0-9][a-z0-9+.=:~-]*$", package):
            raise ValueError(f"{package!r} is not a Debian package name")

    config: dict[str, Any] = {
        "package_update": True,
        "package_upgrade": True,
        "package_reboot_if_required": True,
        "packages": [*BASE_PACKAGES, *(p for p in extras if p not in BASE_PACKAGES)],
        "drivers": {"nvidia": {"license-accepted": True, "version": driver_branch}},
        "ssh_pwauth": False,
        "disable_root": False,  # Linode's keys are root's; disabling root would lock the app out
        "ssh_deletekeys": True,
        "ssh_keys": {
            "ed25519_private": host_key_private.strip() + "\n",
            "ed25519_public": host_key_public.strip(),
        },
    }
    if keys:
        config["ssh_authorized_keys"] = keys
    config["write_files"] = [
        {"path": path, "owner": "root:root", "permissions": "0644", "content": content}
        for path, content in ((SSHD_DROPIN, SSHD_CONFIG), (PERSISTENCED_DROPIN, PERSISTENCED_CONFIG))
    ]
    config["runcmd"] = runcmd(driver_branch, marker_path, private_network)
    config["power_state"] = {
        "mode": "reboot",
        "delay": "now",
        "message": "maider-tui: rebooting to load the new kernel or the NVIDIA driver",
        "timeout": 30,
        "condition": REBOOT_CONDITION,
    }
    header = (
        "#cloud-config\n"
        "# Written by maider-tui. Holds no token; the SSH host key below belongs to this VM alone.\n"
        f"# NVIDIA driver: {DRIVER_CHOICE}, branch {driver_branch}.\n"
    )
    import yaml  # only a launch writes YAML: a session attached after a restart never loads it

    body = yaml.dump(config, Dumper=block_dumper(), sort_keys=False, default_flow_style=False, width=4096)
    return header + body


@dataclass(frozen=True)
class PrivateNetwork:
    """A multi-VM session's VPC as one VM sees it: the interface it joins on and the subnet's range."""

    interface: str  # "eth1": Linode numbers interfaces in the order the create call listed them
    subnet: str  # e.g. "10.42.0.0/24"

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9]{1,14}$", self.interface):
            raise ValueError(f"{self.interface!r} is not a network interface name")
        network = ipaddress.ip_network(self.subnet)  # ValueError when it is not a range
        if not network.is_private:
            raise ValueError(f"{self.subnet} is not a private range")


def runcmd(driver_branch: str = DEFAULT_DRIVER_BRANCH, marker_path: str = DEFAULT_MARKER,
           private_network: PrivateNetwork | None = None) -> list[str]:
    """runcmd's shell lines, in order. One /bin/sh script: `set -eu` stops at the first failure,
    so the ready marker exists only when every step before it worked."""
    utils = "nvidia-utils-" + driver_branch.removesuffix("-open")  # nvidia-smi; -open shares the utils
    codename = '. /etc/os-release && echo "${UBUNTU_CODENAME:-$VERSION_CODENAME}"'
    docker_sources = (
        'printf "Types: deb\\nURIs: https://download.docker.com/linux/ubuntu\\nSuites: %s\\n'
        'Components: stable\\nSigned-By: /etc/apt/keyrings/docker.asc\\n" "$CODENAME"'
        " > /etc/apt/sources.list.d/docker.sources"
    )
    return [
        "set -eux",
        "export DEBIAN_FRONTEND=noninteractive",
        # The driver itself came from the drivers module; nvidia-smi is a package of its own.
        f"{_APT} install {utils}",
        # Docker Engine from Docker's repo (Ubuntu's docker.io is unofficial and conflicts with it).
        "install -m 0755 -d /etc/apt/keyrings",
        "curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc",
        "chmod a+r /etc/apt/keyrings/docker.asc",
        f"CODENAME=$({codename})",
        docker_sources,
        # NVIDIA container toolkit repo, its list pinned to its own keyring.
        f"curl -fsSL {_TOOLKIT_URL}/gpgkey -o /tmp/nvidia-container-toolkit.gpgkey",
        f"gpg --batch --yes --dearmor -o {_TOOLKIT_KEYRING} /tmp/nvidia-container-toolkit.gpgkey",
        f"curl -fsSL {_TOOLKIT_URL}/stable/deb/nvidia-container-toolkit.list -o {_TOOLKIT_LIST}",
        f'sed "s#deb https://#deb [signed-by={_TOOLKIT_KEYRING}] https://#g" {_TOOLKIT_LIST}'
        " > /etc/apt/sources.list.d/nvidia-container-toolkit.list",
        f"{_APT} update",
        f"{_APT} install {' '.join(DOCKER_PACKAGES)}",
        f"{_APT} install nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=docker",
        "systemctl restart docker",
        # Persistence: the daemon holds it across reboots; -pm 1 covers this boot if the driver is loaded.
        "systemctl daemon-reload",
        "systemctl enable nvidia-persistenced",
        "nvidia-smi -pm 1 || true",
        "install -d -m 0700 -o root -g root /opt/llm /opt/llm/hf-cache /opt/llm/vllm-cache",
        # SSH only. Docker-published ports bypass ufw, which is why compose binds them to 127.0.0.1.
        "ufw default deny incoming",
        "ufw default allow outgoing",
        "ufw allow 22/tcp",
        # A multi-VM session: Ray, NCCL and Gloo between the session's VMs, on the VPC only. They run
        # with host networking (no Docker port publishing), so ufw does see their traffic.
        *([f"ufw allow in on {private_network.interface} from {private_network.subnet}"]
          if private_network else []),
        "ufw --force enable",
        f"install -d -m 0755 {posixpath.dirname(marker_path) or '/'}",
        f"cat /proc/sys/kernel/random/boot_id > {marker_path}",
    ]


def _check_host_key(private: str, public: str) -> None:
    if _PRIVATE_HEAD not in private or "-----END OPENSSH PRIVATE KEY-----" not in private:
        raise ValueError("the host key's private half is not an OpenSSH private key")
    if not public.strip().startswith("ssh-ed25519 ") or not _PUBLIC_KEY.match(public.strip()):
        raise ValueError("the host key's public half is not an ssh-ed25519 public key line")


@cache
def block_dumper() -> type:
    """SafeDumper that writes multi-line strings (keys, config files) as `|` blocks, as a person would."""
    import yaml

    class _BlockDumper(yaml.SafeDumper):
        pass

    def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _BlockDumper.add_representer(str, _str_representer)
    return _BlockDumper
