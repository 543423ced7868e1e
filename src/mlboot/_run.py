"""A submitted run: the :class:`Run` handle, :class:`RunStatus`, and :func:`get_run`.

Waiting is mlboot's own, never azureml-core's ``wait_for_completion`` (which returns while the
run is still ``Finalizing``, never times out, and prints whether asked or not): it polls the
status on the backend's clock, with a pause that grows from ``poll_interval`` to a minute,
retries a transient failure of one poll (bounded), returns only on a terminal status, and
raises :class:`~mlboot.exceptions.RunFailedError` with the service's error and the end of the
log for a failed run.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import attrs

from mlboot._backends._seam import (
    LocalRunFolders,
    Metrics,
    RunDetails,
    StatusChangeWaiter,
    azureml_objects,
)
from mlboot._deadline import CALL_BOUND_SECONDS, bounded
from mlboot._localio import translated
from mlboot._log import logger
from mlboot._retry import call_with_retries
from mlboot._spellings import TERMINAL_RUN_STATUSES
from mlboot._validate import check_bool, path_text, positive_seconds
from mlboot._workspace import Workspace, check_workspace
from mlboot.exceptions import (
    AbandonedRunError,
    InvalidInputError,
    MlbootError,
    NotFoundError,
    RunFailedError,
    ServiceError,
    WaitTimeoutError,
)

__all__ = ["LOG_TAIL_LINES", "Run", "RunStatus", "get_run"]


LOG_TAIL_LINES = 50
"""How many of the last log lines a :class:`~mlboot.exceptions.RunFailedError` carries."""

_MAX_POLL_SECONDS = 60.0
_UNKNOWN_STATUSES_SEEN: set[str] = set()
_POLL_GROWTH = 1.5
_LOCAL_FOLLOW_SECONDS = 0.25
"""How often ``wait(show_output=True)`` reads a local run's log between two status reads."""


def _sdk_follow_seconds(elapsed: float) -> float:
    """azureml-core's pause between two log reads of ``wait_for_completion(show_output=True)``.

    ``Run._wait_before_polling`` in azureml/core/run.py: 2 s for the first half minute, then a
    sigmoid up to 60 s at about three minutes.
    """
    return max(2.0, 60.0 / (1.0 + 100.0 * math.exp(-elapsed / 20.0)))


class RunStatus(str, enum.Enum):
    """Every status azureml-core reports for a run, plus :attr:`UNKNOWN`.

    A status string the service sends that mlboot does not know (a newer service) reads as
    :attr:`UNKNOWN` (with one warning naming it) instead of failing: it counts as neither
    terminal nor running, so :meth:`Run.wait` keeps polling through it.
    """

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    UNAPPROVED = "Unapproved"
    NOT_RESPONDING = "NotResponding"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    CANCEL_REQUESTED = "CancelRequested"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> RunStatus:
        # RunStatus("Nope") raises this InvalidInputError (a ValueError, as enums raise).
        raise InvalidInputError(
            "status",
            value,
            f"it must be one of {', '.join(member.value for member in cls)}",
            "use RunStatus.from_service(text) to read any status string the service sends",
        )

    @classmethod
    def from_service(cls, text: str) -> RunStatus:
        """The member for a status string from the service; :attr:`UNKNOWN` if there is none."""
        if not isinstance(text, str):
            raise InvalidInputError(
                "text", text, "a run status is a str", "pass the status string the service sent"
            )
        for member in cls:
            if member.value.lower() == text.lower():
                return member
        if text not in _UNKNOWN_STATUSES_SEEN:  # once per process, not at every poll
            _UNKNOWN_STATUSES_SEEN.add(text)
            logger.warning(
                "The service reported run status %r, which mlboot does not know; treating it "
                "as not finished",
                text,
            )
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """``True`` for Completed, Failed and Canceled: the run will not change again."""
        return self in _TERMINAL

    @property
    def is_running(self) -> bool:
        """``True`` before post-processing: from NotStarted to Running, Paused included."""
        return self in _RUNNING

    @property
    def is_post_processing(self) -> bool:
        """``True`` for Finalizing and CancelRequested: the end is near, but not here yet."""
        return self in _POST_PROCESSING

    @property
    def is_successful(self) -> bool:
        """``True`` for Completed only."""
        return self is RunStatus.COMPLETED


