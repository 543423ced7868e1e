"""The fake backend: :class:`FakeBackend`, :class:`FakeClock` and :func:`use_backend`.

Users import them from :mod:`mlboot.testing`, which documents them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

from mlboot._backends._choice import check_backend, choose_backend
from mlboot._backends._seam import (
    Backend,
    ComputeInfo,
    ComputeSpec,
    DatastoreInfo,
    Metrics,
    MetricValue,
    RunDetails,
    RunRequest,
    ServiceErrorDetail,
    WorkspaceInfo,
    WorkspaceRef,
)
from mlboot._links import check_destination, escaping_name
from mlboot._spellings import (
    CANCEL_REQUESTED,
    CLUSTER_KIND,
    DEDICATED,
    PROVISIONING_ENDED,
    TERMINAL_RUN_STATUSES,
)
from mlboot._validate import check_int
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from mlboot._auth import Credential

__all__ = ["Call", "FakeBackend", "FakeClock", "FaultKind", "use_backend"]

FaultKind: TypeAlias = Literal[
    "transient", "throttled", "network", "server", "not_found", "auth", "permission"
]
"""Named faults :meth:`FakeBackend.fail` knows how to raise."""

OPERATIONS = frozenset(
    {
        "get_workspace",
        "get_compute",
        "create_compute",
        "update_compute_scale",
        "check_registered_environment",
        "get_datastore",
        "datastore_file_exists",
        "upload_to_datastore",
        "check_registered_dataset",
        "submit_run",
        "get_run_status",
        "get_run_details",
        "list_runs",
        "get_run_logs",
        "get_run_metrics",
        "download_run_outputs",
        "list_run_files",
        "download_run_files",
        "cancel_run",
    }
)


class FakeClock:
    """A clock that only moves when told to, or when someone sleeps on it.

    ``sleeps`` records every requested sleep, so tests can check back-off and polling.
    """

    def __init__(self, start: float = 0.0) -> None:
        if isinstance(start, bool) or not isinstance(start, int | float):
            raise InvalidInputError("start", start, "it must be a number", "pass e.g. 0.0")
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"


@attrs.frozen
class Call:
    """One call a :class:`FakeBackend` received: the operation's name and its arguments."""

    operation: str
    arguments: Mapping[str, object] = attrs.field(eq=True, hash=False)


@attrs.define
class _Fault:
    error: BaseException
    remaining: int
    spared: int = 0


@attrs.define
class _Provisioning:
    seconds: float
    outcome: str
    errors: tuple[ServiceErrorDetail, ...]


@attrs.define
class _Compute:
    info: ComputeInfo
    ready_at: float | None = None
    final_state: str = "Succeeded"
    final_errors: tuple[ServiceErrorDetail, ...] = ()


@attrs.define
class _RunProgram:
    statuses: tuple[str, ...]
    logs: str
    metrics: Mapping[str, Sequence[MetricValue]]
    outputs: Mapping[str, bytes]
    error: str | None
    files: Mapping[str, bytes] = attrs.field(factory=dict)

    def run_files(self) -> dict[str, bytes]:
        """Every file of the run by its name: the log, the outputs, then ``files``."""
        found = {LOG_FILE_NAME: self.logs.encode("utf-8")} if self.logs else {}
        found.update({f"outputs/{name}": content for name, content in self.outputs.items()})
        found.update(self.files)
        return found


LOG_FILE_NAME = "user_logs/std_log.txt"
"""The name of a fake run's log among its files, as on Azure ML."""


@attrs.define
class _Run:
    details: RunDetails
    program: _RunProgram
    position: int = 0
    request: RunRequest | None = None


_FAULT_KINDS = ("transient", "throttled", "network", "server", "not_found", "auth", "permission")
_FAULT_FIX = f"pass one of {', '.join(_FAULT_KINDS)}, or an exception instance"


_PROGRAM_FIX = "see the mlboot.testing.FakeBackend documentation for the values it takes"


