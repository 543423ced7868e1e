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

Outcome = Literal["complete", "fail", "run_until_canceled", "escaping_file"]

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
RESOURCE_GROUP = "contract-rg"
WORKSPACE = "contract-ws"
MISSING_WORKSPACE = "no-such-ws"

# What every run that completes shows, whichever backend ran it.
LOG_LINES = ("epoch 1: loss 0.5", "epoch 2: loss 0.25")
METRICS = {"loss": [0.5, 0.25], "accuracy": [0.9]}
OUTPUTS = {"model.txt": b"weights", "sub/report.txt": b"report"}
# A file the script writes to ./logs, which Azure ML keeps as the run's "logs/..." file.
RUN_LOG_FILE = ("logs/train.csv", "epoch,loss\n1,0.5\n2,0.25\n")
# Every file of a completed run, by the names all backends give them.
FILE_NAMES = sorted(
    [RUN_LOG_FILE[0], "user_logs/std_log.txt", *(f"outputs/{name}" for name in OUTPUTS)]
)
# A file name a service could send that leads out of the folder it is downloaded into.
ESCAPING_NAME = "outputs/../../escaped.txt"
# What every run that fails shows.
FAILURE = "ValueError: bad rate"
FAILURE_LOG = ("loading data", "Traceback (most recent call last):", FAILURE)
QUOTA_CODE = "QuotaExceeded"
# The data every data scenario reads: a datastore's folder, or a local one.
DATASTORE = "training_data"
DATA_FILES = {"a.txt": b"A", "sub/b.txt": b"B"}
# What the data script writes into each output (its name after the colon).
RESULT_FILE = "result.txt"

