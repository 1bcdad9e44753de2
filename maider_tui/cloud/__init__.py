"""Renting GPU VMs: the Provider protocol, its Linode implementation, and the errors users see."""

from maider_tui.cloud.base import (
    SESSION_TAG,
    Account,
    Catalogued,
    CreateSpec,
    Provider,
    Vm,
    home_tag,
    is_session_node,
    is_session_vm,
    made_elsewhere,
    node_label,
    session_tag,
    session_vms,
)
from maider_tui.cloud.errors import ProviderError, from_api_error, label_taken
from maider_tui.cloud.linode import LinodeProvider

__all__ = [
    "SESSION_TAG",
    "Account",
    "Catalogued",
    "CreateSpec",
    "LinodeProvider",
    "Provider",
    "ProviderError",
    "Vm",
    "from_api_error",
    "home_tag",
    "is_session_node",
    "is_session_vm",
    "node_label",
    "made_elsewhere",
    "label_taken",
    "session_tag",
    "session_vms",
]
