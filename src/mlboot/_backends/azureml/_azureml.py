"""The azureml-core backend: the ONE module of mlboot that imports ``azureml``.

Every import of the SDK happens inside a function, so ``import mlboot`` stays fast and free of
it.  This module only translates: mlboot's requests into SDK calls, SDK answers into mlboot's
records, and SDK exceptions into :mod:`mlboot.exceptions` at one boundary
(:func:`translate_sdk_error`).  Decisions (validation, get-or-create, waiting) live above it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mlboot._auth import (
    AzureCliAuth,
    InteractiveAuth,
    ManagedIdentityAuth,
    ServicePrincipalAuth,
    person_can_answer,
    resolve_default_auth,
    revealed,
)
from mlboot._backends._blob_files import run_file_target, upload_files
from mlboot._backends._sdk_warnings import ignore_sdk_deprecations
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
from mlboot._backends._service_errors import (
    authentication_failed,
    causes,
    environment_not_found,
    error_for_status,
    header_retry_after,
    nobody_can_answer,
    not_loaded,
    workspace_not_found,
)
from mlboot._backends._service_errors import summary as _summary
from mlboot._backends._service_errors import text_of as _text_of
from mlboot._backends._service_records import arm_errors as _compute_errors
from mlboot._backends._service_records import primary_log as _run_primary_log
from mlboot._backends._service_records import run_error_message as _run_error_message
from mlboot._backends.azureml._data import SdkData, check_data_support, sdk_data
from mlboot._clock import Clock, SystemClock
from mlboot._deadline import DeadlineReachedError, carried
from mlboot._deadline import current as current_deadline
from mlboot._links import check_destination
from mlboot._localio import storage_error
from mlboot._spellings import CLUSTER_KIND, DEDICATED, LOW_PRIORITY
from mlboot._warnings import warn
from mlboot.exceptions import (
    ConflictError,
    InvalidInputError,
    MlbootError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
)

if TYPE_CHECKING:
    from mlboot._auth import Credential
    from mlboot._distribution import Distribution
    from mlboot._environment import Environment

__all__ = [
    "AzureMLBackend",
    "install_deadline_hooks",
    "sdk_authentication",
    "translate_sdk_error",
]

_STATUS_PATTERNS = (
    re.compile(r"Response Code:\s*(\d{3})"),
    re.compile(r'"status_code":\s*(\d{3})'),
    re.compile(r"\bstatus code:?\s*(\d{3})", re.IGNORECASE),
    re.compile(r"\bHTTP\s*(\d{3})\b"),
)
_STATUS_PHRASE = re.compile(r"invalid status code '([A-Za-z ]+)'")
_DATASET_VERSION = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)  # azureml-core int()s it
_STATUS_BY_PHRASE = {status.phrase.replace(" ", "").lower(): status.value for status in HTTPStatus}
_NOT_FOUND_MESSAGES = (
    "ComputeTargetNotFound",
    "not found.",
    "ResourceNotFound",
    "RunNotFound",
    # Dataset.get_by_name's UserErrorException after a 404 (it carries no status).
    "Cannot find dataset registered",
)
# azureml-core's FlushTaskTimeout: its parallel uploads and downloads (the snapshot's blobs, a
# run's outputs) did not all finish within its own time limit (300 s for a snapshot).
_TIME_OUT_MESSAGES = ("Failed to flush task queue within",)
_NETWORK_CLASS_NAMES = frozenset(
    {
        "ClientRequestError",
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "ProtocolError",
        "NewConnectionError",
        "MaxRetryError",
        "ChunkedEncodingError",
        "SSLError",
    }
)


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an SDK exception: from an attribute, else from its message."""
    for attribute in ("status_code", "http_status"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    if isinstance(value, int):
        return value
    text = _text_of(exc)
    for pattern in _STATUS_PATTERNS:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    # msrest's "Operation returned an invalid status code 'Forbidden'" names the status instead.
    match = _STATUS_PHRASE.search(text)
    if match:
        return _STATUS_BY_PHRASE.get(match.group(1).lower())
    return _chained_status_of(exc)


def _chained_status_of(exc: BaseException) -> int | None:
    """The status of the error an SDK exception was raised while handling.

    ``Datastore.get`` turns the service's 404 (an ``ErrorResponseException`` with its response)
    into a ``UserErrorException`` carrying only the message (azureml/data/_exception_handler.py),
    raised inside the ``except``: the answer is its ``__context__``.
    """
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        value = getattr(response, "status_code", None)
        if isinstance(value, int):
            return value
        current = current.__cause__ or current.__context__
    return None


def _retry_after_of(exc: BaseException) -> float | None:
    from_header = header_retry_after(exc)
    if from_header is not None:
        return from_header
    match = re.search(r"'Retry-After':\s*'(\d+(?:\.\d+)?)'", _text_of(exc))
    return float(match.group(1)) if match else None


def _is_network_failure(exc: BaseException) -> bool:
    return any(
        type(each).__name__ in _NETWORK_CLASS_NAMES or isinstance(each, ConnectionError)
        for each in causes(exc)
    )


def translate_sdk_error(exc: BaseException, doing: str) -> MlbootError:  # noqa: PLR0911  (one return per failure class reads best)
    """Turn an exception raised by azureml-core (or below it) into mlboot's own.

    ``doing`` says what was being attempted ("looking up compute target 'gpu'...").  The SDK
    raises one class for several failures (``ComputeTargetException`` for a 404, a 401 and a
    503 alike), so the HTTP status is read from the exception or parsed from its message.
    """
    if isinstance(exc, MlbootError):
        return exc
    name = type(exc).__name__
    detail = _summary(exc)
    status = _status_of(exc)
    if name == "AuthenticationException":
        return authentication_failed(doing, detail)
    if status is None and any(m in _text_of(exc) for m in _NOT_FOUND_MESSAGES):
        return NotFoundError(f"not found while {doing}: {detail}")
    by_status = error_for_status(status, doing, detail, retry_after=_retry_after_of(exc))
    if by_status is not None:
        return by_status
    if status is None and _is_network_failure(exc):
        return NetworkError(
            f"could not reach Azure while {doing}: {detail}. Fix: check the network connection "
            "and any proxy settings."
        )
    if status is None and any(m in _text_of(exc) for m in _TIME_OUT_MESSAGES):
        return NetworkError(
            f"Azure did not answer in time while {doing}: {detail}. Fix: check the network "
            "connection and any proxy settings, then try again."
        )
    transient = status == HTTPStatus.REQUEST_TIMEOUT
    return ServiceError(f"{name} while {doing}: {detail}", status=status, transient=transient)


@contextlib.contextmanager
def _translated(doing: str, *, writing: Path | None = None) -> Iterator[None]:
    """Translate what the block raises; ``writing``: a local file being written, whose disk
    errors (a full disk, the file size limit) are the caller's, not the service's.

    A warning the program's filters turned into an exception passes as is: it is not the
    service's failure (azureml-core's own deprecations are ignored, :mod:`.._sdk_warnings`).
    """
    ignore_sdk_deprecations()
    try:
        yield
    except (MlbootError, Warning):
        raise
    except Exception as exc:
        if writing is not None and isinstance(exc, OSError) and _is_local_disk_error(exc):
            raise storage_error(exc, doing, near=writing) from exc
        raise translate_sdk_error(exc, doing) from exc


# What writing a file on this machine fails with; the SDK's network errors are OSErrors too
# (requests' and urllib3's classes), so only the built-in classes with these codes count.
_LOCAL_DISK_ERRNOS = frozenset(
    {
        errno.EFBIG,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
    }
)


def _is_local_disk_error(exc: OSError) -> bool:
    return type(exc).__module__ == "builtins" and exc.errno in _LOCAL_DISK_ERRNOS


def sdk_authentication(credential: Credential | None, *, cloud: str, tenant_id: str | None) -> Any:
    """Build the azureml-core authentication object for a credential; the cloud is always explicit.

    ``None`` runs the default chain; an azureml-core authentication object passes through.
    """
    ignore_sdk_deprecations()
    from azureml.core import authentication  # noqa: PLC0415  (the SDK loads only on use)

    if credential is None:
        credential, _tried = resolve_default_auth(tenant_id=tenant_id)
    with _translated("preparing Azure credentials"):
        if isinstance(credential, authentication.AbstractAuthentication):
            return credential
        if isinstance(credential, ServicePrincipalAuth):
            return authentication.ServicePrincipalAuthentication(
                tenant_id=credential.tenant_id,
                service_principal_id=credential.client_id,
                service_principal_password=credential.client_secret.reveal(),
                cloud=cloud,
            )
        if isinstance(credential, AzureCliAuth):
            return authentication.AzureCliAuthentication(cloud=cloud)
        if isinstance(credential, ManagedIdentityAuth):
            if credential.client_id:
                return authentication.MsiAuthentication(
                    cloud=cloud, identity_config={"client_id": credential.client_id}
                )
            return authentication.MsiAuthentication(cloud=cloud)
        if isinstance(credential, InteractiveAuth):
            if not person_can_answer(os.environ):
                raise nobody_can_answer()
            # Constructing it may start the browser or device-code login at once.
            return authentication.InteractiveLoginAuthentication(
                tenant_id=credential.tenant_id or tenant_id, cloud=cloud
            )
    raise InvalidInputError(
        "auth",
        type(credential).__name__,
        "it must be an mlboot auth choice (AzureCliAuth, ServicePrincipalAuth, "
        "ManagedIdentityAuth, InteractiveAuth) or an azureml-core authentication object",
        "pass one of those, or None for the default chain",
    )


class AzureMLBackend:
    """The :class:`~mlboot.Backend` that drives the real azureml-core SDK."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._workspaces: dict[WorkspaceRef, Any] = {}
        # SDK runs by workspace and id: submitted here, or looked up once with Run.get.
        self._runs: dict[tuple[WorkspaceRef, str], Any] = {}
        # Registered environments found by check_registered_environment, for the next submit.
        self._environments: dict[tuple[WorkspaceRef, str, str | None], Any] = {}
        # SDK datastores found by get_datastore (by name; None: the default), for the uploads
        # and the submit that follow: one lookup each.
        self._datastores: dict[tuple[WorkspaceRef, str | None], Any] = {}
        # Registered datasets found by check_registered_dataset, for the next submit.
        self._datasets: dict[tuple[WorkspaceRef, str, str | None], Any] = {}

    def __repr__(self) -> str:
        return f"AzureMLBackend(workspaces={len(self._workspaces)})"

    @property
    def clock(self) -> Clock:
        return self._clock

    def _sdk_workspace(self, ref: WorkspaceRef) -> Any:
        ignore_sdk_deprecations()
        install_deadline_hooks()
        with self._lock:
            found = self._workspaces.get(ref)
        if found is None:
            raise not_loaded(ref)
        return found

    # -- workspace -----------------------------------------------------------------------------

    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        auth = sdk_authentication(credential, cloud=cloud, tenant_id=tenant_id)
        from azureml.core import Workspace  # noqa: PLC0415  (the SDK loads only on use)

        install_deadline_hooks()

        doing = f"looking up {ref}"
        _check_reachable(_arm_endpoint(auth), doing)
        try:
            workspace = Workspace(
                ref.subscription_id, ref.resource_group, ref.name, auth=auth, _cloud=cloud
            )
        except Exception as exc:
            error = translate_sdk_error(exc, doing)
            if isinstance(error, NotFoundError) or (
                type(exc).__name__ == "ProjectSystemException"
                and "not found" in _text_of(exc).lower()
            ):
                raise workspace_not_found(ref) from exc
            raise error from exc
        # Workspace(...) swallows connection errors and would fail ~11 s later on first use.
        autorest = getattr(workspace, "_workspace_autorest_object", None)
        if autorest is None:
            endpoint = _arm_endpoint(auth) or "the Azure Resource Manager endpoint"
            raise NetworkError(
                f"could not reach Azure Resource Manager ({endpoint}) while {doing}. Fix: check "
                "the network connection, proxy settings and the cloud name in the config."
            )
        with self._lock:
            self._workspaces[ref] = workspace
        return WorkspaceInfo(ref=ref, location=str(autorest.location or ""))

    def azureml_workspace(self, ref: WorkspaceRef) -> object:
        return self._sdk_workspace(ref)

    # -- compute ---------------------------------------------------------------------------------

    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        # ComputeTarget(workspace, name) raises one class for a 404 and a 401/403/5xx alike, and
        # returns None for a computeType it does not know; its _get answers None only on a 404.
        from azureml.core.compute import ComputeTarget  # noqa: PLC0415  (the SDK loads only on use)

        workspace = self._sdk_workspace(ref)
        with _translated(f"looking up compute target {name!r} in {ref}"):
            payload = ComputeTarget._get(workspace, name)  # noqa: SLF001  (see above)
            return None if payload is None else _compute_info(workspace, payload)

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        from azureml.core.compute import ComputeTarget  # noqa: PLC0415

        workspace = self._sdk_workspace(ref)
        doing = f"creating compute target {name!r} in {ref}"
        try:
            configuration = _compute_provisioning_configuration(spec)
            # Starts the creation and returns; the waiting is mlboot's (never wait_for_completion).
            created = ComputeTarget.create(workspace, name, configuration)
            return _compute_info_from_sdk(created)
        except MlbootError:
            raise
        except Exception as exc:
            error = translate_sdk_error(exc, doing)
            if not isinstance(error, ConflictError) and _compute_says_exists(exc):
                error = ConflictError(f"compute target {name!r} already exists in {ref}: {error}")
            raise error from exc

    def update_compute_scale(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        from azureml.core.compute import AmlCompute, ComputeTarget  # noqa: PLC0415

        workspace = self._sdk_workspace(ref)
        with _translated(f"updating the scale settings of compute target {name!r} in {ref}"):
            payload = ComputeTarget._get(workspace, name)  # noqa: SLF001  (404 -> None, see get_compute)
            if payload is None:
                raise NotFoundError(f"compute target {name!r} does not exist in {ref}")
            cluster = AmlCompute.deserialize(workspace, payload)
            # azureml-core's update is a PATCH of the scale settings: the rest stays as it is.
            cluster.update(
                min_nodes=spec.min_nodes,
                max_nodes=spec.max_nodes,
                idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
            )
            cluster.refresh_state()
            return _compute_info_from_sdk(cluster)

    def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
        from azureml.core.compute import AmlCompute, ComputeTarget  # noqa: PLC0415

        workspace = self._sdk_workspace(ref)
        with _translated(f"looking up compute target {name!r} in {ref}"):
            payload = ComputeTarget._get(workspace, name)  # noqa: SLF001  (404 -> None, see get_compute)
            if payload is None:
                raise NotFoundError(f"compute target {name!r} does not exist in {ref}")
            if _compute_kind(payload) == AmlCompute._compute_type:  # noqa: SLF001  (no public name)
                return AmlCompute.deserialize(workspace, payload)
            # Other kinds: let the SDK pick its class (one more GET; this is an escape hatch).
            found = ComputeTarget(workspace, name)
        if found is None:
            raise ServiceError(
                f"azureml-core has no class for compute target {name!r} in {ref} "
                f"(computeType {_compute_kind(payload)!r})"
            )
        return found

    # -- environments ----------------------------------------------------------------------------

    def check_registered_environment(
        self, ref: WorkspaceRef, name: str, version: str | None
    ) -> None:
        workspace = self._sdk_workspace(ref)
        found = _run_registered_environment(workspace, name, version)
        with self._lock:  # the submit that follows sends it: one lookup per submit
            self._environments[(ref, name, version)] = found

    # -- data ------------------------------------------------------------------------------------

    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        from azureml.core import Datastore  # noqa: PLC0415  (the SDK loads only on use)

        workspace = self._sdk_workspace(ref)
        which = "the default datastore" if name is None else f"datastore {name!r}"
        doing = f"looking up {which} of {ref}"
        try:
            found = (
                workspace.get_default_datastore()
                if name is None
                else Datastore.get(workspace, name)
            )
        except Exception as exc:
            error = translate_sdk_error(exc, doing)
            if isinstance(error, NotFoundError):
                return None
            raise error from exc
        with self._lock:
            self._datastores[(ref, name)] = found
            self._datastores[(ref, str(found.name))] = found
        return DatastoreInfo(name=str(found.name), kind=str(found.datastore_type))

    def _sdk_datastore(self, ref: WorkspaceRef, name: str | None) -> Any:
        """The SDK datastore get_datastore found, else looked up now (once)."""
        with self._lock:
            found = self._datastores.get((ref, name))
        if found is not None:
            return found
        if self.get_datastore(ref, name) is None:
            which = "the default datastore" if name is None else f"datastore {name!r}"
            raise NotFoundError(
                f"{which} does not exist in {ref}. Fix: check the name in Azure ML studio, "
                "Data, Datastores."
            )
        with self._lock:
            return self._datastores[(ref, name)]

    def _blob_container(self, ref: WorkspaceRef, datastore: str, doing: str) -> Any:
        found = self._sdk_datastore(ref, datastore)
        if getattr(found, "datastore_type", None) != "AzureBlob":
            raise InvalidInputError(
                "datastore",
                datastore,
                f"mlboot uploads local inputs to blob datastores only, and {datastore!r} is "
                f"{getattr(found, 'datastore_type', 'of another kind')}",
                "make an Azure Blob datastore the workspace's default, or give the input as an "
                "azureml://datastores/<name>/paths/<path> URI of data already there",
            )
        if getattr(found, "credential_type", None) == "None":
            raise PermissionDeniedError(
                f"datastore {datastore!r} of {ref} has no account key or SAS token, so nothing "
                f"can be uploaded to it while {doing}. Fix: give the datastore a credential, or "
                "upload the data yourself and give its azureml://datastores/... URI."
            )
        return found.blob_service.get_container_client(found.container_name)

    def datastore_file_exists(self, ref: WorkspaceRef, datastore: str, path: str) -> bool:
        self._sdk_workspace(ref)
        doing = f"checking for {path!r} in datastore {datastore!r} of {ref}"
        container = self._blob_container(ref, datastore, doing)
        with _translated(doing):
            # One HEAD (Get Blob Properties): 404 is False, anything else but 200 raises.
            return bool(container.get_blob_client(path).exists())

    def upload_to_datastore(
        self,
        ref: WorkspaceRef,
        datastore: str,
        target_path: str,
        files: Sequence[tuple[Path, str]],
    ) -> None:
        self._sdk_workspace(ref)
        doing = f"uploading {len(files)} file(s) to {target_path!r} in datastore {datastore!r}"
        container = self._blob_container(ref, datastore, f"{doing} of {ref}")
        upload_files(container, target_path, files, lambda: _translated(f"{doing} of {ref}"))

    def check_input_kinds(self, kinds: Mapping[str, str]) -> None:
        check_data_support(kinds)

    def check_registered_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> None:
        from azureml.core import Dataset  # noqa: PLC0415  (the SDK loads only on use)

        if version is not None and not _DATASET_VERSION.fullmatch(version):
            raise InvalidInputError(
                "source",
                f"azureml:{name}:{version}",
                "azureml-core numbers a registered dataset's versions 1, 2, 3... (it reads "
                "the version as an int, so '01' would be 1 and '1.0' is refused by the service)",
                f"write the number Azure ML studio shows, e.g. 'azureml:{name}:2', or "
                f"'azureml:{name}@latest'",
            )
        workspace = self._sdk_workspace(ref)
        which = f"version {version}" if version else "the latest version"
        doing = f"looking up registered dataset {name!r} ({which}) in {ref}"
        try:
            # No retry of its own but its definition fetch's: mlboot retries above the seam.
            found = Dataset.get_by_name(workspace, name, version=version or "latest")
        except Exception as exc:
            error = translate_sdk_error(exc, doing)
            if isinstance(error, NotFoundError):
                shown = f" version {version}" if version else ""
                error = NotFoundError(
                    f"registered dataset {name!r}{shown} was not found in {ref}. Fix: check "
                    "the name and version in Azure ML studio, Data, Datasets."
                )
            raise error from exc
        _check_file_dataset(found, name, version)
        with self._lock:  # the submit that follows sends it: one lookup per submit
            self._datasets[(ref, name, version)] = found

    def _sdk_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> Any:
        with self._lock:
            found = self._datasets.pop((ref, name, version), None)
        if found is None:
            self.check_registered_dataset(ref, name, version)
            with self._lock:
                found = self._datasets.pop((ref, name, version))
        return found

    # -- runs ------------------------------------------------------------------------------------

    def _sdk_run(self, ref: WorkspaceRef, run_id: str) -> Any:
        """The SDK run for an id: the one submitted here, else looked up once and kept."""
        with self._lock:
            found = self._runs.get((ref, run_id))
        if found is not None:
            return found
        from azureml.core import Run  # noqa: PLC0415  (the SDK loads only on use)

        workspace = self._sdk_workspace(ref)
        with _translated(f"looking up run {run_id!r} in {ref}"):
            run = Run.get(workspace, run_id)
        with self._lock:
            return self._runs.setdefault((ref, run_id), run)

    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        """Submit the run, uploading exactly the files of the request's snapshot plan.

        azureml-core walks the folder it is given with rules of its own (it follows every
        link, and uploads a local workspace folder unless an ignore file leaves it out), so it
        is handed a staging folder holding the plan's files (hard links, or links to their
        real paths: nothing is copied), removed once the service has the snapshot.  The git
        details azureml-core records are read from the real source folder.
        """
        from azureml.core import Experiment  # noqa: PLC0415  (the SDK loads only on use)

        from mlboot._snapshot import materialize_snapshot  # noqa: PLC0415

        # Before the snapshot: nothing remote yet (submit_script asked already; a request
        # built by hand may not have).
        self.check_input_kinds({item.name: item.kind for item in request.inputs})
        plan = request.snapshot_plan()  # decided above the seam, by submit_script
        workspace = self._sdk_workspace(ref)
        doing = (
            f"submitting {request.script!r} as a run of experiment {request.experiment!r} "
            f"on {request.compute!r} in {ref}"
        )
        if request.environment is None:
            warn(
                f"No environment given for {request.script!r}: the run uses azureml-core's "
                "default environment (its openmpi4.1.0-ubuntu22.04 CPU image with Python 3.8 "
                "and azureml-defaults), not your packages. Fix: pass environment="
                "mlboot.Environment.from_pip_requirements(...) (or another Environment) to "
                "choose your own."
            )
        with tempfile.TemporaryDirectory(prefix="mlboot-snapshot-") as staging:
            staged = Path(staging) / plan.root.name
            materialize_snapshot(plan, staged, link=True)
            with _translated(doing):
                data = sdk_data(
                    request.inputs,
                    request.outputs,
                    request.arguments,
                    datastore=lambda name: self._sdk_datastore(ref, name),
                    dataset=lambda name, version: self._sdk_dataset(ref, name, version),
                )
                config = _run_script_run_config(
                    attrs.evolve(request, source_directory=staged),
                    workspace,
                    registered=self._registered(ref, request.environment),
                    data=data,
                )
                experiment = Experiment(workspace, request.experiment)
                # Returns once the service accepted the run; the waiting is mlboot's (never
                # wait_for_completion).  Tags are set by a second request right after.
                with _run_quiet_sdk():
                    run = experiment.submit(config, tags=dict(request.tags) or None)
                details = _run_details(run, None)
        with _translated(f"recording the git details of run {details.run_id!r} in {ref}"):
            _run_add_git_properties(run, plan.root)
        with self._lock:
            self._runs[(ref, details.run_id)] = run
        return details

    def _registered(self, ref: WorkspaceRef, environment: Environment | None) -> Any:
        """The SDK environment checked for this submit, if it was (else it is looked up)."""
        if environment is None or environment.kind != "registered":
            return None
        with self._lock:
            return self._environments.pop((ref, environment.name, environment.version), None)

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        run = self._sdk_run(ref, run_id)
        with _translated(f"reading the status of run {run_id!r} in {ref}"):
            return str(run.get_status())

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        run = self._sdk_run(ref, run_id)
        with _translated(f"reading the details of run {run_id!r} in {ref}"):
            return _run_details(run, run.get_details())

    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        from azureml.core import Experiment, Run  # noqa: PLC0415  (the SDK loads only on use)

        workspace = self._sdk_workspace(ref)
        found: list[tuple[str, RunDetails]] = []
        with _translated(f"listing the runs of {ref}"):
            # One query for the experiments (filtered by name when given), then at most `limit`
            # runs of each, newest first, from the service's own pages; merged below.
            for each in Experiment.list(workspace, experiment_name=experiment):
                if experiment is not None and each.name != experiment:
                    continue
                runs = Run.list(each, status=status, _rehydrate_runs=False)
                for run in itertools.islice(runs, limit):
                    dto = run._run_dto  # noqa: SLF001  (the listed values, without a request per run)
                    details = _run_listed(run, dto)
                    found.append((str(dto.get("created_utc") or details.start_time or ""), details))
        found.sort(key=lambda entry: entry[0], reverse=True)
        return [details for _, details in found[:limit]]

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        run = self._sdk_run(ref, run_id)
        with _translated(f"reading the log of run {run_id!r} in {ref}"):
            log_files = run.get_details().get("logFiles") or {}
            name = _run_primary_log(list(log_files))
            return "" if name is None else _run_download_text(log_files[name])

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        run = self._sdk_run(ref, run_id)
        with _translated(f"reading the metrics of run {run_id!r} in {ref}"):
            return _run_metrics(run.get_metrics())

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        run = self._sdk_run(ref, run_id)
        with _translated(f"downloading the outputs of run {run_id!r} in {ref}"):
            names = [name for name in run.get_file_names() if name.startswith("outputs/")]
            # azureml-core writes each file by its path: refuse a link on the way first.
            check_destination(destination, names)
            targets = [run_file_target(destination, name, fix=_RUN_FILE_FIX) for name in names]
            if names:
                # Writes each artifact to output_directory/<artifact path>, as listed above.
                run.download_files(prefix="outputs", output_directory=str(destination))
        return [target for target in targets if target.is_file()]

    def list_run_files(self, ref: WorkspaceRef, run_id: str) -> list[str]:
        run = self._sdk_run(ref, run_id)
        with _translated(f"listing the files of run {run_id!r} in {ref}"):
            # One paged listing of the run's artifacts (run history's artifact service).
            return sorted(str(name) for name in run.get_file_names())

    def download_run_files(
        self, ref: WorkspaceRef, run_id: str, destination: Path, names: Sequence[str]
    ) -> list[Path]:
        run = self._sdk_run(ref, run_id)
        # Checked again here, as download_run_outputs does: azureml-core writes by path.
        targets = [run_file_target(destination, name, fix=_RUN_FILE_FIX) for name in names]
        check_destination(destination, list(names))
        for name, target in zip(names, targets, strict=True):
            doing = f"downloading file {name!r} of run {run_id!r} in {ref} to {target}"
            with _translated(doing, writing=target):
                target.parent.mkdir(parents=True, exist_ok=True)
                # By name: download_files(prefix=) would write whatever the service lists then.
                run.download_file(name, output_file_path=str(target))
        return [target for target in targets if target.is_file()]

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        run = self._sdk_run(ref, run_id)
        with _translated(f"canceling run {run_id!r} in {ref}"):
            run.cancel()

    def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
        return self._sdk_run(ref, run_id)


# -- data: helpers ---------------------------------------------------------------------------------


def _check_file_dataset(found: Any, name: str, version: str | None) -> None:
    """A tabular dataset cannot be mounted or downloaded (azureml-core: FileDataset only)."""
    from azureml.data import FileDataset  # noqa: PLC0415  (the SDK loads only on use)

    if isinstance(found, FileDataset):
        return
    raise InvalidInputError(
        "source",
        f"azureml:{name}:{version}" if version else f"azureml:{name}@latest",
        f"registered dataset {name!r} is a {type(found).__name__}, and azureml-core mounts or "
        "downloads file datasets only",
        "pass the datastore path of its files (azureml://datastores/<name>/paths/<path>), or "
        "register them as a file dataset",
    )


# -- runs: helpers ---------------------------------------------------------------------------------

_RUN_FILE_FIX = "download it yourself with run.to_azureml().download_file(...)."
_RUN_ENVIRONMENT_STATUS = re.compile(r"Error retrieving the environment definition\. Code: (\d{3})")
_RUN_PYTHON_DEFAULT_MESSAGE = "No Python version provided"


class _RunDropPythonDefaultWarning(logging.Filter):
    """Drops azureml-core's 'defaulting to 3.x' warning: mlboot sets the version right after."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _RUN_PYTHON_DEFAULT_MESSAGE not in record.getMessage()


