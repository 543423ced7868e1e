"""Helpers for tests that run small scripts on a real local workspace (one pool, one script).

Kept beside the tests (``tests/`` is on ``sys.path``, as for ``strategies_snapshot``).
"""

from __future__ import annotations

from pathlib import Path

import mlboot
from mlboot import LocalBackend

POOL = "cpu"
SIZE = "Standard_DS3_v2"


def local_workspace(config_file: Path, root: Path) -> mlboot.Workspace:
    """The workspace of ``config_file`` on a local backend kept in ``root``."""
    return mlboot.workspace_from_config(config_file, backend=LocalBackend(root))


def submit_local(
    workspace: mlboot.Workspace, project: Path, script: str, *, experiment: str = "test"
) -> mlboot.Run:
    """Write ``script`` as ``project/train.py`` and submit it to a pool of one node."""
    pool = mlboot.get_or_create_compute_target(workspace, POOL, vm_size=SIZE, max_nodes=1)
    project.mkdir(parents=True, exist_ok=True)
    (project / "train.py").write_text(script, encoding="utf-8")
    return mlboot.submit_script(
        workspace, "train.py", compute=pool, experiment=experiment, source_directory=project
    )


def run_folder(run: mlboot.Run) -> Path:
    """The folder of a local run."""
    backend = run.workspace.backend
    assert isinstance(backend, LocalBackend)
    return backend.run_folder(run.id)
