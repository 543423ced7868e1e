"""Get or create an Azure ML compute cluster: :func:`get_or_create_compute_target`.

Every decision lives here, above the :class:`~mlboot.backend.Backend` seam: validation, the one
lookup, comparing an existing cluster with the request, creating, racing other creators, and
waiting on the backend's clock.  The backend only moves requests and answers.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Literal, TypeAlias

import attrs

from mlboot._backends._seam import (
    Backend,
    ComputeInfo,
    ComputeSpec,
    WorkspaceRef,
    azureml_objects,
)
from mlboot._deadline import bounded
from mlboot._filelock import interprocess_lock
from mlboot._log import logger
from mlboot._retry import call_with_retries
from mlboot._spellings import CLUSTER_KIND, PROVISIONING_ENDED, PROVISIONING_FAILED, VM_PRIORITIES
from mlboot._validate import (
    COMPUTE_NAME,
    COMPUTE_NAME_RULE,
    check_bool,
    check_int,
    positive_seconds,
)
from mlboot._warnings import warn
from mlboot._workspace import Workspace, check_workspace
from mlboot.exceptions import (
    ComputeKindError,
    ComputeMismatchError,
    ComputeProvisioningError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ServiceError,
    WaitTimeoutError,
)

__all__ = ["ComputeTarget", "MismatchPolicy", "get_or_create_compute_target"]


MismatchPolicy: TypeAlias = Literal["error", "warn", "update"]
"""What to do when an existing cluster differs from the request."""

_PRIORITIES = VM_PRIORITIES
_POLICIES: tuple[MismatchPolicy, ...] = ("error", "warn", "update")
_SCALE_FIELDS = frozenset({"min_nodes", "max_nodes", "idle_seconds_before_scaledown"})

# Azure VM size names are "Standard_" and then the size, its parts joined by "_"
# ("Standard_NC24ads_A100_v4"); constrained-vCPU sizes put a "-" inside a part
# ("Standard_DS13-4_v2").  "Basic_" sizes exist but clusters do not offer them.  Only the shape is
# checked: which sizes a region offers is the service's answer to give.
_VM_SIZE = re.compile(r"Standard_[A-Z0-9]+(?:[-_][A-Z0-9]+)*", re.IGNORECASE | re.ASCII)
_VM_SIZE_RULE = (
    "it must be an Azure VM size name: 'Standard_' followed by letters and digits, in parts "
    "joined by '_' or '-' (e.g. 'Standard_DS3_v2', 'Standard_NC24ads_A100_v4')"
)

# The service's rule for a NEW compute name (Azure ML docs, "Create compute clusters", advanced
# settings): 3 to 24 characters, letters, digits and '-', starting with a letter, and a '-' must be
# followed by at least one letter later in the name.  azureml-core itself only refuses the reserved
# names below.  Applied only before creating, so that an existing cluster stays reachable by the
# name it already has.
_CLUSTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,23}", re.ASCII)
_CLUSTER_NAME_RULE = (
    "a new compute cluster's name must be 3 to 24 characters of letters, digits and '-', start "
    "with a letter, and have a letter somewhere after its last '-'"
)
_RESERVED_NAMES = frozenset({"amlcompute", "local", "containerinstance"})

_FAILED_STATES = PROVISIONING_FAILED
_TERMINAL_STATES = PROVISIONING_ENDED
_POLL_SECONDS = 10.0
"""How often a wait reads the provisioning state (the SDK's own wait polls every 5 s)."""
_HEARTBEAT_SECONDS = 30.0
"""A wait reports at least this often, even when nothing changed."""

_creation_locks: dict[tuple[WorkspaceRef, str], threading.Lock] = {}
_creation_locks_guard = threading.Lock()


@attrs.frozen
class ComputeTarget:
    """An Azure ML compute cluster, as :func:`get_or_create_compute_target` left it.

    Pass it wherever mlboot expects a compute (submitting a run reads its ``name``).  The values
    are the service's: ``vm_size`` is spelled as the service reports it (often upper case) and
    ``vm_priority`` is ``"dedicated"`` or ``"lowpriority"``.  ``provisioning_state`` is the state
    when the call returned (``"Succeeded"`` after a successful wait).

    Equality and ``repr`` leave the workspace out.  Reach the underlying
    ``azureml.core.compute.AmlCompute`` with :meth:`to_azureml`.
    """

    name: str = attrs.field(validator=lambda _, a, v: _check_value_text(a.name, v))
    vm_size: str = attrs.field(validator=lambda _, a, v: _check_value_text(a.name, v))
    vm_priority: str = attrs.field(validator=lambda _, a, v: _check_value_text(a.name, v))
    min_nodes: int = attrs.field(validator=lambda _, a, v: _check_value_count(a.name, v))
    max_nodes: int = attrs.field(validator=lambda _, a, v: _check_value_count(a.name, v))
    idle_seconds_before_scaledown: int = attrs.field(
        validator=lambda _, a, v: _check_value_count(a.name, v)
    )
    provisioning_state: str = attrs.field(validator=lambda _, a, v: _check_value_text(a.name, v))
    kind: str = attrs.field(
        default=CLUSTER_KIND, validator=lambda _, a, v: _check_value_text(a.name, v)
    )
    workspace: Workspace = attrs.field(
        kw_only=True, eq=False, repr=False, validator=lambda _, __, v: check_workspace(v)
    )

    def to_azureml(self) -> object:
        """The ``azureml.core.compute.AmlCompute`` behind this value, read fresh from the service.

        The escape hatch for features mlboot does not wrap (``list_nodes()``, ``delete()``...).
        Typed ``object`` because azureml-core ships no type information; ``cast`` it, or use it
        untyped.  A backend without SDK objects (:class:`~mlboot.LocalBackend`,
        :class:`~mlboot.testing.FakeBackend`) raises
        :class:`~mlboot.exceptions.SdkObjectUnavailableError` (a :class:`NotImplementedError`).
        """
        ref = self.workspace.ref
        objects = azureml_objects(self.workspace.backend, f"compute target {self.name!r} in {ref}")
        return objects.azureml_compute(ref, self.name)


def get_or_create_compute_target(
    workspace: Workspace,
    name: str,
    *,
    vm_size: str,
    max_nodes: int,
    min_nodes: int = 0,
    vm_priority: str = "dedicated",
    idle_seconds_before_scaledown: int = 1800,
    on_mismatch: MismatchPolicy = "error",
    wait: bool = True,
    timeout: float = 1800.0,
    show_output: bool = False,
) -> ComputeTarget:
    """Return the compute cluster ``name`` with these settings, creating it if it does not exist.

    Every argument is checked before anything remote happens
    (:class:`~mlboot.exceptions.InvalidInputError`).  ``vm_priority`` is ``"dedicated"`` or
    ``"lowpriority"`` in any case.  A ``name`` no compute can have (other than 1 to 24
    ASCII letters, digits, ``-``, ``_`` and ``.``) is refused before the lookup; the stricter
    rules for a new cluster's name are checked only when one is about to be created, so an
    existing cluster stays reachable by its name.

    An existing cluster costs one lookup.  Its VM size and priority (compared case-insensitively),
    node counts and idle time are compared with the request; when they differ, ``on_mismatch``
    decides: ``"error"`` raises :class:`~mlboot.exceptions.ComputeMismatchError` listing every
    difference, ``"warn"`` logs one warning and returns the cluster as it is, ``"update"`` changes
    the scale settings in place (VM size and priority cannot change: that still raises).  A
    compute of another kind under that name (a compute instance, an attached VM...) raises
    :class:`~mlboot.exceptions.ComputeKindError`.

    Only a lookup that says "not found" leads to a create; a failed lookup (authentication,
    permission, throttling, server or network errors) raises at once, and nothing is created.
    When someone else creates the cluster at the same moment, their cluster is compared like any
    existing one; threads and processes of one user on one machine asking for the same name
    create it once (they take turns for the lookup and the create, never for the wait).

    With ``wait=True`` the call returns once provisioning has succeeded, polling the state and
    reporting progress on the ``mlboot`` logger at INFO (and on stdout with ``show_output=True``)
    at least every 30 s.  ``timeout`` bounds the whole call, in seconds, whatever the service
    answers: the lookup and the create with azureml-core's own retries of them (a retry the SDK
    would make after the deadline is not waited for), the provisioning wait on the backend's
    clock, and a turn waited for another thread or process creating the same name in real time.
    The default, 30 minutes, is well above the few minutes a cluster usually takes and above the
    25 minutes after which azureml-core's own ``AmlCompute.wait_for_completion`` gives up, yet
    ends a stuck CI job long before its own limit.  On time-out
    :class:`~mlboot.exceptions.WaitTimeoutError` says the state so far (or, when the service
    kept throttling or failing, the call and its last answer, from which it is raised) and the
    cluster is left alone; call again to resume waiting.  A failed or canceled provisioning raises
    :class:`~mlboot.exceptions.ComputeProvisioningError` with the service's error codes and
    messages (a quota error, for instance).  With ``wait=False`` the call returns at once, in
    whatever state the cluster is.
    """
    _check_call(workspace, name, on_mismatch=on_mismatch, timeout=timeout)
    check_bool("wait", wait, fix="pass wait=False to return without waiting for provisioning")
    check_bool("show_output", show_output, fix="pass show_output=True to print progress")
    spec = _validated_spec(
        vm_size=vm_size,
        vm_priority=vm_priority,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        idle_seconds_before_scaledown=idle_seconds_before_scaledown,
    )
    progress = _Progress(show_output=show_output)
    clock = workspace.backend.clock
    started = clock.monotonic()
    with bounded(
        clock,
        timeout,
        what=f"get_or_create_compute_target for {name!r} in {workspace.ref}",
        limit=f"its time-out (timeout={timeout:g} s)",
        fix="try again later (the service was throttling or failing), or pass a longer "
        "timeout; calling again is safe: an existing cluster is looked up, never created twice.",
    ):
        with _creation_lock(workspace.ref, name, timeout=timeout):
            info = _find_or_create(workspace, name, spec, on_mismatch, progress)
        if wait:
            info = _wait_for_provisioning(
                workspace, info, started=started, timeout=timeout, progress=progress
            )
    return _target(workspace, info)


# -- validation ------------------------------------------------------------------------------------


def _check_count(field: str, value: object, *, minimum: int, fix: str) -> int:
    return check_int(field, value, minimum=minimum, fix=fix)


def _validated_spec(
    *,
    vm_size: object,
    vm_priority: object,
    min_nodes: object,
    max_nodes: object,
    idle_seconds_before_scaledown: object,
) -> ComputeSpec:
    if not isinstance(vm_size, str) or not _VM_SIZE.fullmatch(vm_size):
        raise InvalidInputError(
            "vm_size",
            vm_size,
            _VM_SIZE_RULE,
            "pass a size from 'az ml compute list-sizes' or the studio's compute page",
        )
    if not isinstance(vm_priority, str) or vm_priority.lower() not in _PRIORITIES:
        raise InvalidInputError(
            "vm_priority",
            vm_priority,
            "it must be 'dedicated' or 'lowpriority' (any case)",
            "pass 'dedicated', or 'lowpriority' for cheaper nodes that may be preempted",
        )
    minimum = _check_count(
        "min_nodes", min_nodes, minimum=0, fix="pass 0 to let the cluster scale down to no nodes"
    )
    maximum = _check_count(
        "max_nodes", max_nodes, minimum=1, fix="pass the largest number of nodes a run may use"
    )
    if minimum > maximum:
        raise InvalidInputError(
            "min_nodes",
            minimum,
            f"it must not exceed max_nodes={maximum}",
            "lower min_nodes or raise max_nodes",
        )
    idle = _check_count(
        "idle_seconds_before_scaledown",
        idle_seconds_before_scaledown,
        minimum=0,
        fix="pass the seconds an idle node is kept before it is released (default 1800)",
    )
    return ComputeSpec(
        vm_size=vm_size,
        vm_priority=vm_priority.lower(),
        min_nodes=minimum,
        max_nodes=maximum,
        idle_seconds_before_scaledown=idle,
    )


_VALUE_FIX = "use the ComputeTarget that get_or_create_compute_target() returns"


def _check_value_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(field, value, "it must be a non-empty str", _VALUE_FIX)


def _check_value_count(field: str, value: object) -> None:
    check_int(field, value, minimum=0, fix=_VALUE_FIX)


def _check_call(workspace: object, name: object, *, on_mismatch: object, timeout: object) -> None:
    check_workspace(workspace)
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            "name", name, "it must be a non-empty str", "pass the compute cluster's name"
        )
    if not COMPUTE_NAME.fullmatch(name):  # before the lookup: no compute can have it
        raise InvalidInputError(
            "name", name, COMPUTE_NAME_RULE, "use the name shown in Azure ML studio"
        )
    if on_mismatch not in _POLICIES:
        raise InvalidInputError(
            "on_mismatch",
            on_mismatch,
            "it must be 'error', 'warn' or 'update'",
            "pass one of those three",
        )
    positive_seconds(
        "timeout",
        timeout,
        fix="pass how long to wait for provisioning, e.g. 1800.0; or wait=False not to wait",
        allow_timedelta=False,
    )