@contextlib.contextmanager
def _run_quiet_sdk() -> Iterator[None]:
    """Silence two SDK messages that do not apply to what mlboot builds.

    azureml-core's vendored ruamel.yaml warns (``PendingDeprecationWarning``) about its own
    ``load`` functions every time an environment is built (an error under ``-W error``; ignored
    with the SDK's other deprecations, :mod:`mlboot._backends._sdk_warnings`), and
    ``from_conda_specification`` logs that it pins a Python version mlboot then replaces.
    """
    ignore_sdk_deprecations()
    sdk_logger = logging.getLogger("azureml.core.environment")
    quiet = _RunDropPythonDefaultWarning()
    sdk_logger.addFilter(quiet)
    try:
        yield
    finally:
        sdk_logger.removeFilter(quiet)


def _run_script_run_config(
    request: RunRequest,
    workspace: Any = None,
    *,
    registered: Any = None,
    data: SdkData | None = None,
) -> Any:
    """The ``ScriptRunConfig`` for a request; remote only for a registered environment.

    ``registered`` is the SDK environment :meth:`AzureMLBackend.check_registered_environment`
    found for the request's registered environment; without it, ``workspace`` is needed to
    look it up (once).  ``data`` is the request's inputs and outputs in the SDK's terms
    (:func:`~mlboot._backends.azureml._data.sdk_data`): its arguments replace the request's.
    """
    from azureml.core import ScriptRunConfig  # noqa: PLC0415  (the SDK loads only on use)

    with _run_quiet_sdk():
        environment = (
            None
            if request.environment is None
            else _run_sdk_environment(request.environment, workspace, registered=registered)
        )
        duration: dict[str, int] = {}
        if request.max_run_duration_seconds is not None:
            duration["max_run_duration_seconds"] = request.max_run_duration_seconds
        config = ScriptRunConfig(
            source_directory=str(request.source_directory),
            script=request.script,
            arguments=list(request.arguments) if data is None else list(data.arguments),
            compute_target=request.compute,
            environment=environment,
            distributed_job_config=_run_distributed_config(
                request.distribution, request.node_count
            ),
            **duration,
        )
    # ScriptRunConfig has no node_count: it copies the distributed config's, else keeps 1.
    config.run_config.node_count = request.node_count
    if request.environment is not None and request.environment.variables:
        # The run configuration's variables; Environment.environment_variables is deprecated.
        # Secrets are revealed here, the one place the run needs their values.
        config.run_config.environment_variables = revealed(request.environment.variables)
    if data is not None:
        config.run_config.data_references = dict(data.data_references)
        # The SDK turns these into its Data / OutputData entries at submit (_update_args_and_io).
        config.run_config.data = dict(data.data)
        config.run_config.output_data = dict(data.output_data)
        config.run_config.environment_variables = {
            **config.run_config.environment_variables,
            **data.environment_variables,
        }
    return config


