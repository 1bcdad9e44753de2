"""A simulated cloud running in another process (`maider-tui sim`), reached over its own HTTP API.

`maider-tui --demo --sim-url URL` uses it so the app can be killed and started again while the
cloud and its VMs live on, and so a benchmark measures the app's own CPU and memory, not the sim's.
Tests and benchmarks steer the faults and read the counters through the same object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from maider_tui.store import Store
    from maider_tui.cloud.linode import LinodeProvider


class RemoteSimError(RuntimeError):
    """The simulated cloud did not answer, or refused the request."""


class RemoteSim:
    """Client of a running sim: `RemoteSim("http://127.0.0.1:8080/v4", token)`."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.linode_base_url = api_url.rstrip("/")
        if not self.linode_base_url.endswith("/v4"):
            raise RemoteSimError(f"{api_url} is not a simulated Linode API address (it ends in /v4)")
        self.token = token
        self._root = self.linode_base_url.removesuffix("/v4")
        self.hf_base_url = self._root + "/hf"  # the simulated Hugging Face Hub (sim/hub.py)
        from maider_tui.tls import shared_context

        self._http = httpx.Client(base_url=self._root, timeout=timeout, verify=shared_context(),
                                  headers={"Authorization": f"Bearer {token}"})
        self._ssh: dict[int, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"RemoteSim({self.linode_base_url!r})"  # never the token

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteSimError(f"the simulated cloud at {self._root} did not answer: {exc}") from exc
        if response.status_code == 404:
            raise LookupError(self._reason(response))
        if response.status_code >= 400:
            raise RemoteSimError(f"the simulated cloud refused {method} {path}: {self._reason(response)}")
        return response.json()

    @staticmethod
    def _reason(response: httpx.Response) -> str:
        try:
            return "; ".join(e.get("reason", "") for e in response.json()["errors"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"HTTP {response.status_code}"

    def ssh_address(self, instance_id: int) -> tuple[str, int]:
        """(host, port) of the VM's SSH server; asked once per VM (stable from create to delete)."""
        if instance_id not in self._ssh:
            info = self._request("GET", f"/sim/instances/{instance_id}")
            self._ssh[instance_id] = (info["ssh_host"], int(info["ssh_port"]))
        return self._ssh[instance_id]

    def ssh_handshakes(self, instance_id: int) -> int:
        """SSH logins the VM has seen."""
        return int(self._request("GET", f"/sim/instances/{instance_id}")["ssh_handshakes"])

    def faults(self) -> dict[str, Any]:
        return self._request("GET", "/sim/faults")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Switch faults on or off by name (see SimFaults); sets are given as lists."""
        return self._request("PATCH", "/sim/faults", json=changes)

    def stats(self) -> dict[str, Any]:
        """The sim's counters and speed; RemoteSimError when it is not there or the token is wrong."""
        return self._request("GET", "/sim/stats")

    def provider(self, store: Store | None = None) -> LinodeProvider:
        """The app's own LinodeProvider, wired to this cloud's API and SSH ports."""
        from maider_tui.cloud.linode import LinodeProvider

        return LinodeProvider(self.token, base_url=self.linode_base_url, store=store,
                              ssh_resolver=self.ssh_address)