_TERMINAL = frozenset(RunStatus(status) for status in TERMINAL_RUN_STATUSES)
_POST_PROCESSING = frozenset({RunStatus.CANCEL_REQUESTED, RunStatus.FINALIZING})
_RUNNING = frozenset(
    {
        RunStatus.NOT_STARTED,
        RunStatus.QUEUED,
        RunStatus.PREPARING,
        RunStatus.PROVISIONING,
        RunStatus.STARTING,
        RunStatus.RUNNING,
        RunStatus.UNAPPROVED,
        RunStatus.NOT_RESPONDING,
        RunStatus.PAUSING,
        RunStatus.PAUSED,
    }
)


@attrs.frozen
class Run:
    """A run submitted to Azure ML: its id, its experiment, and what you can do with it.

    Get one from :func:`mlboot.submit_script`, or reattach to an existing run with
    :func:`mlboot.get_run`.  Equality and ``repr`` leave the workspace out.
    """

    id: str = attrs.field(validator=lambda _, __, v: _check_get_run_id(v, field="id"))
    experiment: str = attrs.field(validator=lambda _, a, v: _check_str(a.name, v))
    portal_url: str | None = attrs.field(
        default=None, validator=lambda _, a, v: _check_str(a.name, v, optional=True)
    )
    workspace: Workspace = attrs.field(
        kw_only=True, eq=False, repr=False, validator=lambda _, __, v: check_workspace(v)
    )

    def status(self) -> RunStatus:
        """The run's status now (one request; a transient failure is retried, bounded).

        Returns or raises within 120 s, whatever the service answers: when it keeps throttling
        or failing, :class:`~mlboot.exceptions.WaitTimeoutError` is raised from its last error.
        """
        return RunStatus.from_service(self._read_status())

    def _read_status(self) -> str:
        backend, ref = self.workspace.backend, self.workspace.ref
        return _bounded_read(
            self,
            f"reading the status of run {self.id!r}",
            "one status read",
            lambda: backend.get_run_status(ref, self.id),
        )

    def wait(
        self,
        *,
        timeout: float | dt.timedelta | None = None,
        show_output: bool = False,
        poll_interval: float = 2.0,
        cancel_on_interrupt: bool = False,
    ) -> RunStatus:
        """Wait until the run has finished; return :attr:`RunStatus.COMPLETED` or ``CANCELED``.

        Returns only on a terminal status, never while the run is ``Finalizing`` or
        ``CancelRequested``.  A ``Failed`` run raises
        :class:`~mlboot.exceptions.RunFailedError` with the run id, the portal URL, the
        service's error and the last 50 lines of the log.  A canceled run is not an error:
        check the returned status.

        ``timeout`` (seconds, or a :class:`~datetime.timedelta`; ``None`` waits as long as it
        takes) is measured on the backend's clock; when it runs out,
        :class:`~mlboot.exceptions.WaitTimeoutError` is raised and the run is left running
        (call :meth:`wait` again to keep waiting, :meth:`cancel` to stop it).  The first pause
        between two polls is ``poll_interval`` seconds; each pause is half as long again as the
        one before, up to 60 s (or ``poll_interval`` if that is longer); on the local backend a
        pause ends early, as soon as the run's status changes.  A transient failure of one poll
        is retried with back-off (a few times, within two minutes), and so are azureml-core's
        own retries, but never past the time-out: the wait returns or raises within it, whatever
        the service answers (``WaitTimeoutError``, raised from the service's last error, when
        it kept throttling or failing).  A lasting or a permanent failure is raised.

        With ``show_output=True`` the status changes and the run's log are printed on stdout as
        they come, each piece of the log once.  Without it nothing is printed; status changes go
        to the ``mlboot`` logger at INFO.

        Ctrl-C (:class:`KeyboardInterrupt`) stops only the waiting: the run goes on (in Azure
        ML, or on this machine for the local backend), one message gives its id and how to
        reattach (``mlboot.get_run(workspace, run_id)``), on stdout with ``show_output=True``,
        else as a warning on the ``mlboot`` logger, and the interrupt is raised again,
        carrying the same words as a note that its traceback shows (Python 3.11+).  With
        ``cancel_on_interrupt=True`` the run is canceled instead (one cancel request), then the
        interrupt is raised again.
        """
        limit = _check_timeout(timeout)
        first_pause = _check_poll_interval(poll_interval)
        check_bool(
            "cancel_on_interrupt",
            cancel_on_interrupt,
            fix="pass cancel_on_interrupt=True to cancel the run on Ctrl-C",
        )
        check_bool("show_output", show_output, fix="pass show_output=True to print the log")
        stream = _LogStream(self) if show_output else None
        try:
            with self._wait_deadline(limit):
                return self._wait(limit, first_pause, stream)
        except KeyboardInterrupt as interrupt:
            message = self._interrupted(cancel=cancel_on_interrupt, stream=stream)
            if sys.version_info >= (3, 11):  # the traceback shows it, logging configured or not
                interrupt.add_note(message)
            raise

    def _wait_deadline(self, limit: float | None) -> contextlib.AbstractContextManager[object]:
        return self._time_out(
            limit,
            f"waiting for run {self.id!r} (experiment {self.experiment!r})",
            "call run.wait() again later, or with a longer timeout (the service was "
            "throttling or failing); the run was left running.",
        )

    def _time_out(
        self, limit: float | None, what: str, fix: str
    ) -> contextlib.AbstractContextManager[object]:
        """A deadline of ``limit`` seconds (a ``timeout``) for ``what``; ``None``: no deadline."""
        if limit is None:
            return contextlib.nullcontext()
        return bounded(
            self.workspace.backend.clock,
            limit,
            what=what,
            limit=f"the time-out (timeout={limit:g} s)",
            fix=fix,
        )

    def _interrupted(self, *, cancel: bool, stream: _LogStream | None) -> str:
        # Said once: on stdout when the caller streams the run, else as a logged warning.
        service = backend_name(self.workspace.backend)
        where = f"in {service}" if service == "Azure ML" else f"on {service}"
        advice = interrupt_advice.get() or _python_advice
        if cancel:
            try:
                self.cancel()
            except MlbootError as exc:  # the interrupt must still reach the caller
                message = (
                    f"Interrupted: could not cancel run {self.id} ({exc}); it may still be "
                    f"running {where}. {advice(self, cancel_failed=True)}"
                )
            else:
                message = f"Interrupted: asked {service} to cancel run {self.id}."
        else:
            portal = f" Portal: {self.portal_url}." if self.portal_url else ""
            message = (
                f"Interrupted: stopped waiting, but run {self.id} (experiment "
                f"{self.experiment!r}) is still running {where}. "
                f"{advice(self, cancel_failed=False)}{portal}"
            )
        if stream is not None:
            stream.say(message)
        else:
            logger.warning("%s", message)
        return message

    def _wait(
        self, limit: float | None, first_pause: float, stream: _LogStream | None
    ) -> RunStatus:
        backend = self.workspace.backend
        clock = backend.clock
        # Checked once: a runtime Protocol check inspects the backend's attributes every time.
        waiter = backend if isinstance(backend, StatusChangeWaiter) else None
        started = clock.monotonic()
        pause = first_pause
        longest_pause = max(first_pause, _MAX_POLL_SECONDS)
        previous: RunStatus | None = None
        if stream is not None:
            stream.say(f"Run {self.id} ({self.experiment}): {self.portal_url or 'no portal URL'}")
        while True:
            text = self._read_status()
            status = RunStatus.from_service(text)
            elapsed = clock.monotonic() - started
            if stream is not None:
                # The log first: what the script printed comes before the status it led to.
                stream.follow(final=status.is_terminal)
            if status is not previous:
                logger.info("Run %s is %s after %.0f s", self.id, status, elapsed)
                if stream is not None:
                    stream.say(f"Run {self.id}: {status} after {elapsed:.0f} s")
                previous = status
            if status.is_terminal:
                return self._finished(status, stream)
            if limit is not None and elapsed >= limit:
                raise WaitTimeoutError(
                    f"run {self.id!r} (experiment {self.experiment!r}) is still {status} after "
                    f"{elapsed:.0f} s, the time-out ({limit:g} s). It was left running. Fix: "
                    "call run.wait() again to keep waiting, with a longer timeout, or "
                    f"run.cancel() to stop it; follow it at {self.portal_url or 'Azure ML studio'}."
                )
            seconds = pause if limit is None else min(pause, limit - elapsed)
            if stream is None:
                self._pause(waiter, text, seconds)
            else:
                self._pause_following(waiter, text, seconds, stream, started)
            pause = min(pause * _POLL_GROWTH, longest_pause)

    def _pause(self, waiter: StatusChangeWaiter | None, text: str, seconds: float) -> None:
        if waiter is not None:
            waiter.pause_until_status_changes(self.workspace.ref, self.id, text, seconds)
        else:
            self.workspace.backend.clock.sleep(seconds)

    def _pause_following(
        self,
        waiter: StatusChangeWaiter | None,
        text: str,
        seconds: float,
        stream: _LogStream,
        started: float,
    ) -> None:
        """Pause ``seconds`` before the next status read, following the log meanwhile.

        The log is read every :data:`_LOCAL_FOLLOW_SECONDS` on a backend that can wake a pause
        (the local one), else on azureml-core's own streaming schedule, so the status back-off
        never delays the output.  A waiter's pause that ends early means the status changed:
        the pause ends there, for the status read to see it.
        """
        clock = self.workspace.backend.clock
        end = clock.monotonic() + seconds
        while True:
            now = clock.monotonic()
            left = end - now
            if left <= 0:
                return
            every = (
                _LOCAL_FOLLOW_SECONDS if waiter is not None else _sdk_follow_seconds(now - started)
            )
            tick = min(left, every)
            self._pause(waiter, text, tick)
            after = clock.monotonic()
            if after >= end or (waiter is not None and after - now < tick):
                return  # the status read comes next, and follows the log itself
            stream.follow(final=False)

    def _finished(self, status: RunStatus, stream: _LogStream | None) -> RunStatus:
        if status is RunStatus.FAILED:
            raise self._failure()
        if status is RunStatus.CANCELED:
            logger.warning("Run %s was canceled", self.id)
        if stream is not None:
            stream.say(f"Run {self.id} ended {status}")
        return status

    def _failure(self) -> RunFailedError:
        backend, ref = self.workspace.backend, self.workspace.ref
        clock = backend.clock
        error: str | None = None
        portal_url = self.portal_url
        try:
            details = call_with_retries(
                lambda: backend.get_run_details(ref, self.id),
                clock=clock,
                what=f"reading the error of run {self.id!r}",
            )
            error = details.error
            portal_url = details.portal_url or portal_url
        except MlbootError as exc:  # the run's failure matters more than this one
            logger.warning("Could not read the error of failed run %s: %s", self.id, exc)
        tail: list[str] = []
        try:
            text = call_with_retries(
                lambda: backend.get_run_logs(ref, self.id),
                clock=clock,
                what=f"reading the log of run {self.id!r}",
            )
            tail = text.splitlines()[-LOG_TAIL_LINES:]
        except MlbootError as exc:  # the run's failure matters more than this one
            logger.warning("Could not read the log of failed run %s: %s", self.id, exc)
        reason = error or "the service gave no error message"
        message = [
            f"run {self.id!r} (experiment {self.experiment!r}) failed: {reason}.",
            f"Portal: {portal_url or 'unknown'}.",
        ]
        if tail:
            message.append(f"Last {len(tail)} log lines:")
            message.extend(f"  {line}" for line in tail)
        else:
            message.append("No log lines were available; see the run's outputs in the portal.")
        return RunFailedError(
            "\n".join(message),
            run_id=self.id,
            portal_url=portal_url,
            error=error,
            log_tail=tail,
        )

    def cancel(self) -> None:
        """Ask Azure ML to cancel the run; it passes through ``CancelRequested`` to ``Canceled``.

        Returns at once; :meth:`wait` then returns :attr:`RunStatus.CANCELED`.  Canceling a run
        that has already finished changes nothing.
        """
        self.workspace.backend.cancel_run(self.workspace.ref, self.id)
        logger.info("Asked to cancel run %s", self.id)

    def metrics(self) -> Metrics:
        """Every metric the run logged: name to the list of its values, in logging order.

        A metric logged once is a list of one value.  A table or row metric becomes one entry
        per column, named ``"<metric>/<column>"``.
        """
        return self.workspace.backend.get_run_metrics(self.workspace.ref, self.id)

    def logs(self) -> str:
        """The run's log so far: what the script wrote to stdout and stderr (``""`` if none)."""
        return self.workspace.backend.get_run_logs(self.workspace.ref, self.id)

    def download_outputs(self, destination: str | os.PathLike[str]) -> list[Path]:
        """Download the files the run wrote to ``./outputs``; return their local paths.

        They land under ``destination/outputs/``, keeping their folders; ``destination`` is
        created if needed, and existing files of the same names are overwritten.  Nothing is
        ever written through a symbolic link below ``destination``: a link there (``outputs``
        itself, or any folder or file a download would write) raises
        :class:`~mlboot.exceptions.LocalStorageError` naming it, before anything is written.
        Links a run left in its outputs are never followed (see the backend).
        """
        folder = _check_destination(destination, inside=("outputs",))
        backend, ref = self.workspace.backend, self.workspace.ref
        return _download(
            folder,
            ["outputs/"],
            f"downloading the outputs of run {self.id!r}",
            lambda: backend.download_run_outputs(ref, self.id, folder),
        )

    def file_names(
        self,
        *,
        prefix: str | None = None,
        timeout: float | dt.timedelta = CALL_BOUND_SECONDS,
    ) -> list[str]:
        """The names of the run's files, sorted: its outputs, its logs, whatever else it stored.

        Names are relative POSIX paths, as the service keeps them (``outputs/model.pt``,
        ``user_logs/std_log.txt``, ``logs/...``): what azureml-core's ``get_file_names()``
        returns, on every backend.  With ``prefix``, only the names that start with it
        (``prefix="outputs/"``: the outputs; a name's start, not a folder: ``"outputs"`` also
        matches ``outputs.txt``).  One listing, attempted once by mlboot on top of the SDK's own
        retries, as :meth:`logs` is; it returns or raises
        :class:`~mlboot.exceptions.WaitTimeoutError` within ``timeout`` seconds (or a
        :class:`~datetime.timedelta`), on the backend's clock, the SDK's retries included.
        """
        wanted = check_prefix(prefix)
        limit = _check_call_timeout(timeout)
        return self._list_files(wanted, limit)

    def _list_files(self, wanted: str, limit: float) -> list[str]:
        backend, ref = self.workspace.backend, self.workspace.ref
        what = f"listing the files of run {self.id!r}"
        fix = "try again later, or with a longer timeout (the service was throttling or failing)."
        with self._time_out(limit, what, fix):
            # Attempted once, as logs and metrics are: azureml-core already retries the listing
            # (up to 16 requests on a lasting 503), and mlboot's retries would multiply them.
            names = backend.list_run_files(ref, self.id)
        return sorted(name for name in names if name.startswith(wanted))

    def download_files(
        self,
        destination: str | os.PathLike[str],
        *,
        prefix: str | None = None,
        timeout: float | dt.timedelta | None = None,
    ) -> list[Path]:
        """Download the run's files whose names start with ``prefix`` (all without); return paths.

        Each file lands at ``destination/<name>``, its name as :meth:`file_names` gives it
        (``destination/outputs/model.pt``, ``destination/user_logs/std_log.txt``), as
        azureml-core's ``download_files(prefix, output_directory)`` writes it (its default,
        ``append_prefix`` true); the paths are returned sorted.  With ``prefix="outputs/"`` it
        gets what :meth:`download_outputs` gets.  ``destination`` is created if needed, and
        existing files of the same names are overwritten.

        Nothing is written before every name is checked: a name the service gives that would
        land outside ``destination`` (a ``..`` part, an absolute path) raises
        :class:`~mlboot.exceptions.ServiceError` naming it, and a symbolic link below
        ``destination`` on the way of any file (or a file where a folder must be) raises
        :class:`~mlboot.exceptions.LocalStorageError` naming it.  A file that cannot be written
        (a full disk, the file size limit) raises ``LocalStorageError`` naming the file.

        Neither the listing nor the download is retried by mlboot: azureml-core retries each
        request itself, and the call may simply be made again (files already downloaded are
        overwritten).  ``timeout`` (seconds, or a :class:`~datetime.timedelta`) bounds the whole
        call, the SDK's retries included, on the backend's clock
        (:class:`~mlboot.exceptions.WaitTimeoutError`); ``None``, the default, bounds the
        listing by 120 s and lets the download take as long as the files need.
        """
        wanted = check_prefix(prefix)
        limit = None
        if timeout is not None:
            limit = positive_seconds(
                "timeout",
                timeout,
                fix="pass e.g. timeout=600, or None to let the download take as long as it needs",
                or_none=True,
            )
        folder = _check_destination(destination)
        backend, ref = self.workspace.backend, self.workspace.ref
        fix = (
            "call download_files again, with a longer timeout (files already downloaded are "
            "downloaded again)."
        )
        with self._time_out(limit, f"downloading the files of run {self.id!r}", fix):
            names = self._list_files(wanted, CALL_BOUND_SECONDS if limit is None else limit)
            _refuse_escaping(self.id, folder, names)
            return _download(
                folder,
                names,
                f"downloading the files of run {self.id!r}",
                lambda: sorted(backend.download_run_files(ref, self.id, folder, names)),
            )

    def to_azureml(self) -> object:
        """The ``azureml.core.Run`` behind this handle, for features mlboot does not wrap.

        Typed ``object`` because azureml-core ships no type information.  A backend without SDK
        objects (:class:`~mlboot.LocalBackend`, :class:`~mlboot.testing.FakeBackend`) raises
        :class:`~mlboot.exceptions.SdkObjectUnavailableError` (a :class:`NotImplementedError`).
        """
        objects = azureml_objects(self.workspace.backend, f"run {self.id!r}")
        return objects.azureml_run(self.workspace.ref, self.id)


