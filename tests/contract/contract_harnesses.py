"""Backend harnesses for the contract suite: one per backend, the same hooks on each.

A harness gives the suite a workspace through the public API and the hooks that put the
service in a given state (an existing cluster, a failing provisioning) or drive a run to its
end (the fake's programmed outcomes, a real local script, the emulator's control API).  A new
backend joins the suite with one more harness here and one more entry in :data:`HARNESSES`.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

import mlboot
from mlboot.backend import ComputeSpec, WorkspaceRef
from mlboot.testing import FakeBackend

Outcome = Literal["complete", "fail", "run_until_canceled"]

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
RESOURCE_GROUP = "contract-rg"
WORKSPACE = "contract-ws"
MISSING_WORKSPACE = "no-such-ws"

# What every run that completes shows, whichever backend ran it.
LOG_LINES = ("epoch 1: loss 0.5", "epoch 2: loss 0.25")
METRICS = {"loss": [0.5, 0.25], "accuracy": [0.9]}
OUTPUTS = {"model.txt": b"weights", "sub/report.txt": b"report"}
# What every run that fails shows.
FAILURE = "ValueError: bad rate"
FAILURE_LOG = ("loading data", "Traceback (most recent call last):", FAILURE)
QUOTA_CODE = "QuotaExceeded"


class Harness(Protocol):
    """What the contract suite needs of a backend."""

    name: str

    def config(self, workspace_name: str = WORKSPACE) -> Path:
        """A config.json naming ``workspace_name`` in the harness's subscription."""
        ...

    def open(self, config: Path) -> mlboot.Workspace:
        """``mlboot.workspace_from_config`` with whatever backend or login this harness needs."""
        ...

    def forget_workspace(self, name: str) -> None:
        """Make sure workspace ``name`` does not exist."""
        ...

    def add_cluster(self, name: str, *, vm_size: str, max_nodes: int) -> None:
        """Put an existing, provisioned cluster in place (created elsewhere)."""
        ...

    def fail_provisioning(self, name: str) -> None:
        """Make the next creation of cluster ``name`` fail with a quota error."""
        ...

    def project(self, outcome: Outcome) -> Path:
        """A source folder whose ``train.py``'s next run ends with ``outcome``."""
        ...


def _write_config(path: Path, workspace_name: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "subscription_id": SUBSCRIPTION,
                "resource_group": RESOURCE_GROUP,
                "workspace_name": workspace_name,
            }
        ),
        encoding="utf-8",
    )
    return path


_REAL_SCRIPTS: dict[Outcome, str] = {
    "complete": f"""\
        import pathlib
        import mlboot
        print({LOG_LINES[0]!r})
        mlboot.log_metric("loss", 0.5)
        print({LOG_LINES[1]!r})
        mlboot.log_metric("loss", 0.25)
        mlboot.log_metric("accuracy", 0.9)
        out = mlboot.output_dir()
        (out / "sub").mkdir(parents=True, exist_ok=True)
        (out / "model.txt").write_bytes({OUTPUTS["model.txt"]!r})
        (out / "sub" / "report.txt").write_bytes({OUTPUTS["sub/report.txt"]!r})
        """,
    "fail": f"""\
        print({FAILURE_LOG[0]!r})
        raise ValueError("bad rate")
        """,
    # Ends only when canceled (or, should the cancel be lost, after a minute).
    "run_until_canceled": """\
        import time
        print("waiting to be canceled", flush=True)
        time.sleep(60)
        """,
}


