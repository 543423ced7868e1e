"""A registered environment is looked up at submit, once, and retried only by mlboot's policy.

azureml-core's ``Environment.get`` sends one GET and never retries it; mlboot wraps that one call
(and nothing else at submit) in its retry policy.  The backend runs on a fake clock, so the
back-off between attempts costs no real time; the SDK's own HTTP stays real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mlboot
from emulator import Emulator
from mlboot._backends.azureml._azureml import AzureMLBackend
from mlboot._retry import DEFAULT_POLICY
from mlboot.exceptions import NotFoundError, PermissionDeniedError, ServiceError
from mlboot.testing import FakeClock

pytestmark = pytest.mark.sdk

IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
DEFINITION: dict[str, Any] = {
    "python": {
        "userManagedDependencies": True,
        "interpreterPath": "python",
        "condaDependencies": None,
        "baseCondaEnvironment": None,
    },
    "environmentVariables": {},
    "docker": {"baseImage": IMAGE, "platform": {"os": "Linux", "architecture": "amd64"}},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def workspace(emulator: Emulator, config: Path, clock: FakeClock) -> mlboot.Workspace:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    emulator.add_environment("train-env", "2", DEFINITION)
    emulator.add_environment("train-env", "3", DEFINITION)
    return mlboot.workspace_from_config(
        config, auth=emulator.auth, backend=AzureMLBackend(clock=clock)
    )


def _submit(workspace: mlboot.Workspace, source_dir: Path, version: str | None) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="env-exp",
        source_directory=source_dir,
        environment=mlboot.Environment.from_registered("train-env", version),
    )


def _submitted(emulator: Emulator) -> int:
    return emulator.count("execution.snapshotrun")


@pytest.mark.parametrize(
    ("version", "route"), [("2", "environment.get"), (None, "environment.get.latest")]
)
def test_a_registered_environment_is_looked_up_once_and_sent_with_the_run(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    version: str | None,
    route: str,
) -> None:
    run = _submit(workspace, source_dir, version)

    assert emulator.count(route) == 1
    sent = emulator.run(run.id).definition["Configuration"]["environment"]
    assert (sent["name"], sent["version"]) == ("train-env", version or "3")
    assert sent["docker"]["baseImage"] == IMAGE
    assert emulator.count("environment.get") + emulator.count("environment.get.latest") == 1


def test_a_missing_environment_is_not_found_after_one_request_and_nothing_is_submitted(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path
) -> None:
    with pytest.raises(NotFoundError, match="environment 'train-env' version 9 was not found"):
        _submit(workspace, source_dir, "9")
    assert emulator.count("environment.get") == 1
    assert _submitted(emulator) == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_lookup_fails_after_one_request(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, status: int
) -> None:
    emulator.fail("environment.get", status, times=5)
    with pytest.raises(PermissionDeniedError, match=f"HTTP {status}"):
        _submit(workspace, source_dir, "2")
    assert emulator.count("environment.get") == 1
    assert _submitted(emulator) == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_failures_of_the_lookup_are_retried_then_the_run_is_submitted(
    emulator: Emulator,
    workspace: mlboot.Workspace,
    source_dir: Path,
    clock: FakeClock,
    status: int,
) -> None:
    emulator.fail("environment.get", status, times=2)

    run = _submit(workspace, source_dir, "2")

    assert emulator.statuses("environment.get") == [status, status, 200]
    assert len(clock.sleeps) == 2
    assert _submitted(emulator) == 1
    assert emulator.run(run.id).definition["Configuration"]["environment"]["name"] == "train-env"


def test_a_lookup_that_keeps_failing_stops_at_the_documented_bound(
    emulator: Emulator, workspace: mlboot.Workspace, source_dir: Path, clock: FakeClock
) -> None:
    emulator.fail("environment.get", 503, times=10)

    with pytest.raises(ServiceError) as caught:
        _submit(workspace, source_dir, "2")

    assert caught.value.status == 503
    assert caught.value.transient
    assert emulator.count("environment.get") == DEFAULT_POLICY.attempts == 4
    assert len(clock.sleeps) == 3
    assert _submitted(emulator) == 0