def get_run(workspace: Workspace, run_id: str) -> Run:
    """Reattach to a run submitted earlier (by this process or any other), by its id.

    The id is checked with the service once; an unknown id raises
    :class:`~mlboot.exceptions.NotFoundError`.
    """
    _check_get_run(workspace, run_id)
    try:
        details = workspace.backend.get_run_details(workspace.ref, run_id)
    except AbandonedRunError:
        raise  # its own words say what the folder is and what to do
    except NotFoundError as exc:
        raise NotFoundError(
            f"run {run_id!r} was not found in {workspace.ref}. Fix: check the id (Azure ML studio "
            "shows it on the run's page) and that this is the workspace it was submitted to."
        ) from exc
    return run_from_details(workspace, details)


class InterruptAdvice(Protocol):
    """How to reattach to ``run`` after Ctrl-C (or cancel it, if that failed), in your terms."""

    def __call__(self, run: Run, *, cancel_failed: bool) -> str: ...


interrupt_advice: contextvars.ContextVar[InterruptAdvice | None] = contextvars.ContextVar(
    "mlboot_interrupt_advice", default=None
)
"""The advice :meth:`Run.wait` gives on Ctrl-C; ``None``: Python calls (the ``mlboot`` command
sets shell commands)."""


def _python_advice(run: Run, *, cancel_failed: bool) -> str:
    if cancel_failed:
        return f"Reattach with mlboot.get_run(workspace, {run.id!r}) and call .cancel() on it."
    return f"Reattach with mlboot.get_run(workspace, {run.id!r}); stop it with .cancel()."


