"""The azure-ai-ml (SDK v2) backend: the ONE module of mlboot that imports ``azure.ai.ml``.

It also imports ``azure.identity`` (the credentials) and, for metrics, MLflow with the
azureml-mlflow plugin; all of them inside functions, so ``import mlboot`` loads none of them and
selecting this backend without ``mlboot[v2]`` installed is a
:class:`~mlboot.exceptions.MissingExtraError`.  Like the azureml-core backend it only
translates: mlboot's requests into azure-ai-ml calls, answers into mlboot's records, and SDK
exceptions into :mod:`mlboot.exceptions` at one boundary (:func:`translate_sdk_error`).

Where azure-ai-ml's public calls would do something mlboot refuses, it goes one level down, to
the same generated REST operations the SDK itself calls:

* **Compute creation and rescaling** send the PUT with ``polling=False``: azure-ai-ml's
  ``begin_create_or_update`` hard-codes ``polling=True``, whose ``LROPoller`` starts a thread
  that polls every 30 s.  Creation first looks the name up and sends the PUT with
  ``If-None-Match: *``, so an existing cluster is never overwritten (the service's PUT is an
  upsert); the wait is mlboot's, polling :meth:`AzureMLV2Backend.get_compute`.
* **The code snapshot** is mlboot's own plan: its files are hard-linked into a staging folder
  (nothing is copied) and uploaded as a ``Code`` asset whose ignore file is empty, so neither
  azure-ai-ml's unpruned walk of the source folder (its size check, hash and file list each
  walk it, 0.3 s per 20,000 ignored files) nor its root-only ignore rules ever apply; the job
  then names that code version by its id.
* **Logs** are read from run history's ``details`` (``jobs.stream`` only prints), and a
  cancel is sent with ``polling=False``.
* **Data** goes as the job's own ``inputs``/``outputs`` (:func:`sdk_data`); a local input's
  upload, the marker check and a run's files (its folder in ``workspaceartifactstore``) go
  through a blob client of the datastore's lent credential, bounded by the call's deadline;
  ``jobs.download`` is not used (it writes whatever the service lists, names unchecked).

Metrics come through MLflow, floats only, with the tracking URI that ``workspaces.get``
registered with this client's own credential: the backend refuses to read metrics through
azureml-mlflow's fallback chain, which ends in browser and device-code prompts.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shlex
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
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
from mlboot._backends._placeholders import PLACEHOLDER, unknown_placeholder
from mlboot._backends._sdk_warnings import ignore_sdk_deprecations
from mlboot._backends._seam import (
    DEFAULT_OUTPUT_PATH,
    ComputeInfo,
    ComputeSpec,
    DataInput,
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
    summary,
    translated,
    workspace_not_found,
)
from mlboot._backends._service_records import arm_errors, primary_log, run_error_message
from mlboot._backends.azureml_v2._git import git_properties, install_git_hook
from mlboot._backends.azureml_v2._git import set_by_mlboot as git_set_by_mlboot
from mlboot._backends.azureml_v2._in_run import TRACKING_VARIABLE
from mlboot._clock import Clock, SystemClock
from mlboot._deadline import Background, Deadline, DeadlineReachedError
from mlboot._deadline import current as current_deadline
from mlboot._links import check_destination
from mlboot._spellings import CLUSTER_KIND, DEDICATED, LOW_PRIORITY, TERMINAL_RUN_STATUSES
from mlboot._warnings import warn
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    MissingExtraError,
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
    "EXTRA",
    "AzureMLV2Backend",
    "check_installed",
    "command_line",
    "deadline_policy",
    "install_deadline_hooks",
    "sdk_command_job",
    "sdk_credential",
    "sdk_data",
    "translate_sdk_error",
    "upload_snapshot",
]

EXTRA = "v2"
"""The extra that installs this backend's SDKs: ``mlboot[v2]``."""

_INSTALL = "python -m pip install 'mlboot[v2]'"
# azure-identity's own default for the CLI subprocess; stated, so a hung `az` ends.
_CLI_TIMEOUT_SECONDS = 10
# A browser login a person was asked for ends after this long without an answer.
_INTERACTIVE_TIMEOUT_SECONDS = 300
# Log downloads (SAS URLs): connect and read time-outs, so a stalled blob never hangs a read.
_DOWNLOAD_TIMEOUT_SECONDS = (10.0, 60.0)
# What azure-ai-ml's jobs.stream pauses between reads at first; here only for the log read.
_AUTHORITIES = {
    "AzureCloud": "login.microsoftonline.com",
    "AzureChinaCloud": "login.chinacloudapi.cn",
    "AzureUSGovernment": "login.microsoftonline.us",
}
# The base image of an environment built from a pip or conda file alone: azure-ai-ml needs an
# image, and this is the CPU image azureml-core builds such environments on.
DEFAULT_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
_JOB_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_JOB_NAME_PREFIX_LIMIT = 200


def check_installed() -> None:
    """Raise :class:`~mlboot.exceptions.MissingExtraError` unless ``mlboot[v2]``'s SDKs import."""
    ignore_sdk_deprecations()  # its schemas warn hundreds of times while they load
    try:
        import azure.ai.ml  # noqa: PLC0415  (the check is the import itself)
        import azure.identity  # noqa: PLC0415  (the check is the import itself)
    except ImportError as exc:
        raise MissingExtraError(
            f"backend 'azureml-v2' needs azure-ai-ml and azure-identity, which are not "
            f"installed ({exc}). Fix: install mlboot's v2 extra: {_INSTALL}",
            extra=EXTRA,
        ) from exc
    _quiet_sdk_logger(azure.ai.ml.__name__)
    install_deadline_hooks()
    install_git_hook()


def _quiet_sdk_logger(name: str) -> None:
    """Make the SDK's logger a library's logger again: silent unless the program configures logging.

    ``import azure.ai.ml`` puts a stderr handler on its ``azure.ai.ml`` logger, at INFO, with
    propagation off, so every INFO and WARNING record of the SDK (its experimental-class
    notices, upload messages) would be printed.  That handler is taken off, and a
    ``NullHandler`` keeps Python's last-resort handler from printing in its place; the records
    propagate as usual, to whatever handlers the program itself set up.
    """
    sdk_logger = logging.getLogger(name)
    for handler in list(sdk_logger.handlers):
        if type(handler) is logging.StreamHandler and handler.stream is sys.stderr:
            sdk_logger.removeHandler(handler)
    if not any(isinstance(handler, logging.NullHandler) for handler in sdk_logger.handlers):
        sdk_logger.addHandler(logging.NullHandler())
    sdk_logger.setLevel(logging.NOTSET)
    sdk_logger.propagate = True


# -- deadlines: azure-core's retries honour the public call's deadline -----------------------------

_hooks_lock = threading.Lock()
_hooks_installed = False


class _DeadlineTransport:
    """Stands in for the transport azure-core's ``RetryPolicy`` sleeps through, under a deadline.

    A back-off (its own, or a ``Retry-After``) that would end after the deadline is not slept:
    the call ends at once, from the error or answer that asked for the retry.
    """

    def __init__(self, transport: Any, deadline: Deadline, cause: BaseException | None) -> None:
        self._transport = transport
        self._deadline = deadline
        self._cause = cause

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def sleep(self, seconds: float) -> None:
        self._deadline.sleep(seconds, cause=self._cause)