def _is_count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _is_pairs(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(
            isinstance(pair, tuple)
            and len(pair) == len(("code", "message"))
            and all(isinstance(part, str) for part in pair)
            for pair in value
        )
    )


def _is_map_of(value: object, kind: type | tuple[type, ...]) -> bool:
    return value is None or (
        isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, kind) for k, v in value.items())
    )


_PROGRAMMED: dict[str, Callable[[object], bool]] = {
    "name": lambda v: isinstance(v, str) and bool(v),
    "run_id": lambda v: isinstance(v, str) and bool(v),
    "experiment": lambda v: isinstance(v, str) and bool(v),
    "kind": lambda v: isinstance(v, str) and bool(v),
    "provisioning_state": lambda v: isinstance(v, str) and bool(v),
    "logs": lambda v: isinstance(v, str),
    "vm_size": lambda v: v is None or isinstance(v, str),
    "vm_priority": lambda v: v is None or isinstance(v, str),
    "error": lambda v: v is None or isinstance(v, str),
    "min_nodes": _is_count,
    "max_nodes": _is_count,
    "idle_seconds_before_scaledown": _is_count,
    "seconds": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
    "outcome": lambda v: isinstance(v, str) and v in PROVISIONING_ENDED,
    "workspace": lambda v: v is None or isinstance(v, WorkspaceRef),
    "statuses": lambda v: (
        isinstance(v, Sequence)
        and not isinstance(v, str)
        and len(v) > 0
        and all(isinstance(item, str) for item in v)
    ),
    "errors": _is_pairs,
    "provisioning_errors": _is_pairs,
    "metrics": lambda v: _is_map_of(v, Sequence),
    "outputs": lambda v: _is_map_of(v, bytes),
    "files": lambda v: _is_map_of(v, bytes) and not (isinstance(v, Mapping) and "" in v),
    "default": lambda v: isinstance(v, bool),
    "versions": lambda v: (
        isinstance(v, Sequence)
        and not isinstance(v, str)
        and len(v) > 0
        and all(isinstance(item, str) and item for item in v)
    ),
}


def _check_programmed(**values: object) -> None:
    """Check what a test programs into the fake, so a typo fails at once and says where."""
    for field, value in values.items():
        if not _PROGRAMMED[field](value):
            raise InvalidInputError(
                field, value, "the fake backend cannot be programmed with it", _PROGRAM_FIX
            )


def _program(
    *,
    statuses: Sequence[str],
    logs: str,
    metrics: Mapping[str, Sequence[MetricValue]] | None,
    outputs: Mapping[str, bytes] | None,
    error: str | None,
    files: Mapping[str, bytes] | None,
) -> _RunProgram:
    """What a run will do, checked (see :meth:`FakeBackend.program_run`)."""
    _check_programmed(
        statuses=statuses, logs=logs, metrics=metrics, outputs=outputs, error=error, files=files
    )
    return _RunProgram(
        tuple(statuses), logs, dict(metrics or {}), dict(outputs or {}), error, dict(files or {})
    )


def _check_operation(operation: object) -> None:
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise InvalidInputError(
            "operation",
            operation,
            "unknown operation: it must be one of the backend's operations: "
            + ", ".join(sorted(OPERATIONS)),
            "pass one of those names",
        )


def _fault(kind: FaultKind, operation: str) -> BaseException:
    what = f"fake fault injected into {operation}"
    faults: dict[str, BaseException] = {
        "transient": ServiceError(f"{what}: HTTP 503", status=503, transient=True),
        "server": ServiceError(f"{what}: HTTP 500", status=500, transient=True),
        "throttled": ThrottledError(f"{what}: HTTP 429", retry_after=1.0),
        "network": NetworkError(f"{what}: connection reset"),
        "not_found": NotFoundError(f"{what}: not found"),
        "auth": AuthenticationError(f"{what}: HTTP 401, the token was rejected"),
        "permission": PermissionDeniedError(f"{what}: HTTP 403, not allowed"),
    }
    return faults[kind]


_DEFAULT_STATUSES = ("Queued", "Running", "Finalizing", "Completed")


