"""The repository's launcher: find the workspace, then get or create the training cluster."""

from __future__ import annotations

from pathlib import Path

import mlboot

CLUSTER = "cpu-cluster"


def connect(config: Path | None = None) -> mlboot.Workspace:
    """The workspace named by ``config.json`` (searched for from the current folder)."""
    return mlboot.workspace_from_config(config)


def training_cluster(workspace: mlboot.Workspace) -> mlboot.ComputeTarget:
    return mlboot.get_or_create_compute_target(
        workspace, CLUSTER, vm_size="STANDARD_DS3_V2", max_nodes=4
    )
