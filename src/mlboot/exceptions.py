"""mlboot's errors: one hierarchy rooted at :class:`MlbootError`.

Every class also subclasses the builtin exception a caller would naturally catch, so
``except FileNotFoundError`` still sees a missing config file and ``except TimeoutError`` still
sees a wait that ran out of time.  Every message says what was wrong, with which value, under
which rule, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AbandonedRunError",
    "AuthenticationError",
    "ComputeKindError",
    "ComputeMismatchError",
    "ComputeProvisioningError",
    "ConfigError",
    "ConfigNotFoundError",
    "ConflictError",
    "InvalidInputError",
    "LocalStorageError",
    "MissingExtraError",
    "MlbootError",
    "MlbootWarning",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RunFailedError",
    "SdkObjectUnavailableError",
    "SecretExposureError",
    "ServiceError",
    "SnapshotLinkError",
    "SnapshotTooLargeError",
    "ThrottledError",
    "WaitTimeoutError",
    "WorkspaceNotFoundError",
]


class MlbootError(Exception):
    """The root of every error mlboot raises on purpose."""


class MlbootWarning(UserWarning):
    """The category of every warning mlboot issues with :func:`warnings.warn`.

    Warnings that change the outcome of a call (a local environment that does not match the
    requested one, a config key mlboot does not know) use it, so a plain script sees them and
    ``warnings.filterwarnings("ignore", category=MlbootWarning)`` silences exactly them.
    Routine progress goes to the ``mlboot`` logger instead.
    """


class InvalidInputError(MlbootError, ValueError):
    """An argument broke a rule; raised before anything remote happens.

    ``field``, ``value``, ``rule`` and ``fix`` are also available as attributes, so tools can
    show them in their own words.
    """

    def __init__(self, field: str, value: object, rule: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        self.fix = fix
        super().__init__(f"{field}={value!r} is invalid: {rule}. {fix}")


class ConfigError(MlbootError, ValueError):
    """The workspace configuration is malformed or incomplete."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """No workspace configuration file was found; ``searched`` lists every place looked at."""

    def __init__(self, message: str, searched: Sequence[str] = ()) -> None:
        self.searched = tuple(searched)
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class AuthenticationError(MlbootError, PermissionError):
    """No usable credentials, or the service rejected them (HTTP 401).

    ``tried`` lists the authentication methods that were attempted, in order.
    """

    def __init__(self, message: str, tried: Sequence[str] = ()) -> None:
        self.tried = tuple(tried)
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class PermissionDeniedError(MlbootError, PermissionError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""

    def __str__(self) -> str:
        return str(self.args[0])


class MissingExtraError(MlbootError, ImportError):
    """A feature needs one of mlboot's optional extras, which is not installed.

    ``extra`` is its name (e.g. ``"plot"``); the message says the command that installs it.
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class NotFoundError(MlbootError, LookupError):
    """A remote resource (workspace, run, ...) does not exist."""


class AbandonedRunError(NotFoundError):
    """A local run folder whose submission never finished (its submitter was killed).

    ``path`` is the folder, which holds no ``run.json``: it is not a run, and may be deleted.
    """

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class WorkspaceNotFoundError(NotFoundError):
    """The workspace named by the configuration does not exist or is not visible."""


class ServiceError(MlbootError, RuntimeError):
    """The service answered with an error, or could not be reached.

    ``status`` is the HTTP status when one is known, ``transient`` says whether trying again
    later may succeed, and ``retry_after`` is the delay the service asked for, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class ThrottledError(ServiceError):
    """The service asked us to slow down (HTTP 429); always transient."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429, transient=True, retry_after=retry_after)


class NetworkError(ServiceError, ConnectionError):
    """The service could not be reached at all (refused, reset, DNS, time-out)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=None, transient=True)


class ConflictError(ServiceError):
    """The resource was created by someone else at the same time (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=409, transient=False)


class ComputeMismatchError(MlbootError, ValueError):
    """An existing compute target differs from the one requested.

    ``differences`` maps each differing field to ``(requested, actual)``.
    """

    def __init__(self, message: str, differences: dict[str, tuple[object, object]]) -> None:
        self.differences = dict(differences)
        super().__init__(message)


class ComputeKindError(ComputeMismatchError):
    """The name belongs to a compute target of another kind (an instance, an attached VM...)."""


class ComputeProvisioningError(MlbootError, RuntimeError):
    """Creating or scaling a compute target failed.

    ``errors`` holds the service's errors as ``(code, message)`` pairs.
    """

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        self.errors = tuple(errors)
        super().__init__(message)


class SnapshotTooLargeError(MlbootError, ValueError):
    """The source folder is over the service's snapshot limits; nothing was uploaded."""


class SnapshotLinkError(InvalidInputError):
    """The source folder holds a symbolic link that leads out of it; nothing was uploaded.

    ``link`` is the link's path relative to the source folder, ``target`` the absolute path it
    leads to.  ``field``, ``value``, ``rule`` and ``fix`` are those of :class:`InvalidInputError`.
    """

    def __init__(
        self, field: str, value: object, rule: str, fix: str, *, link: str, target: str
    ) -> None:
        self.link = link
        self.target = target
        super().__init__(field, value, rule, fix)


class RunFailedError(MlbootError, RuntimeError):
    """A run ended ``Failed``; carries the run id, portal URL, error and the log tail."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str,
        portal_url: str | None = None,
        error: str | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        self.run_id = run_id
        self.portal_url = portal_url
        self.error = error
        self.log_tail = tuple(log_tail)
        super().__init__(message)


class SdkObjectUnavailableError(MlbootError, NotImplementedError):
    """``to_azureml()`` was called on a value whose backend has no SDK objects.

    Only the azureml-core backend has them; :class:`mlboot.LocalBackend` and
    :class:`mlboot.testing.FakeBackend` do not.  A ``NotImplementedError``, as the backends
    raised before this class existed.
    """


class SecretExposureError(MlbootError, TypeError):
    """An operation would write a :class:`mlboot.Secret`'s value out: pickling it, or anything
    holding it (a :class:`mlboot.ServicePrincipalAuth`, an :class:`mlboot.Environment`).

    A ``TypeError``, as Python's own "cannot pickle" errors are.  The message never contains
    the value.
    """


class WaitTimeoutError(MlbootError, TimeoutError):
    """A client-side wait ran out of time; the remote operation was left alone."""


class LocalStorageError(MlbootError, OSError):
    """A local file operation failed (disk full, read-only, a path the system refuses).

    The message names the path and what was being done; ``errno`` and ``filename`` carry the
    operating system's values, so ``except OSError`` still sees it.
    """

    def __init__(
        self, message: str, *, errno: int | None = None, filename: str | None = None
    ) -> None:
        super().__init__(message)
        self.errno = errno
        self.filename = filename

    def __str__(self) -> str:
        return str(self.args[0])