class FakeBackend:
    """An in-memory Azure ML for tests: stateful, recorded, programmable, never sleeping.

    A plain ``FakeBackend()`` answers for any workspace it is asked about, so
    ``workspace_from_config(path, backend=FakeBackend())`` works with any valid config.
    """

    def __init__(self, *, clock: FakeClock | None = None, location: str = "westeurope") -> None:
        if clock is not None and not isinstance(clock, FakeClock):
            raise InvalidInputError(
                "clock", clock, "it must be a FakeClock or None", "pass mlboot.testing.FakeClock()"
            )
        given: object = location  # checked at run time, whatever the annotation says
        if not isinstance(given, str) or not given:
            raise InvalidInputError(
                "location", location, "it must be a non-empty str", "pass e.g. 'westeurope'"
            )
        self._clock = clock if clock is not None else FakeClock()
        self.location = location
        self.calls: list[Call] = []
        self._lock = threading.RLock()
        self._missing_workspaces: set[str] = set()
        self._faults: dict[str, list[_Fault]] = {}
        self._hooks: dict[str, list[Callable[[Call], None]]] = {}
        self._computes: dict[tuple[WorkspaceRef, str], _Compute] = {}
        self._provisioning: dict[str, _Provisioning] = {}
        self._run_programs: list[_RunProgram] = []
        self._runs: dict[str, _Run] = {}
        self._run_counter = 0
        self._datastores: dict[str, dict[str, bytes]] = {DEFAULT_DATASTORE: {}}
        self._datastore_kinds: dict[str, str] = {DEFAULT_DATASTORE: "AzureBlob"}
        self._default_datastore = DEFAULT_DATASTORE
        self._datasets: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return (
            f"FakeBackend(calls={len(self.calls)}, computes={len(self._computes)}, "
            f"runs={len(self._runs)})"
        )

    @property
    def clock(self) -> FakeClock:
        """The fake clock every wait against this backend is measured on."""
        return self._clock

    # -- programming -------------------------------------------------------------------------

    def mark_workspace_missing(self, name: str) -> None:
        """Make lookups of the workspace called ``name`` raise ``WorkspaceNotFoundError``."""
        _check_programmed(name=name)
        self._missing_workspaces.add(name)

    def fail(
        self,
        operation: str,
        error: FaultKind | BaseException,
        *,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Make ``times`` calls of ``operation`` raise ``error`` before doing anything.

        ``error`` is a :data:`FaultKind` name or any exception instance.  The faults hit the
        next calls, or the calls after the next ``after`` ones: ``fail("get_compute",
        "transient", after=1)`` spares the lookup of ``get_or_create_compute_target`` and fails
        its first poll of the provisioning state.
        """
        _check_operation(operation)
        check_int("times", times, minimum=1, fix="pass how many calls should fail, e.g. 1")
        check_int("after", after, minimum=0, fix="pass how many calls to spare first, e.g. 0")
        if isinstance(error, str) and error not in _FAULT_KINDS:
            raise InvalidInputError(
                "error", error, f"it must be one of {', '.join(_FAULT_KINDS)}", _FAULT_FIX
            )
        if not isinstance(error, str | BaseException):
            raise InvalidInputError(
                "error", error, "it must be a fault name or an exception", _FAULT_FIX
            )
        exc = _fault(error, operation) if isinstance(error, str) else error
        self._faults.setdefault(operation, []).append(_Fault(exc, times, spared=after))

    def before(self, operation: str, hook: Callable[[Call], None]) -> None:
        """Run ``hook`` at the start of every call of ``operation`` (e.g. to simulate a race)."""
        _check_operation(operation)
        if not callable(hook):
            raise InvalidInputError(
                "hook", hook, "it must be callable", "pass a function of one Call"
            )
        self._hooks.setdefault(operation, []).append(hook)

    def add_compute(
        self,
        name: str,
        *,
        workspace: WorkspaceRef | None = None,
        kind: str = CLUSTER_KIND,
        vm_size: str | None = "STANDARD_DS3_V2",
        vm_priority: str | None = DEDICATED,
        min_nodes: int | None = 0,
        max_nodes: int | None = 4,
        idle_seconds_before_scaledown: int | None = 1800,
        provisioning_state: str = "Succeeded",
        provisioning_errors: Sequence[tuple[str, str]] = (),
    ) -> ComputeInfo:
        """Put an existing compute target in place (in every workspace unless one is named)."""
        _check_programmed(
            name=name,
            workspace=workspace,
            kind=kind,
            vm_size=vm_size,
            vm_priority=vm_priority,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            provisioning_state=provisioning_state,
            provisioning_errors=provisioning_errors,
        )
        info = ComputeInfo(
            name=name,
            kind=kind,
            provisioning_state=provisioning_state,
            vm_size=vm_size,
            vm_priority=vm_priority,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            provisioning_errors=tuple(ServiceErrorDetail(c, m) for c, m in provisioning_errors),
        )
        with self._lock:
            self._computes[(workspace or _ANY_WORKSPACE, name)] = _Compute(info)
        return info

    def program_provisioning(
        self,
        name: str,
        *,
        seconds: float = 0.0,
        outcome: Literal["Succeeded", "Failed", "Canceled"] = "Succeeded",
        errors: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Say how creating the cluster ``name`` goes: how long (fake seconds) and how it ends."""
        _check_programmed(name=name, seconds=seconds, outcome=outcome, errors=errors)
        self._provisioning[name] = _Provisioning(
            seconds, outcome, tuple(ServiceErrorDetail(c, m) for c, m in errors)
        )

    def program_run(
        self,
        *,
        statuses: Sequence[str] = _DEFAULT_STATUSES,
        logs: str = "",
        metrics: Mapping[str, Sequence[MetricValue]] | None = None,
        outputs: Mapping[str, bytes] | None = None,
        error: str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Program the next submitted run: each status poll moves one step along ``statuses``.

        The last status repeats.  ``outputs`` maps paths below ``outputs/`` to their bytes.
        ``files`` maps the full names of other files of the run (``"logs/train.csv"``) to
        their bytes; with the outputs and the log (``user_logs/std_log.txt``, when ``logs`` is
        not empty) they are the run's files, for :meth:`mlboot.Run.file_names` and
        :meth:`mlboot.Run.download_files`.  A name is kept as it is given, so a test can
        give one that leads out of a folder (``"../x"``) and see mlboot refuse it.
        """
        if isinstance(statuses, str) or not statuses:
            raise InvalidInputError(
                "statuses", statuses, "it must name at least one status", "pass e.g. ['Completed']"
            )
        self._run_programs.append(
            _program(
                statuses=statuses,
                logs=logs,
                metrics=metrics,
                outputs=outputs,
                error=error,
                files=files,
            )
        )

    def add_run(
        self,
        run_id: str,
        *,
        experiment: str = "experiment",
        statuses: Sequence[str] = ("Running", "Completed"),
        logs: str = "",
        metrics: Mapping[str, Sequence[MetricValue]] | None = None,
        outputs: Mapping[str, bytes] | None = None,
        error: str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Put a run in place that was submitted elsewhere (to test reattaching).

        Its arguments are :meth:`program_run`'s.
        """
        _check_programmed(run_id=run_id, experiment=experiment)
        program = _program(
            statuses=statuses, logs=logs, metrics=metrics, outputs=outputs, error=error, files=files
        )
        with self._lock:
            self._runs[run_id] = _Run(
                self._details(run_id, experiment, program.statuses[0], program), program
            )

    def add_datastore(
        self,
        name: str,
        *,
        files: Mapping[str, bytes] | None = None,
        kind: str = "AzureBlob",
        default: bool = False,
    ) -> None:
        """Put a datastore in place, holding ``files`` (POSIX path from its root to bytes).

        ``workspaceblobstore`` exists from the start (empty) and is the default datastore;
        ``default=True`` makes ``name`` the default instead.  Adding a name again replaces it.
        """
        _check_programmed(name=name, files=files, kind=kind, default=default)
        with self._lock:
            self._datastores[name] = dict(files or {})
            self._datastore_kinds[name] = kind
            if default:
                self._default_datastore = name

    def datastore_files(self, name: str) -> dict[str, bytes]:
        """The files in datastore ``name`` now (uploads included): path to bytes."""
        with self._lock:
            if name not in self._datastores:
                raise InvalidInputError(
                    "name", name, "the fake has no such datastore", "add it with add_datastore"
                )
            return dict(self._datastores[name])

    def add_dataset(self, name: str, *, versions: Sequence[str] = ("1",)) -> None:
        """Register a dataset called ``name`` with ``versions`` (the last is the latest)."""
        _check_programmed(name=name, versions=versions)
        with self._lock:
            self._datasets[name] = tuple(versions)

    # -- inspection ----------------------------------------------------------------------------

    def calls_to(self, operation: str) -> list[Call]:
        """The recorded calls of one operation, in order."""
        return [call for call in self.calls if call.operation == operation]

    @property
    def submitted(self) -> list[RunRequest]:
        """Every run request received, in order.

        A request's ``inputs`` and ``outputs`` are the run's data as a service would get it
        (:class:`~mlboot.backend.DataInput`, :class:`~mlboot.backend.DataOutput`): a local input
        already uploaded to the default datastore (see :meth:`datastore_files`), placeholders
        ``${{inputs.<name>}}`` left in ``arguments``.
        """
        return [run.request for run in self._runs.values() if run.request is not None]

    def request_of(self, run_id: str) -> RunRequest:
        """The request run ``run_id`` was submitted with; ``NotFoundError`` if it was not."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.request is None:
            raise NotFoundError(f"run {run_id!r} was not submitted to this fake")
        return run.request

    # -- the Backend protocol ----------------------------------------------------------------

    def _enter(self, operation: str, **arguments: object) -> None:
        call = Call(operation, arguments)
        with self._lock:
            self.calls.append(call)
        for hook in self._hooks.get(operation, ()):
            hook(call)
        with self._lock:
            pending = self._faults.get(operation, [])
            if pending and pending[0].spared > 0:
                pending[0].spared -= 1
            elif pending:
                fault = pending[0]
                fault.remaining -= 1
                if fault.remaining == 0:
                    pending.pop(0)
                raise fault.error

    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        self._enter(
            "get_workspace", ref=ref, credential=credential, cloud=cloud, tenant_id=tenant_id
        )
        if ref.name in self._missing_workspaces:
            raise WorkspaceNotFoundError(
                f"{ref} was not found. Fix: check the names in config.json, and that your "
                "login can see that subscription."
            )
        return WorkspaceInfo(ref=ref, location=self.location)

    def _find_compute(self, ref: WorkspaceRef, name: str) -> _Compute | None:
        return self._computes.get((ref, name)) or self._computes.get((_ANY_WORKSPACE, name))

    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        self._enter("get_compute", ref=ref, name=name)
        with self._lock:
            found = self._find_compute(ref, name)
            return None if found is None else self._refreshed(found)

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        self._enter("create_compute", ref=ref, name=name, spec=spec)
        with self._lock:
            if self._find_compute(ref, name) is not None:
                raise ConflictError(f"compute target {name!r} already exists in {ref} (HTTP 409)")
            program = self._provisioning.get(name, _Provisioning(0.0, "Succeeded", ()))
            info = ComputeInfo(
                name=name,
                kind=CLUSTER_KIND,
                provisioning_state="Creating",
                vm_size=spec.vm_size.upper(),  # as Azure ML spells it
                vm_priority=spec.vm_priority,
                min_nodes=spec.min_nodes,
                max_nodes=spec.max_nodes,
                idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
            )
            self._computes[(ref, name)] = _Compute(
                info,
                ready_at=self._clock.monotonic() + program.seconds,
                final_state=program.outcome,
                final_errors=program.errors,
            )
            return info

    def _refreshed(self, compute: _Compute) -> ComputeInfo:
        if compute.ready_at is not None and self._clock.monotonic() >= compute.ready_at:
            compute.info = attrs.evolve(
                compute.info,
                provisioning_state=compute.final_state,
                provisioning_errors=compute.final_errors,
            )
            compute.ready_at = None
        return compute.info

    def update_compute_scale(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        self._enter("update_compute_scale", ref=ref, name=name, spec=spec)
        with self._lock:
            found = self._find_compute(ref, name)
            if found is None:
                raise NotFoundError(f"compute target {name!r} does not exist in {ref}")
            found.info = attrs.evolve(
                found.info,
                min_nodes=spec.min_nodes,
                max_nodes=spec.max_nodes,
                idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
            )
            return found.info

    def check_registered_environment(
        self, ref: WorkspaceRef, name: str, version: str | None
    ) -> None:
        """Every registered environment exists; ``fail(..., "not_found")`` makes one missing."""
        self._enter("check_registered_environment", ref=ref, name=name, version=version)

    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        """A datastore added with :meth:`add_datastore`, or ``workspaceblobstore``."""
        self._enter("get_datastore", ref=ref, name=name)
        with self._lock:
            found = self._default_datastore if name is None else name
            if found not in self._datastores:
                return None
            return DatastoreInfo(found, self._datastore_kinds[found])

    def datastore_file_exists(self, ref: WorkspaceRef, datastore: str, path: str) -> bool:
        self._enter("datastore_file_exists", ref=ref, datastore=datastore, path=path)
        with self._lock:
            return path in self._datastores.get(datastore, {})

    def upload_to_datastore(
        self,
        ref: WorkspaceRef,
        datastore: str,
        target_path: str,
        files: Sequence[tuple[Path, str]],
    ) -> None:
        """Keep the bytes of each file under ``target_path`` in the datastore (in memory)."""
        self._enter(
            "upload_to_datastore",
            ref=ref,
            datastore=datastore,
            target_path=target_path,
            files=tuple(files),
        )
        contents = {
            "/".join(p for p in (target_path, relative) if p): local.read_bytes()
            for local, relative in files
        }
        with self._lock:
            store = self._datastores.get(datastore)
            if store is None:
                raise NotFoundError(f"datastore {datastore!r} was not found in {ref}")
            store.update(contents)

    def check_registered_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> None:
        """Datasets added with :meth:`add_dataset` exist; any other is ``NotFoundError``."""
        self._enter("check_registered_dataset", ref=ref, name=name, version=version)
        with self._lock:
            versions = self._datasets.get(name)
        if versions is None or (version is not None and version not in versions):
            which = f"version {version}" if version else "any version"
            raise NotFoundError(
                f"registered dataset {name!r} ({which}) was not found in {ref}. Fix: add it "
                f"first with FakeBackend.add_dataset({name!r}), or correct the name and version."
            )

    def _details(
        self, run_id: str, experiment: str, status: str, program: _RunProgram
    ) -> RunDetails:
        return RunDetails(
            run_id=run_id,
            experiment=experiment,
            status=status,
            portal_url=f"https://ml.azure.com/runs/{run_id}?fake=1",
            error=program.error if status == "Failed" else None,
        )

    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        self._enter("submit_run", ref=ref, request=request)
        with self._lock:
            program = (
                self._run_programs.pop(0)
                if self._run_programs
                else _RunProgram(_DEFAULT_STATUSES, "", {}, {}, None)
            )
            self._run_counter += 1
            run_id = (
                f"{request.experiment}_{1_700_000_000 + self._run_counter}_{self._run_counter:08x}"
            )
            details = self._details(run_id, request.experiment, "NotStarted", program)
            self._runs[run_id] = _Run(details, program, position=-1, request=request)
            return details

    def _run(self, ref: WorkspaceRef, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id!r} was not found in {ref}")
        return run

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        self._enter("get_run_status", ref=ref, run_id=run_id)
        with self._lock:
            run = self._run(ref, run_id)
            run.position = min(run.position + 1, len(run.program.statuses) - 1)
            status = run.program.statuses[run.position]
            run.details = self._details(run_id, run.details.experiment, status, run.program)
            return status

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        self._enter("get_run_details", ref=ref, run_id=run_id)
        with self._lock:
            return self._run(ref, run_id).details

    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        """The runs added or submitted, newest (the last one) first; listing moves no status."""
        self._enter("list_runs", ref=ref, experiment=experiment, status=status, limit=limit)
        with self._lock:
            found = [
                run.details
                for run in reversed(self._runs.values())
                if (experiment is None or run.details.experiment == experiment)
                and (status is None or run.details.status == status)
            ]
        return found[:limit]

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        self._enter("get_run_logs", ref=ref, run_id=run_id)
        with self._lock:
            return self._run(ref, run_id).program.logs

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        self._enter("get_run_metrics", ref=ref, run_id=run_id)
        with self._lock:
            return {
                name: list(values)
                for name, values in self._run(ref, run_id).program.metrics.items()
            }

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        self._enter("download_run_outputs", ref=ref, run_id=run_id, destination=destination)
        with self._lock:
            outputs = dict(self._run(ref, run_id).program.outputs)
        # Like every backend: never write through a link already in the destination.
        check_destination(destination, [f"outputs/{relative}" for relative in outputs])
        written: list[Path] = []
        for relative, content in sorted(outputs.items()):
            target = destination / "outputs" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            written.append(target)
        return written

    def list_run_files(self, ref: WorkspaceRef, run_id: str) -> list[str]:
        """The run's files (its log, outputs and programmed ``files``), sorted by name."""
        self._enter("list_run_files", ref=ref, run_id=run_id)
        with self._lock:
            return sorted(self._run(ref, run_id).program.run_files())

    def download_run_files(
        self, ref: WorkspaceRef, run_id: str, destination: Path, names: Sequence[str]
    ) -> list[Path]:
        """Write the named files; each call is recorded (``calls_to("download_run_files")``).

        A name the run does not have is left out, as a file gone since the listing would be.
        """
        self._enter(
            "download_run_files",
            ref=ref,
            run_id=run_id,
            destination=destination,
            names=tuple(names),
        )
        with self._lock:
            files = self._run(ref, run_id).program.run_files()
        wanted = sorted(name for name in names if name in files)
        # Like every backend: never write through a link, never outside the destination.
        check_destination(destination, wanted)
        written: list[Path] = []
        for name in wanted:
            if escaping_name(name) is not None:  # pragma: no cover  (refused above the seam)
                continue
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[name])
            written.append(target)
        return written

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        self._enter("cancel_run", ref=ref, run_id=run_id)
        with self._lock:
            run = self._run(ref, run_id)
            if run.details.status in TERMINAL_RUN_STATUSES:
                return
            run.program = attrs.evolve(
                run.program,
                statuses=(*run.program.statuses[: run.position + 1], CANCEL_REQUESTED, "Canceled"),
            )
            run.details = self._details(
                run_id, run.details.experiment, CANCEL_REQUESTED, run.program
            )


_ANY_WORKSPACE = WorkspaceRef("*", "*", "*")
DEFAULT_DATASTORE = "workspaceblobstore"
"""The default datastore every workspace has (Azure ML makes it with the workspace)."""


@contextmanager
def use_backend(backend: Backend) -> Iterator[Backend]:
    """Make ``workspace_from_config()`` without ``backend=`` use ``backend`` inside the block.

    It replaces only the azureml-core default, as the ``mlboot_offline`` fixture does: a
    ``backend=`` argument, or a config (``mlboot_backend``, ``MLBOOT_BACKEND``) that chooses
    another of mlboot's backends, keeps its choice.  The previous default comes back when the
    block ends, also on an exception; blocks nest.  The choice is process-wide, so threads the
    code under test starts see it too; tests that choose different backends at the same time
    should run in separate processes.  It reaches code in this process only.

    >>> from mlboot.testing import FakeBackend, use_backend
    >>> with use_backend(FakeBackend()) as fake:
    ...     pass
    """
    check_backend("backend", backend)
    with choose_backend(backend) as chosen:
        yield chosen
