"""One launcher for every backend: the config file's ``mlboot_backend`` key alone chooses it.

    python launch.py

Run from a folder that holds ``config.json`` and the training project in ``src/``.  It uses
mlboot's public API only, and ``tests/integration/test_same_launcher_on_every_backend.py`` runs
this file, unchanged, on the local backend, on azureml-core (v1) and on azure-ai-ml (v2).  It
prints what it saw as one JSON object, for its caller to compare.
"""

# ruff: noqa: T201  (a launcher script: it prints its results for its caller)

from __future__ import annotations

import json
from pathlib import Path

import mlboot


def main() -> None:
    workspace = mlboot.workspace_from_config("config.json")
    cluster = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="STANDARD_D2_V3", max_nodes=2
    )
    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute=cluster,
        experiment="same-launcher",
        source_directory="src",
        arguments=["--epochs", 2],
        environment=mlboot.Environment.from_pip_requirements("src/requirements.txt"),
    )
    status = run.wait(timeout=600, poll_interval=5)
    outputs = run.download_outputs("results")
    print(
        json.dumps(
            {
                "status": str(status),
                "metrics": {name: list(values) for name, values in run.metrics().items()},
                "outputs": {
                    path.relative_to("results").as_posix(): Path(path).read_text(encoding="utf-8")
                    for path in outputs
                },
            }
        )
    )


if __name__ == "__main__":
    main()