class _Base:
    """What every harness shares: its folder, config files, and source folders to submit."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._count = 0

    def config(self, workspace_name: str = WORKSPACE) -> Path:
        return _write_config(self._tmp_path / f"{workspace_name}.json", workspace_name)

    def _project(self, outcome: Outcome) -> Path:
        """A folder whose ``train.py`` is the real script for ``outcome``."""
        self._count += 1
        folder = self._tmp_path / "projects" / f"project-{self._count}"
        folder.mkdir(parents=True)
        (folder / "train.py").write_text(textwrap.dedent(_REAL_SCRIPTS[outcome]), encoding="utf-8")
        return folder


class FakeHarness(_Base):
    """:class:`mlboot.testing.FakeBackend`: outcomes are programmed, nothing runs."""

    name = "fake"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.backend = FakeBackend()

    def open(self, config: Path) -> mlboot.Workspace:
        return mlboot.workspace_from_config(config, backend=self.backend)

    def forget_workspace(self, name: str) -> None:
        self.backend.mark_workspace_missing(name)

    def add_cluster(self, name: str, *, vm_size: str, max_nodes: int) -> None:
        self.backend.add_compute(name, vm_size=vm_size, max_nodes=max_nodes)

    def fail_provisioning(self, name: str) -> None:
        self.backend.program_provisioning(
            name,
            seconds=20.0,
            outcome="Failed",
            errors=[(QUOTA_CODE, "Operation results in exceeding quota limits of Core.")],
        )

    def project(self, outcome: Outcome) -> Path:
        if outcome == "complete":
            self.backend.program_run(
                statuses=("Queued", "Running", "Finalizing", "Completed"),
                logs="".join(f"{line}\n" for line in LOG_LINES),
                metrics=METRICS,
                outputs=OUTPUTS,
            )
        elif outcome == "fail":
            self.backend.program_run(
                statuses=("Running", "Failed"),
                logs="".join(f"{line}\n" for line in FAILURE_LOG),
                error=FAILURE,
            )
        else:
            self.backend.program_run(statuses=("Queued", "Running"))
        return self._project(outcome)


class LocalHarness(_Base):
    """:class:`mlboot.LocalBackend`: real scripts in real subprocesses on this machine."""

    name = "local"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.backend = mlboot.LocalBackend(tmp_path / ".mlboot")

    def open(self, config: Path) -> mlboot.Workspace:
        return mlboot.workspace_from_config(config, backend=self.backend)

    def forget_workspace(self, name: str) -> None:  # pragma: no cover  (in cannot)
        raise NotImplementedError(CANNOT["local"]["test_a_missing_workspace_is_not_found"])

    def add_cluster(self, name: str, *, vm_size: str, max_nodes: int) -> None:
        # As another process would have created it: through the backend, not mlboot's policy.
        self.backend.create_compute(
            WorkspaceRef(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE),
            name,
            ComputeSpec(
                vm_size=vm_size,
                vm_priority="dedicated",
                min_nodes=0,
                max_nodes=max_nodes,
                idle_seconds_before_scaledown=1800,
            ),
        )

    def fail_provisioning(self, name: str) -> None:  # pragma: no cover  (in cannot)
        raise NotImplementedError(
            CANNOT["local"]["test_a_failed_provisioning_raises_the_service_errors"]
        )

    def project(self, outcome: Outcome) -> Path:
        return self._project(outcome)


class EmulatorHarness(_Base):
    """The azureml-core backend, with the real SDK, against the emulator on 127.0.0.1."""

    name = "azureml-emulator"

    def __init__(self, tmp_path: Path, emulator: Any, workspace: Any) -> None:
        super().__init__(tmp_path)
        self.emulator = emulator
        self.state = workspace  # the emulator's state of the contract's workspace

    def open(self, config: Path) -> mlboot.Workspace:
        return mlboot.workspace_from_config(config, auth=self.emulator.auth, backend="azureml")

    def forget_workspace(self, name: str) -> None:
        assert name != WORKSPACE  # the emulator has only the one workspace

    def add_cluster(self, name: str, *, vm_size: str, max_nodes: int) -> None:
        self.emulator.add_compute(name, vm_size=vm_size, max_nodes=max_nodes, workspace=self.state)

    def fail_provisioning(self, name: str) -> None:
        from emulator import quota_error  # noqa: PLC0415  (only the integration session has it)

        self.emulator.program_provisioning(
            name, states=("Creating", "Failed"), errors=[quota_error()]
        )

    def project(self, outcome: Outcome) -> Path:
        if outcome == "complete":
            self.emulator.program_run(
                ("Queued", "Running", "Finalizing", "Completed"),
                logs={"user_logs/std_log.txt": "".join(f"{line}\n" for line in LOG_LINES)},
                metrics={"loss": METRICS["loss"], "accuracy": METRICS["accuracy"][0]},
                outputs=OUTPUTS,
            )
        elif outcome == "fail":
            self.emulator.program_run(
                ("Running", "Failed"),
                logs={"user_logs/std_log.txt": "".join(f"{line}\n" for line in FAILURE_LOG)},
                error={"code": "UserError", "message": FAILURE},
            )
        else:
            self.emulator.program_run(("Running",) * 5)
        return self._project(outcome)


class EmulatorV2Harness(EmulatorHarness):
    """The azure-ai-ml backend, with the real SDK v2, against the emulator's v2 routes."""

    name = "azureml-v2-emulator"

    def __init__(self, tmp_path: Path, emulator: Any, workspace: Any, credential: Any) -> None:
        super().__init__(tmp_path, emulator, workspace)
        self.credential = credential

    def open(self, config: Path) -> mlboot.Workspace:
        return mlboot.workspace_from_config(config, auth=self.credential, backend="azureml-v2")

    def project(self, outcome: Outcome) -> Path:
        if outcome == "complete":
            self.emulator.program_job(
                ("Queued", "Running", "Finalizing", "Completed"),
                logs="".join(f"{line}\n" for line in LOG_LINES),
                metrics=METRICS,
            )
        elif outcome == "fail":
            self.emulator.program_job(
                ("Running", "Failed"),
                logs="".join(f"{line}\n" for line in FAILURE_LOG),
                error={"code": "UserError", "message": FAILURE},
            )
        else:
            self.emulator.program_job(("Running",) * 5)
        return self._project(outcome)


