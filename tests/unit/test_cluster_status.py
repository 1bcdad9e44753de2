"""Reading `ray status` from the head: how many nodes joined and how many GPUs Ray counts."""

from __future__ import annotations

from maider_tui.ops.cluster_status import ClusterStatus, parse_ray_status

# The layout of Ray 2.x's `ray status` (autoscaler status), as vLLM's multi-node docs show it.
FORMED = """\
======== Autoscaler status: 2025-03-04 10:11:12.345678 ========
Node status
---------------------------------------------------------------
Active:
 1 node_5b0e2c7a3f
 1 node_91d4ee08c2
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Usage:
 0.0/96.0 CPU
 0.0/8.0 GPU
 0B/330.35GiB memory
 0B/20.00GiB object_store_memory

Demands:
 (no resource demands)
"""


def test_a_formed_cluster_counts_its_nodes_and_gpus():
    assert parse_ray_status(FORMED) == ClusterStatus(2, 8.0)


def test_a_head_alone_and_grouped_node_lines():
    alone = FORMED.replace(" 1 node_91d4ee08c2\n", "").replace("0.0/8.0 GPU", "0.0/4.0 GPU")
    assert parse_ray_status(alone) == ClusterStatus(1, 4.0)
    grouped = FORMED.replace(" 1 node_5b0e2c7a3f\n 1 node_91d4ee08c2\n", " 3 node_5b0e2c7a3f\n")
    assert parse_ray_status(grouped).nodes == 3
    assert ClusterStatus(1, 4.0).describe(2, 8) == "Ray: head up, 0 of 1 worker joined, 4 of 8 GPUs seen"
    assert ClusterStatus(3, 12.0).describe(3, 12) == "Ray: head up, 2 of 2 workers joined, 12 of 12 GPUs seen"


def test_what_is_not_ray_status_is_none():
    assert parse_ray_status("ConnectionError: Could not find any running Ray instance.") is None
    assert parse_ray_status("") is None
