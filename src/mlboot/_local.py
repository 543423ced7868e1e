"""The local backend: the Azure ML workflow on this machine, with no Azure account.

:class:`LocalBackend` implements the :class:`~mlboot.backend.Backend` seam with folders and
processes, so ``workspace_from_config``, ``get_or_create_compute_target``, ``submit_script`` and
the ``Run`` handle work unchanged.  The workspace is a folder; a compute target is a named pool
whose ``max_nodes`` is how many runs may execute at once; a run is the pre-checked snapshot
copied into the run's folder and run there by ``sys.executable`` in a subprocess, watched by a
detached supervisor process.  Everything a run is lives on disk, so a run outlives the process
that submitted it and any process can reattach to it by id.

The workspace folder::

    <root>/
      workspace.json                 the names the workspace was last opened with
      computes/<name>.json           a pool: the ComputeInfo fields
      computes/<name>/slot-<k>.lock  k < max_nodes; held (flock) while a run executes
      computes/<name>/queue/<t>_<id> runs waiting for a slot, first come first served
      runs/<run_id>/
        run.json                     what was submitted
        status.json                  status, error, times, exit code (replaced atomically)
        supervisor.lock              held (flock) for the supervisor's whole life
        std_log.txt                  the script's stdout and stderr
        supervisor_log.txt           the supervisor's own messages
        metrics.jsonl                what mlboot.log_metric logged
        wd/                          the snapshot copy: the script's working directory
        outputs/                     wd/outputs, collected when the script has ended
        cancel_requested             present once a cancel was asked for

Why it cannot run more than ``max_nodes`` scripts of a pool at once, whatever the number of
submitting processes: a supervisor starts its script only while it holds an exclusive
``flock`` on one of the pool's ``max_nodes`` slot files, and keeps it until the script and every
process left in its process group have ended.  The kernel releases the lock when the holder
dies, so a crash never leaks a slot; on Linux the script is killed when its supervisor dies
(``PR_SET_PDEATHSIG``), so a slot is never free while an orphaned script still runs.  Waiting
runs take slots strictly in submission order: only the oldest living entry of the queue may try.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlboot._backend import (
    ComputeInfo,
    ComputeSpec,
    Metrics,
    RunDetails,
    RunRequest,
    WorkspaceInfo,
    WorkspaceRef,
)
from mlboot._clock import SystemClock
from mlboot._script_api import OUTPUTS_FOLDER, RUN_DIR_VARIABLE, read_metrics
from mlboot.exceptions import ConflictError, InvalidInputError, NotFoundError, ServiceError

if TYPE_CHECKING:
    from mlboot._auth import Credential
    from mlboot._backend import Backend
    from mlboot._environment import Environment

__all__ = [
    "LOCAL_LOCATION",
    "LocalBackend",
    "check_environment",
    "default_root",
    "requirement_problems",
]

logger = logging.getLogger("mlboot")

LOCAL_LOCATION = "local"
"""The ``location`` of every local workspace."""

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})

_CLUSTER_KIND = "AmlCompute"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}\Z", re.ASCII)
_QUEUE_POLL_SECONDS = 0.1
_SCRIPT_POLL_SECONDS = 0.1
_CANCEL_GRACE_SECONDS = 5.0
"""How long a canceled script has between SIGTERM and SIGKILL."""
_LEFTOVER_GRACE_SECONDS = 2.0
"""How long processes a finished script left behind have between SIGTERM and SIGKILL."""
_SPAWN_TIMEOUT_SECONDS = 60.0
_RUN_ENV_VARIABLE = "_MLBOOT_RUN_ENVIRONMENT"
_LOG_TAIL_BYTES = 16 * 1024
_MAX_EXPERIMENT_IN_ID = 200
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

# Azure ML's run-context variables that would make azureml-core's Run.get_context() (or
# mlboot.log_metric) talk to the service: a local run never inherits them from a launcher that
# itself runs on Azure ML.
_AZUREML_CONTEXT_VARIABLES = (
    "AZUREML_SERVICE_ENDPOINT",
    "AZUREML_DISCOVERY_SERVICE_ENDPOINT",
    "AZUREML_RUN_TOKEN",
    "AZUREML_RUN_TOKEN_EXPIRY",
    "AZUREML_EXPERIMENT_ID",
    "AZUREML_WORKSPACE_ID",
)


def default_root(config_source: Path | None) -> Path:
    """Where a config file's local workspace lives: ``.mlboot/`` beside the project's config.

    That is the folder holding ``config.json``, or its parent when the file sits in
    ``.azureml/`` or ``aml_config/``; without a file (configuration from the environment only),
    the current folder.
    """
    if config_source is None:
        return Path.cwd().absolute() / ".mlboot"
    folder = config_source.absolute().parent
    if folder.name in {".azureml", "aml_config"}:
        folder = folder.parent
    return folder / ".mlboot"


def _is_name(value: object) -> bool:
    """Whether ``value`` can name a file in the workspace folder (no separators, no ``..``)."""
    return isinstance(value, str) and _NAME.match(value) is not None


def _now() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    # Readers in other processes see the old file or the new one, never half of one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ServiceError(
            f"the local backend's file {str(path)!r} is damaged ({exc.msg} at line "
            f"{exc.lineno}). Fix: delete it (and for a run, its whole folder)."
        ) from exc
    if not isinstance(data, dict):
        raise ServiceError(f"the local backend's file {str(path)!r} is damaged. Fix: delete it.")
    return data


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or ``None`` if someone has it."""
    import fcntl  # noqa: PLC0415  (POSIX only; LocalBackend refuses other systems up front)

    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class _RunFolder:
    """The files of one run, and the only code that reads or writes them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.request_file = path / "run.json"
        self.status_file = path / "status.json"
        self.lock_file = path / "supervisor.lock"
        self.log_file = path / "std_log.txt"
        self.supervisor_log_file = path / "supervisor_log.txt"
        self.working_dir = path / "wd"
        self.outputs = path / OUTPUTS_FOLDER
        self.cancel_marker = path / "cancel_requested"

    @property
    def run_id(self) -> str:
        return self.path.name

    def read_request(self) -> dict[str, Any]:
        return _read_json(self.request_file)

    def read_status(self) -> dict[str, Any]:
        try:
            return _read_json(self.status_file)
        except FileNotFoundError:
            return {"status": "NotStarted"}

    def write_status(self, status: str | None = None, **fields: object) -> None:
        """Change the status (``None``: keep it) and fields; only the holder of the lock may."""
        record = self.read_status()
        record.update(fields)
        if status is not None:
            record["status"] = status
        _write_json(self.status_file, record)

    def cancel_requested(self) -> bool:
        return self.cancel_marker.exists()

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        try:
            with self.log_file.open("rb") as file:
                file.seek(0, os.SEEK_END)
                size = file.tell()
                file.seek(max(0, size - max_bytes))
                return file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def _pool_dir(root: Path, compute_name: str) -> Path:
    return root / "computes" / compute_name.casefold()


def _compute_to_json(info: ComputeInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "kind": info.kind,
        "provisioning_state": info.provisioning_state,
        "vm_size": info.vm_size,
        "vm_priority": info.vm_priority,
        "min_nodes": info.min_nodes,
        "max_nodes": info.max_nodes,
        "idle_seconds_before_scaledown": info.idle_seconds_before_scaledown,
    }


def _compute_from_json(data: Mapping[str, Any]) -> ComputeInfo:
    return ComputeInfo(
        name=str(data["name"]),
        kind=str(data.get("kind", _CLUSTER_KIND)),
        provisioning_state=str(data.get("provisioning_state", "Succeeded")),
        vm_size=data.get("vm_size"),
        vm_priority=data.get("vm_priority"),
        min_nodes=data.get("min_nodes"),
        max_nodes=data.get("max_nodes"),
        idle_seconds_before_scaledown=data.get("idle_seconds_before_scaledown"),
    )


class LocalBackend:
    """Azure ML on this machine: a folder is the workspace, local processes are the cluster.

    ``root`` is the workspace folder (created on first use; default ``.mlboot`` in the current
    folder, or beside the config file when the backend is chosen through configuration).
    Needs no credentials and no network; ``auth`` is ignored.  POSIX only (Linux, macOS).

    >>> from mlboot import LocalBackend
    >>> from mlboot.backend import Backend
    >>> backend: Backend = LocalBackend("some/folder")
    >>> backend.clock
    SystemClock()
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if os.name != "posix":
            raise NotImplementedError(
                "the local backend needs a POSIX system (Linux or macOS): it relies on fcntl "
                "locks and process groups. Fix: run it under WSL, or use Azure ML."
            )
        chosen = Path(os.fspath(root)) if root is not None else Path(".mlboot")
        self._root = chosen.expanduser().absolute()
        self._clock = SystemClock()

    @property
    def root(self) -> Path:
        """The workspace folder."""
        return self._root

    @property
    def clock(self) -> SystemClock:
        """Local runs are real processes, so waits use the real clock."""
        return self._clock

    def __repr__(self) -> str:
        return f"LocalBackend({str(self._root)!r})"

    # -- workspace -----------------------------------------------------------------------------

    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        del credential, cloud, tenant_id  # a folder needs no login
        try:
            (self._root / "computes").mkdir(parents=True, exist_ok=True)
            (self._root / "runs").mkdir(exist_ok=True)
            _write_json(
                self._root / "workspace.json",
                {
                    "subscription_id": ref.subscription_id,
                    "resource_group": ref.resource_group,
                    "workspace_name": ref.name,
                    "location": LOCAL_LOCATION,
                },
            )
        except OSError as exc:
            raise ServiceError(
                f"cannot use {str(self._root)!r} as the local workspace folder: "
                f"{exc.strerror or exc}. Fix: make it writable, or pass another root."
            ) from exc
        return WorkspaceInfo(ref=ref, location=LOCAL_LOCATION)

    def azureml_workspace(self, ref: WorkspaceRef) -> object:
        del ref
        raise NotImplementedError("the local backend has no azureml-core objects to hand out")

    # -- compute -------------------------------------------------------------------------------

    def _compute_file(self, name: str) -> Path | None:
        if not _is_name(name):
            return None
        return self._root / "computes" / f"{name.casefold()}.json"

    def _read_compute(self, name: str) -> ComputeInfo | None:
        file = self._compute_file(name)
        if file is None:
            return None
        try:
            return _compute_from_json(_read_json(file))
        except FileNotFoundError:
            return None

    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        del ref
        return self._read_compute(name)

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        del ref
        file = self._compute_file(name)
        if file is None:
            raise InvalidInputError(
                "name",
                name,
                "a local compute name is letters, digits, '_', '.' and '-', starting with a "
                "letter or digit",
                "pick another name, e.g. 'cpu-cluster'",
            )
        info = ComputeInfo(
            name=name,
            kind=_CLUSTER_KIND,
            # A local pool needs no machines: it is ready as soon as it exists.
            provisioning_state="Succeeded",
            vm_size=spec.vm_size,
            vm_priority="LowPriority" if spec.vm_priority == "lowpriority" else "Dedicated",
            min_nodes=spec.min_nodes,
            max_nodes=spec.max_nodes,
            idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        temporary.write_text(json.dumps(_compute_to_json(info), indent=2) + "\n", encoding="utf-8")
        try:
            # link() fails when the name exists: create-if-absent, complete or not at all.
            os.link(temporary, file)
        except FileExistsError:
            raise ConflictError(
                f"compute target {name!r} already exists in the local workspace {self._root}"
            ) from None
        finally:
            temporary.unlink()
        (_pool_dir(self._root, name) / "queue").mkdir(parents=True, exist_ok=True)
        return info

    def get_compute_provisioning(self, ref: WorkspaceRef, name: str) -> ComputeInfo:
        found = self.get_compute(ref, name)
        if found is None:
            raise NotFoundError(
                f"compute target {name!r} does not exist in the local workspace {self._root}"
            )
        return found

    def update_compute_scale(
        self,
        ref: WorkspaceRef,
        name: str,
        *,
        min_nodes: int,
        max_nodes: int,
        idle_seconds_before_scaledown: int,
    ) -> ComputeInfo:
        found = self.get_compute_provisioning(ref, name)
        file = self._root / "computes" / f"{name.casefold()}.json"  # a valid name: found above
        data = _compute_to_json(found)
        data.update(
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
        )
        _write_json(file, data)
        return _compute_from_json(data)

    def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
        del ref, name
        raise NotImplementedError("the local backend has no azureml-core objects to hand out")

    # -- runs ----------------------------------------------------------------------------------

    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        from mlboot._snapshot import plan_snapshot  # noqa: PLC0415  (only paid for on submit)

        _refuse_distribution(request)
        compute = self._read_compute(request.compute)
        if compute is None:
            raise NotFoundError(
                f"compute target {request.compute!r} does not exist in the local workspace "
                f"{self._root}. Fix: create it first with mlboot.get_or_create_compute_target()."
            )
        plan = plan_snapshot(request.source_directory)
        check_environment(request.environment)
        folder = self._new_run_folder(request.experiment)
        try:
            _copy_snapshot(plan.root, plan.files, folder.working_dir)
            queue_entry = f"{time.time_ns():020d}_{folder.run_id}"
            _write_json(
                folder.request_file,
                {
                    "run_id": folder.run_id,
                    "experiment": request.experiment,
                    "compute": compute.name,
                    "script": request.script,
                    "arguments": list(request.arguments),
                    "tags": dict(request.tags),
                    "max_run_duration_seconds": request.max_run_duration_seconds,
                    "source_directory": str(plan.root),
                    "snapshot_files": len(plan.files),
                    "queue_entry": queue_entry,
                    "workspace": {
                        "subscription_id": ref.subscription_id,
                        "resource_group": ref.resource_group,
                        "workspace_name": ref.name,
                    },
                    "submitted_at": _now(),
                },
            )
        except OSError as exc:
            shutil.rmtree(folder.path, ignore_errors=True)
            raise ServiceError(
                f"cannot prepare the local run in {folder.path}: {exc}. Fix: check the free "
                "space and permissions of the workspace folder."
            ) from exc
        lock = _try_lock(folder.lock_file)
        if lock is None:  # pragma: no cover  (a brand-new folder nobody else knows of)
            raise ServiceError(f"the new run folder {folder.path} is already in use")
        try:
            folder.write_status("NotStarted", submitted_at=_now())
            queue = _pool_dir(self._root, compute.name) / "queue"
            queue.mkdir(parents=True, exist_ok=True)
            (queue / queue_entry).touch()
            try:
                self._start_supervisor(folder, lock, _script_environment(ref, request, folder))
            except (OSError, ServiceError) as exc:
                (queue / queue_entry).unlink(missing_ok=True)
                folder.write_status("Failed", error=f"the run could not be started: {exc}")
                if isinstance(exc, ServiceError):
                    raise
                raise ServiceError(f"cannot start the local run {folder.run_id}: {exc}") from exc
        finally:
            # The supervisor holds its own copy of the lock from here on.
            os.close(lock)
        logger.info(
            "Submitted local run %s of experiment %r to pool %r (%d files copied); its folder "
            "is %s",
            folder.run_id,
            request.experiment,
            compute.name,
            len(plan.files),
            folder.path,
        )
        return self._details(folder)

    def _new_run_folder(self, experiment: str) -> _RunFolder:
        runs = self._root / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        # Azure ML's own form: <experiment>_<unix time>_<8 hex digits>.
        prefix = f"{experiment[:_MAX_EXPERIMENT_IN_ID]}_{int(time.time())}"
        while True:
            path = runs / f"{prefix}_{secrets.token_hex(4)}"
            try:
                path.mkdir()
            except FileExistsError:  # pragma: no cover  (one chance in four billion)
                continue
            return _RunFolder(path)

    def _start_supervisor(self, folder: _RunFolder, lock: int, script_env: object) -> None:
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env[_RUN_ENV_VARIABLE] = json.dumps(script_env)
        with folder.supervisor_log_file.open("ab") as supervisor_log:
            first = subprocess.Popen(  # noqa: S603  (our own interpreter and our own code)
                [
                    sys.executable,
                    "-c",
                    _SUPERVISOR_BOOTSTRAP,
                    str(folder.path),
                    str(lock),
                    package_parent,
                ],
                stdin=subprocess.DEVNULL,
                stdout=supervisor_log,
                stderr=subprocess.STDOUT,
                cwd=folder.path,
                env=env,
                pass_fds=(lock,),
            )
        try:
            code = first.wait(timeout=_SPAWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            first.kill()
            first.wait()
            raise ServiceError(
                f"the supervisor of local run {folder.run_id} did not start within "
                f"{_SPAWN_TIMEOUT_SECONDS:.0f} s; see {folder.supervisor_log_file}"
            ) from exc
        if code != 0:
            raise ServiceError(
                f"the supervisor of local run {folder.run_id} failed to start (exit code {code}); "
                f"see {folder.supervisor_log_file}"
            )

    def _folder(self, run_id: str) -> _RunFolder:
        if not _is_name(run_id):
            raise NotFoundError(
                f"run {run_id!r} was not found in the local workspace {self._root}: that is "
                "not a run id"
            )
        folder = _RunFolder(self._root / "runs" / run_id)
        if not folder.request_file.is_file():
            raise NotFoundError(
                f"run {run_id!r} was not found in the local workspace {self._root}. Fix: check "
                f"the id against the folders in {self._root / 'runs'}, and that this is the "
                "workspace folder the run was submitted to."
            )
        return folder

    def run_folder(self, run_id: str) -> Path:
        """The folder of run ``run_id``: its log, metrics, ``outputs/`` and snapshot (``wd/``).

        Raises :class:`~mlboot.exceptions.NotFoundError` for a run this workspace does not have.
        """
        return self._folder(run_id).path

    def _status(self, folder: _RunFolder) -> dict[str, Any]:
        record = folder.read_status()
        if record.get("status") not in TERMINAL_STATUSES:
            _settle_if_abandoned(self._root, folder)
            record = folder.read_status()
        return record

    def _details(self, folder: _RunFolder) -> RunDetails:
        record = self._status(folder)
        request = folder.read_request()
        return RunDetails(
            run_id=folder.run_id,
            experiment=str(request["experiment"]),
            status=str(record.get("status", "NotStarted")),
            portal_url=folder.path.as_uri(),
            error=record.get("error") if isinstance(record.get("error"), str) else None,
            start_time=record.get("start_time"),
            end_time=record.get("end_time"),
        )

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        del ref
        return str(self._status(self._folder(run_id)).get("status", "NotStarted"))

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        del ref
        return self._details(self._folder(run_id))

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        del ref
        folder = self._folder(run_id)
        try:
            return folder.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        del ref
        return read_metrics(self._folder(run_id).path)

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        del ref
        source = self._folder(run_id).outputs
        written: list[Path] = []
        for folder, _, files in os.walk(source):
            for name in sorted(files):
                path = Path(folder, name)
                if not path.is_file():
                    continue
                target = Path(destination) / OUTPUTS_FOLDER / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                written.append(target)
        return sorted(written)

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        del ref
        folder = self._folder(run_id)
        if self._status(folder).get("status") in TERMINAL_STATUSES:
            return
        folder.cancel_marker.touch()
        # A live supervisor notices the marker within a poll; a dead one cannot, so settle now.
        _settle_if_abandoned(self._root, folder, canceled=True)

    def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
        del ref, run_id
        raise NotImplementedError("the local backend has no azureml-core objects to hand out")


def _refuse_distribution(request: RunRequest) -> None:
    if request.node_count != 1 or request.distribution is not None:
        raise InvalidInputError(
            "node_count" if request.distribution is None else "distribution",
            request.node_count if request.distribution is None else request.distribution,
            "the local backend runs a script as one process on one node",
            "submit with node_count=1 and no distribution to run locally; distributed jobs "
            "need Azure ML",
        )


def _copy_snapshot(root: Path, files: Iterable[str], destination: Path) -> None:
    destination.mkdir(parents=True)
    for relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # copy2 follows links, as the SDK's upload does.
        shutil.copy2(root / relative, target)


def _script_environment(
    ref: WorkspaceRef, request: RunRequest, folder: _RunFolder
) -> dict[str, object]:
    variables: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
    if request.environment is not None:
        variables.update(request.environment.variables)
    # The variables azureml-core's Run.get_context() reads (azureml/_run_impl/constants.py),
    # minus the service endpoint and token: azureml-core then falls back to an offline run.
    variables.update(
        {
            "AZUREML_RUN_ID": folder.run_id,
            "AZUREML_ARM_SUBSCRIPTION": ref.subscription_id,
            "AZUREML_ARM_RESOURCEGROUP": ref.resource_group,
            "AZUREML_ARM_WORKSPACE_NAME": ref.name,
            "AZUREML_ARM_PROJECT_NAME": request.experiment,
            "AZUREML_OUTPUT_DIRECTORY": "./" + OUTPUTS_FOLDER,
            RUN_DIR_VARIABLE: str(folder.path),
        }
    )
    return {"set": variables, "unset": list(_AZUREML_CONTEXT_VARIABLES)}


# -- abandoned runs --------------------------------------------------------------------------------


def _supervisor_alive(folder: _RunFolder) -> bool:
    try:
        lock = _try_lock(folder.lock_file)
    except FileNotFoundError:
        return False
    if lock is None:
        return True
    os.close(lock)
    return False


def _settle_if_abandoned(root: Path, folder: _RunFolder, *, canceled: bool = False) -> None:
    """End a run whose supervisor died before writing a final status (killed, reboot...)."""
    try:
        lock = _try_lock(folder.lock_file)
    except FileNotFoundError:
        return
    if lock is None:
        return  # the supervisor (or the submitter) is alive and in charge
    try:
        record = folder.read_status()
        if record.get("status") in TERMINAL_STATUSES:
            return
        _kill_orphaned_script(folder, record)
        with contextlib.suppress(OSError, ServiceError, KeyError):
            request = folder.read_request()
            queue = _pool_dir(root, str(request["compute"])) / "queue"
            (queue / str(request["queue_entry"])).unlink(missing_ok=True)
        if canceled:
            folder.write_status("Canceled", end_time=_now())
        else:
            folder.write_status(
                "Failed",
                end_time=_now(),
                error=(
                    "the local supervisor of this run ended without recording how the run "
                    "ended (it was killed, or the machine restarted); see "
                    f"{folder.supervisor_log_file}"
                ),
            )
    finally:
        os.close(lock)


def _kill_orphaned_script(folder: _RunFolder, record: Mapping[str, Any]) -> None:
    """Kill what is left of the script's process group after its supervisor died (Linux)."""
    group = record.get("script_pid")
    if not isinstance(group, int) or not sys.platform.startswith("linux"):
        return
    # Process ids are reused: only kill processes of that group that provably belong to this
    # run, by the MLBOOT_RUN_DIR they inherited.
    marker = f"{RUN_DIR_VARIABLE}={folder.path}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_group = os.getpgid(int(entry.name)) == group
            ours = in_group and marker in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


# -- the supervisor -------------------------------------------------------------------------------

# The first process forks and exits at once, so the submitter can wait for it (no zombie, no
# ResourceWarning) while the grandchild, in a session of its own, outlives the submitter.
_SUPERVISOR_BOOTSTRAP = """\
import os, sys
if os.fork():
    os._exit(0)
os.setsid()
sys.path.append(sys.argv[3])
from mlboot._local import _supervise
sys.exit(_supervise(sys.argv[1], int(sys.argv[2])))
"""


class _Stopped(BaseException):
    """The supervisor itself was asked to stop (SIGTERM, SIGINT)."""


def _say(message: str) -> None:
    sys.stderr.write(f"{_now()} {message}\n")
    sys.stderr.flush()


def _supervise(run_dir: str, lock: int) -> int:
    """Run one local run to its end; entry point of the detached supervisor process.

    ``lock`` is the inherited descriptor holding ``supervisor.lock``: it stays open until this
    process exits, which is how other processes tell a live supervisor from a dead one.
    """
    del lock  # held, on purpose, until the process exits
    folder = _RunFolder(Path(run_dir))
    environment = json.loads(os.environ.pop(_RUN_ENV_VARIABLE, "{}"))

    def stop(signum: int, frame: object) -> None:
        del frame
        raise _Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    supervisor: _Supervisor | None = None
    try:
        supervisor = _Supervisor(folder, environment)
        return supervisor.run()
    except BaseException as exc:  # noqa: BLE001  (whatever happens, the run gets an ending)
        _say("the supervisor failed:\n" + traceback.format_exc())
        if supervisor is not None and supervisor.script_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(supervisor.script_pid, signal.SIGKILL)
        record = folder.read_status()
        if record.get("status") not in TERMINAL_STATUSES:
            what = f"stopped by {exc}" if isinstance(exc, _Stopped) else f"failed: {exc!r}"
            folder.write_status(
                "Failed",
                end_time=_now(),
                error=f"the local supervisor of this run {what}; see {folder.supervisor_log_file}",
            )
        return 1


class _Supervisor:
    def __init__(self, folder: _RunFolder, environment: Mapping[str, Any]) -> None:
        self.folder = folder
        self.request = folder.read_request()
        self.root = folder.path.parent.parent
        self.pool = _pool_dir(self.root, str(self.request["compute"]))
        self.queue = self.pool / "queue"
        self.queue_entry = str(self.request["queue_entry"])
        self.environment = environment
        self.script_pid: int | None = None

    def run(self) -> int:
        _become_subreaper()
        self.folder.write_status(supervisor_pid=os.getpid())
        slot = self.wait_for_slot()
        if slot is None:
            (self.queue / self.queue_entry).unlink(missing_ok=True)
            self.folder.write_status("Canceled", end_time=_now())
            _say("canceled before it started")
            return 0
        try:
            return self.execute()
        finally:
            os.close(slot)

    # -- queueing --

    def wait_for_slot(self) -> int | None:
        said_queued = False
        while True:
            if self.folder.cancel_requested():
                return None
            size = self.pool_size()
            if self.first_in_queue():
                for number in range(size):
                    slot = _try_lock(self.pool / f"slot-{number}.lock")
                    if slot is not None:
                        (self.queue / self.queue_entry).unlink(missing_ok=True)
                        _say(f"took slot {number} of {size} in pool {self.request['compute']!r}")
                        return slot
            if not said_queued:
                self.folder.write_status("Queued")
                _say(f"queued: all {size} slots of pool {self.request['compute']!r} are busy")
                said_queued = True
            time.sleep(_QUEUE_POLL_SECONDS)

    def pool_size(self) -> int:
        data = _read_json(self.root / "computes" / f"{self.pool.name}.json")
        size = data.get("max_nodes")
        return size if isinstance(size, int) and size > 0 else 1

    def first_in_queue(self) -> bool:
        for entry in sorted(path.name for path in self.queue.iterdir()):
            if entry == self.queue_entry:
                return True
            other = _RunFolder(self.root / "runs" / entry.partition("_")[2])
            if _supervisor_alive(other):
                return False
            _settle_if_abandoned(self.root, other)
            (self.queue / entry).unlink(missing_ok=True)
        return True  # pragma: no cover  (our own entry is only removed by us)

    # -- running --

    def execute(self) -> int:
        folder, request = self.folder, self.request
        env = dict(os.environ)
        for name in self.environment.get("unset", ()):
            env.pop(name, None)
        env.update(self.environment.get("set", {}))
        command = [sys.executable, str(request["script"]), *map(str, request["arguments"])]
        started = time.monotonic()
        with folder.log_file.open("ab") as log:
            try:
                process = subprocess.Popen(  # noqa: S603  (the user's own script, as submitted)
                    command,
                    cwd=folder.working_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),  # noqa: PLW1509  (this process has one thread)
                )
            except OSError as exc:
                folder.write_status(
                    "Failed", end_time=_now(), error=f"the script could not be started: {exc}"
                )
                return 0
        self.script_pid = process.pid
        folder.write_status("Running", start_time=_now(), script_pid=process.pid)
        _say(f"started {command} as process {process.pid}")
        reason = self.watch(process, started)
        code = process.returncode
        _end_process_group(process.pid, _LEFTOVER_GRACE_SECONDS)
        if reason is None:
            folder.write_status("Finalizing", exit_code=code)
        collect_error = _collect_outputs(folder)
        _say(f"the script ended with exit code {code}; reason: {reason or 'it ended'}")
        max_duration = request.get("max_run_duration_seconds")
        if reason == "canceled":
            folder.write_status("Canceled", end_time=_now(), exit_code=code)
        elif reason == "timeout":
            folder.write_status(
                "Canceled",
                end_time=_now(),
                exit_code=code,
                error=(
                    f"the run took longer than max_run_duration_seconds={max_duration} and was "
                    "canceled"
                ),
            )
        elif code != 0:
            folder.write_status(
                "Failed",
                end_time=_now(),
                exit_code=code,
                error=_failure_message(str(request["script"]), code, folder),
            )
        elif collect_error is not None:
            folder.write_status("Failed", end_time=_now(), exit_code=code, error=collect_error)
        else:
            folder.write_status("Completed", end_time=_now(), exit_code=code)
        return 0

    def watch(self, process: subprocess.Popen[bytes], started: float) -> str | None:
        """Wait for the script; end it on a cancel or after its maximum duration."""
        limit = self.request.get("max_run_duration_seconds")
        deadline = started + limit if isinstance(limit, int | float) else None
        while True:
            try:
                process.wait(timeout=_SCRIPT_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            else:
                return None
            reason = None
            if self.folder.cancel_requested():
                reason = "canceled"
            elif deadline is not None and time.monotonic() >= deadline:
                reason = "timeout"
            if reason is not None:
                self.folder.write_status("CancelRequested")
                _say(f"ending the script's process group ({reason})")
                _terminate_script(process, _CANCEL_GRACE_SECONDS)
                return reason


def _terminate_script(process: subprocess.Popen[bytes], grace: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover  (a member changed its user id)
        return True
    return True


def _reap_children() -> None:
    """Reap orphans that were re-parented to this process (a subreaper) and have ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_process_group(group: int, grace: float) -> None:
    """End every process left in the script's group: SIGTERM, then SIGKILL after ``grace``.

    Called once the script's main process has been waited for, so reaping any child here can
    no longer take its exit status away from ``Popen``.
    """
    _reap_children()
    if not _group_alive(group):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    for signal_after_wait in (signal.SIGKILL, None):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap_children()
            if not _group_alive(group):
                return
            time.sleep(0.02)
        if signal_after_wait is not None:
            _say(f"processes of group {group} outlived SIGTERM by {grace:.0f} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal_after_wait)


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: PLC0415  (Linux only)

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover  (a libc without prctl)
        return None
    return prctl


def _become_subreaper() -> None:
    # Orphans of the script then become this process's children, so they can be reaped even
    # where PID 1 never reaps (containers), and a dead process group is seen as dead.
    prctl = _libc_prctl()
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _die_with_parent() -> Callable[[], None] | None:
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arrange() -> None:
        # If the supervisor dies, the script dies with it instead of keeping a freed slot busy.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def _collect_outputs(folder: _RunFolder) -> str | None:
    """Move ``wd/outputs`` to the run's ``outputs/``, as Azure ML uploads it; an error or None."""
    source = folder.working_dir / OUTPUTS_FOLDER
    try:
        if source.is_dir() and not source.is_symlink():
            source.rename(folder.outputs)
        elif source.is_dir():
            shutil.copytree(source, folder.outputs)
        else:
            folder.outputs.mkdir(exist_ok=True)
    except OSError as exc:
        _say(f"collecting outputs failed: {exc}")
        return f"the run's outputs could not be collected from {source}: {exc}"
    return None


def _failure_message(script: str, code: int, folder: _RunFolder) -> str:
    how = f"exited with code {code}"
    if code < 0:
        with contextlib.suppress(ValueError):
            how = f"was ended by signal {signal.Signals(-code).name}"
    lines = [line.strip() for line in folder.log_tail().splitlines() if line.strip()]
    last = f": {lines[-1]}" if lines else " and wrote nothing to its log"
    return f"the script {script!r} {how}{last} (log: {folder.log_file})"


# -- the environment check ----------------------------------------------------------------------


def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _logical_lines(lines: Iterable[str]) -> Iterator[str]:
    pending = ""
    for raw in lines:
        line = raw.rstrip("\n")
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def requirement_problems(
    lines: Iterable[str],
    *,
    installed: Callable[[str], str | None] = _installed_version,
) -> list[str]:
    """What this interpreter lacks of pip requirement ``lines``, one sentence per problem.

    Comments, blank lines and pip options (``--index-url``...) are skipped; requirements whose
    environment marker does not apply here are skipped; a line that is not a package name with
    an optional version specifier is reported as not checked.
    """
    return [problem for _, problem in _requirement_findings(lines, installed)]


def _requirement_findings(
    lines: Iterable[str], installed: Callable[[str], str | None]
) -> list[tuple[str | None, str]]:
    """``(requirement to install or None, problem)`` for every unmet line."""
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415
    from packaging.version import InvalidVersion  # noqa: PLC0415

    findings: list[tuple[str | None, str]] = []
    for logical in _logical_lines(lines):
        line = re.sub(r"(^|\s)#.*", "", logical).strip()
        if not line or line.startswith("-"):
            continue
        line = re.sub(r"\s--hash[=\s]\S+", "", " " + line).strip()
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            findings.append((None, f"{line!r} was not checked (not a package name and version)"))
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = installed(requirement.name)
        if version is None:
            findings.append((line, f"{requirement.name} is not installed (required: {line})"))
            continue
        if not requirement.specifier:
            continue
        try:
            fits = requirement.specifier.contains(version, prereleases=True)
        except InvalidVersion:
            findings.append(
                (None, f"{requirement.name} {version} cannot be compared with {line!r}")
            )
            continue
        if not fits:
            problem = (
                f"{requirement.name} {version} is installed, outside {requirement.specifier} "
                f"(required: {line})"
            )
            findings.append((line, problem))
    return findings


def check_environment(
    environment: Environment | None,
    *,
    installed: Callable[[str], str | None] = _installed_version,
) -> list[str]:
    """Compare a run's environment with this interpreter; log one warning listing any mismatch.

    Local runs use this interpreter and its installed packages whatever the environment says,
    so the check only warns: the Python version (major.minor), every pip requirement (name and
    version specifier, from a pip file or a conda file's ``pip:`` list), and a Docker image or
    a registered environment, neither of which can be applied locally.  Conda packages are not
    checked: their names and version syntax are conda's, not pip's.  Returns the problems found.
    """
    if environment is None:
        return []
    problems: list[str] = []
    wanted_python = environment.python_version
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted_python and ".".join(wanted_python.split(".")[:2]) != here:
        problems.append(
            f"it asks for Python {wanted_python}, this is Python {sys.version.split()[0]}"
        )
    findings = _requirement_findings(environment.pip_packages, installed)
    problems += [problem for _, problem in findings]
    if environment.kind == "registered":
        problems.append(
            f"it is the registered environment {environment.name!r}, which only exists in Azure ML"
        )
    if environment.docker_image:
        problems.append(f"its Docker image {environment.docker_image!r} is not used locally")
    if problems:
        to_install = [line for line, _ in findings if line is not None]
        fix = (
            "Install what is missing with: "
            + " ".join([sys.executable, "-m", "pip", "install", *map(_quoted, to_install)])
            if to_install
            else "Ignore this if the script does not need it"
        )
        logger.warning(
            "Environment %r does not match this interpreter (%s), which local runs use: %s. %s.",
            environment.name,
            sys.executable,
            "; ".join(problems),
            fix,
        )
    return problems


def _quoted(requirement: str) -> str:
    import shlex  # noqa: PLC0415

    return shlex.quote(requirement)


if TYPE_CHECKING:
    # A Protocol is not checked by inheritance: this line makes mypy prove that it is one.
    _backend: Backend = LocalBackend()