def _fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield FakeHarness(tmp_path)


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield LocalHarness(tmp_path)


def _azureml_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    tests = str(Path(__file__).resolve().parents[1])
    if tests not in sys.path:
        sys.path.insert(0, tests)  # tests/ is not a package: tests/emulator imports as emulator
    from emulator import emulator_for_test  # noqa: PLC0415  (werkzeug and trustme: integration)

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    with emulator_for_test(tmp_path / "emulator", monkeypatch, tmp_path / "home") as emu:
        state = emu.workspace
        assert (state.subscription_id, state.resource_group) != (SUBSCRIPTION, RESOURCE_GROUP)
        added = emu.add_workspace(
            WORKSPACE, resource_group=RESOURCE_GROUP, subscription_id=SUBSCRIPTION
        )
        yield EmulatorHarness(tmp_path, emu, added)


def _azureml_v2_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")
    tests = str(Path(__file__).resolve().parents[1])
    if tests not in sys.path:
        sys.path.insert(0, tests)  # tests/ is not a package: tests/emulator imports as emulator
    from emulator import (  # noqa: PLC0415  (werkzeug, trustme and the v2 extra: integration)
        StaticTokenCredential,
        emulator_for_test,
        isolate_v2_sdk,
    )

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    with emulator_for_test(tmp_path / "emulator", monkeypatch, tmp_path / "home") as emu:
        isolate_v2_sdk(monkeypatch, emu)
        added = emu.add_workspace(
            WORKSPACE, resource_group=RESOURCE_GROUP, subscription_id=SUBSCRIPTION
        )
        credential = StaticTokenCredential.for_emulator(emu)
        yield EmulatorV2Harness(tmp_path, emu, added, credential)


Factory = Callable[[pytest.FixtureRequest, Path], Iterator[Harness]]

#: The backends the suite runs over: id -> (factory, marks).  The emulator's needs the
#: integration session (werkzeug, trustme, the real SDK on loopback).
HARNESSES: dict[str, tuple[Factory, tuple[pytest.MarkDecorator, ...]]] = {
    "fake": (_fake, ()),
    "local": (_local, ()),
    "azureml-emulator": (_azureml_emulator, (pytest.mark.integration, pytest.mark.sdk)),
    "azureml-v2-emulator": (_azureml_v2_emulator, (pytest.mark.integration, pytest.mark.sdk)),
}

#: Backend id -> scenario (test function name) -> why that backend cannot do it.  The suite
#: marks those tests skipped with the reason; it never leaves one out silently.
CANNOT: dict[str, Mapping[str, str]] = {
    "local": {
        "test_a_missing_workspace_is_not_found": (
            "a local workspace is a folder, created on first use: no workspace is ever missing"
        ),
        "test_a_failed_provisioning_raises_the_service_errors": (
            "a local pool needs no machines: it is ready as soon as it exists, and cannot fail "
            "to provision"
        ),
    },
    "azureml-emulator": {},
    "azureml-v2-emulator": {
        "test_a_submitted_run_completes_with_its_logs_metrics_and_outputs": (
            "the emulator serves no job outputs yet: azure-ai-ml's jobs.download reads the "
            "workspaceartifactstore datastore, which it does not have"
        ),
        "test_a_finished_run_is_listed_newest_first": (
            "the emulator has no route for the job list (GET {WS}/jobs) yet"
        ),
    },
}