def _run_distributed_config(distribution: Distribution | None, node_count: int) -> Any:
    from azureml.core.runconfig import (  # noqa: PLC0415  (the SDK loads only on use)
        MpiConfiguration,
        PyTorchConfiguration,
    )

    from mlboot._distribution import MpiDistribution, PyTorchDistribution  # noqa: PLC0415

    if distribution is None:
        return None
    if isinstance(distribution, PyTorchDistribution):
        # PyTorchConfiguration counts processes in total, not per node.
        return PyTorchConfiguration(
            communication_backend=distribution.communication_backend.capitalize(),
            process_count=distribution.process_count(node_count),
            node_count=node_count,
        )
    if isinstance(distribution, MpiDistribution):
        return MpiConfiguration(
            process_count_per_node=distribution.process_count_per_node, node_count=node_count
        )
    raise InvalidInputError(
        "distribution",
        distribution,
        "it must be an mlboot.PyTorchDistribution or an mlboot.MpiDistribution",
        "pass one of those",
    )


def _run_sdk_environment(
    environment: Environment, workspace: Any, *, registered: Any = None
) -> Any:
    """The SDK ``Environment`` for mlboot's, its Python version always set explicitly.

    A registered environment is ``registered`` (already looked up), else looked up once.
    """
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415  (loads on use)

    if environment.kind == "registered":
        if registered is not None:
            return registered
        if workspace is None:
            raise ValueError("looking up a registered environment needs the SDK workspace")
        return _run_registered_environment(workspace, environment.name, environment.version)
    conda = (
        None if environment.conda_specification is None else str(environment.conda_specification)
    )
    pip = None if environment.pip_requirements is None else str(environment.pip_requirements)
    if environment.docker_image is not None:
        built = SdkEnvironment.from_docker_image(
            environment.name,
            environment.docker_image,
            conda_specification=conda,
            pip_requirements=pip,
        )
    elif conda is not None:
        built = SdkEnvironment.from_conda_specification(environment.name, conda)
    elif pip is not None:
        built = SdkEnvironment.from_pip_requirements(environment.name, pip)
    else:
        raise ValueError(f"environment {environment.name!r} names neither a file nor an image")
    if environment.python_version is not None:
        # Replaces the SDK's silent pin (python=3.8.13 for pip files, 3.10.18 for conda files).
        built.python.conda_dependencies.set_python_version(environment.python_version)
    return built


