"""A secret environment variable reaches Azure ML's run configuration, and nothing else.

mlboot -> its azureml-core adapter -> unmodified azureml-core -> the emulator: the value is in
the run definition the service receives (the script needs it there) but in no log record
(at DEBUG, mlboot's and the SDK's), warning, repr or error of the submit and the wait.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import pytest

import mlboot
from emulator import Emulator

pytestmark = pytest.mark.sdk

FAST = 0.05  # Run.wait's public poll_interval: the emulator moves one status per read


@pytest.mark.parametrize("as_secret", [True, False], ids=["Secret", "plain-str-named-token"])
def test_a_secret_variable_reaches_the_run_configuration_but_no_log_or_warning(
    emulator: Emulator,
    config: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    as_secret: bool,
) -> None:
    token = "hf_planted-" + os.urandom(6).hex()
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    emulator.program_run(["Queued", "Running", "Completed"])
    project = tmp_path / "src"
    project.mkdir()
    (project / "train.py").write_text("import os\nprint(len(os.environ['HF_TOKEN']))\n")
    environment = mlboot.Environment.from_docker_image(
        "python:3.11", variables={"HF_TOKEN": mlboot.Secret(token) if as_secret else token}
    )
    caplog.set_level(logging.DEBUG)
    workspace = mlboot.workspace_from_config(config, auth=emulator.auth)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run = mlboot.submit_script(
            workspace,
            "train.py",
            compute="cpu-cluster",
            experiment="secret-exp",
            source_directory=project,
            environment=environment,
        )
        assert run.wait(timeout=60, poll_interval=FAST) is mlboot.RunStatus.COMPLETED
    assert all(token not in str(w.message) for w in seen)

    definition = emulator.run(run.id).definition
    assert definition is not None
    # Where the script needs it, and only there: the run's environment variables.
    assert definition["Configuration"]["environmentVariables"]["HF_TOKEN"] == token
    assert json.dumps(definition).count(token) == 1
    assert token not in repr(run)
    assert token not in repr(environment)
    logged = [r for r in caplog.records if token in r.getMessage()]
    assert logged == []
    assert any(r.name.startswith("mlboot") for r in caplog.records)  # logging was on