def backend_name(backend: object) -> str:
    """What runs ``backend``'s runs, for messages: ``"Azure ML"`` or ``"the local backend"``."""
    if runs_on_this_machine(backend):
        return "the local backend"
    return "Azure ML"  # the azureml-core adapter, and the fake that stands in for it


def runs_on_this_machine(backend: object) -> bool:
    """Whether ``backend``'s runs are processes and folders here (:class:`LocalRunFolders`)."""
    return isinstance(backend, LocalRunFolders)


def local_outputs(run: Run) -> Path | None:
    """The folder of ``run``'s outputs when it is on this machine already, else ``None``."""
    backend = run.workspace.backend
    if not isinstance(backend, LocalRunFolders):
        return None
    return backend.run_folder(run.id) / "outputs"


def read_details(run: Run) -> RunDetails:
    """``run`` as the service describes it now: one read, a transient failure retried (bounded)."""
    backend, ref = run.workspace.backend, run.workspace.ref
    return _bounded_read(
        run,
        f"reading the details of run {run.id!r}",
        "one read",
        lambda: backend.get_run_details(ref, run.id),
    )


_Read = TypeVar("_Read")


def _bounded_read(run: Run, what: str, bound: str, read: Callable[[], _Read]) -> _Read:
    """``read()``, a transient failure retried, within :data:`CALL_BOUND_SECONDS` in all."""
    clock = run.workspace.backend.clock
    with bounded(
        clock,
        CALL_BOUND_SECONDS,
        what=what,
        limit=f"the bound of {bound} ({CALL_BOUND_SECONDS:g} s)",
        fix="try again later (the service was throttling or failing); the run itself goes on.",
    ):
        return call_with_retries(read, clock=clock, what=what)