def install_deadline_hooks() -> None:
    """Make azure-core's retry loop (every azure-ai-ml client's) honour mlboot's deadlines.

    Installed once per process.  A pass-through unless the calling thread runs an mlboot call
    with a deadline (:mod:`mlboot._deadline`); then each retry's pause goes through
    :class:`_DeadlineTransport`, and :func:`deadline_policy` bounds each request's time.
    """
    global _hooks_installed  # noqa: PLW0603  (one installation per process)
    with _hooks_lock:
        if _hooks_installed:
            return
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.core.pipeline.policies import RetryPolicy  # noqa: PLC0415

        original_sleep = RetryPolicy.sleep

        def sleep(self: Any, settings: Any, transport: Any, response: Any = None) -> None:
            deadline = current_deadline()
            if deadline is not None:
                # What asked for the retry: the error being handled, else the answer (a 503).
                cause = sys.exc_info()[1]
                if cause is None and response is not None:
                    answer = response.http_response
                    cause = HttpResponseError(
                        message=f"HTTP {answer.status_code} {answer.reason}", response=answer
                    )
                transport = _DeadlineTransport(transport, deadline, cause)
            original_sleep(self, settings, transport, response)

        RetryPolicy.sleep = sleep  # type: ignore[method-assign]  # the hook, see the docstring
        _install_storage_sleep_hook()
        _bound_upload_waits()
        _hooks_installed = True


# azure-ai-ml's upload helpers; each ends an upload with `while uploaded < total: sleep(0.5)`.
UPLOAD_HELPERS = (
    "azure.ai.ml._artifacts._blob_storage_helper",
    "azure.ai.ml._artifacts._gen2_storage_helper",
)


class _DeadlineTime:
    """The ``time`` module for azure-ai-ml's upload helpers, whose ``sleep`` honours deadlines.

    After its upload threads are done, a helper waits until its file counter (``+=`` from
    several threads, which can lose an update) reaches the file total, with no time-out.  Under a
    deadline each pause goes through it, so such a wait ends with the call's time-out instead of
    never; outside one it is ``time.sleep``.
    """

    def __getattr__(self, name: str) -> Any:
        import time  # noqa: PLC0415  (the real module, for every other name)

        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        deadline = current_deadline()
        if deadline is None:
            import time  # noqa: PLC0415

            time.sleep(seconds)
        else:
            deadline.sleep(seconds, cause=None)


def _bound_upload_waits() -> None:
    import importlib  # noqa: PLC0415

    for name in UPLOAD_HELPERS:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover  (an azure-ai-ml without this helper)
            continue
        module.time = _DeadlineTime()  # type: ignore[attr-defined]  # shadows `time` there only


def _storage_retry_cause(settings: Any) -> BaseException | None:
    """What made azure-storage-blob retry: the error being handled, else the last answer (a
    503), from the retry settings' history of tries."""
    from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

    cause = sys.exc_info()[1]
    history = settings.get("history") if isinstance(settings, dict) else None
    if cause is None and history:
        last = history[-1]
        cause = getattr(last, "error", None)
        answer = getattr(last, "http_response", None)
        if cause is None and answer is not None:
            cause = HttpResponseError(
                message=f"HTTP {answer.status_code} {answer.reason}", response=answer
            )
    return cause


def _install_storage_sleep_hook() -> None:
    """The same for azure-storage-blob's own retry loop (``StorageRetryPolicy``, not azure-core's).

    Every blob request of the backend goes through it: azure-ai-ml's snapshot upload and the
    data methods' container clients.
    """
    try:
        from azure.storage.blob._shared.policies import (  # noqa: PLC0415  (no public name)
            StorageRetryPolicy,
        )
    except ImportError:  # pragma: no cover  (azure-ai-ml depends on azure-storage-blob)
        return
    original_sleep: Any = StorageRetryPolicy.sleep  # untyped: azure-storage's policies

    def sleep(self: Any, settings: Any, transport: Any) -> None:
        deadline = current_deadline()
        if deadline is not None:
            transport = _DeadlineTransport(transport, deadline, _storage_retry_cause(settings))
        original_sleep(self, settings, transport)

    StorageRetryPolicy.sleep = sleep  # type: ignore[method-assign]  # the hook, see above


def _deadline_policy(defaults: Mapping[str, float | None]) -> Any:
    """An azure-core policy that gives each request no more time than the deadline leaves.

    ``defaults``: the request options it sets (each to the time left, or less where the request
    or ``defaults`` already says less).  A request due after the deadline is not sent.
    """
    from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: PLC0415

    class DeadlinePolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]  # any request type
        def on_request(self, request: Any) -> None:
            deadline = current_deadline()
            if deadline is None:
                return
            left = deadline.remaining()
            if left <= 0:
                deadline.trip(None)
                raise DeadlineReachedError(deadline)
            options = request.context.options
            for option, default in defaults.items():
                given = options.get(option)
                limit = given if isinstance(given, int | float) else default
                options[option] = left if limit is None else min(limit, left)

        def on_exception(self, request: Any) -> None:  # noqa: ARG002  (azure-core calls it so)
            deadline = current_deadline()
            if deadline is not None and deadline.remaining() <= 0:
                deadline.trip(sys.exc_info()[1])

    return DeadlinePolicy()


def deadline_policy() -> Any:
    """The deadline policy of every ``MLClient`` request, before the retry policy.

    The time left becomes that request's whole time-out (azure-core's ``timeout`` option,
    across its retries, and its read time-out).
    """
    return _deadline_policy({"timeout": None, "read_timeout": None})


def storage_deadline_policy() -> Any:
    """The deadline policy of mlboot's blob clients, run on each try (after storage's retry).

    No try waits for a connection or an answer longer than the deadline leaves, nor longer than
    azure-storage-blob's own time-outs (20 s to connect, 60 s to read).
    """
    from azure.storage.blob._shared.constants import (  # noqa: PLC0415  (the SDK's defaults)
        CONNECTION_TIMEOUT,
        READ_TIMEOUT,
    )

    return _deadline_policy(
        {"connection_timeout": CONNECTION_TIMEOUT, "read_timeout": READ_TIMEOUT}
    )


# -- errors: the one translation -------------------------------------------------------------------


def translate_sdk_error(exc: BaseException, doing: str) -> MlbootError:
    """Turn an exception raised by azure-ai-ml, azure-identity or azure-core into mlboot's own.

    ``doing`` says what was being attempted.  The HTTP status of the first
    ``HttpResponseError`` along the exception's causes decides; a request that never got an
    answer is a :class:`~mlboot.exceptions.NetworkError` (transient), as on azureml-core.
    """
    if isinstance(exc, MlbootError):
        return exc
    from azure.core import exceptions as core  # noqa: PLC0415  (the SDK loads only on use)

    chain = list(causes(exc))
    http = next((e for e in chain if isinstance(e, core.HttpResponseError)), None)
    status = getattr(http, "status_code", None) if http is not None else None
    detail = summary(http if http is not None else exc)
    if any(isinstance(e, core.ClientAuthenticationError) for e in chain):
        return authentication_failed(doing, detail)
    retry_after = header_retry_after(http) if http is not None else None
    by_status = error_for_status(status, doing, detail, retry_after=retry_after)
    if by_status is not None:
        return by_status
    if status is None and any(
        isinstance(e, core.ServiceRequestError | core.ServiceResponseError | ConnectionError)
        for e in chain
    ):
        return NetworkError(
            f"could not reach Azure while {doing}: {detail}. Fix: check the network connection "
            "and any proxy settings."
        )
    transient = status == HTTPStatus.REQUEST_TIMEOUT
    name = type(http if http is not None else exc).__name__
    return ServiceError(f"{name} while {doing}: {detail}", status=status, transient=transient)