def _check_new_cluster_name(name: str) -> None:
    fix = "pick another name, e.g. 'gpu-cluster' or 'cpu-d4'"
    if name.lower() in _RESERVED_NAMES:
        raise InvalidInputError(
            "name",
            name,
            f"{', '.join(sorted(_RESERVED_NAMES))} are reserved by Azure ML",
            fix,
        )
    after_last_hyphen = name.rpartition("-")[2]
    if not _CLUSTER_NAME.fullmatch(name) or not any(c.isalpha() for c in after_last_hyphen):
        raise InvalidInputError("name", name, _CLUSTER_NAME_RULE, fix)


# -- get or create ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _creation_lock(ref: WorkspaceRef, name: str, *, timeout: float) -> Iterator[None]:
    """Threads of this process, then processes of this user on this machine, one at a time.

    Held only for the lookup and the create, never for the provisioning wait.
    """
    # Compute names are case-insensitive in Azure Resource Manager; sharing a lock between two
    # spellings only serialises them, which is harmless.
    key = (ref, name.casefold())
    with _creation_locks_guard:
        thread_lock = _creation_locks.setdefault(key, threading.Lock())
    what = f"get-or-create of compute target {name!r} in {ref}"
    left = timeout
    if not thread_lock.acquire(blocking=False):
        # Real time, whatever the backend's clock: the holder is a real thread of this process.
        started = time.monotonic()
        if not thread_lock.acquire(timeout=min(timeout, threading.TIMEOUT_MAX)):
            raise WaitTimeoutError(
                f"waited {timeout:g} s for another thread of this process to finish {what}. "
                "Fix: let that thread finish, or pass a longer timeout."
            )
        left = max(0.0, timeout - (time.monotonic() - started))
    try:
        file_key = repr(("compute", ref.subscription_id, ref.resource_group, ref.name, name))
        with interprocess_lock(file_key.casefold(), timeout=left, what=what):
            yield
    finally:
        thread_lock.release()


