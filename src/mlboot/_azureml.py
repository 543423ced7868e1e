"""The azureml-core backend: the ONE module of mlboot that imports ``azureml``.

Every import of the SDK happens inside a function, so ``import mlboot`` stays fast and free of
it.  This module only translates: mlboot's requests into SDK calls, SDK answers into mlboot's
records, and SDK exceptions into :mod:`mlboot.exceptions` at one boundary
(:func:`translate_sdk_error`).  Decisions (validation, get-or-create, waiting) live above it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlboot._auth import (
    AzureCliAuth,
    InteractiveAuth,
    ManagedIdentityAuth,
    ServicePrincipalAuth,
    person_can_answer,
    resolve_default_auth,
)
from mlboot._backend import (
    ComputeInfo,
    ComputeSpec,
    Metrics,
    RunDetails,
    RunRequest,
    WorkspaceInfo,
    WorkspaceRef,
)
from mlboot._clock import Clock, SystemClock
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    MlbootError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from mlboot._auth import Credential

__all__ = ["AzureMLBackend", "sdk_authentication", "translate_sdk_error"]

_STATUS_PATTERNS = (
    re.compile(r"Response Code:\s*(\d{3})"),
    re.compile(r'"status_code":\s*(\d{3})'),
    re.compile(r"\bstatus code:?\s*(\d{3})", re.IGNORECASE),
    re.compile(r"\bHTTP\s*(\d{3})\b"),
)
_SUMMARY_LIMIT = 400
_NOT_FOUND_MESSAGES = ("ComputeTargetNotFound", "not found.", "ResourceNotFound", "RunNotFound")
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
    text = str(exc)
    for pattern in _STATUS_PATTERNS:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def _retry_after_of(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After")
    if value is not None:
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    match = re.search(r"'Retry-After':\s*'(\d+(?:\.\d+)?)'", str(exc))
    return float(match.group(1)) if match else None


def _is_network_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in _NETWORK_CLASS_NAMES or isinstance(current, ConnectionError):
            return True
        current = (
            current.__cause__ or current.__context__ or getattr(current, "inner_exception", None)
        )
    return False


def _summary(exc: BaseException) -> str:
    """A one-line, bounded account of an SDK exception (its messages can run to pages)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."


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
    if name == "AuthenticationException" or status == HTTPStatus.UNAUTHORIZED:
        return AuthenticationError(
            f"authentication failed while {doing}: {detail}. Fix: run 'az login' again, or check "
            "the service principal's secret and tenant."
        )
    if status == HTTPStatus.FORBIDDEN:
        return PermissionDeniedError(
            f"permission denied while {doing} (HTTP 403): {detail}. Fix: ask for a role on the "
            "workspace that allows this (e.g. AzureML Data Scientist or Contributor)."
        )
    if status == HTTPStatus.NOT_FOUND or (
        status is None and any(m in str(exc) for m in _NOT_FOUND_MESSAGES)
    ):
        return NotFoundError(f"not found while {doing}: {detail}")
    if status == HTTPStatus.CONFLICT:
        return ConflictError(f"conflict while {doing} (HTTP 409): {detail}")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return ThrottledError(
            f"throttled while {doing} (HTTP 429): {detail}. Fix: try again later.",
            retry_after=_retry_after_of(exc),
        )
    if status is not None and status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ServiceError(
            f"the service failed while {doing} (HTTP {status}): {detail}. This is usually "
            "temporary: try again.",
            status=status,
            transient=True,
            retry_after=_retry_after_of(exc),
        )
    if status is None and _is_network_failure(exc):
        return NetworkError(
            f"could not reach Azure while {doing}: {detail}. Fix: check the network connection "
            "and any proxy settings."
        )
    transient = status == HTTPStatus.REQUEST_TIMEOUT
    return ServiceError(f"{name} while {doing}: {detail}", status=status, transient=transient)


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except MlbootError:
        raise
    except Exception as exc:
        raise translate_sdk_error(exc, doing) from exc


def sdk_authentication(credential: Credential | None, *, cloud: str, tenant_id: str | None) -> Any:
    """Build the azureml-core authentication object for a credential; the cloud is always explicit.

    ``None`` runs the default chain; an azureml-core authentication object passes through.
    """
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
                raise AuthenticationError(
                    "interactive login was asked for, but nobody can answer a prompt here (no "
                    "terminal, or CI is set). Fix: use ServicePrincipalAuth or "
                    "ManagedIdentityAuth in automation, or run 'az login' and use AzureCliAuth.",
                    tried=["interactive login"],
                )
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

    def __repr__(self) -> str:
        return f"AzureMLBackend(workspaces={len(self._workspaces)})"

    @property
    def clock(self) -> Clock:
        return self._clock

    def _sdk_workspace(self, ref: WorkspaceRef) -> Any:
        with self._lock:
            found = self._workspaces.get(ref)
        if found is None:
            raise NotFoundError(
                f"{ref} was not loaded through this backend. Fix: get it with "
                "mlboot.workspace_from_config(...) first."
            )
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

        doing = f"looking up {ref}"
        try:
            workspace = Workspace(
                ref.subscription_id, ref.resource_group, ref.name, auth=auth, _cloud=cloud
            )
        except Exception as exc:
            error = translate_sdk_error(exc, doing)
            if isinstance(error, NotFoundError) or (
                type(exc).__name__ == "ProjectSystemException" and "not found" in str(exc).lower()
            ):
                raise WorkspaceNotFoundError(
                    f"{ref} was not found. Fix: check subscription_id, resource_group and "
                    "workspace_name in config.json, and that this login can see that "
                    "subscription (az account list)."
                ) from exc
            raise error from exc
        # Workspace(...) swallows connection errors and would fail ~11 s later on first use.
        autorest = getattr(workspace, "_workspace_autorest_object", None)
        if autorest is None:
            endpoint = _arm_endpoint(auth)
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
        raise NotImplementedError

    def create_compute(self, ref: WorkspaceRef, name: str, spec: ComputeSpec) -> ComputeInfo:
        raise NotImplementedError

    def get_compute_provisioning(self, ref: WorkspaceRef, name: str) -> ComputeInfo:
        raise NotImplementedError

    def update_compute_scale(
        self,
        ref: WorkspaceRef,
        name: str,
        *,
        min_nodes: int,
        max_nodes: int,
        idle_seconds_before_scaledown: int,
    ) -> ComputeInfo:
        raise NotImplementedError

    def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
        raise NotImplementedError

    # -- runs ------------------------------------------------------------------------------------

    def submit_run(self, ref: WorkspaceRef, request: RunRequest) -> RunDetails:
        raise NotImplementedError

    def get_run_status(self, ref: WorkspaceRef, run_id: str) -> str:
        raise NotImplementedError

    def get_run_details(self, ref: WorkspaceRef, run_id: str) -> RunDetails:
        raise NotImplementedError

    def get_run_logs(self, ref: WorkspaceRef, run_id: str) -> str:
        raise NotImplementedError

    def get_run_metrics(self, ref: WorkspaceRef, run_id: str) -> Metrics:
        raise NotImplementedError

    def download_run_outputs(self, ref: WorkspaceRef, run_id: str, destination: Path) -> list[Path]:
        raise NotImplementedError

    def cancel_run(self, ref: WorkspaceRef, run_id: str) -> None:
        raise NotImplementedError

    def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
        raise NotImplementedError


def _arm_endpoint(auth: Any) -> str:
    with contextlib.suppress(Exception):
        return str(auth._cloud_type.endpoints.resource_manager)  # noqa: SLF001  (no public accessor)
    return "the Azure Resource Manager endpoint"