def _run_registered_environment(workspace: Any, name: str, version: str | None) -> Any:
    """One ``Environment.get``: azureml-core sends it once, with no retry of its own.

    mlboot's retries of it are above the seam (:func:`mlboot.submit_script`), under its one
    policy, so that they are the same on every backend.
    """
    from azureml.core import Environment as SdkEnvironment  # noqa: PLC0415  (loads on use)

    which = f"version {version}" if version else "the latest version"
    doing = f"looking up environment {name!r} ({which})"
    try:
        return SdkEnvironment.get(workspace, name, version=version)
    except Exception as exc:
        raise _run_environment_error(exc, doing, name, version) from exc


def _run_environment_error(
    exc: Exception, doing: str, name: str, version: str | None
) -> MlbootError:
    """Translate ``Environment.get``'s failure: a bare ``Exception`` whose text has the status.

    azureml-core raises ``Exception("Error retrieving the environment definition. Code: NNN
    ...")`` for any answer but 200 (and does not retry).
    """
    match = _RUN_ENVIRONMENT_STATUS.search(_text_of(exc))
    if match is None:
        return translate_sdk_error(exc, doing)
    status = int(match.group(1))
    if status == HTTPStatus.NOT_FOUND:
        return environment_not_found(name, version)
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return PermissionDeniedError(
            f"not allowed while {doing} (HTTP {status}). Fix: ask for a role on the workspace "
            "that can read environments."
        )
    transient = status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in (
        HTTPStatus.REQUEST_TIMEOUT,
        HTTPStatus.TOO_MANY_REQUESTS,
    )
    return ServiceError(
        f"the service answered HTTP {status} while {doing}: {_summary(exc)}",
        status=status,
        transient=transient,
    )