def _find_or_create(
    workspace: Workspace,
    name: str,
    spec: ComputeSpec,
    on_mismatch: MismatchPolicy,
    progress: _Progress,
) -> ComputeInfo:
    backend, ref = workspace.backend, workspace.ref
    # Not retried here: the azureml-core backend already retries throttling, server and network
    # failures of this GET itself, and mlboot must not multiply those retries.  The error raised
    # is typed and marked transient; the call is safe to repeat.
    found = backend.get_compute(ref, name)
    if found is not None:
        return _reconcile(workspace, found, spec, on_mismatch, progress)
    _check_new_cluster_name(name)
    progress.say(
        "Creating compute target %r in %s: %s, %s, %d to %d nodes, %d s idle before scale-down",
        name,
        ref,
        spec.vm_size,
        spec.vm_priority,
        spec.min_nodes,
        spec.max_nodes,
        spec.idle_seconds_before_scaledown,
    )
    try:
        return backend.create_compute(ref, name, spec)
    except ConflictError as conflict:
        # Another process created it between our lookup and our create.
        found = backend.get_compute(ref, name)
        if found is None:
            raise ConflictError(
                f"the service refused to create compute target {name!r} in {ref} because the "
                f"name is taken ({conflict}), but the workspace has no compute by that name. "
                "Compute names must be unique within an Azure region. Fix: pick another name."
            ) from conflict
        progress.say("Compute target %r was just created by someone else; checking it", name)
        return _reconcile(workspace, found, spec, on_mismatch, progress)