def run_from_details(workspace: Workspace, details: RunDetails) -> Run:
    """The handle for a run the backend described."""
    return Run(
        id=details.run_id,
        experiment=details.experiment,
        portal_url=details.portal_url,
        workspace=workspace,
    )


def _check_str(field: str, value: object, *, optional: bool = False) -> None:
    if not isinstance(value, str) and not (optional and value is None):
        raise InvalidInputError(
            field, value, "it must be a str", "use the Run that submit_script or get_run returns"
        )


def _check_get_run(workspace: object, run_id: object) -> None:
    check_workspace(workspace)
    _check_get_run_id(run_id)


def _check_get_run_id(run_id: object, *, field: str = "run_id") -> None:
    if (
        not isinstance(run_id, str)
        or not run_id
        or run_id != run_id.strip()
        or not run_id.isprintable()
    ):
        raise InvalidInputError(
            field,
            run_id,
            "it must be a non-empty str of printable characters, without surrounding spaces",
            "pass the run's id, as Run.id or Azure ML studio shows it",
        )


def _check_destination(destination: object, *, inside: tuple[str, ...] = ()) -> Path:
    """The folder to download into, checked: a folder or nothing yet, as are its ``inside``."""
    raw = path_text(
        "destination", destination, what="path to a folder", fix="pass the folder to download into"
    )
    folder = Path(raw)
    checks = [(folder, "it exists and is not a folder")]
    checks += [(folder / name, f"its {name} entry exists and is not a folder") for name in inside]
    for path, what in checks:
        try:
            wrong = path.exists() and not path.is_dir()
        except OSError:  # e.g. too long for the system: mkdir will say so
            wrong = False
        if wrong:
            raise InvalidInputError(
                "destination",
                raw,
                what,
                f"pass a folder (it is created if it does not exist), or move {path} away",
            )
    return folder