def _run_details(run: Any, details: dict[str, Any] | None) -> RunDetails:
    """Describe an SDK run; ``details`` is ``run.get_details()`` (``None``: the cached status)."""
    status = details.get("status") if details is not None else run.status
    return RunDetails(
        run_id=str(run.id),
        experiment=str(run.experiment.name),
        status=str(status or "NotStarted"),
        portal_url=_run_portal_url(run),
        error=None if details is None else _run_error_message(details.get("error")),
        start_time=None if details is None else _run_optional_str(details.get("startTimeUtc")),
        end_time=None if details is None else _run_optional_str(details.get("endTimeUtc")),
    )


def _run_listed(run: Any, dto: dict[str, Any]) -> RunDetails:
    """Describe a run from the record a run query returned (no request of its own)."""
    return RunDetails(
        run_id=str(run.id),
        experiment=str(run.experiment.name),
        status=str(dto.get("status") or "NotStarted"),
        portal_url=_run_portal_url(run),
        start_time=_run_optional_str(dto.get("start_time_utc")),
        end_time=_run_optional_str(dto.get("end_time_utc")),
    )


def _run_optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _run_portal_url(run: Any) -> str | None:
    try:
        return str(run.get_portal_url())
    except Exception:  # noqa: BLE001  (a missing link must not fail a status read)
        return None