def _translated(doing: str) -> contextlib.AbstractContextManager[None]:
    return translated(translate_sdk_error, doing)


def _is_not_found(exc: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

    return any(
        isinstance(e, ResourceNotFoundError)
        or getattr(e, "status_code", None) == HTTPStatus.NOT_FOUND
        for e in causes(exc)
    )


# -- credentials -----------------------------------------------------------------------------------


def sdk_credential(credential: Credential | None, *, cloud: str, tenant_id: str | None) -> Any:
    """The azure-identity credential for mlboot's auth choice; none of them ever prompts.

    ``None`` runs mlboot's default chain (:func:`mlboot._auth.resolve_default_auth`), which
    chooses an interactive login only where a person can answer.  An azure-core
    ``TokenCredential`` (anything with ``get_token``) passes through unchanged.
    """
    from azure import identity  # noqa: PLC0415  (the SDK loads only on use)

    if credential is None:
        credential, _tried = resolve_default_auth(tenant_id=tenant_id)
    authority = _AUTHORITIES.get(cloud)
    with _translated("preparing Azure credentials"):
        if isinstance(credential, ServicePrincipalAuth):
            return identity.ClientSecretCredential(
                credential.tenant_id,
                credential.client_id,
                credential.client_secret.reveal(),
                authority=authority,
            )
        if isinstance(credential, AzureCliAuth):
            return identity.AzureCliCredential(process_timeout=_CLI_TIMEOUT_SECONDS)
        if isinstance(credential, ManagedIdentityAuth):
            return identity.ManagedIdentityCredential(client_id=credential.client_id)
        if isinstance(credential, InteractiveAuth):
            if not person_can_answer(os.environ):
                raise nobody_can_answer()
            return identity.InteractiveBrowserCredential(
                tenant_id=credential.tenant_id or tenant_id,
                authority=authority,
                timeout=_INTERACTIVE_TIMEOUT_SECONDS,
            )
    if callable(getattr(credential, "get_token", None)):
        return credential  # an azure-core TokenCredential of the caller's
    raise InvalidInputError(
        "auth",
        type(credential).__name__,
        "on the azureml-v2 backend it must be an mlboot auth choice (AzureCliAuth, "
        "ServicePrincipalAuth, ManagedIdentityAuth, InteractiveAuth) or an azure-core "
        "TokenCredential (any azure-identity credential)",
        "pass one of those, or None for the default chain",
    )


# -- compute: helpers ------------------------------------------------------------------------------

# azure-ai-ml says "dedicated"/"low_priority" (REST: "Dedicated"/"LowPriority").
_PRIORITY_FROM_SDK = {
    "dedicated": DEDICATED,
    "low_priority": LOW_PRIORITY,
    "lowpriority": LOW_PRIORITY,
}
_PRIORITY_TO_SDK = {DEDICATED: "dedicated", LOW_PRIORITY: "low_priority"}
# azure-ai-ml's compute types (lower case) -> the service's names, which mlboot reports.
_COMPUTE_KINDS = {
    "amlcompute": CLUSTER_KIND,
    "computeinstance": "ComputeInstance",
    "kubernetes": "Kubernetes",
    "virtualmachine": "VirtualMachine",
    "synapsespark": "SynapseSpark",
}


def _word(value: Any) -> str | None:
    """An SDK value (a plain string or a string enum) as its text."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def compute_info(rest: Any) -> ComputeInfo:
    """Describe a compute from the service's REST object (``ComputeResource``).

    The SDK's entity (``Compute._from_rest_object``) gives the cluster's settings; its
    ``provisioning_errors`` keep only the first error's code, so the errors (provisioning, then
    the cluster's resize errors, where a quota shortfall shows once it exists) are read from
    the REST object itself.
    """
    from azure.ai.ml.entities import AmlCompute, Compute  # noqa: PLC0415

    entity = Compute._from_rest_object(rest)  # noqa: SLF001  (the SDK's own reading of the answer)
    body = rest.as_dict() if hasattr(rest, "as_dict") else {}
    properties = body.get("properties") or {}
    errors = arm_errors(properties.get("provisioningErrors")) + arm_errors(
        (properties.get("properties") or {}).get("errors")
    )
    kind_word = (_word(getattr(entity, "type", None)) or "").lower()
    kind = _COMPUTE_KINDS.get(kind_word) or str(properties.get("computeType") or "Unknown")
    state = _word(getattr(entity, "provisioning_state", None)) or "Unknown"
    if not isinstance(entity, AmlCompute):
        return ComputeInfo(
            name=str(entity.name or body.get("name") or ""),
            kind=kind,
            provisioning_state=state,
            provisioning_errors=errors,
        )
    tier = _word(entity.tier)
    return ComputeInfo(
        name=str(entity.name),
        kind=CLUSTER_KIND,
        provisioning_state=state,
        vm_size=entity.size or None,
        vm_priority=None if not tier else _PRIORITY_FROM_SDK.get(tier.lower(), tier),
        min_nodes=_count(entity.min_instances),
        max_nodes=_count(entity.max_instances),
        idle_seconds_before_scaledown=_count(entity.idle_time_before_scale_down),
        provisioning_errors=errors,
    )


def sdk_cluster(name: str, spec: ComputeSpec, location: str | None) -> Any:
    """The ``AmlCompute`` entity for a spec: every setting, so a full PUT keeps the priority."""
    from azure.ai.ml.entities import AmlCompute  # noqa: PLC0415

    return AmlCompute(
        name=name,
        size=spec.vm_size,
        tier=_PRIORITY_TO_SDK[spec.vm_priority],
        min_instances=spec.min_nodes,
        max_instances=spec.max_nodes,
        idle_time_before_scale_down=spec.idle_seconds_before_scaledown,
        location=location or None,
    )


# -- runs: helpers ---------------------------------------------------------------------------------

# REST JobStatus -> mlboot's RunStatus words.  They are spelled alike; the table says so once,
# and NotResponding and Paused stay what they are (mlboot does not count them as final).
_STATUSES = {
    word.lower(): word
    for word in (
        "NotStarted",
        "Starting",
        "Provisioning",
        "Preparing",
        "Queued",
        "Running",
        "Finalizing",
        "CancelRequested",
        "Completed",
        "Failed",
        "Canceled",
        "NotResponding",
        "Paused",
        "Unknown",
    )
}


def run_status(value: Any) -> str:
    """mlboot's word for a job's status; one mlboot does not know passes as it is."""
    text = _word(value)
    if not text:
        return "NotStarted"
    return _STATUSES.get(text.lower(), text)


_INPUT_VARIABLE = "MLBOOT_INPUT_"
_OUTPUT_VARIABLE = "MLBOOT_OUTPUT_"


def _literal(text: str) -> str:
    """``text`` quoted for the shell, a ``${{`` in it split so azure-ai-ml sees no placeholder."""
    return shlex.quote(text).replace("${{", "$''{{")


def _argument(argument: str, known: set[tuple[str, str]]) -> str:
    """One argument for the shell: its text quoted, each ``${{inputs.<name>}}`` of the run's
    data left for the service to replace with the path (in double quotes, as one word)."""
    pieces: list[str] = []
    last = 0
    for match in PLACEHOLDER.finditer(argument):
        key = (match.group(1), match.group(2))
        if key not in known:
            raise unknown_placeholder(argument, match)
        if match.start() > last:
            pieces.append(_literal(argument[last : match.start()]))
        pieces.append(f'"${{{{{key[0]}.{key[1]}}}}}"')
        last = match.end()
    if last < len(argument) or not pieces:
        pieces.append(_literal(argument[last:]))
    return "".join(pieces)


def command_line(
    script: str,
    arguments: tuple[str, ...],
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
) -> str:
    """``python <script> <arguments>`` for the job, every part quoted for the shell.

    azure-ai-ml reads ``${{...}}`` in a command as a placeholder for an input or output.  An
    argument's ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` of one of the run's ``inputs``
    and ``outputs`` stays one, for the service to replace with the path on the compute; any
    other literal ``${{`` is split into two quoted strings (``'$''{{'``), which the shell joins
    back into the same text.  Each input and output also reaches the script as the variable
    ``MLBOOT_INPUT_<name>`` / ``MLBOOT_OUTPUT_<name>``, set by the command itself (a job's
    ``environment_variables`` are not expanded), as on every backend.
    """
    known = {("inputs", name) for name in inputs} | {("outputs", name) for name in outputs}
    variables = [
        *(f'{_INPUT_VARIABLE}{name}="${{{{inputs.{name}}}}}"' for name in inputs),
        *(f'{_OUTPUT_VARIABLE}{name}="${{{{outputs.{name}}}}}"' for name in outputs),
    ]
    words = [_literal(script), *(_argument(argument, known) for argument in arguments)]
    return " ".join([*variables, "python", *words])


# mlboot's input and output modes -> azure-ai-ml's.
_INPUT_MODES = {"mount": "ro_mount", "download": "download"}
_OUTPUT_MODES = {"upload": "upload", "mount": "rw_mount"}


def datastore_uri(datastore: str, path: str) -> str:
    """The ``azureml://`` URI of ``path`` in ``datastore``, the form both SDKs read."""
    return f"azureml://datastores/{datastore}/paths/{path}"


def sdk_data(
    request: RunRequest,
    *,
    job: str,
    default_datastore: str | None,
    input_types: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job's ``inputs`` and ``outputs`` (azure-ai-ml ``Input`` / ``Output``) for a request.

    ``job`` is the job's name, which an output path's ``{run-id}`` becomes (mlboot names the
    job, so it is known before the PUT); ``{output-name}`` becomes the output's name.
    ``input_types`` gives each input's ``uri_file`` or ``uri_folder`` (``uri_folder`` if not
    given); ``default_datastore`` is where outputs without a destination go
    (:data:`DEFAULT_OUTPUT_PATH`).
    """
    from azure.ai.ml import Input, Output  # noqa: PLC0415  (the SDK loads only on use)

    inputs: dict[str, Any] = {}
    for item in request.inputs:
        mode = _INPUT_MODES.get(item.mode)
        path = _input_path(item)
        if mode is None or path is None:
            raise InvalidInputError(
                "inputs",
                item,
                "an input's mode must be 'mount' or 'download' and its kind 'datastore', "
                "'url' or 'dataset', with the fields of that kind",
                "build the input with mlboot.Input",
            )
        kind = "uri_file" if item.kind == "url" else input_types.get(item.name, "uri_folder")
        inputs[item.name] = Input(type=kind, path=path, mode=mode)
    outputs: dict[str, Any] = {}
    for output in request.outputs:
        mode = _OUTPUT_MODES.get(output.mode)
        store = output.datastore or default_datastore
        if mode is None or store is None:
            raise InvalidInputError(
                "outputs",
                output,
                "an output's mode must be 'upload' or 'mount', and the workspace must have a "
                "default datastore for an output without a destination",
                "build the output with mlboot.Output, with a destination if there is no "
                "default datastore",
            )
        path = output.path if output.datastore and output.path is not None else None
        path = (path or DEFAULT_OUTPUT_PATH).replace("{run-id}", job)
        path = path.replace("{output-name}", output.name)
        outputs[output.name] = Output(type="uri_folder", path=datastore_uri(store, path), mode=mode)
    return inputs, outputs


def _input_path(item: DataInput) -> str | None:
    if item.kind == "datastore" and item.datastore:
        return datastore_uri(item.datastore, item.path or "")
    if item.kind == "url" and item.url:
        return item.url
    if item.kind == "dataset" and item.dataset:
        if item.version:
            return f"azureml:{item.dataset}:{item.version}"
        return f"azureml:{item.dataset}@latest"
    return None


def _pip_lines(path: Path) -> list[str]:
    """The requirement and option lines of a pip file, as conda's ``pip:`` section takes them."""
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(?:^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def _with_python(dependencies: list[Any], version: str | None) -> list[Any]:
    if version is None or any(
        isinstance(item, str) and re.match(r"python(?:[=<>!~ ]|$)", item) for item in dependencies
    ):
        return dependencies
    return [f"python={version}", *dependencies]


def conda_definition(environment: Environment) -> dict[str, Any] | None:
    """The conda file azure-ai-ml gets for an environment built from a pip or conda file.

    A pip file becomes the ``pip:`` section of a conda file (azure-ai-ml takes conda files only);
    the Python version mlboot chose is always pinned in it.
    """
    import yaml  # noqa: PLC0415  (only when a file is sent)

    if environment.conda_specification is not None:
        loaded = yaml.safe_load(environment.conda_specification.read_text(encoding="utf-8"))
        spec: dict[str, Any] = dict(loaded or {})
        spec["dependencies"] = _with_python(
            list(spec.get("dependencies") or []), environment.python_version
        )
        return spec
    if environment.pip_requirements is not None:
        return {
            "name": environment.name,
            "channels": ["conda-forge"],
            "dependencies": _with_python(
                ["pip", {"pip": _pip_lines(environment.pip_requirements)}],
                environment.python_version,
            ),
        }
    return None


def sdk_environment(environment: Environment | None) -> Any:
    """What the job's ``environment`` is: an ``Environment`` entity, or a registered reference.

    A registered or curated environment is ``"name:version"``, or ``"name@latest"`` for the
    latest (checked before the submit by :meth:`AzureMLV2Backend.check_registered_environment`).
    """
    from azure.ai.ml.entities import Environment as SdkEnvironment  # noqa: PLC0415

    if environment is None:
        return SdkEnvironment(
            image=DEFAULT_BASE_IMAGE,
            conda_file={
                "name": "mlboot-default",
                "channels": ["conda-forge"],
                "dependencies": _with_python(["pip"], _local_python()),
            },
        )
    if environment.kind == "registered":
        if environment.version:
            return f"{environment.name}:{environment.version}"
        return f"{environment.name}@latest"
    image = environment.docker_image or DEFAULT_BASE_IMAGE
    return SdkEnvironment(image=image, conda_file=conda_definition(environment))


def _local_python() -> str:
    from mlboot._environment import local_python_version  # noqa: PLC0415

    return local_python_version()


def sdk_distribution(distribution: Distribution | None) -> Any:
    from azure.ai.ml import MpiDistribution as SdkMpi  # noqa: PLC0415
    from azure.ai.ml import PyTorchDistribution as SdkPyTorch  # noqa: PLC0415

    from mlboot._distribution import MpiDistribution, PyTorchDistribution  # noqa: PLC0415

    if distribution is None:
        return None
    if isinstance(distribution, PyTorchDistribution):
        # Counted per node, as mlboot counts; the communication backend is torch.distributed's
        # choice in the script (v2 has no field for it).
        return SdkPyTorch(process_count_per_instance=distribution.process_count_per_node)
    if isinstance(distribution, MpiDistribution):
        return SdkMpi(process_count_per_instance=distribution.process_count_per_node)
    raise InvalidInputError(
        "distribution",
        distribution,
        "it must be an mlboot.PyTorchDistribution or an mlboot.MpiDistribution",
        "pass one of those",
    )


def job_name(experiment: str) -> str:
    """A new job name the client chooses: the experiment, then a random part.

    A job name is letters, digits, ``_`` and ``-`` (at most 255); choosing it here makes a
    retried PUT of the same job the same job.
    """
    stem = _JOB_NAME_INVALID.sub("_", experiment).strip("_-")[:_JOB_NAME_PREFIX_LIMIT] or "run"
    return f"{stem}_{uuid.uuid4().hex[:12]}"


def sdk_command_job(
    request: RunRequest,
    *,
    code: str,
    name: str,
    default_datastore: str | None = None,
    input_types: Mapping[str, str] | None = None,
    environment_id: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> Any:
    """The command job azure-ai-ml sends for ``request``; ``code`` names the uploaded snapshot.

    ``default_datastore`` and ``input_types`` are for the request's data (:func:`sdk_data`).
    ``environment_id``: the environment already created for the request's (its ARM id), instead
    of :func:`sdk_environment`'s entity for azure-ai-ml to create.  ``properties``: the job's
    properties (its source folder's git details, :func:`~._git.git_properties`).
    """
    from azure.ai.ml import command  # noqa: PLC0415  (the SDK loads only on use)

    environment = request.environment
    # The script's mlboot.log_metric goes through MLflow in a v2 job (mlboot._script_api).
    variables = {TRACKING_VARIABLE: "mlflow"}
    if environment is not None:
        variables.update(revealed(environment.variables))
    inputs, outputs = sdk_data(
        request, job=name, default_datastore=default_datastore, input_types=input_types or {}
    )
    return command(
        code=code,
        command=command_line(
            request.script, request.arguments, inputs=list(inputs), outputs=list(outputs)
        ),
        inputs=inputs or None,
        outputs=outputs or None,
        environment=environment_id or sdk_environment(environment),
        environment_variables=variables,
        distribution=sdk_distribution(request.distribution),
        instance_count=request.node_count,
        compute=request.compute,
        experiment_name=request.experiment,
        display_name=request.script,
        tags=dict(request.tags) or None,
        timeout=request.max_run_duration_seconds,
        name=name,
        properties=dict(properties or {}) or None,
    )


def created_environment(client: Any, environment: Any) -> str | None:
    """Create the job's environment if it is an entity (not a registered reference); its id.

    What azure-ai-ml's ``jobs.create_or_update`` would do first itself (an anonymous
    environment's version is the hash of its definition, so creating it again is a no-op).
    """
    from azure.ai.ml.entities import Environment as SdkEnvironment  # noqa: PLC0415

    if not isinstance(environment, SdkEnvironment):
        return None
    return str(client.environments.create_or_update(environment).id)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


def _error_of(details: Any) -> str | None:
    error = getattr(details, "error", None)
    if error is None:
        return None
    as_dict = getattr(error, "as_dict", None)
    return run_error_message(as_dict() if callable(as_dict) else error)


def run_details(job: Any, details: Any = None) -> RunDetails:
    """Describe a job (``jobs.get``), with run history's ``details`` when read."""
    created = getattr(getattr(job, "creation_context", None), "created_at", None)
    return RunDetails(
        run_id=str(job.name),
        experiment=str(getattr(job, "experiment_name", None) or ""),
        status=run_status(getattr(job, "status", None)),
        portal_url=getattr(job, "studio_url", None) or None,
        error=None if details is None else _error_of(details),
        start_time=_iso(getattr(details, "start_time_utc", None)) if details else _iso(created),
        end_time=None if details is None else _iso(getattr(details, "end_time_utc", None)),
    )


def metric_values(history: Any) -> list[float | int | str]:
    """One metric's MLflow history in logging order (step, then time), floats only."""
    ordered = sorted(history, key=lambda m: (m.step or 0, m.timestamp or 0))
    return [float(m.value) for m in ordered]


def upload_snapshot(client: Any, request: RunRequest) -> str:
    """Upload exactly the plan's files as an anonymous code version; return its id.

    The plan's files are hard-linked into a staging folder (symbolically linked where a hard
    link fails), which is all azure-ai-ml walks, hashes and uploads.
    """
    from azure.ai.ml._utils._asset_utils import IgnoreFile  # noqa: PLC0415  (no public name)
    from azure.ai.ml.entities._assets import Code  # noqa: PLC0415  (no public name)

    from mlboot._backends.azureml_v2._quiet import silence_upload_reset  # noqa: PLC0415
    from mlboot._snapshot import materialize_snapshot  # noqa: PLC0415

    silence_upload_reset()  # its storage helpers print a colour reset to stderr on each upload
    plan = request.snapshot_plan()  # decided above the seam, by submit_script
    with tempfile.TemporaryDirectory(prefix="mlboot-snapshot-") as staging:
        staged = Path(staging) / plan.root.name
        materialize_snapshot(plan, staged, link=True)
        # An empty IgnoreFile: the staged folder holds only planned files, and azure-ai-ml
        # must not apply a root .amlignore/.gitignore a second time.
        code = Code(path=str(staged), ignore_file=IgnoreFile())
        created = client._code.create_or_update(code)  # noqa: SLF001  (MLClient's code operations have no public name)
    return str(created.id)


ARTIFACT_STORE = "workspaceartifactstore"
"""The datastore that holds every job's files (``ExperimentRun/dcid.<job>/``): its logs and its
default output, which is where ``jobs.download`` reads them."""
_RUN_FILE_FIX = (
    "download it yourself from the workspaceartifactstore datastore, folder "
    "ExperimentRun/dcid.<run id>/."
)


def _artifact_prefix(run_id: str) -> str:
    return f"ExperimentRun/dcid.{run_id}/"


# -- the backend -----------------------------------------------------------------------------------


class _Workspace:
    """What this backend keeps of a workspace it found: its client and its MLflow URI."""

    __slots__ = ("client", "location", "tracking_uri")

    def __init__(self, client: Any, location: str, tracking_uri: str | None) -> None:
        self.client = client
        self.location = location
        self.tracking_uri = tracking_uri


class AzureMLV2Backend:
    """The :class:`~mlboot.Backend` that drives the real azure-ai-ml SDK (v2)."""

    def __init__(
        self, *, clock: Clock | None = None, client_options: Mapping[str, Any] | None = None
    ) -> None:
        """``client_options`` are passed to every ``MLClient`` (tests give an azure-core
        ``transport``, or a ``cloud_metadata`` for an emulated cloud)."""
        check_installed()
        self._clock = clock if clock is not None else SystemClock()
        self._client_options = dict(client_options or {})
        self._lock = threading.Lock()
        self._workspaces: dict[WorkspaceRef, _Workspace] = {}
        # (workspace, name or None for the default) -> what the service said of the datastore
        self._datastores: dict[tuple[WorkspaceRef, str | None], DatastoreInfo] = {}
        # (workspace, name, version asked) -> a checked data asset's (type, version found), kept
        # from check_registered_dataset for the submit that follows
        self._datasets: dict[tuple[WorkspaceRef, str, str | None], tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"AzureMLV2Backend(workspaces={len(self._workspaces)})"

    @property
    def clock(self) -> Clock:
        return self._clock

    def _found(self, ref: WorkspaceRef) -> _Workspace:
        with self._lock:
            found = self._workspaces.get(ref)
        if found is None:
            raise not_loaded(ref)
        return found

    def _client(self, ref: WorkspaceRef) -> Any:
        return self._found(ref).client

    # -- workspace -------------------------------------------------------------------------------

    def get_workspace(
        self,
        ref: WorkspaceRef,
        *,
        credential: Credential | None,
        cloud: str,
        tenant_id: str | None,
    ) -> WorkspaceInfo:
        sdk = sdk_credential(credential, cloud=cloud, tenant_id=tenant_id)
        from azure.ai.ml import MLClient  # noqa: PLC0415  (the SDK loads only on use)

        doing = f"looking up {ref}"
        with _translated(doing):
            client = MLClient(
                sdk,
                ref.subscription_id,
                ref.resource_group,
                ref.name,
                cloud=cloud,
                show_progress=False,  # nothing prints unless asked
                enable_telemetry=False,  # no request but the workflow's own
                **{
                    **self._client_options,
                    "per_call_policies": [
                        deadline_policy(),
                        *self._client_options.get("per_call_policies", ()),
                    ],
                },
            )
        try:
            # MLClient sends nothing; this GET signs in, and registers the MLflow tracking URI
            # with this client's credential (azureml-mlflow's get_mlflow_tracking_uri_v2).
            workspace = client.workspaces.get(ref.name)
        except Exception as exc:
            if _is_not_found(exc):
                raise workspace_not_found(ref) from exc
            raise translate_sdk_error(exc, doing) from exc
        location = str(getattr(workspace, "location", None) or "")
        tracking_uri = getattr(workspace, "mlflow_tracking_uri", None) or None
        with self._lock:
            self._workspaces[ref] = _Workspace(client, location, tracking_uri)
        return WorkspaceInfo(ref=ref, location=location)

    # -- compute ---------------------------------------------------------------------------------

    def _rest_compute(self, ref: WorkspaceRef, name: str) -> Any:
        """One GET of the compute's REST object; ``None`` when it does not exist."""
        client = self._client(ref)
        try:
            return client.compute._operation.get(  # noqa: SLF001  (the full answer: see compute_info)
                ref.resource_group, ref.name, name
            )
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    def get_compute(self, ref: WorkspaceRef, name: str) -> ComputeInfo | None:
        with _translated(f"looking up compute target {name!r} in {ref}"):
            rest = self._rest_compute(ref, name)
            return None if rest is None else compute_info(rest)

    def _put_compute(
        self, ref: WorkspaceRef, name: str, spec: ComputeSpec, *, create: bool
    ) -> ComputeInfo:
        found = self._found(ref)
        cluster = sdk_cluster(name, spec, found.location)
        headers = {"If-None-Match": "*"} if create else {}
        # The generated operation azure-ai-ml's begin_create_or_update calls, without its
        # polling=True: NoPolling starts no thread, and result() is the PUT's own answer.
        poller = found.client.compute._operation.begin_create_or_update(  # noqa: SLF001  (see above)
            ref.resource_group,
            ref.name,
            name,
            cluster._to_rest_object(),  # noqa: SLF001  (the SDK's own body for the entity)
            polling=False,
            headers=headers,
        )
        return compute_info(poller.result())

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        doing = f"creating compute target {name!r} in {ref}"
        with _translated(doing):
            # The service's PUT is an upsert: look first, and make the PUT conditional, so an
            # existing cluster (someone else's, just made) is never overwritten.
            if self._rest_compute(ref, name) is not None:
                raise ConflictError(f"compute target {name!r} already exists in {ref}")
            return self._put_compute(ref, name, spec, create=True)

    def update_compute_scale(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        with _translated(f"updating the scale settings of compute target {name!r} in {ref}"):
            if self._rest_compute(ref, name) is None:
                raise NotFoundError(f"compute target {name!r} does not exist in {ref}")
            # azure-ai-ml's update is a full PUT: the whole spec goes, VM priority included.
            return self._put_compute(ref, name, spec, create=False)

    # -- environments ----------------------------------------------------------------------------

    def check_registered_environment(
        self, ref: WorkspaceRef, name: str, version: str | None
    ) -> None:
        client = self._client(ref)
        which = f"version {version}" if version else "the latest version"
        doing = f"looking up environment {name!r} ({which})"
        try:
            if version:
                client.environments.get(name, version=version)
            else:
                client.environments.get(name, label="latest")
        except Exception as exc:
            if _is_not_found(exc):
                raise environment_not_found(name, version) from exc
            raise translate_sdk_error(exc, doing) from exc

    # -- data ------------------------------------------------------------------------------------

    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        client = self._client(ref)
        which = "the default datastore" if name is None else f"datastore {name!r}"
        doing = f"looking up {which} of {ref}"
        try:
            found = client.datastores.get_default() if name is None else client.datastores.get(name)
        except StopIteration:  # get_default of a workspace without one: its listing was empty
            return None
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise translate_sdk_error(exc, doing) from exc
        info = DatastoreInfo(name=str(found.name), kind=_word(found.type) or "Unknown")
        with self._lock:
            self._datastores[(ref, name)] = info
            self._datastores[(ref, info.name)] = info
        return info

    def _datastore(self, ref: WorkspaceRef, name: str) -> DatastoreInfo:
        """The datastore get_datastore found, else looked up now (once)."""
        with self._lock:
            found = self._datastores.get((ref, name))
        if found is None:
            found = self.get_datastore(ref, name)
        if found is None:
            raise NotFoundError(
                f"datastore {name!r} does not exist in {ref}. Fix: check the name in Azure ML "
                "studio, Data, Datastores."
            )
        return found

    def _container(self, ref: WorkspaceRef, datastore: str, doing: str) -> Any:
        """A blob container client of ``datastore``, with the credential the service lends.

        One ``listSecrets`` (a SAS token or the account key; an identity-based datastore gets
        this client's own credential), as azure-ai-ml's own uploads do; the client's requests are
        bounded by the calling thread's deadline (:func:`storage_deadline_policy`).
        """
        from azure.ai.ml._artifacts._artifact_utilities import (  # noqa: PLC0415  (no public name)
            get_datastore_info,
        )
        from azure.storage.blob import ContainerClient  # noqa: PLC0415

        info = self._datastore(ref, datastore)
        if info.kind != "AzureBlob":
            raise InvalidInputError(
                "datastore",
                datastore,
                f"mlboot reads and writes files of blob datastores only, and {datastore!r} is "
                f"{info.kind}",
                "make an Azure Blob datastore the workspace's default, or give the input as an "
                "azureml://datastores/<name>/paths/<path> URI of data already there",
            )
        client = self._client(ref)
        with _translated(doing):
            details = get_datastore_info(client.datastores, datastore)
        if not details.get("credential"):
            raise PermissionDeniedError(
                f"datastore {datastore!r} of {ref} lent no account key, SAS token or identity "
                f"while {doing}. Fix: give the datastore a credential, or upload the data "
                "yourself and give its azureml://datastores/... URI."
            )
        credential = details["credential"]
        if isinstance(credential, str) and "sig=" not in credential:
            # An account key, not a SAS token: said with its account's name, which a URL that
            # is not <account>.blob.<suffix> (a private endpoint, an emulator) does not give.
            credential = {"account_name": details["storage_account"], "account_key": credential}
        return ContainerClient(
            details["account_url"],
            details["container_name"],
            credential=credential,
            _additional_pipeline_policies=[storage_deadline_policy()],
        )

    def datastore_file_exists(self, ref: WorkspaceRef, datastore: str, path: str) -> bool:
        doing = f"checking for {path!r} in datastore {datastore!r} of {ref}"
        container = self._container(ref, datastore, doing)
        with _translated(doing):
            # One HEAD (Get Blob Properties): 404 is False, anything else but 200 raises.
            return bool(container.get_blob_client(path).exists())

    def _probed_type(self, ref: WorkspaceRef, name: str, datastore: str, path: str) -> str:
        """``uri_file`` if ``path`` is a blob that is not a directory's, else ``uri_folder``.

        A directory of a hierarchical-namespace account is a blob too, with the metadata
        ``hdi_isfolder=true``.  When the blob cannot be read (the user may submit jobs without
        reading their data, which only the compute's identity may), the input goes as a folder,
        with a warning saying how to say so and stop it.
        """
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        doing = f"checking for {path!r} in datastore {datastore!r} of {ref}"
        try:
            container = self._container(ref, datastore, doing)
            with _translated(doing):
                try:
                    found = container.get_blob_client(path).get_blob_properties()  # one HEAD
                except ResourceNotFoundError:
                    return "uri_folder"
        except (AuthenticationError, PermissionDeniedError) as exc:
            warn(
                f"input {name!r}: mlboot could not read {path!r} in datastore {datastore!r} to "
                f"tell a file from a folder ({type(exc).__name__}), so it is sent as a folder "
                "(uri_folder). Fix: end the path with '/' to say it is a folder, or, for a file, "
                "give this login read access to the datastore's storage."
            )
            return "uri_folder"
        metadata = getattr(found, "metadata", None) or {}
        return (
            "uri_folder" if str(metadata.get("hdi_isfolder", "")).lower() == "true" else "uri_file"
        )

    def upload_to_datastore(
        self,
        ref: WorkspaceRef,
        datastore: str,
        target_path: str,
        files: Sequence[tuple[Path, str]],
    ) -> None:
        doing = (
            f"uploading {len(files)} file(s) to {target_path!r} in datastore {datastore!r} of {ref}"
        )
        container = self._container(ref, datastore, doing)
        upload_files(container, target_path, files, lambda: _translated(doing))

    def check_registered_dataset(self, ref: WorkspaceRef, name: str, version: str | None) -> None:
        client = self._client(ref)
        which = f"version {version}" if version else "the latest version"
        doing = f"looking up registered data asset {name!r} ({which}) in {ref}"
        try:
            found = (
                client.data.get(name, version=version)
                if version
                else client.data.get(name, label="latest")
            )
        except Exception as exc:
            if _is_not_found(exc):
                shown = f" version {version}" if version else ""
                raise NotFoundError(
                    f"registered data asset {name!r}{shown} was not found in {ref}. Fix: check "
                    "the name and version in Azure ML studio, Data, Data assets."
                ) from exc
            raise translate_sdk_error(exc, doing) from exc
        kind = (_word(getattr(found, "type", None)) or "").lower()
        if kind not in {"uri_file", "uri_folder"}:
            raise InvalidInputError(
                "source",
                f"azureml:{name}:{version}" if version else f"azureml:{name}@latest",
                f"registered data asset {name!r} is of type {kind or 'unknown'}, and mlboot "
                "mounts or downloads uri_file and uri_folder data assets only",
                "pass the datastore path of its files (azureml://datastores/<name>/paths/"
                "<path>), or register them as a uri_folder data asset",
            )
        with self._lock:  # the submit that follows sends it as that type and version
            self._datasets[(ref, name, version)] = (kind, str(found.version))

    def _resolved_inputs(
        self, ref: WorkspaceRef, request: RunRequest
    ) -> tuple[RunRequest, dict[str, str]]:
        """The request with each data asset's version pinned, and each input's type.

        The type is ``uri_file`` or ``uri_folder``, as the job's inputs must say.  A datastore
        path ending in ``/`` (an uploaded local folder's does) or the datastore's root is a
        folder; another is a file when a blob of that name exists that is not a directory's
        (one ``HEAD``; a local file input arrives as the path of its one uploaded file).  A data
        asset has the type it was registered with, and ``@latest`` becomes the version
        :meth:`check_registered_dataset` found, so the job reads exactly what was checked.
        """
        types: dict[str, str] = {}
        inputs: list[DataInput] = []
        for item in request.inputs:
            if item.kind == "datastore" and item.datastore and item.path:
                if item.path.endswith("/"):
                    types[item.name] = "uri_folder"
                elif self._datastore(ref, item.datastore).kind == "AzureBlob":
                    types[item.name] = self._probed_type(ref, item.name, item.datastore, item.path)
                # else not a blob store: a folder, azure-ai-ml's default type
            elif item.kind == "dataset" and item.dataset:
                key = (ref, item.dataset, item.version)
                with self._lock:
                    found = self._datasets.pop(key, None)
                if found is None:
                    self.check_registered_dataset(ref, item.dataset, item.version)
                    with self._lock:
                        found = self._datasets.pop(key)
                types[item.name], version = found
                item = attrs.evolve(item, version=version)  # noqa: PLW2901  (the pinned record)
            inputs.append(item)
        return attrs.evolve(request, inputs=tuple(inputs)), types

    def _default_datastore_for(self, ref: WorkspaceRef, request: RunRequest) -> str | None:
        if all(output.datastore for output in request.outputs):
            return None
        found = self.get_datastore(ref, None)
        if found is None:
            raise ServiceError(
                f"{ref} has no default datastore for the outputs without a destination. Fix: "
                "set one (Azure ML studio, Data, Datastores), or give each output a "
                "destination=azureml://datastores/<name>/paths/<path>."
            )
        return found.name

    # -- runs ------------------------------------------------------------------------------------

    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        """Upload the plan's files, then PUT the command job under a name chosen here."""
        client = self._client(ref)
        doing = (
            f"submitting {request.script!r} as a run of experiment {request.experiment!r} "
            f"on {request.compute!r} in {ref}"
        )
        if request.environment is None:
            warn(
                f"No environment given for {request.script!r}: the run uses the "
                "openmpi4.1.0-ubuntu22.04 CPU image with this Python's version and no packages "
                "of yours (azure-ai-ml has no default environment). Fix: pass environment="
                "mlboot.Environment.from_pip_requirements(...) (or another Environment) to "
                "choose your own."
            )
        request, input_types = self._resolved_inputs(ref, request)
        default_datastore = self._default_datastore_for(ref, request)
        root = request.source_directory
        with _translated(doing):
            # The environment's PUT and the git details of the source folder, on a thread of
            # their own while the snapshot uploads: none needs the others' answer.
            environment = sdk_environment(request.environment)
            alongside = Background(
                lambda: (created_environment(client, environment), git_properties(root)),
                name="mlboot-submit",
                what=f"creating the environment of {request.script!r}",
            )
            try:
                code = upload_snapshot(client, request)
            except Exception:
                alongside.settle()  # ended, whatever its outcome, before this error is raised
                raise  # (an interrupt, Ctrl-C, is raised at once: the thread is a daemon)
            environment_id, properties = alongside.result()
            job = sdk_command_job(
                request,
                code=code,
                name=job_name(request.experiment),
                default_datastore=default_datastore,
                input_types=input_types,
                environment_id=environment_id,
                properties=properties,
            )
            with git_set_by_mlboot():  # azure-ai-ml's own would read the working directory's
                created = client.jobs.create_or_update(job)
            return run_details(created)

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        client = self._client(ref)
        with _translated(f"reading the status of run {run_id!r} in {ref}"):
            return run_status(client.jobs.get(run_id).status)

    def _history(self, client: Any, run_id: str) -> Any:
        return client.jobs._runs_operations.get_run_details(run_id)  # noqa: SLF001  (run history's details: no public call)

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        client = self._client(ref)
        with _translated(f"reading the details of run {run_id!r} in {ref}"):
            job = client.jobs.get(run_id)
            return run_details(job, self._history(client, run_id))

    def list_runs(
        self, ref: WorkspaceRef, *, experiment: str | None, status: str | None, limit: int
    ) -> list[RunDetails]:
        client = self._client(ref)
        with _translated(f"listing the runs of {ref}"):
            # v2's job list has no experiment or status filter: the pages are read until
            # `limit` runs match, newest first as the service sends them.
            listed = (run_details(job) for job in client.jobs.list())
            matching = (
                details
                for details in listed
                if (experiment is None or details.experiment == experiment)
                and (status is None or details.status == status)
            )
            found = list(itertools.islice(matching, limit))
        found.sort(key=lambda details: details.start_time or "", reverse=True)
        return found

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        from azure.ai.ml._utils.utils import download_text_from_url  # noqa: PLC0415

        client = self._client(ref)
        with _translated(f"reading the log of run {run_id!r} in {ref}"):
            log_files: Mapping[str, str] = self._history(client, run_id).log_files or {}
            name = primary_log(log_files)
            if name is None:
                return ""
            return str(
                download_text_from_url(
                    log_files[name],
                    client.jobs._requests_pipeline,  # noqa: SLF001  (the SDK's own pipeline, its retries)
                    timeout=_DOWNLOAD_TIMEOUT_SECONDS,
                )
            )

    def _mlflow_client(self, ref: WorkspaceRef) -> Any:
        found = self._found(ref)
        try:
            from azureml.mlflow._internal.service_context_loader import (  # noqa: PLC0415
                _AzureMLServiceContextLoader,
            )
            from mlflow.tracking import MlflowClient  # noqa: PLC0415
        except ImportError as exc:
            raise MissingExtraError(
                f"reading metrics on the azureml-v2 backend needs MLflow and azureml-mlflow, "
                f"which are not installed ({exc}). Fix: install mlboot's v2 extra: {_INSTALL}",
                extra=EXTRA,
            ) from exc
        uri = found.tracking_uri
        if not uri or not _AzureMLServiceContextLoader.has_service_context(uri):
            # azureml-mlflow would build its own login, ending in browser and device-code
            # prompts nobody may be there to answer.
            raise AuthenticationError(
                f"the MLflow tracking URI of {ref} is not bound to this login (the workspace "
                "answered no mlflow tracking URI, or azureml-mlflow did not take the "
                "credential), and mlboot does not let azureml-mlflow fall back to an "
                "interactive login. Fix: check that azureml-mlflow is installed with "
                f"azure-ai-ml ({_INSTALL}).",
                tried=["the credential of the workspace's MLClient"],
            )
        return MlflowClient(tracking_uri=uri)

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        mlflow = self._mlflow_client(ref)
        with _translated(f"reading the metrics of run {run_id!r} in {ref}"):
            latest = mlflow.get_run(run_id).data.metrics
            return {
                str(key): metric_values(mlflow.get_metric_history(run_id, key))
                for key in sorted(latest)
            }

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        # The job's default output is its artifact-store folder's outputs/ (what jobs.download
        # fetches, with a listing and writes of its own): listed, then fetched by name, every
        # name checked, as for any of the run's files; it lands in destination/outputs/.
        names = [name for name in self.list_run_files(ref, run_id) if name.startswith("outputs/")]
        return self.download_run_files(ref, run_id, destination, names)

    def list_run_files(self, ref: WorkspaceRef, run_id: str) -> list[str]:
        doing = f"listing the files of run {run_id!r} in {ref}"
        container = self._container(ref, ARTIFACT_STORE, doing)
        prefix = _artifact_prefix(run_id)
        with _translated(doing):
            # One paged List Blobs of the job's folder in the artifact store, where the service
            # keeps a job's logs and its default output (what jobs.download reads).
            listed = container.list_blobs(name_starts_with=prefix)
            return sorted(str(blob.name)[len(prefix) :] for blob in listed)

    def download_run_files(
        self, ref: WorkspaceRef, run_id: str, destination: Path, names: Sequence[str]
    ) -> list[Path]:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        # Checked again here, as above the seam: the files are written by name.
        targets = [run_file_target(destination, name, fix=_RUN_FILE_FIX) for name in names]
        check_destination(destination, list(names))
        if not names:
            return []
        doing = f"downloading the files of run {run_id!r} in {ref}"
        container = self._container(ref, ARTIFACT_STORE, doing)
        prefix = _artifact_prefix(run_id)
        written: list[Path] = []
        for name, target in zip(names, targets, strict=True):
            with _translated(f"downloading file {name!r} of run {run_id!r} in {ref} to {target}"):
                try:
                    stream = container.get_blob_client(prefix + name).download_blob()
                except ResourceNotFoundError:
                    continue  # gone since it was listed: left out, as the seam says
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as handle:
                    stream.readinto(handle)
            written.append(target)
        return written

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        client = self._client(ref)
        with _translated(f"canceling run {run_id!r} in {ref}"):
            if run_status(client.jobs.get(run_id).status) in TERMINAL_RUN_STATUSES:
                return  # a run that has ended is left as it is
            # polling=False: the request is sent and no poller thread waits for its end.
            client.jobs.begin_cancel(run_id, polling=False)