def _download(folder: Path, entries: list[str], doing: str, download: Callable[[], _Read]) -> _Read:
    """Make ``folder``, refuse a link on the way of ``entries``, then ``download()``.

    A file error (a full disk, the file size limit, a refused folder) is a
    :class:`~mlboot.exceptions.LocalStorageError` naming the file, or else the folder.
    """
    from mlboot._links import check_destination  # noqa: PLC0415  (only on download)

    with translated("creating the folder to download into", near=folder):
        folder.mkdir(parents=True, exist_ok=True)
    check_destination(folder, entries)
    with translated(doing, near=folder):
        return download()


def check_prefix(prefix: object) -> str:
    """The prefix of the file names wanted (``""``: all), checked before anything remote."""
    if prefix is None:
        return ""
    fix = "pass the start of the run's file names, e.g. prefix='outputs/'"
    if not isinstance(prefix, str):
        raise InvalidInputError("prefix", prefix, "it must be a str or None", fix)
    rules = (
        ("\x00" in prefix, "it must not hold a NUL character"),
        ("\\" in prefix, "it must use / between folders (the run's names are POSIX paths)"),
        (prefix.startswith("/"), "it must be relative: the run's file names never start with /"),
        (".." in prefix.split("/"), "it must not have a '..' part"),
    )
    for broken, rule in rules:
        if broken:
            raise InvalidInputError("prefix", prefix, rule, fix)
    return prefix