def _reconcile(
    workspace: Workspace,
    found: ComputeInfo,
    spec: ComputeSpec,
    on_mismatch: MismatchPolicy,
    progress: _Progress,
) -> ComputeInfo:
    where = f"compute target {found.name!r} in {workspace.ref}"
    if found.kind != CLUSTER_KIND:
        raise ComputeKindError(
            f"{where} is a {found.kind}, not a compute cluster ({CLUSTER_KIND}). Fix: pick "
            "another name for the cluster; this name is taken by that compute.",
            {"kind": (CLUSTER_KIND, found.kind)},
        )
    if found.provisioning_state == "Deleting":
        raise ComputeProvisioningError(
            f"{where} is being deleted. Fix: wait until the deletion has finished and call "
            "again to create it anew, or pick another name.",
            [(e.code, e.message) for e in found.provisioning_errors],
        )
    differences = _differences(spec, _settings(found, where))
    if not differences:
        progress.say("Using existing %s (state %s)", where, found.provisioning_state)
        return found
    listing = "; ".join(
        f"{field}: requested {requested!r}, actual {actual!r}"
        for field, (requested, actual) in differences.items()
    )
    scale_only = differences.keys() <= _SCALE_FIELDS
    if on_mismatch == "warn":
        warn(
            f"{where} differs from the request ({listing}); using it as it is because "
            "on_mismatch='warn'"
        )
        return found
    if on_mismatch == "update" and scale_only:
        progress.say("Updating the scale settings of %s (%s)", where, listing)
        # The whole spec: its VM size and priority match the cluster's (scale_only), so a
        # service that can only send the whole cluster sends it unchanged but for its scale.
        return workspace.backend.update_compute_scale(workspace.ref, found.name, spec)
    if scale_only:
        fix = (
            "pass the actual values to use it as it is, pass on_mismatch='update' to change its "
            "scale settings in place, or pick another name for a new cluster"
        )
    else:
        fix = (
            "the VM size and priority of a cluster cannot change in place: pass the actual "
            "values to use it as it is, pick another name for a new cluster, or delete this one "
            "first (Azure ML studio, Compute) to re-create it"
        )
    nothing_changed = " Nothing was changed." if on_mismatch == "update" else ""
    raise ComputeMismatchError(
        f"{where} exists with other settings: {listing}.{nothing_changed} Fix: {fix}.",
        differences,
    )