Seen = dict[str, tuple[str, dict[str, bytes]]]
"""Input name -> (its mode, as the script could tell it, and the files it read)."""


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

    def add_datastore(self, name: str, files: Mapping[str, bytes]) -> None:
        """Put datastore ``name`` in place, holding ``files`` (path from its root -> bytes)."""
        ...

    def data_project(self) -> Path:
        """A source folder whose ``train.py`` reads every input and writes into every output."""
        ...

    def data_seen(self, run: mlboot.Run) -> Seen:
        """What the data script's run read from each input (the run has ended)."""
        ...

    def datastore_files(self, name: str, run: mlboot.Run) -> dict[str, bytes]:
        """The files of datastore ``name`` once ``run`` (of the data script) has ended."""
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
        pathlib.Path({RUN_LOG_FILE[0]!r}).write_text({RUN_LOG_FILE[1]!r})
        """,
    "fail": f"""\
        print({FAILURE_LOG[0]!r})
        raise ValueError("bad rate")
        """,
    "escaping_file": "print('done')\n",
    # Ends only when canceled (or, should the cancel be lost, after a minute).
    "run_until_canceled": """\
        import time
        print("waiting to be canceled", flush=True)
        time.sleep(60)
        """,
}


# Reads every MLBOOT_INPUT_<name> (a folder, or one file), tells a mount (no write bit) from a
# download, writes "output <name>" into every MLBOOT_OUTPUT_<name>, reports in outputs/.
_DATA_SCRIPT = f"""\
    import json, os, pathlib
    seen = {{}}
    for key, value in sorted(os.environ.items()):
        path = pathlib.Path(value)
        if key.startswith("MLBOOT_INPUT_"):
            top = path.parent if path.is_file() else path
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            mode = "download" if path.stat().st_mode & 0o222 else "mount"
            seen[key[len("MLBOOT_INPUT_"):]] = [
                mode, {{p.relative_to(top).as_posix(): p.read_text() for p in files}}
            ]
        elif key.startswith("MLBOOT_OUTPUT_"):
            (path / {RESULT_FILE!r}).write_text("output " + key[len("MLBOOT_OUTPUT_"):])
    pathlib.Path("outputs").mkdir(exist_ok=True)
    pathlib.Path("outputs", "seen.json").write_text(json.dumps(seen))
    """


def _result(name: str) -> bytes:
    return f"output {name}".encode()


def _files_below(files: Mapping[str, bytes], path: str) -> dict[str, bytes]:
    """The files at ``path`` of a datastore, as a script would read them (a file: by its name)."""
    if path in files:
        return {path.rpartition("/")[2]: files[path]}
    path = path.rstrip("/")  # a folder's path may end in '/'
    prefix = f"{path}/" if path else ""
    return {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix)}


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

    def data_project(self) -> Path:
        self._count += 1
        folder = self._tmp_path / "projects" / f"project-{self._count}"
        folder.mkdir(parents=True)
        (folder / "train.py").write_text(textwrap.dedent(_DATA_SCRIPT), encoding="utf-8")
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
                files={RUN_LOG_FILE[0]: RUN_LOG_FILE[1].encode()},
            )
        elif outcome == "escaping_file":
            self.backend.program_run(
                statuses=("Completed",),
                outputs={"model.txt": b"weights"},
                files={ESCAPING_NAME: b"x"},
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

    def add_datastore(self, name: str, files: Mapping[str, bytes]) -> None:
        self.backend.add_datastore(name, files=files)

    # Nothing runs on the fake: these play the script on the recorded request, reading and
    # writing the fake's datastores where the request says, as a compute would.

    def data_seen(self, run: mlboot.Run) -> Seen:
        seen: Seen = {}
        for data in self.backend.request_of(run.id).inputs:
            assert data.kind == "datastore", data
            files = self.backend.datastore_files(str(data.datastore))
            seen[data.name] = (data.mode, _files_below(files, data.path or ""))
        return seen

    def datastore_files(self, name: str, run: mlboot.Run) -> dict[str, bytes]:
        files = self.backend.datastore_files(name)
        for output in self.backend.request_of(run.id).outputs:
            store = output.datastore or "workspaceblobstore"
            path = output.path if output.path is not None else "dataset/{run-id}/{output-name}"
            path = path.replace("{run-id}", run.id).replace("{output-name}", output.name)
            if store == name:
                files[f"{path}/{RESULT_FILE}"] = _result(output.name)
        return files


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
        if outcome == "escaping_file":  # pragma: no cover  (in cannot)
            raise NotImplementedError(
                CANNOT["local"]["test_a_file_name_leading_out_of_the_destination_is_refused"]
            )
        return self._project(outcome)

    def add_datastore(self, name: str, files: Mapping[str, bytes]) -> None:
        folder = self.backend.add_datastore(name)
        for path, content in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)

    def data_seen(self, run: mlboot.Run) -> Seen:
        report = self.backend.run_folder(run.id) / "outputs" / "seen.json"
        return {
            name: (mode, {path: text.encode() for path, text in files.items()})
            for name, (mode, files) in json.loads(report.read_text(encoding="utf-8")).items()
        }

    def datastore_files(self, name: str, run: mlboot.Run) -> dict[str, bytes]:
        del run  # the supervisor moved the outputs in before the run ended
        folder = self.backend.datastore_folder(name)
        return {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*")
            if path.is_file()
        }


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
                logs={
                    "user_logs/std_log.txt": "".join(f"{line}\n" for line in LOG_LINES),
                    RUN_LOG_FILE[0]: RUN_LOG_FILE[1],
                },
                metrics={"loss": METRICS["loss"], "accuracy": METRICS["accuracy"][0]},
                outputs=OUTPUTS,
            )
        elif outcome == "escaping_file":
            self.emulator.program_run(
                ("Completed",), outputs={"model.txt": b"weights", ESCAPING_NAME: b"x"}
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

    # Nothing runs on the emulator either: these play the script on the run definition the
    # SDK posted, reading and writing the emulator's datastores where it says, as a compute
    # would (the service's own path for an output, {run-id} expanded).

    def add_datastore(self, name: str, files: Mapping[str, bytes]) -> None:
        self.emulator.add_datastore(name, workspace=self.state)
        for path, content in files.items():
            self.emulator.put_datastore_file(name, path, content, workspace=self.state)

    def data_seen(self, run: mlboot.Run) -> Seen:
        seen: Seen = {}
        for data in self.emulator.run_data(run.id).inputs.values():
            assert data.kind == "data_reference", data
            files = self.emulator.datastore_files(data.datastore, workspace=self.state)
            seen[_unprefixed(data.name)] = (data.mode, _files_below(files, data.path or ""))
        return seen

    def datastore_files(self, name: str, run: mlboot.Run) -> dict[str, bytes]:
        files = self.emulator.datastore_files(name, workspace=self.state)
        for output in self.emulator.run_data(run.id).outputs.values():
            assert output.path is not None, output  # mlboot always gives the destination
            if output.datastore == name:
                path = output.path.replace("{run-id}", run.id)
                files[f"{path}/{RESULT_FILE}"] = _result(_unprefixed(output.name))
        return files


def _unprefixed(name: str) -> str:
    """mlboot's name of an input or output, from the azureml-core backend's name for it."""
    for prefix in ("MLBOOT_INPUT_", "MLBOOT_OUTPUT_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    raise AssertionError(f"{name!r} is not an mlboot input or output")


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
                logs={
                    "user_logs/std_log.txt": "".join(f"{line}\n" for line in LOG_LINES),
                    RUN_LOG_FILE[0]: RUN_LOG_FILE[1],
                },
                metrics=METRICS,
                outputs=OUTPUTS,
            )
        elif outcome == "escaping_file":
            self.emulator.program_job(
                ("Completed",), outputs={"model.txt": b"weights", ESCAPING_NAME: b"x"}
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

    # The job's inputs and outputs are read from the PUT body the SDK sent (its REST names).

    def _job_data(self, run: mlboot.Run, section: str) -> dict[str, dict[str, Any]]:
        properties = self.emulator.job(run.id, workspace=self.state).properties
        return dict(properties.get(section) or {})

    def data_seen(self, run: mlboot.Run) -> Seen:
        seen: Seen = {}
        for name, data in self._job_data(run, "inputs").items():
            datastore, path = _datastore_uri_parts(data["uri"])
            files = self.emulator.datastore_files(datastore, workspace=self.state)
            seen[name] = (_V2_MODES[data["mode"]], _files_below(files, path))
        return seen

    def datastore_files(self, name: str, run: mlboot.Run) -> dict[str, bytes]:
        files = self.emulator.datastore_files(name, workspace=self.state)
        for output, data in self._job_data(run, "outputs").items():
            assert data["jobOutputType"] == "uri_folder", data
            datastore, path = _datastore_uri_parts(data["uri"])  # mlboot always gives the path
            if datastore == name:
                files[f"{path}/{RESULT_FILE}"] = _result(output)
        return files


# azure-ai-ml's REST words for the modes mlboot sends -> mlboot's.
_V2_MODES = {"ReadOnlyMount": "mount", "Download": "download"}


def _datastore_uri_parts(uri: str) -> tuple[str, str]:
    head, _, path = uri.removeprefix("azureml://datastores/").partition("/paths/")
    assert uri.startswith("azureml://datastores/"), uri
    assert head, uri
    return head, path.strip("/")


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
        "test_a_file_name_leading_out_of_the_destination_is_refused": (
            "a local run's files are files in its folder, whose names never hold a '..' part"
        ),
    },
    "azureml-emulator": {},
    "azureml-v2-emulator": {},
}

#: Backend id -> scenario -> why it is not run YET: work under way elsewhere, unlike CANNOT.
#: The suite marks those tests skipped with "pending: ..."; remove an entry once it is done.
PENDING: dict[str, Mapping[str, str]] = {}