def _run_download_text(url: str) -> str:
    from azureml._file_utils import download_file_stream  # noqa: PLC0415  (loads on use)
    from azureml._restclient.utils import create_session_with_retry  # noqa: PLC0415

    return str(download_file_stream(url, session=create_session_with_retry()))


def _run_metrics(raw: Any) -> dict[str, list[float | int | str]]:
    """``get_metrics()`` as name to list of values.

    A metric logged once comes back as a bare value, several times as a list, a table or rows
    as a dict of columns: each column becomes ``"<metric>/<column>"``.
    """
    metrics: dict[str, list[float | int | str]] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, dict):
            for column, cells in value.items():
                metrics[f"{name}/{column}"] = _run_metric_values(cells)
        else:
            metrics[str(name)] = _run_metric_values(value)
    return metrics


def _run_metric_values(value: Any) -> list[float | int | str]:
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, int | float | str) else str(item) for item in items]


def _run_add_git_properties(run: Any, root: Path) -> None:
    """Record the source folder's git details, which azureml-core read off the staging folder."""
    from azureml._base_sdk_common.tracking import (  # noqa: PLC0415  (the SDK loads only on use)
        global_tracking_info_registry,
    )

    properties = global_tracking_info_registry.gather_all(str(root))
    if properties:
        run.add_properties(properties)


