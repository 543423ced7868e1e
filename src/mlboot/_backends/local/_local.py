"""The local backend: the Azure ML workflow on this machine, with no Azure account.

:class:`LocalBackend` implements the :class:`~mlboot.backend.Backend` seam with folders and
processes, so ``workspace_from_config``, ``get_or_create_compute_target``, ``submit_script`` and
the ``Run`` handle work unchanged.  The workspace is a folder; a compute target is a named pool
whose ``max_nodes`` is how many runs may execute at once; a run is the pre-checked snapshot
copied into the run's folder and run there by ``sys.executable`` in a subprocess, watched by a
detached supervisor process.  Everything a run is lives on disk, so a run outlives the process
that submitted it and any process can reattach to it by id.  The supervisor's code is
:mod:`mlboot._backends.local._local_supervisor`, which it loads without the rest of mlboot (a
run pays for the start of two interpreters, the supervisor's and the script's, and little more).

The workspace folder::

    <root>/
      workspace.json                 the names the workspace was last opened with
      computes/<name>.json           a pool: the ComputeInfo fields
      computes/<name>/slot-<k>.lock  k < max_nodes; held (flock) while a run executes
      computes/<name>/queue/<t>_<id> runs waiting for a slot, first come first served
      .mlboot-workspace              marks the folder: no snapshot ever includes it
      mlruns/                        an MLflow file store: every run's metrics, params, tags
      incoming/<run_id>/             a run being prepared (locked); renamed into runs/ when whole
      runs/<run_id>/
        run.json                     what was submitted
        status.json                  status, error, times, exit code (replaced atomically)
        supervisor.lock              held (flock) for the supervisor's whole life
        std_log.txt                  the script's stdout and stderr
        supervisor_log.txt           the supervisor's own messages
        metrics.jsonl                what mlboot.log_metric logged
        tracking.json, artifacts/    where its MLflow run is; that run's artifacts
        wd/                          the snapshot copy: the script's working directory
        outputs/                     wd/outputs, collected when the script has ended
        cancel_requested             present once a cancel was asked for
        waiters/                     FIFOs of processes waiting for the status to change

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
import functools
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mlboot._backends._seam import (
    ComputeInfo,
    ComputeSpec,
    DatastoreInfo,
    Metrics,
    RunDetails,
    RunRequest,
    WorkspaceInfo,
    WorkspaceRef,
)
from mlboot._backends.local._local_data import (
    DATASTORES_FOLDER,
    DEFAULT_DATASTORE,
    LocalData,
    check_datastore_path,
    prepare_data,
    remove_tree,
    upload_records,
)
from mlboot._backends.local._local_supervisor import (
    BOOTSTRAP,
    RUN_ENV_VARIABLE,
    RunFolder,
    now,
    pool_dir,
    read_json,
    settle_if_abandoned,
    status_of,
    try_lock,
    wait_for_change,
    write_json,
)
from mlboot._clock import SystemClock
from mlboot._links import check_destination, copy_regular_file
from mlboot._localio import storage_error, translated
from mlboot._log import logger
from mlboot._script_api import OUTPUTS_FOLDER, RUN_DIR_VARIABLE, read_metrics
from mlboot._spellings import (
    CANCEL_REQUESTED,
    CLUSTER_KIND,
    PROVISIONING_SUCCEEDED,
    TERMINAL_RUN_STATUSES,
    name_pattern,
)
from mlboot._tracking_local import artifacts_folder, tracking_variables
from mlboot._validate import check_name, path_text
from mlboot._warnings import warn
from mlboot.exceptions import (
    AbandonedRunError,
    ConflictError,
    InvalidInputError,
    LocalStorageError,
    MlbootError,
    NotFoundError,
    ServiceError,
)

if TYPE_CHECKING:
    from mlboot._auth import Credential
    from mlboot._backends._seam import Backend, LocalRunFolders
    from mlboot._environment import Environment

__all__ = [
    "LOCAL_LOCATION",
    "LocalBackend",
    "check_environment",
    "default_root",
    "requirement_problems",
]


LOCAL_LOCATION = "local"
"""The ``location`` of every local workspace."""
LOCAL_DATASTORE_KIND = "local"
"""``DatastoreInfo.kind`` of a local datastore: a folder."""
_DATASTORE_NAME = re.compile(r"[A-Za-z0-9_]{1,255}", re.ASCII)

# At most 250 characters: "<name>.json" must fit the 255-byte limit of a file name.
_NAME = re.compile(name_pattern(250) + r"\Z", re.ASCII)
_SPAWN_TIMEOUT_SECONDS = 60.0
_STALE_UNLOCKED_SECONDS = 3600.0
"""A folder in ``incoming/`` without its lock file is abandoned once this old."""
_MARKER_TEXT = (
    "This folder is an mlboot local workspace (mlboot.LocalBackend): its runs, logs and "
    "outputs.\nmlboot never includes a folder holding this file in a run's snapshot, on any "
    "backend.\n"
)
_MAX_EXPERIMENT_IN_ID = 200

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


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _on_disk(doing: str) -> Callable[[_Method], _Method]:
    """Raise a file error of the method as a LocalStorageError saying that ``doing`` failed.

    The one place where the local backend's file errors (a full disk, a read-only folder...)
    become mlboot's: every public method goes through it.  The error names the file the
    operating system named, else the workspace folder.
    """

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def translating(self: LocalBackend, *args: Any, **kwargs: Any) -> Any:
            with translated(doing, near=self.root):
                return method(self, *args, **kwargs)

        return cast("_Method", translating)

    return decorate


def _is_name(value: object) -> bool:
    """Whether ``value`` can name a file in the workspace folder (no separators, no ``..``)."""
    return isinstance(value, str) and _NAME.match(value) is not None


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


def _priority_from_json(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _compute_from_json(data: Mapping[str, Any]) -> ComputeInfo:
    return ComputeInfo(
        name=str(data["name"]),
        kind=str(data.get("kind", CLUSTER_KIND)),
        provisioning_state=str(data.get("provisioning_state", PROVISIONING_SUCCEEDED)),
        vm_size=data.get("vm_size"),
        # Earlier versions of mlboot wrote Azure ML's words, "Dedicated" and "LowPriority".
        vm_priority=_priority_from_json(data.get("vm_priority")),
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
        fix = "pass the workspace folder as a str or pathlib.Path, or None for .mlboot here"
        chosen = (
            Path(".mlboot")
            if root is None
            else Path(path_text("root", root, what="path to a folder", fix=fix))
        )
        # No file is touched here: a read-only or full folder is reported on first use.
        with translated("finding the current folder, to place the local workspace in"):
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

    @_on_disk("opening the local workspace folder")
    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        del credential, cloud, tenant_id  # a folder needs no login
        (self._root / "computes").mkdir(parents=True, exist_ok=True)
        (self._root / "runs").mkdir(exist_ok=True)
        self._mark_workspace()
        write_json(
            self._root / "workspace.json",
            {
                "subscription_id": ref.subscription_id,
                "resource_group": ref.resource_group,
                "workspace_name": ref.name,
                "location": LOCAL_LOCATION,
            },
        )
        return WorkspaceInfo(ref=ref, location=LOCAL_LOCATION)

    def _mark_workspace(self) -> None:
        """Write the file that keeps this folder out of every snapshot, if it is missing."""
        from mlboot._snapshot import LOCAL_WORKSPACE_MARKER  # noqa: PLC0415

        marker = self._root / LOCAL_WORKSPACE_MARKER
        if not marker.is_file():
            _write_text_atomically(marker, _MARKER_TEXT)

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
            return _compute_from_json(read_json(file))
        except FileNotFoundError:
            return None

    @_on_disk("reading a local compute target")
    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        del ref
        return self._read_compute(name)

    @_on_disk("creating a local compute target")
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
            kind=CLUSTER_KIND,
            # A local pool needs no machines: it is ready as soon as it exists.
            provisioning_state=PROVISIONING_SUCCEEDED,
            vm_size=spec.vm_size.upper(),  # as Azure ML (and the fake) spell it
            vm_priority=spec.vm_priority,
            min_nodes=spec.min_nodes,
            max_nodes=spec.max_nodes,
            idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            temporary.write_text(
                json.dumps(_compute_to_json(info), indent=2) + "\n", encoding="utf-8"
            )
            # link() fails when the name exists: create-if-absent, complete or not at all.
            os.link(temporary, file)
        except FileExistsError:
            raise ConflictError(
                f"compute target {name!r} already exists in the local workspace {self._root}"
            ) from None
        finally:
            temporary.unlink(missing_ok=True)
        (pool_dir(self._root, name) / "queue").mkdir(parents=True, exist_ok=True)
        return info

    @_on_disk("updating a local compute target")
    def update_compute_scale(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        del ref
        found = self._read_compute(name)
        if found is None:
            raise NotFoundError(
                f"compute target {name!r} does not exist in the local workspace {self._root}"
            )
        file = self._root / "computes" / f"{name.casefold()}.json"  # a valid name: found above
        data = _compute_to_json(found)
        data.update(
            min_nodes=spec.min_nodes,
            max_nodes=spec.max_nodes,
            idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
        )
        write_json(file, data)
        return _compute_from_json(data)

    # -- environments --------------------------------------------------------------------------

    def check_registered_environment(
        self, ref: WorkspaceRef, name: str, version: str | None
    ) -> None:
        """Accepted: a local run uses this interpreter whatever the environment (submit warns)."""
        del ref, name, version

    # -- data ----------------------------------------------------------------------------------

    def datastore_folder(self, name: str = DEFAULT_DATASTORE) -> Path:
        """The folder that is datastore ``name`` of this workspace (it may not exist yet)."""
        checked = check_name(
            "name",
            name,
            _DATASTORE_NAME,
            rule="a datastore name is 1 to 255 ASCII letters, digits or '_'",
            fix="pass e.g. 'workspaceblobstore' or 'training_data'",
        )
        return self._root / DATASTORES_FOLDER / checked

    @_on_disk("making a local datastore folder")
    def add_datastore(self, name: str) -> Path:
        """Make datastore ``name`` (its folder, if missing); return the folder.

        ``workspaceblobstore`` exists without this; any other datastore a run names must have
        been made first, by this call or by making the folder ``datastores/<name>/`` in the
        workspace folder, as a datastore of Azure ML must be registered first.
        """
        folder = self.datastore_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @_on_disk("looking up a local datastore")
    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        """``workspaceblobstore`` (the default) always; another when its folder exists."""
        del ref
        found = DEFAULT_DATASTORE if name is None else name
        if found == DEFAULT_DATASTORE:
            return DatastoreInfo(found, LOCAL_DATASTORE_KIND)
        try:
            info = self.datastore_folder(found).lstat()
        except FileNotFoundError:
            return None
        return DatastoreInfo(found, LOCAL_DATASTORE_KIND) if stat.S_ISDIR(info.st_mode) else None

    @_on_disk("looking for a path in a local datastore")
    def check_datastore_path(
        self, ref: WorkspaceRef, datastore: str, path: str, *, what: str
    ) -> None:
        """A datastore input's file or folder exists (checked again when the run is made)."""
        del ref
        check_datastore_path(self._root, datastore, path, what=what)

    @_on_disk("looking for a file in a local datastore")
    def datastore_file_exists(self, ref: WorkspaceRef, datastore: str, path: str) -> bool:
        del ref
        folder = self.datastore_folder(datastore)
        check_destination(folder, [path])  # a link on the way is refused, never followed
        try:
            return stat.S_ISREG((folder / path).lstat().st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    @_on_disk("copying files into a local datastore")
    def upload_to_datastore(
        self,
        ref: WorkspaceRef,
        datastore: str,
        target_path: str,
        files: Sequence[tuple[Path, str]],
    ) -> None:
        """Copy each file into the datastore's folder, never through a link."""
        del ref
        folder = self.datastore_folder(datastore)
        if datastore == DEFAULT_DATASTORE:
            folder.mkdir(parents=True, exist_ok=True)
        names = ["/".join(p for p in (target_path, relative) if p) for _, relative in files]
        check_destination(folder, names)
        for (local, _), name in zip(files, names, strict=True):
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_regular_file(local, target)

    def check_registered_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> None:
        """Refused: registered datasets live in Azure ML, which a local workspace never asks."""
        del ref
        source = f"azureml:{name}:{version}" if version else f"azureml:{name}@latest"
        raise InvalidInputError(
            "source",
            source,
            "the local backend has no registered datasets: they are kept by Azure ML, and a "
            "local workspace works without an account",
            "download the dataset's files once (e.g. with azureml-core's Dataset.download) and "
            "pass their folder as Input(<folder>), or put them in a local datastore folder and "
            "pass Input('azureml://datastores/<name>/paths/<path>')",
        )

    # -- runs ----------------------------------------------------------------------------------

    @_on_disk("submitting a local run")
    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        from mlboot._snapshot import materialize_snapshot  # noqa: PLC0415

        _refuse_distribution(request)
        compute = self._read_compute(request.compute)
        if compute is None:
            raise NotFoundError(
                f"compute target {request.compute!r} does not exist in the local workspace "
                f"{self._root}. Fix: create it first with mlboot.get_or_create_compute_target()."
            )
        with translated("marking the local workspace folder", near=self._root):
            self._mark_workspace()
        plan = request.snapshot_plan()  # decided above the seam, by submit_script
        check_environment(request.environment)
        self._remove_abandoned_preparations()
        # Prepared in incoming/, holding the run's lock, then renamed into runs/ whole: a
        # submitter killed meanwhile never leaves a folder without run.json among the runs.
        prepared, lock = self._new_run_folder(request.experiment)
        try:
            try:
                materialize_snapshot(plan, prepared.working_dir)
                final = RunFolder(self._root / "runs" / prepared.run_id)
                data = prepare_data(self._root, request, prepared.path, final.path, prepared.run_id)
                queue_entry = f"{time.time_ns():020d}_{prepared.run_id}"
                write_json(
                    prepared.request_file,
                    {
                        "run_id": prepared.run_id,
                        "experiment": request.experiment,
                        "compute": compute.name,
                        "script": request.script,
                        "arguments": data.substitute(request.arguments),
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
                        "submitted_at": now(),
                        **upload_records(data),
                    },
                )
                # Written while there is room: it is what records the run's end on a full disk.
                prepared.make_reserve()
                folder = final
                prepared.path.rename(folder.path)
            except BaseException as exc:
                remove_tree(prepared.path)
                if not isinstance(exc, OSError) or isinstance(exc, MlbootError):
                    raise
                raise storage_error(
                    exc, f"preparing local run {prepared.run_id}", near=prepared.path
                ) from exc
            queue = pool_dir(self._root, compute.name) / "queue"
            try:
                folder.write_status("NotStarted", submitted_at=now())
                queue.mkdir(parents=True, exist_ok=True)
                (queue / queue_entry).touch()
            except OSError:  # nobody knows of the run yet: leave nothing of it behind
                with contextlib.suppress(OSError):
                    (queue / queue_entry).unlink(missing_ok=True)
                shutil.rmtree(folder.path, ignore_errors=True)
                raise
            try:
                self._start_supervisor(
                    folder, lock, _script_environment(ref, request, folder, data)
                )
            except (OSError, ServiceError) as exc:
                (queue / queue_entry).unlink(missing_ok=True)
                folder.write_status("Failed", error=f"the run could not be started: {exc}")
                if isinstance(exc, ServiceError | LocalStorageError):
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

    def _new_run_folder(self, experiment: str) -> tuple[RunFolder, int]:
        """A new folder in ``incoming/`` and the descriptor holding its run's lock."""
        incoming = self._root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        (self._root / "runs").mkdir(exist_ok=True)
        # Azure ML's own form: <experiment>_<unix time>_<8 hex digits>.
        prefix = f"{experiment[:_MAX_EXPERIMENT_IN_ID]}_{int(time.time())}"
        while True:
            run_id = f"{prefix}_{secrets.token_hex(4)}"
            path = incoming / run_id
            if (self._root / "runs" / run_id).exists():  # pragma: no cover  (1 in 4 billion)
                continue
            try:
                path.mkdir()
            except FileExistsError:  # pragma: no cover  (one chance in four billion)
                continue
            folder = RunFolder(path)
            lock = try_lock(folder.lock_file)
            if lock is None:  # pragma: no cover  (a brand-new folder nobody else knows of)
                raise ServiceError(f"the new run folder {folder.path} is already in use")
            return folder, lock

    def _remove_abandoned_preparations(self) -> None:
        """Remove what submitters killed while preparing a run left in ``incoming/``."""
        try:
            entries = list(os.scandir(self._root / "incoming"))
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and _preparation_abandoned(Path(entry.path)):
                logger.info("Removing %s, left by a submitter that was killed", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)

    def run_ids(self) -> list[str]:
        """The ids of the runs in this workspace, sorted; a folder without ``run.json`` is none.

        Such a folder is left by a submitter killed while an earlier mlboot prepared it in
        ``runs/`` (or made by hand): it is skipped here, and :meth:`run_folder` or ``get_run``
        on its name raise :class:`~mlboot.exceptions.NotFoundError` saying it is abandoned.
        """
        try:
            entries = list(os.scandir(self._root / "runs"))
        except FileNotFoundError:
            return []
        return sorted(
            entry.name
            for entry in entries
            if _is_name(entry.name)
            and entry.is_dir(follow_symlinks=False)
            and RunFolder(Path(entry.path)).request_file.is_file()
        )

    def _start_supervisor(self, folder: RunFolder, lock: int, script_env: object) -> None:
        # -S: the supervisor needs the standard library and mlboot's own folder, not site-packages
        # (nor the .pth files a virtual environment runs at every start).
        package = str(Path(__file__).resolve().parents[2])  # src/mlboot, above _backends/local/
        env = dict(os.environ)
        env[RUN_ENV_VARIABLE] = json.dumps(script_env)
        with translated(f"starting local run {folder.run_id}", near=folder.path):
            supervisor_log = folder.supervisor_log_file.open("ab")
        with supervisor_log:
            first = subprocess.Popen(  # noqa: S603  (our own interpreter and our own code)
                [sys.executable, "-S", "-c", BOOTSTRAP, str(folder.path), str(lock), package],
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

    def _folder(self, run_id: str) -> RunFolder:
        if not _is_name(run_id):
            raise NotFoundError(
                f"run {run_id!r} was not found in the local workspace {self._root}: that is "
                "not a run id"
            )
        folder = RunFolder(self._root / "runs" / run_id)
        if not folder.request_file.is_file():
            if folder.path.is_dir() and not folder.path.is_symlink():
                raise AbandonedRunError(
                    f"{run_id!r} in the local workspace {self._root} is not a run: its folder "
                    f"{folder.path} has no run.json, so its submission never finished (the "
                    "submitting process was killed); it is abandoned. Fix: delete that folder, "
                    "and submit again.",
                    path=str(folder.path),
                )
            raise NotFoundError(
                f"run {run_id!r} was not found in the local workspace {self._root}. Fix: check "
                f"the id against the folders in {self._root / 'runs'}, and that this is the "
                "workspace folder the run was submitted to."
            )
        return folder

    @_on_disk("finding a local run")
    def run_folder(self, run_id: str) -> Path:
        """The folder of run ``run_id``: its log, metrics, ``outputs/`` and snapshot (``wd/``).

        Raises :class:`~mlboot.exceptions.NotFoundError` for a run this workspace does not have.
        """
        return self._folder(run_id).path

    def _status(self, folder: RunFolder) -> dict[str, Any]:
        record = folder.read_status()
        if record.get("status") not in TERMINAL_RUN_STATUSES:
            settle_if_abandoned(self._root, folder)
            record = folder.read_status()
        if record.get("status") not in TERMINAL_RUN_STATUSES and folder.cancel_marker.exists():
            # Asked to cancel, not yet ended: say so at once, as Azure ML does, whether or not
            # the supervisor has noticed the request yet.
            record = {**record, "status": CANCEL_REQUESTED}
        return record

    def _details(self, folder: RunFolder) -> RunDetails:
        record = self._status(folder)
        request = folder.read_request()
        return RunDetails(
            run_id=folder.run_id,
            experiment=str(request["experiment"]),
            status=status_of(record),
            portal_url=folder.path.as_uri(),
            error=record.get("error") if isinstance(record.get("error"), str) else None,
            start_time=record.get("start_time"),
            end_time=record.get("end_time"),
        )

    @_on_disk("reading the status of a local run")
    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        del ref
        return status_of(self._status(self._folder(run_id)))

    @_on_disk("reading a local run")
    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        del ref
        return self._details(self._folder(run_id))

    @_on_disk("listing the local runs")
    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        """Newest first (by submission); a folder without a readable run.json is skipped."""
        del ref
        submitted: list[tuple[str, str, RunFolder]] = []
        try:
            paths = list((self._root / "runs").iterdir())
        except FileNotFoundError:
            return []
        for path in paths:
            folder = RunFolder(path)
            try:
                request = folder.read_request()
            except (OSError, ServiceError):  # being created, or not a run's folder
                continue
            if experiment is None or request.get("experiment") == experiment:
                submitted.append((str(request.get("submitted_at", "")), folder.run_id, folder))
        found: list[RunDetails] = []
        for _, _, folder in sorted(submitted, key=lambda entry: entry[:2], reverse=True):
            try:
                details = self._details(folder)
            except (OSError, ServiceError) as exc:
                logger.warning("Skipping local run %s: %s", folder.run_id, exc)
                continue
            if status is None or details.status == status:
                found.append(details)
                if len(found) == limit:
                    break
        return found

    def pause_until_status_changes(
        self, ref: WorkspaceRef, run_id: str, status: str, seconds: float
    ) -> None:
        """Wait ``seconds``, or less: until run ``run_id``'s status is no longer ``status``.

        :meth:`mlboot.Run.wait` pauses through this between two status reads, so a local wait
        returns as soon as the run ends instead of at its next poll.  Never raises: where the
        run's folder cannot be watched, it simply waits ``seconds``.
        """
        del ref
        if not _is_name(run_id):
            self._clock.sleep(seconds)
            return
        folder = RunFolder(self._root / "runs" / run_id)
        wait_for_change(folder, status, seconds, sleep=self._clock.sleep)

    @_on_disk("reading the log of a local run")
    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        del ref
        folder = self._folder(run_id)
        try:
            return folder.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @_on_disk("reading the metrics of a local run")
    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        del ref
        return read_metrics(self._folder(run_id).path)

    @_on_disk("copying the outputs of a local run")
    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        """Copy the regular files of the run's ``outputs/`` to ``destination/outputs/``.

        Never follows a link, in the outputs or in ``destination`` (see
        :func:`mlboot._links.download_tree`): a link already in ``destination`` raises
        :class:`~mlboot.exceptions.LocalStorageError` naming it, and links or special files in
        the outputs are skipped with one :class:`~mlboot.exceptions.MlbootWarning`.
        """
        from mlboot._links import download_tree  # noqa: PLC0415  (only on download)

        del ref
        folder = self._folder(run_id)
        done = download_tree(folder.outputs, Path(destination), OUTPUTS_FOLDER)
        record = folder.read_status()
        left_out = record.get("outputs_left_out")
        skipped = [*done.skipped]
        if isinstance(left_out, list) and left_out:
            count = record.get("outputs_left_out_count", len(left_out))
            skipped.append(
                f"{count} {'entry' if count == 1 else 'entries'} left out when the outputs were "
                "collected: " + "; ".join(map(str, left_out))
            )
        if skipped:
            warn(
                f"run {run_id}: only regular files and folders are downloaded, and links are "
                f"never followed; not downloaded: {'; '.join(skipped)}"
            )
        return sorted(done.written)

    @_on_disk("listing the files of a local run")
    def list_run_files(self, ref: WorkspaceRef, run_id: str) -> list[str]:
        """The run's files in Azure ML's names (see :meth:`_run_files`), sorted."""
        del ref
        return sorted(self._run_files(self._folder(run_id)))

    @_on_disk("copying files of a local run")
    def download_run_files(
        self, ref: WorkspaceRef, run_id: str, destination: Path, names: Sequence[str]
    ) -> list[Path]:
        """Copy the named files of the run to ``destination/<name>``, never through a link.

        Each is copied from where the run keeps it (:meth:`_run_files`), opened folder by
        folder without following a link (:func:`mlboot._links.copy_files`); a name the run does
        not have, or no longer has, is left out.
        """
        from mlboot._links import check_destination, copy_files  # noqa: PLC0415  (on download)

        del ref
        files = self._run_files(self._folder(run_id))
        wanted = sorted(name for name in names if name in files)
        check_destination(Path(destination), wanted)
        by_source: dict[tuple[Path, tuple[str, ...]], list[str]] = {}
        for name in wanted:
            source, prefix, relative = files[name]
            by_source.setdefault((source, prefix), []).append(relative)
        written: list[Path] = []
        for (source, prefix), relatives in by_source.items():
            written.extend(copy_files(source, relatives, Path(destination), prefix).written)
        return sorted(written)

    def _run_files(self, folder: RunFolder) -> dict[str, tuple[Path, tuple[str, ...], str]]:
        """Each file of the run by its Azure ML name: (source folder, name prefix, its name there).

        ``outputs/`` (collected when the script ended, as Azure ML uploads them),
        ``user_logs/std_log.txt`` (the script's stdout and stderr, Azure ML's name for it),
        ``logs/`` (the script's ``./logs``, which Azure ML uploads as it is written) and the
        run's MLflow artifacts (``log_artifact``, ``upload_file``) by their own names, but for
        their ``outputs/`` mirror.  Only regular files, never below a link; a name two places
        would give keeps the first.
        """
        from mlboot._links import list_files  # noqa: PLC0415  (only when listing)

        files: dict[str, tuple[Path, tuple[str, ...], str]] = {}
        if folder.log_file.is_file() and not folder.log_file.is_symlink():
            files[_LOG_FILE_NAME] = (folder.path, ("user_logs",), folder.log_file.name)
        trees: list[tuple[Path, tuple[str, ...]]] = [
            (folder.outputs, (OUTPUTS_FOLDER,)),
            (folder.working_dir / _LOGS_FOLDER, (_LOGS_FOLDER,)),
        ]
        artifacts = artifacts_folder(folder.path)
        # Never a folder outside the workspace's (a tracking.json rewritten to point elsewhere).
        if artifacts.resolve().is_relative_to(self._root.resolve()):
            trees.append((artifacts, ()))
        for source, prefix in trees:
            for relative in list_files(source):
                name = "/".join((*prefix, relative))
                if not prefix and relative.startswith(f"{OUTPUTS_FOLDER}/"):
                    continue  # the mirror of the collected outputs, listed above
                files.setdefault(name, (source, prefix, relative))
        return files

    @_on_disk("canceling a local run")
    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        del ref
        folder = self._folder(run_id)
        if self._status(folder).get("status") in TERMINAL_RUN_STATUSES:
            return
        folder.cancel_marker.touch()
        # A live supervisor notices the marker within a poll; a dead one cannot, so settle now.
        settle_if_abandoned(self._root, folder, canceled=True)


_LOG_FILE_NAME = "user_logs/std_log.txt"
_LOGS_FOLDER = "logs"


def _unless_missing(error: OSError) -> None:
    """``os.walk``'s error handler: no folder (no outputs yet) is empty; any other error raises."""
    if not isinstance(error, FileNotFoundError):
        raise error


def _refuse_distribution(request: RunRequest) -> None:
    if request.node_count != 1 or request.distribution is not None:
        raise InvalidInputError(
            "node_count" if request.distribution is None else "distribution",
            request.node_count if request.distribution is None else request.distribution,
            "the local backend runs a script as one process on one node",
            "submit with node_count=1 and no distribution to run locally; distributed jobs "
            "need Azure ML",
        )


def _preparation_abandoned(path: Path) -> bool:
    """Whether a run folder in ``incoming/`` was left by a submitter that died."""
    import fcntl  # noqa: PLC0415  (POSIX only; LocalBackend refuses other systems up front)

    lock_file = RunFolder(path).lock_file
    try:
        # Never created here: a submitter that just made the folder is about to lock it.
        descriptor = os.open(lock_file, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > _STALE_UNLOCKED_SECONDS
        return False
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # its submitter is alive and still preparing it
        return False
    finally:
        os.close(descriptor)
    return True


def _write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see all of it or nothing."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _script_environment(
    ref: WorkspaceRef, request: RunRequest, folder: RunFolder, data: LocalData
) -> dict[str, object]:
    from mlboot._auth import revealed  # noqa: PLC0415  (only paid for on submit)

    variables: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
    if request.environment is not None:
        # Secrets reach the script through the supervisor's environment, never through a file.
        variables.update(revealed(request.environment.variables))
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
            **data.variables(),
        }
    )
    # MLflow's variables and azureml-core's run-context hook (mlboot._tracking_local).
    variables.update(
        tracking_variables(
            folder.path.parent.parent,
            folder.path,
            experiment=request.experiment,
            script=request.script,
            tags=dict(request.tags),
            pythonpath=variables.get("PYTHONPATH", os.environ.get("PYTHONPATH")),
        )
    )
    return {"set": variables, "unset": list(_AZUREML_CONTEXT_VARIABLES)}


# -- the environment check ----------------------------------------------------------------------


def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(name)
    except PackageNotFoundError:
        return None


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

    from mlboot._environment import pip_logical_lines  # noqa: PLC0415

    findings: list[tuple[str | None, str]] = []
    for _, logical in pip_logical_lines(lines):
        if logical.startswith("-"):
            continue
        line = re.sub(r"\s--hash[=\s]\S+", "", " " + logical).strip()
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
        warn(
            f"Environment {environment.name!r} does not match this interpreter "
            f"({sys.executable}), which local runs use: {'; '.join(problems)}. {fix}."
        )
    return problems


def _quoted(requirement: str) -> str:
    import shlex  # noqa: PLC0415

    return shlex.quote(requirement)


if TYPE_CHECKING:
    # A Protocol is not checked by inheritance: these lines make mypy prove that it is one.
    _backend: Backend = LocalBackend()
    _folders: LocalRunFolders = LocalBackend()
