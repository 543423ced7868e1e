"""The seam between mlboot's decisions and the service: :class:`Backend` and its records.

A backend only moves requests and answers.  Validation, get-or-create, comparisons, waiting and
time-outs all live above it, in the public functions.  Backends raise only
:mod:`mlboot.exceptions` errors: "not found" of a compute target is an answer (``None``), not an
error, so that a failed lookup can never be mistaken for a missing cluster.  What crosses the
seam is said in mlboot's words (``mlboot._spellings``), which each backend maps to its
service's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

import attrs

from mlboot.exceptions import SdkObjectUnavailableError

if TYPE_CHECKING:
    from mlboot._auth import Credential
    from mlboot._clock import Clock
    from mlboot._distribution import Distribution
    from mlboot._environment import Environment
    from mlboot._snapshot import SnapshotPlan

MetricValue: TypeAlias = "float | int | str"
"""One logged value of a metric."""

Metrics: TypeAlias = Mapping[str, Sequence[MetricValue]]
"""Metric name to every value logged under it, in logging order."""


@attrs.frozen
class WorkspaceRef:
    """Which workspace: the three names that identify it in Azure Resource Manager."""

    subscription_id: str
    resource_group: str
    name: str

    def __str__(self) -> str:
        return (
            f"workspace {self.name!r} (resource group {self.resource_group!r}, "
            f"subscription {self.subscription_id})"
        )


@attrs.frozen
class WorkspaceInfo:
    """What the service says about a workspace that exists."""

    ref: WorkspaceRef
    location: str


@attrs.frozen
class ServiceErrorDetail:
    """One error the service reported, as its code and message (e.g. a quota error)."""

    code: str
    message: str


@attrs.frozen
class ComputeSpec:
    """The cluster a caller asks for, checked; ``vm_priority`` is ``"dedicated"`` or
    ``"lowpriority"``."""

    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds_before_scaledown: int


@attrs.frozen
class ComputeInfo:
    """An existing compute target as the service describes it.

    ``kind`` is ``"AmlCompute"`` for a cluster, whatever the service calls it; other kinds
    keep the service's name (``ComputeInstance``, ``VirtualMachine``, ``Kubernetes``...).  Scale
    fields are ``None`` for kinds that have none; ``vm_priority`` is ``"dedicated"`` or
    ``"lowpriority"`` (mlboot also reads other spellings case-insensitively).
    ``provisioning_state`` is one of Unknown, Updating, Creating, Deleting, Succeeded, Failed,
    Canceled; ``provisioning_errors`` are what the service reports of provisioning (a quota
    error), read with the state, since a wait polls both.
    """

    name: str
    kind: str
    provisioning_state: str
    vm_size: str | None = None
    vm_priority: str | None = None
    min_nodes: int | None = None
    max_nodes: int | None = None
    idle_seconds_before_scaledown: int | None = None
    provisioning_errors: tuple[ServiceErrorDetail, ...] = ()


@attrs.frozen
class DatastoreInfo:
    """A datastore of the workspace as the service describes it.

    ``kind`` is the service's word for its storage (``"AzureBlob"``, ``"AzureFile"``,
    ``"AzureDataLakeGen2"``...; ``"local"`` for a folder of the local backend).  Only what a
    decision above the seam needs is here: that the datastore exists (a name in an
    ``azureml://datastores/<name>/...`` URI is checked before the submit, since neither SDK
    checks it and the run would fail on the compute) and its name, which for the default
    datastore is not known until it is asked for.
    """

    name: str
    kind: str


@attrs.frozen
class DataInput:
    """One data input of a run, in mlboot's words; checked and resolved above the seam.

    ``name`` is the input's name (``[A-Za-z_][A-Za-z0-9_]{0,254}``): the script finds the path
    on the compute in the environment variable ``MLBOOT_INPUT_<name>``, and an argument's
    ``${{inputs.<name>}}`` becomes that path.  ``mode`` is ``"mount"`` (read on demand, never
    written through) or ``"download"`` (copied to the compute before the script starts).

    ``kind`` says which of the other fields are set:

    - ``"datastore"``: ``datastore`` (a name the workspace has) and ``path`` in it, POSIX, with
      no leading ``/`` (``""`` is the datastore's root); a trailing ``/``, as the user wrote it,
      says it is a folder, and is sent on.  A local file or folder reaches the backend as this
      kind, after mlboot uploaded it (content addressed) to the default datastore, a folder's
      path ending in ``/``: a backend never sees a local input.
    - ``"url"``: ``url``, an ``http(s)://`` address, ``mode`` always ``"download"``.
    - ``"dataset"``: a registered dataset (data asset) ``dataset`` at ``version``, ``None`` for
      the latest when the run is submitted; looked up first with
      :meth:`Backend.check_registered_dataset`.

    azureml-core sends a ``"datastore"`` input as a data reference (``$AZUREML_DATAREFERENCE_``),
    the others as ``run_config.data``; azure-ai-ml as a job input of type ``uri_folder`` or
    ``uri_file`` at the same ``azureml://`` URI, under the same name.
    """

    name: str
    mode: str
    kind: str
    datastore: str | None = None
    path: str | None = None
    url: str | None = None
    dataset: str | None = None
    version: str | None = None


DEFAULT_OUTPUT_PATH = "dataset/{run-id}/{output-name}"
"""Where an output without a destination goes in the default datastore (azureml-core's place)."""


@attrs.frozen
class DataOutput:
    """One data output of a run, in mlboot's words; checked above the seam.

    ``name`` as for :class:`DataInput` (``MLBOOT_OUTPUT_<name>``, ``${{outputs.<name>}}``).
    ``mode`` is ``"upload"`` (the script writes to a local folder, copied when it ends) or
    ``"mount"`` (written in place as the script goes).  ``datastore`` and ``path`` are where the
    files land; both ``None`` for ``dataset/{run-id}/{output-name}`` in the default datastore
    (azureml-core's service's own place for one; the azure-ai-ml backend sends the same path
    rather than the job's own output folder, so the two agree).  ``path`` may hold ``{run-id}``
    and ``{output-name}``, which each backend expands, or passes to its service to expand
    (azureml-core sends them verbatim; the azure-ai-ml backend names the job itself, so it
    writes the name in).
    """

    name: str
    mode: str
    datastore: str | None = None
    path: str | None = None


@attrs.frozen
class RunRequest:
    """Everything needed to submit one script run; validated before it is built.

    ``snapshot`` is the plan of the files the run gets (:func:`mlboot.plan_snapshot` of
    ``source_directory``), decided once by :func:`mlboot.submit_script`, which checked it (the
    limits, the links, the script inside it): a backend uploads or copies exactly those files
    and never plans again.  A request built by hand may leave it out; :meth:`snapshot_plan`
    then plans it, by the same rules.

    ``inputs`` and ``outputs`` are the run's data, resolved above the seam (a local input is
    already uploaded, every datastore name checked).  ``arguments`` stay strings: an input or
    output given among them is the text ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` there
    (the azure-ai-ml command syntax, which a v2 backend sends as it is), and each backend puts
    its own form in its place (the local backend: the real path; azureml-core: its data
    reference's ``$AZUREML_DATAREFERENCE_<n>`` or dataset placeholders) and sets the
    ``MLBOOT_INPUT_<name>`` / ``MLBOOT_OUTPUT_<name>`` environment variables.
    """

    experiment: str
    source_directory: Path
    script: str
    compute: str
    arguments: tuple[str, ...] = ()
    environment: Environment | None = None
    distribution: Distribution | None = None
    node_count: int = 1
    tags: Mapping[str, str] = attrs.field(factory=dict)
    max_run_duration_seconds: int | None = None
    snapshot: SnapshotPlan | None = attrs.field(default=None, kw_only=True, eq=False)
    inputs: tuple[DataInput, ...] = attrs.field(default=(), kw_only=True)
    outputs: tuple[DataOutput, ...] = attrs.field(default=(), kw_only=True)

    def snapshot_plan(self) -> SnapshotPlan:
        """The files to send: ``snapshot``, or for a request built without one, planned now."""
        if self.snapshot is not None:
            return self.snapshot
        from mlboot._snapshot import plan_snapshot  # noqa: PLC0415  (only for hand-built requests)

        return plan_snapshot(self.source_directory)


@attrs.frozen
class RunDetails:
    """A run as the service describes it.

    ``status`` is a :class:`~mlboot.RunStatus` value (the backend maps its service's words; a
    status mlboot does not know passes as it is and reads as ``Unknown``).
    """

    run_id: str
    experiment: str
    status: str
    portal_url: str | None = None
    error: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class Backend(Protocol):
    """One narrow method per remote operation mlboot needs; nothing shaped after one SDK.

    Implementations: the azureml-core adapter (the default), :class:`mlboot.LocalBackend` and
    :class:`mlboot.testing.FakeBackend`.  What a backend does not decide: whether arguments are
    valid, whether to retry (beyond what its SDK does by itself), how long to wait, whether a
    cluster matches, which files a snapshot holds, what a status means.  Those are mlboot's
    decisions, taken once in the public functions above this seam, so every backend behaves
    alike and a new one (azure-ai-ml, SDK v2) only translates.  What crosses the seam is said
    in mlboot's words (``mlboot._spellings``): each backend maps its service's words to them.
    A request is a record (:class:`RunRequest`), so a run's data inputs and outputs are fields
    of it (:class:`DataInput`, :class:`DataOutput`), not a new shape of :meth:`submit_run`; the
    data methods below only look things up and upload, for the checks and the content-addressed
    upload that mlboot does above the seam.

    Every method raises only :mod:`mlboot.exceptions` errors:
    :class:`~mlboot.exceptions.AuthenticationError`,
    :class:`~mlboot.exceptions.PermissionDeniedError`, :class:`~mlboot.exceptions.ServiceError`
    (with ``transient`` set for throttling, server and network failures, which the public
    functions retry), :class:`~mlboot.exceptions.NotFoundError` for a missing workspace or run.
    SDK objects are not part of the seam: a backend that has them offers them through the
    optional :class:`AzureMLObjects` capability.
    """

    @property
    def clock(self) -> Clock:
        """The clock that waits against this backend are measured with.

        Exists so that every wait, back-off and time-out above the seam runs on the backend's
        time: real time for Azure ML and local processes, a :class:`~mlboot.testing.FakeClock`
        that never sleeps for the fake.
        """
        ...

    # Workspace
    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        """Look the workspace up; raise :class:`~mlboot.exceptions.WorkspaceNotFoundError`.

        Exists because a workspace must answer before anything else is asked of it: the first
        call signs in, so a wrong name or a refused login fails here, at once, and not at the
        first compute lookup.  ``credential=None`` means the default chain
        (:func:`mlboot._auth.resolve_default_auth`); ``tenant_id`` comes from the config file,
        for the chain's interactive step.  azureml-core's ``Workspace(...)`` makes the request;
        azure-ai-ml's ``MLClient`` makes none, so a v2 backend sends ``workspaces.get``.
        """
        ...

    # Compute
    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        """The compute target called ``name`` as it is now; ``None`` only when it does not exist.

        Exists for two decisions above the seam: get-or-create (``None`` leads to a create;
        any failure raises, so that a failed lookup can never pass for a missing cluster) and
        waiting for provisioning (it is polled, and its ``provisioning_state`` and
        ``provisioning_errors`` tell how provisioning goes).  One read serves both, as one GET
        does in both SDKs.
        """
        ...

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        """Start creating a cluster; :class:`~mlboot.exceptions.ConflictError` if ``name`` is taken.

        Exists apart from :meth:`update_compute_scale` because creating must never change a
        cluster someone else just made: mlboot looks up first, and treats a conflict as that
        race (it looks up again and compares).  Returns once the service has accepted the
        request, without waiting; the wait is mlboot's (:meth:`get_compute`).  azure-ai-ml's
        ``begin_create_or_update`` is an upsert PUT that never reports a conflict: a v2 backend
        makes the PUT conditional (``If-None-Match: *``) or otherwise raises ``ConflictError``
        itself rather than overwrite.
        """
        ...

    def update_compute_scale(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        """Change the scale settings of an existing cluster to ``spec``'s; return it as it is then.

        Exists for ``on_mismatch="update"``: only ``min_nodes``, ``max_nodes`` and
        ``idle_seconds_before_scaledown`` may differ (mlboot checks that first), and the
        cluster is updated in place.  It takes the whole spec, like :meth:`create_compute`,
        because a service may only know how to send the whole cluster: azure-ai-ml's update is
        a full PUT, which would drop the VM priority unless it is sent again.
        """
        ...

    # Environments
    def check_registered_environment(
        self, ref: WorkspaceRef, name: str, version: str | None
    ) -> None:
        """Check that the workspace has the registered environment; ``NotFoundError`` if not.

        Exists so that a wrong environment name fails before the run is submitted, with the
        lookup retried above the seam under mlboot's one policy (azureml-core sends it once,
        without a retry; azure-ai-ml sends ``"name:version"`` unresolved with the job, which
        would fail only at the job PUT).  ``version=None`` is the latest.  A backend may keep
        what it found for the :meth:`submit_run` that follows, so it is looked up once; one
        that runs no registered environments (the local backend) only accepts it.
        """
        ...

    # Data
    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        """The datastore called ``name`` (``None``: the workspace's default); ``None`` if absent.

        Exists so that a datastore named in an input or output fails before the submit: neither
        SDK checks it (azureml-core sends the name with the run; it fails on the compute, minutes
        later), and so that mlboot learns the default datastore's name for a local input's
        upload.  "Not there" is an answer (``None``), any failure raises, as for
        :meth:`get_compute`.  azureml-core: ``Datastore.get`` / ``get_default_datastore``;
        azure-ai-ml: ``datastores.get`` / ``get_default``; local: a folder.
        """
        ...

    def datastore_file_exists(self, ref: WorkspaceRef, datastore: str, path: str) -> bool:
        """Whether the file ``path`` (POSIX, from the datastore's root) exists in ``datastore``.

        Exists for the content-addressed upload of a local input: mlboot asks for the marker
        ``mlboot/inputs/sha256-<hex>.complete``, which it writes last, so that an unchanged
        folder costs hashing and this one lookup instead of one request per file (azureml-core's
        ``upload(overwrite=False)`` sends one ``HEAD`` per file, and skips a changed one).  One
        ``HEAD`` of the blob on either SDK; a file on the local backend.
        """
        ...

    def upload_to_datastore(
        self,
        ref: WorkspaceRef,
        datastore: str,
        target_path: str,
        files: Sequence[tuple[Path, str]],
    ) -> None:
        """Upload each ``(local file, relative name)`` to ``target_path/<relative name>``.

        Exists for a local input, which mlboot uploads itself, content addressed, before the
        run is submitted: which files, under which path, and whether to upload at all are
        mlboot's decisions, taken once above the seam, so the backend only copies.  Existing
        files are overwritten; every file is sent, or the call raises (azureml-core's own
        ``upload`` logs a failed ``PUT`` and returns as if all went well).  ``target_path`` and
        the names are POSIX, without ``..``; the local files were checked (regular files, no
        link leading out).  The call is bounded by the submit's deadline.
        """
        ...

    def check_registered_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> None:
        """Check that the workspace has the registered dataset; ``NotFoundError`` if not.

        Exists, like :meth:`check_registered_environment`, so that a wrong dataset name or
        version fails before the submit, with the lookup retried above the seam.
        ``version=None`` is the latest.  azureml-core: ``Dataset.get_by_name`` (no dataset
        runtime needed); azure-ai-ml: ``data.get``.  A backend that has no registered datasets
        (the local one) raises :class:`~mlboot.exceptions.InvalidInputError` saying so.
        """
        ...

    # Runs
    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        """Submit a script run; return as soon as the service has accepted it.

        Exists as one operation because submitting is one request to the service (snapshot
        upload, environment and job definition included) that either creates a run or not.
        ``request`` is complete and checked: the backend translates it, it decides nothing.
        The run's id is the one returned: the service's (azureml-core) or one the backend chose
        itself (azure-ai-ml lets the client name a job, which makes a retried PUT idempotent).
        No experiment object is needed: ``request.experiment`` is only a name.
        """
        ...

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        """The run's status now, a :class:`~mlboot.RunStatus` value; ``NotFoundError`` if unknown.

        Exists apart from :meth:`get_run_details` because it is what a wait polls, so it should
        be the cheapest read a service offers.  Which statuses are final is mlboot's decision
        (``mlboot._spellings.TERMINAL_RUN_STATUSES``), not the backend's.
        """
        ...

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        """The run's details, including the service's error for a failed run.

        Exists for reattaching by id (``get_run``: the id is checked once and the experiment
        read) and for the report of a failed run (its error, start and end times).
        """
        ...

    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        """Up to ``limit`` (> 0) runs of the workspace, newest first.

        Exists for ``list_runs`` and ``mlboot runs list``.  Only runs of ``experiment`` and
        only runs whose status is ``status`` (a :class:`~mlboot.RunStatus` value) when given;
        an experiment that does not exist has no runs.  The filters are passed down so that a
        service can apply them in its own query instead of sending every run.
        """
        ...

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        """The run's user log text so far (stdout and stderr of the script).

        Exists for ``Run.logs``, for following a run (``wait(show_output=True)``) and for the
        log tail of a failed run.  Returns text rather than printing it: azure-ai-ml's
        ``jobs.stream`` only prints, so a v2 backend reads run history's log files.
        """
        ...

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        """Every metric the run logged: name to every value, in logging order.

        Exists for ``Run.metrics``.  Values are numbers or text because azureml-core keeps
        both; a backend whose service keeps floats only (MLflow, azure-ai-ml's only way to
        metrics) returns floats, with one history read per metric name.
        """
        ...

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        """Download the run's ``outputs/`` files below ``destination``; return their paths.

        Exists for ``Run.download_outputs``; mlboot has made ``destination`` and checked it.
        Files land in ``destination/outputs/`` whatever the service's own layout (azure-ai-ml
        puts the default output in ``artifacts/outputs/``), and never through a link.
        """
        ...

    def list_run_files(self, ref: WorkspaceRef, run_id: str) -> list[str]:
        """The names of every file of the run, as the service keeps them (POSIX, relative).

        Exists for ``Run.file_names`` and for choosing what ``Run.download_files`` fetches:
        outputs (``outputs/...``), logs (``user_logs/...``, ``logs/...``, ``azureml-logs/...``)
        and whatever else the run stored, in Azure ML's names whatever the service's own layout
        (the local backend maps its folder to them).  The names are returned as the service
        sent them: whether one is safe to write is decided above the seam.  azureml-core's
        ``get_file_names`` is one paged listing, which it retries itself (so mlboot does not),
        as is the v2 backend's (a blob listing of the job's folder in ``workspaceartifactstore``).
        """
        ...

    def download_run_files(
        self, ref: WorkspaceRef, run_id: str, destination: Path, names: Sequence[str]
    ) -> list[Path]:
        """Download the run's files ``names`` to ``destination/<name>``; return the paths written.

        Exists for ``Run.download_files``.  It takes the names, not a prefix, so that the backend
        writes exactly the files mlboot checked: above the seam the listing is filtered, each
        name is checked to stay inside ``destination`` (no ``..``, no absolute path) and every
        path it will write is checked for links, once, for every backend; with a prefix the
        backend would write whatever the service lists at download time, names no check saw.
        ``destination`` exists and was checked; nothing is written through a link.  A named
        file gone meanwhile is left out where the service says so without an error.
        azureml-core downloads each by name (``download_file``); azure-ai-ml has no call for
        one file of a job (``jobs.download`` fetches whole outputs), so the v2 backend downloads
        each named blob of the job's folder in the ``workspaceartifactstore`` datastore.
        """
        ...

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        """Ask the service to cancel the run; a run that has ended is left as it is.

        Exists for ``Run.cancel`` and ``wait(cancel_on_interrupt=True)``.  Returns once asked,
        without waiting: the run then reads ``CancelRequested``, then ``Canceled``.
        """
        ...


@runtime_checkable
class AzureMLObjects(Protocol):
    """An optional extra of a backend: the SDK objects behind mlboot's values.

    ``to_azureml()`` of :class:`~mlboot.Workspace`, :class:`~mlboot.ComputeTarget` and
    :class:`~mlboot.Run` hands them out, for features mlboot does not wrap, from a backend that
    has this capability (the azureml-core one); on any other it raises
    :class:`~mlboot.exceptions.SdkObjectUnavailableError`.  Not part of :class:`Backend`, so that
    a backend without SDK objects (local, fake) needs no stub for them.
    """

    def azureml_workspace(self, ref: WorkspaceRef) -> object:
        """The underlying SDK workspace object."""
        ...

    def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
        """The underlying SDK compute target object, read fresh from the service."""
        ...

    def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
        """The underlying SDK run object."""
        ...


@runtime_checkable
class InputKindCheck(Protocol):
    """An optional extra of a backend that, as installed, cannot take every kind of data input.

    :func:`mlboot.submit_script` asks it before anything remote (no lookup, no upload), with
    each input's name and kind (``"local"``, ``"datastore"``, ``"url"``, ``"dataset"``), so a
    missing package fails at once.  The azureml-core backend has it: an ``http(s)://`` input
    needs ``azureml-dataset-runtime`` there (:class:`~mlboot.exceptions.MissingExtraError`,
    naming mlboot's ``datasets`` extra).
    """

    def check_input_kinds(self, kinds: Mapping[str, str]) -> None:
        """Raise a typed error for the first input this backend cannot take; else nothing."""
        ...


@runtime_checkable
class DatastorePathCheck(Protocol):
    """An optional extra of a backend that can tell, before any upload, whether a datastore
    path exists.

    :func:`mlboot.submit_script` asks it for every datastore input once the datastores are
    looked up and before the first local input is uploaded, so an input that names no data
    fails with nothing written.  The local backend has it (its datastores are folders); Azure ML
    reads a path only when the run starts, as a hand-written launcher does.
    """

    def check_datastore_path(
        self, ref: WorkspaceRef, datastore: str, path: str, *, what: str
    ) -> None:
        """Raise :class:`~mlboot.exceptions.NotFoundError`, naming ``what``, if ``path`` is not
        a file or folder of ``datastore``; else nothing."""
        ...


@runtime_checkable
class LocalRunFolders(Protocol):
    """An optional extra of a backend whose runs live in folders on this machine.

    :class:`mlboot.LocalBackend` has it.  Callers check for it instead of for one class: the
    ``mlboot`` command shows a local run's ``outputs/`` folder (no download needed) and polls
    its status more often (a file read, not a request), and messages say "on the local backend"
    rather than "in Azure ML".
    """

    def run_folder(self, run_id: str) -> Path:
        """The folder of run ``run_id``; :class:`~mlboot.exceptions.NotFoundError` if unknown."""
        ...


def azureml_objects(backend: object, wanted: str) -> AzureMLObjects:
    """``backend`` as a source of SDK objects, else a typed error saying what to do instead."""
    if isinstance(backend, AzureMLObjects):
        return backend
    raise SdkObjectUnavailableError(
        f"{type(backend).__name__} has no azureml-core objects to hand out, so {wanted} has none: "
        "only the azureml-core backend has them. Fix: run the code that needs the SDK object "
        "against Azure ML, with the azureml-core backend, or keep it out of what runs on "
        f"{type(backend).__name__}."
    )


@runtime_checkable
class StatusChangeWaiter(Protocol):
    """An optional extra of a backend: pauses that end early when a run's status changes.

    :meth:`mlboot.Run.wait` pauses through it, instead of ``clock.sleep``, between two status
    reads of a backend that has it (:class:`mlboot.LocalBackend`), so the wait returns as soon as
    the run ends rather than at its next poll.
    """

    def pause_until_status_changes(
        self, ref: WorkspaceRef, run_id: str, status: str, seconds: float
    ) -> None:
        """Wait ``seconds`` on the backend's clock, or less once the status is not ``status``.

        Raises nothing: when it cannot watch the run, it waits ``seconds``.
        """
        ...
