"""The whole mlboot workflow in one file: workspace, compute, submit, wait, results.

    python examples/launch.py

With ``examples/config.json`` as shipped (``"mlboot_backend": "local"``) everything runs on this
machine, with no Azure account, and stays in ``examples/.mlboot/``.  Replace that file with your
workspace's own ``config.json`` (downloaded from Azure ML studio, without ``mlboot_backend``),
log in with ``az login``, and the same script runs the same job on Azure ML.
"""

# ruff: noqa: T201, INP001  (an example script, not a package: it prints for its reader)

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import mlboot
from mlboot.exceptions import RunFailedError

HERE = Path(__file__).resolve().parent


def main() -> int:
    workspace = mlboot.workspace_from_config(HERE / "config.json")
    print(f"Workspace {workspace.name!r} ({workspace.location})")

    cluster = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=2, show_output=True
    )
    print(f"Compute target {cluster.name!r}: {cluster.vm_size}, up to {cluster.max_nodes} nodes")

    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute=cluster,
        experiment="mlboot-example",
        source_directory=HERE / "src",
        arguments=["--epochs", 12, "--learning-rate", 0.5],
        environment=mlboot.Environment.from_pip_requirements(HERE / "src" / "requirements.txt"),
    )
    try:
        status = run.wait(timeout=1800, show_output=True, poll_interval=1.0)
    except RunFailedError as failure:
        print(f"\n{failure}", file=sys.stderr)
        return 1

    print()
    print(f"Run id:   {run.id}")
    print(f"Status:   {status}")
    for name, values in run.metrics().items():
        last = values[-1]
        shown = f"{last:.4f}" if isinstance(last, float) else last
        print(f"Metric:   {name} = {shown}  ({len(values)} logged)")
    downloaded = run.download_outputs(HERE / ".mlboot" / "downloads" / run.id)
    for path in downloaded:
        print(f"Output:   {path}")
    # The interpreter that ran this script has mlboot, wherever it is: the command works as printed.
    again = [sys.executable, "-m", "mlboot", "runs", "show", run.id]
    print(f"Again:    {shlex.join([*again, '--config', str(HERE / 'config.json')])}")
    return 0 if status is mlboot.RunStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