def _compute_kind(payload: Any) -> str:
    properties = payload.get("properties") if isinstance(payload, dict) else None
    kind = properties.get("computeType") if isinstance(properties, dict) else None
    return str(kind) if kind else "Unknown"


def _compute_info(workspace: Any, payload: Any) -> ComputeInfo:
    """Describe a compute target from the service's JSON, reading a cluster off a real SDK object.

    Kinds other than a cluster keep only their name, computeType and provisioning state: mlboot
    only needs to say what they are.
    """
    from azureml.core.compute import AmlCompute  # noqa: PLC0415  (the SDK loads only on use)

    kind = _compute_kind(payload)
    if kind == AmlCompute._compute_type:  # noqa: SLF001  (no public name for it)
        return _compute_info_from_sdk(AmlCompute.deserialize(workspace, payload))
    properties = payload.get("properties") or {}
    return ComputeInfo(
        name=str(payload.get("name") or ""),
        kind=kind,
        provisioning_state=str(properties.get("provisioningState") or "Unknown"),
        provisioning_errors=_compute_errors(properties.get("provisioningErrors")),
    )


def _compute_info_from_sdk(cluster: Any) -> ComputeInfo:
    """Read an ``AmlCompute``'s attributes into a :class:`ComputeInfo`.

    The errors are the provisioning errors and then the cluster's resize errors
    (``status.errors``), where a quota shortfall shows once the cluster itself exists.
    """
    scale = cluster.scale_settings
    status = cluster.status
    return ComputeInfo(
        name=str(cluster.name),
        kind=CLUSTER_KIND,  # azureml-core's AmlCompute, the only class read here
        provisioning_state=str(cluster.provisioning_state or "Unknown"),
        vm_size=cluster.vm_size or None,
        vm_priority=_compute_priority(cluster.vm_priority),
        min_nodes=_compute_int(scale.minimum_node_count) if scale else None,
        max_nodes=_compute_int(scale.maximum_node_count) if scale else None,
        idle_seconds_before_scaledown=(
            _compute_int(scale.idle_seconds_before_scaledown) if scale else None
        ),
        provisioning_errors=_compute_errors(cluster.provisioning_errors)
        + _compute_errors(status.errors if status else None),
    )


# azureml-core reports "Dedicated" and "LowPriority", and takes the lower-case words.
_COMPUTE_PRIORITY_FROM_SDK = {"dedicated": DEDICATED, "lowpriority": LOW_PRIORITY}
_COMPUTE_PRIORITY_TO_SDK = {DEDICATED: "dedicated", LOW_PRIORITY: "lowpriority"}


def _compute_priority(value: Any) -> str | None:
    """mlboot's word for the SDK's priority; one it does not know passes as it is."""
    if not value:
        return None
    text = str(value)
    return _COMPUTE_PRIORITY_FROM_SDK.get(text.lower(), text)


def _compute_int(value: Any) -> int | None:
    # An empty duration ('') reads back as '' from azureml-core, not as a number of seconds.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _compute_provisioning_configuration(spec: ComputeSpec) -> Any:
    from azureml.core.compute import AmlCompute  # noqa: PLC0415  (the SDK loads only on use)

    return AmlCompute.provisioning_configuration(
        vm_size=spec.vm_size,
        vm_priority=_COMPUTE_PRIORITY_TO_SDK[spec.vm_priority],
        min_nodes=spec.min_nodes,
        max_nodes=spec.max_nodes,
        idle_seconds_before_scaledown=spec.idle_seconds_before_scaledown,
    )


def _compute_says_exists(exc: BaseException) -> bool:
    # The resource provider answers a taken name with 409 or with a 400 whose body says so.
    text = _text_of(exc).lower()
    return "already exist" in text or "alreadyexists" in text


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_CONNECT_TIMEOUT_SECONDS = 10.0


def _check_reachable(endpoint: str, doing: str) -> None:
    """Fail at once when the ARM endpoint refuses connections.

    ``Workspace(...)`` retries a refused connection for ~11 s, then swallows the error and fails
    another ~11 s later on first use.  One TCP connect tells the same story in milliseconds.
    Behind a proxy the endpoint is not reached directly, so nothing is checked there.
    """
    parts = urllib.parse.urlsplit(endpoint)
    if not parts.hostname or any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=_CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        raise NetworkError(
            f"could not reach Azure Resource Manager at {endpoint} while {doing}: "
            f"{exc.strerror or exc}. Fix: check the network connection, proxy settings "
            "(HTTPS_PROXY) and the cloud name in the config."
        ) from exc


def _arm_endpoint(auth: Any) -> str:
    with contextlib.suppress(Exception):
        return str(auth._cloud_type.endpoints.resource_manager)  # noqa: SLF001  (no public accessor)
    return ""


# -- deadlines: the SDK's retries and requests honour the public call's deadline ---------------

_hooks_lock = threading.Lock()
_hooks_installed = False