def _settings(info: ComputeInfo, where: str) -> ComputeSpec:
    """The settings an existing cluster has, in the same terms as a request."""
    if (
        info.vm_size is None
        or info.vm_priority is None
        or info.min_nodes is None
        or info.max_nodes is None
        or info.idle_seconds_before_scaledown is None
    ):
        raise ServiceError(
            f"the service described {where} without all of its settings ({info!r}), so mlboot "
            "cannot tell whether it is the cluster requested. Fix: look at it in Azure ML studio; "
            "delete and re-create it if it is broken."
        )
    return ComputeSpec(
        vm_size=info.vm_size,
        vm_priority=info.vm_priority.lower(),
        min_nodes=info.min_nodes,
        max_nodes=info.max_nodes,
        idle_seconds_before_scaledown=info.idle_seconds_before_scaledown,
    )


def _differences(spec: ComputeSpec, actual: ComputeSpec) -> dict[str, tuple[object, object]]:
    differences: dict[str, tuple[object, object]] = {}
    if spec.vm_size.lower() != actual.vm_size.lower():
        differences["vm_size"] = (spec.vm_size, actual.vm_size)
    if spec.vm_priority != actual.vm_priority:
        differences["vm_priority"] = (spec.vm_priority, actual.vm_priority)
    for field in ("min_nodes", "max_nodes", "idle_seconds_before_scaledown"):
        requested, found = getattr(spec, field), getattr(actual, field)
        if requested != found:
            differences[field] = (requested, found)
    return differences


