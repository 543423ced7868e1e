"""The seam between mlboot's decisions and the service: :class:`Backend` and its records.

A backend only moves requests and answers.  Validation, get-or-create, comparisons, waiting and
time-outs all live above it, in the public functions.  Backends raise only
:mod:`mlboot.exceptions` errors: "not found" of a compute target is an answer (``None``), not an
error, so that a failed lookup can never be mistaken for a missing cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

import attrs

if TYPE_CHECKING:
    from mlboot._auth import Credential
    from mlboot._clock import Clock
    from mlboot._distribution import Distribution
    from mlboot._environment import Environment

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
    """The cluster a caller asks for; ``vm_priority`` is ``dedicated`` or ``lowpriority``."""

    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds_before_scaledown: int


@attrs.frozen
class ComputeInfo:
    """An existing compute target as the service describes it.

    ``kind`` is the service's compute type (``AmlCompute`` for a cluster; ``ComputeInstance``,
    ``VirtualMachine``, ``Kubernetes``... otherwise).  Scale fields are ``None`` for kinds that
    have none.  ``provisioning_state`` is one of Unknown, Updating, Creating, Deleting,
    Succeeded, Failed, Canceled.
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
class RunRequest:
    """Everything needed to submit one script run; validated before it is built."""

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


@attrs.frozen
class RunDetails:
    """A run as the service describes it.  ``status`` is the service's own status string."""

    run_id: str
    experiment: str
    status: str
    portal_url: str | None = None
    error: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class Backend(Protocol):
    """One narrow method per remote operation mlboot needs.

    Implementations: the azureml-core adapter (the default) and
    :class:`mlboot.testing.FakeBackend`.  Every method raises only :mod:`mlboot.exceptions`
    errors: :class:`~mlboot.exceptions.AuthenticationError`,
    :class:`~mlboot.exceptions.PermissionDeniedError`, :class:`~mlboot.exceptions.ServiceError`
    (with ``transient`` set for throttling, server and network failures),
    :class:`~mlboot.exceptions.NotFoundError` for a missing workspace or run.
    """

    @property
    def clock(self) -> Clock:
        """The clock that waits against this backend are measured with."""
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

        ``credential=None`` means the default chain (:func:`mlboot._auth.resolve_default_auth`);
        ``tenant_id`` comes from the config file, for the chain's interactive step.
        """
        ...

    def azureml_workspace(self, ref: WorkspaceRef) -> object:
        """The underlying SDK workspace object, for features mlboot does not wrap."""
        ...

    # Compute
    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        """Look a compute target up by name; ``None`` only when it genuinely does not exist."""
        ...

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        """Start creating a cluster; :class:`~mlboot.exceptions.ConflictError` if it exists."""
        ...

    def get_compute_provisioning(self, ref: WorkspaceRef, name: str) -> ComputeInfo:
        """Read the target's current provisioning state and errors (polled while waiting)."""
        ...

    def update_compute_scale(
        self,
        ref: WorkspaceRef,
        name: str,
        *,
        min_nodes: int,
        max_nodes: int,
        idle_seconds_before_scaledown: int,
    ) -> ComputeInfo:
        """Change a cluster's scale settings in place."""
        ...

    def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
        """The underlying SDK compute target object."""
        ...

    # Runs
    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        """Submit a script run; return as soon as the service has accepted it."""
        ...

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        """The run's current status string; :class:`~mlboot.exceptions.NotFoundError` if unknown."""
        ...

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        """The run's details, including the service's error for a failed run."""
        ...

    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        """Up to ``limit`` (> 0) runs of the workspace, newest first.

        Only runs of ``experiment`` and only runs whose status is ``status`` (a
        :class:`~mlboot.RunStatus` value) when given; an experiment that does not exist has no
        runs.
        """
        ...

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        """The run's user log text so far (stdout and stderr of the script)."""
        ...

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        """Every metric the run logged."""
        ...

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        """Download the run's ``outputs/`` files below ``destination``; return their paths."""
        ...

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        """Ask the service to cancel the run."""
        ...

    def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
        """The underlying SDK run object."""
        ...


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