class _DeadlineAwareTime:
    """Stands in for ``time`` in the SDK modules whose retry loops sleep.

    Outside an mlboot call with a deadline it is :mod:`time` itself; inside one, a back-off
    sleep that would end after the deadline is not slept: the call ends at once, from the error
    that asked for the retry (the one being handled when the SDK sleeps).
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        deadline = current_deadline()
        if deadline is None:
            time.sleep(seconds)
        else:
            deadline.sleep(seconds, cause=sys.exc_info()[1])


def install_deadline_hooks() -> None:
    """Make every retry azureml-core (and the libraries under it) makes honour mlboot's deadlines.

    Installed once per process, at the backend's first remote call.  Each hook is a plain pass
    through unless the calling thread runs an mlboot call with a deadline
    (:mod:`mlboot._deadline`):

    * ``azureml._restclient.clientbase`` (the data plane's and run history's loop: 3 retries,
      32/64/128 s after a 429) and ``azureml._file_utils`` (log downloads) sleep through
      :class:`_DeadlineAwareTime`;
    * urllib3's ``Retry`` (msrest's 3 retries on 5xx, and 429 with ``Retry-After``) stops
      retrying when the next wait would end after the deadline, and the last answer stands,
      as when its retries run out;
    * ``requests.Session.request`` gets a time-out no longer than the time left, and is not
      sent once the deadline has passed;
    * the vendored storage client's retry (the snapshot's blob uploads) sleeps through the
      deadline too, and the SDK's worker threads (its ``WorkerPool``, and the thread pool in
      which a submit creates the snapshot) run their tasks under the deadline of the call that
      queued them.
    """
    global _hooks_installed  # noqa: PLW0603  (one installation per process)
    with _hooks_lock:
        if _hooks_installed:
            return
        import requests  # noqa: PLC0415  (the SDK loads only on use)
        from azureml._common.async_utils.worker_pool import WorkerPool  # noqa: PLC0415
        from azureml._execution import _commands  # noqa: PLC0415
        from azureml._file_utils import file_utils  # noqa: PLC0415
        from azureml._restclient import clientbase  # noqa: PLC0415
        from azureml._vendor.azure_storage.blob._shared.policies import (  # noqa: PLC0415
            StorageRetryPolicy,
        )
        from urllib3.util.retry import Retry  # noqa: PLC0415

        clientbase.time = _DeadlineAwareTime()
        file_utils.time = _DeadlineAwareTime()
        _hook_urllib3_retry(Retry)
        _hook_requests(requests.Session)
        _hook_storage_retry(StorageRetryPolicy)
        _hook_worker_pool(WorkerPool)
        _hook_snapshot_pool(_commands)
        _hooks_installed = True


def _urllib3_delay(retry: Any, response: Any) -> float:
    # What urllib3's Retry.sleep(response) would sleep: Retry-After if honoured, else back-off.
    if retry.respect_retry_after_header and response:
        after = retry.get_retry_after(response)
        if after:
            return float(after)
    return float(retry.get_backoff_time())


def _hook_urllib3_retry(retry_class: Any) -> None:
    from urllib3.exceptions import MaxRetryError, ResponseError  # noqa: PLC0415

    original_increment = retry_class.increment
    original_sleep = retry_class.sleep

    def increment(
        self: Any,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Any:
        new = original_increment(
            self,
            method,
            url,
            response=response,
            error=error,
            _pool=_pool,
            _stacktrace=_stacktrace,
        )
        deadline = current_deadline()
        if deadline is not None and not deadline.allows(_urllib3_delay(new, response)):
            # As when the retries run out: a response is returned as it is, an error raised.
            status = getattr(response, "status", None)
            reason = error or ResponseError(
                f"HTTP {status}: the next retry would end after mlboot's deadline"
            )
            raise MaxRetryError(_pool, url, reason) from reason
        return new

    def sleep(self: Any, response: Any = None) -> None:
        deadline = current_deadline()
        if deadline is None:
            original_sleep(self, response)
        else:
            deadline.sleep(_urllib3_delay(self, response), cause=None)

    retry_class.increment = increment
    retry_class.sleep = sleep


# The index of timeout in Session.request's positional parameters after method and url.
_TIMEOUT_POSITION = 6


def _clamped_timeout(timeout: Any, left: float) -> Any:
    if timeout is None:
        return left
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        return min(float(timeout), left)
    if isinstance(timeout, tuple) and len(timeout) == 2:  # noqa: PLR2004  (connect, read)
        return tuple(left if part is None else min(float(part), left) for part in timeout)
    return timeout


def _hook_requests(session_class: Any) -> None:
    original_request = session_class.request

    def request(self: Any, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = current_deadline()
        if deadline is not None:
            left = deadline.remaining()
            if left <= 0:
                deadline.trip(sys.exc_info()[1])
                raise DeadlineReachedError(deadline)
            if len(args) > _TIMEOUT_POSITION:
                args = (
                    *args[:_TIMEOUT_POSITION],
                    _clamped_timeout(args[_TIMEOUT_POSITION], left),
                    *args[_TIMEOUT_POSITION + 1 :],
                )
            else:
                kwargs["timeout"] = _clamped_timeout(kwargs.get("timeout"), left)
        return original_request(self, method, url, *args, **kwargs)

    session_class.request = request


def _hook_storage_retry(policy_class: Any) -> None:
    original_sleep = policy_class.sleep

    def sleep(self: Any, settings: Any, transport: Any) -> None:
        deadline = current_deadline()
        if deadline is None:
            original_sleep(self, settings, transport)
            return
        backoff = self.get_backoff_time(settings)
        if backoff and backoff > 0:
            deadline.sleep(float(backoff), cause=sys.exc_info()[1])

    policy_class.sleep = sleep


def _hook_snapshot_pool(commands: Any) -> None:
    # A submit creates its snapshot in a one-thread pool (multiprocessing.dummy.Pool), one task
    # per pool, and waits for it without a time-out: the task must carry the submit's deadline
    # into that thread.
    original_pool = commands.Pool

    def pool(*args: Any, **kwargs: Any) -> Any:
        made = original_pool(*args, **kwargs)
        original_apply_async = made.apply_async

        def apply_async(func: Any, *task_args: Any, **task_kwargs: Any) -> Any:
            result = original_apply_async(carried(func), *task_args, **task_kwargs)
            # Its one task is queued: closed now, the pool's threads end with the task even when
            # the submit fails before the SDK's own close() (which would leak a running pool).
            made.close()
            return result

        made.apply_async = apply_async
        return made

    commands.Pool = pool


def _hook_worker_pool(pool_class: Any) -> None:
    original_submit = pool_class.submit

    def submit(self: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        return original_submit(self, carried(func), *args, **kwargs)

    pool_class.submit = submit
