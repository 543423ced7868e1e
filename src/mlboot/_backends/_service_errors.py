"""How both Azure ML backends word a failure of the service: one ladder of HTTP statuses.

azureml-core and azure-ai-ml raise different exception classes for the same answers of the same
services; each backend finds the HTTP status its own way, then both turn it into the same
:mod:`mlboot.exceptions` error here, with the same words and the same ``transient`` flags (which
decide mlboot's retries above the seam).  It imports no SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from mlboot._backends._sdk_warnings import ignore_sdk_deprecations
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    MlbootError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    WorkspaceNotFoundError,
)

if TYPE_CHECKING:
    from mlboot._backends._seam import WorkspaceRef

__all__ = [
    "authentication_failed",
    "causes",
    "environment_not_found",
    "error_for_status",
    "header_retry_after",
    "nobody_can_answer",
    "not_loaded",
    "summary",
    "text_of",
    "translated",
    "workspace_not_found",
]

_SUMMARY_LIMIT = 400


def text_of(exc: BaseException) -> str:
    """``str(exc)``, which some SDK exceptions cannot produce (their ``__str__`` raises)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001  (any failure of a foreign __str__ is the same to us)
        message = getattr(exc, "message", None)
        return message if isinstance(message, str) else type(exc).__name__


def summary(exc: BaseException) -> str:
    """A one-line, bounded account of an SDK exception (its messages can run to pages)."""
    text = " ".join(text_of(exc).split())
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, and so on: SDKs wrap the service's errors in their own.

    Follows ``__cause__``, ``__context__`` and an ``inner_exception`` attribute (azureml-core's,
    azure-ai-ml's), each exception once.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)  # not always an exception
        current = (
            current.__cause__
            or current.__context__
            or (inner if isinstance(inner, BaseException) else None)
        )


def header_retry_after(exc: BaseException) -> float | None:
    """The ``Retry-After`` seconds of the HTTP answer an exception carries, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After")
    if value is not None:
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return None


def not_loaded(ref: WorkspaceRef) -> NotFoundError:
    """A backend asked about a workspace it was never given."""
    return NotFoundError(
        f"{ref} was not loaded through this backend. Fix: get it with "
        "mlboot.workspace_from_config(...) first."
    )


def workspace_not_found(ref: WorkspaceRef) -> WorkspaceNotFoundError:
    return WorkspaceNotFoundError(
        f"{ref} was not found. Fix: check subscription_id, resource_group and "
        "workspace_name in config.json, and that this login can see that "
        "subscription (az account list)."
    )


def environment_not_found(name: str, version: str | None) -> NotFoundError:
    which = f" version {version}" if version else ""
    return NotFoundError(
        f"environment {name!r}{which} was not found in the workspace. Fix: "
        "check the name and version in Azure ML studio, Environments (curated environments "
        "start with 'AzureML-')."
    )


def authentication_failed(doing: str, detail: str) -> AuthenticationError:
    return AuthenticationError(
        f"authentication failed while {doing}: {detail}. Fix: run 'az login' again, or check "
        "the service principal's secret and tenant."
    )


def nobody_can_answer() -> AuthenticationError:
    """The refusal of an interactive login where no person can answer its prompt."""
    return AuthenticationError(
        "interactive login was asked for, but nobody can answer a prompt here (no "
        "terminal, or CI is set). Fix: use ServicePrincipalAuth or "
        "ManagedIdentityAuth in automation, or run 'az login' and use AzureCliAuth.",
        tried=["interactive login"],
    )


def error_for_status(  # noqa: PLR0911  (one return per status class reads best)
    status: int | None, doing: str, detail: str, *, retry_after: float | None = None
) -> MlbootError | None:
    """mlboot's error for an answer with HTTP ``status``; ``None`` when the status says nothing.

    401 authentication, 403 permission, 404 not found, 409 and 412 conflict, 429 throttled and
    5xx (transient) are decided here; anything else is left to the backend (``None``).
    """
    if status == HTTPStatus.UNAUTHORIZED:
        return authentication_failed(doing, detail)
    if status == HTTPStatus.FORBIDDEN:
        return PermissionDeniedError(
            f"permission denied while {doing} (HTTP 403): {detail}. Fix: ask for a role on the "
            "workspace that allows this (e.g. AzureML Data Scientist or Contributor)."
        )
    if status == HTTPStatus.NOT_FOUND:
        return NotFoundError(f"not found while {doing}: {detail}")
    if status in (HTTPStatus.CONFLICT, HTTPStatus.PRECONDITION_FAILED):
        return ConflictError(f"conflict while {doing} (HTTP {status}): {detail}")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return ThrottledError(
            f"throttled while {doing} (HTTP 429): {detail}. Fix: try again later.",
            retry_after=retry_after,
        )
    if status is not None and status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ServiceError(
            f"the service failed while {doing} (HTTP {status}): {detail}. This is usually "
            "temporary: try again.",
            status=status,
            transient=True,
            retry_after=retry_after,
        )
    return None


@contextlib.contextmanager
def translated(
    translate: Callable[[BaseException, str], MlbootError], doing: str
) -> Iterator[None]:
    """Raise ``translate(exc, doing)`` from any exception but mlboot's own, which pass as is.

    A warning the program's filters turned into an exception passes as is too: it is not the
    service's failure (the SDKs' own deprecations are ignored, :mod:`._sdk_warnings`).
    """
    ignore_sdk_deprecations()
    try:
        yield
    except (MlbootError, Warning):
        raise
    except Exception as exc:
        raise translate(exc, doing) from exc