def _refuse_escaping(run_id: str, folder: Path, names: list[str]) -> None:
    """Refuse, before anything is written, a name the service gave that leads out of ``folder``."""
    from mlboot._links import escaping_name  # noqa: PLC0415  (only on download)

    for name in names:
        why = escaping_name(name)
        if why is not None:
            raise ServiceError(
                f"run {run_id!r} has a file named {name!r}, which would be written outside "
                f"{folder} ({why}); nothing was downloaded. Fix: download the files you need "
                "with a prefix that leaves it out (see run.file_names()), or fetch it with "
                "the service's own tools."
            )


def _check_call_timeout(timeout: object) -> float:
    return positive_seconds("timeout", timeout, fix="pass e.g. timeout=120 (the default)")


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    return positive_seconds(
        "timeout",
        timeout,
        fix="pass e.g. timeout=3600 for an hour, or None to wait as long as the run takes",
        or_none=True,
    )


def _check_poll_interval(poll_interval: object) -> float:
    return positive_seconds(
        "poll_interval", poll_interval, fix="pass e.g. 2.0 (the default)", allow_timedelta=False
    )


class _LogStream:
    """Prints a run's log as it grows, each piece once (only when the caller asked).

    Only whole lines are printed while the run goes on, so that mlboot's own status lines never
    cut a log line in two; the last, unfinished line is printed when the run has ended.
    """

    def __init__(self, run: Run) -> None:
        self._run = run
        self._printed = ""
        self._gave_up = False

    @staticmethod
    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def follow(self, *, final: bool) -> None:
        """Print what the log gained since the last call (all of it when ``final``).

        Streaming is a courtesy: a log that cannot be read must not end the wait.  A transient
        failure is tried again at the next poll; any other stops the streaming.
        """
        run = self._run
        backend = run.workspace.backend
        if self._gave_up:
            return
        try:
            text = call_with_retries(
                lambda: backend.get_run_logs(run.workspace.ref, run.id),
                clock=backend.clock,
                what=f"reading the log of run {run.id!r}",
            )
        except MlbootError as exc:
            transient = isinstance(exc, ServiceError) and exc.transient
            self._gave_up = not transient
            logger.warning(
                "Could not read the log of run %s (%s): %s",
                run.id,
                "will try again" if transient else "no more log will be shown",
                exc,
            )
            return
        if not text.startswith(self._printed):
            # The service moved on to another log file (or rewrote this one): show it whole.
            self._printed = ""
        new = text[len(self._printed) :]
        if not final:
            new = new[: new.rfind("\n") + 1]
        if not new:
            return
        sys.stdout.write(new if new.endswith("\n") else new + "\n")
        sys.stdout.flush()
        self._printed += new