def _target(workspace: Workspace, info: ComputeInfo) -> ComputeTarget:
    settings = _settings(info, f"compute target {info.name!r} in {workspace.ref}")
    return ComputeTarget(
        name=info.name,
        vm_size=settings.vm_size,
        vm_priority=settings.vm_priority,
        min_nodes=settings.min_nodes,
        max_nodes=settings.max_nodes,
        idle_seconds_before_scaledown=settings.idle_seconds_before_scaledown,
        provisioning_state=info.provisioning_state,
        kind=info.kind,
        workspace=workspace,
    )


# -- waiting ---------------------------------------------------------------------------------------


@attrs.frozen
class _Progress:
    """Progress goes to the ``mlboot`` logger, and to stdout only when the caller asked."""

    show_output: bool

    def say(self, message: str, *args: object) -> None:
        logger.info(message, *args)
        if self.show_output:
            sys.stdout.write(message % args + "\n")
            sys.stdout.flush()


def _wait_for_provisioning(
    workspace: Workspace,
    info: ComputeInfo,
    *,
    started: float,
    timeout: float,
    progress: _Progress,
) -> ComputeInfo:
    backend, ref, name = workspace.backend, workspace.ref, info.name
    clock = backend.clock
    where = f"compute target {name!r} in {ref}"
    if info.provisioning_state not in _TERMINAL_STATES:
        progress.say(
            "Waiting for %s to finish provisioning (state %s, time-out %.0f s)",
            where,
            info.provisioning_state,
            timeout,
        )
    last_said = clock.monotonic()
    while info.provisioning_state not in _TERMINAL_STATES:
        elapsed = clock.monotonic() - started
        if elapsed >= timeout:
            raise WaitTimeoutError(
                f"{where} is still {info.provisioning_state!r} after {elapsed:.0f} s, the "
                f"time-out ({timeout:.0f} s). It was left alone and goes on provisioning. Fix: "
                "call again to resume waiting, with a longer timeout, or with wait=False not to "
                "wait; Azure ML studio shows its progress."
            )
        clock.sleep(min(_POLL_SECONDS, timeout - elapsed))
        previous = info.provisioning_state
        info = call_with_retries(
            lambda: _provisioning(backend, ref, name),
            clock=clock,
            what=f"reading the provisioning state of {where}",
        )
        now = clock.monotonic()
        if info.provisioning_state != previous:
            progress.say(
                "%s: %s -> %s after %.0f s",
                where,
                previous,
                info.provisioning_state,
                now - started,
            )
            last_said = now
        elif now - last_said >= _HEARTBEAT_SECONDS:
            progress.say(
                "%s is still %s after %.0f s (time-out in %.0f s)",
                where,
                info.provisioning_state,
                now - started,
                max(0.0, timeout - (now - started)),
            )
            last_said = now
    errors = [(error.code, error.message) for error in info.provisioning_errors]
    if info.provisioning_state in _FAILED_STATES:
        reported = "; ".join(f"{code}: {message}" for code, message in errors) or "no details"
        raise ComputeProvisioningError(
            f"provisioning of {where} ended {info.provisioning_state}: {reported}. Fix: act on "
            "the service's errors (a quota error needs a quota increase, or another vm_size, "
            "region or fewer nodes), then delete the cluster (Azure ML studio, Compute) before "
            "using this name again, or pick another name.",
            errors,
        )
    if errors:
        warn(
            f"{where} is ready but the service reports errors (nodes may fail to start): "
            + "; ".join(f"{code}: {message}" for code, message in errors)
        )
    return info


def _provisioning(backend: Backend, ref: WorkspaceRef, name: str) -> ComputeInfo:
    """The target's state while waiting: one lookup, and a target gone meanwhile is an error."""
    found = backend.get_compute(ref, name)
    if found is None:
        raise NotFoundError(
            f"compute target {name!r} no longer exists in {ref}: it was deleted while mlboot "
            "waited for it to be provisioned. Fix: call again to create it anew."
        )
    return found
