"""A submitted run: the :class:`Run` handle, :class:`RunStatus`, and :func:`get_run`.

Waiting is mlboot's own, never azureml-core's ``wait_for_completion`` (which returns while the
run is still ``Finalizing``, never times out, and prints whether asked or not): it polls the
status on the backend's clock, with a pause that grows from ``poll_interval`` to a minute,
retries a transient failure of one poll (bounded), returns only on a terminal status, and
raises :class:`~mlboot.exceptions.RunFailedError` with the service's error and the end of the
log for a failed run.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import sys
from pathlib import Path

import attrs

from mlboot._backend import Metrics, RunDetails, StatusChangeWaiter
from mlboot._log import logger
from mlboot._retry import call_with_retries
from mlboot._validate import positive_seconds
from mlboot._workspace import Workspace
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
    def from_service(cls, text: str) -> RunStatus:
        """The member for a status string from the service; :attr:`UNKNOWN` if there is none."""
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


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED})
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

    id: str
    experiment: str
    portal_url: str | None = None
    workspace: Workspace = attrs.field(kw_only=True, eq=False, repr=False)

    def status(self) -> RunStatus:
        """The run's status now (one request; a transient failure is retried, bounded)."""
        backend, ref = self.workspace.backend, self.workspace.ref
        text = call_with_retries(
            lambda: backend.get_run_status(ref, self.id),
            clock=backend.clock,
            what=f"reading the status of run {self.id!r}",
        )
        return RunStatus.from_service(text)

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
        is retried with back-off (a few times, within two minutes, so a wait may overrun its
        time-out by that much); a lasting or a permanent one is raised.

        With ``show_output=True`` the status changes and the run's log are printed on stdout as
        they come, each piece of the log once.  Without it nothing is printed; status changes go
        to the ``mlboot`` logger at INFO.

        Ctrl-C (:class:`KeyboardInterrupt`) stops only the waiting: the run goes on in Azure ML,
        a warning on the ``mlboot`` logger (and on stdout with ``show_output=True``) gives its id
        and how to reattach (``mlboot.get_run(workspace, run_id)``), and the interrupt is
        raised again, carrying the same words as a note that its traceback shows (Python
        3.11+).  With ``cancel_on_interrupt=True`` the run is canceled instead (one cancel
        request), then the interrupt is raised again.
        """
        limit = _check_timeout(timeout)
        first_pause = _check_poll_interval(poll_interval)
        if not isinstance(cancel_on_interrupt, bool):
            raise InvalidInputError(
                "cancel_on_interrupt",
                cancel_on_interrupt,
                "it must be True or False",
                "pass cancel_on_interrupt=True to cancel the run on Ctrl-C",
            )
        stream = _LogStream(self) if show_output else None
        try:
            return self._wait(limit, first_pause, stream)
        except KeyboardInterrupt as interrupt:
            message = self._interrupted(cancel=cancel_on_interrupt, stream=stream)
            if sys.version_info >= (3, 11):  # the traceback shows it, logging configured or not
                interrupt.add_note(message)
            raise

    def _interrupted(self, *, cancel: bool, stream: _LogStream | None) -> str:
        if cancel:
            try:
                self.cancel()
            except MlbootError as exc:  # the interrupt must still reach the caller
                message = (
                    f"Interrupted: could not cancel run {self.id} ({exc}); it may still be "
                    f"running. Reattach with mlboot.get_run(workspace, {self.id!r}) and call "
                    ".cancel() on it."
                )
            else:
                message = f"Interrupted: asked Azure ML to cancel run {self.id}."
        else:
            message = (
                f"Interrupted: stopped waiting, but run {self.id} (experiment "
                f"{self.experiment!r}) is still running in Azure ML. Reattach with "
                f"mlboot.get_run(workspace, {self.id!r}); stop it with .cancel(). "
                f"Portal: {self.portal_url or 'Azure ML studio'}."
            )
        logger.warning("%s", message)
        if stream is not None:
            stream.say(message)
        return message

    def _wait(
        self, limit: float | None, first_pause: float, stream: _LogStream | None
    ) -> RunStatus:
        backend, ref = self.workspace.backend, self.workspace.ref
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
            text = call_with_retries(
                lambda: backend.get_run_status(ref, self.id),
                clock=clock,
                what=f"reading the status of run {self.id!r}",
            )
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
            if waiter is not None:
                waiter.pause_until_status_changes(ref, self.id, text, seconds)
            else:
                clock.sleep(seconds)
            pause = min(pause * _POLL_GROWTH, longest_pause)

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
        from mlboot._links import check_destination  # noqa: PLC0415  (only on download)

        folder = _check_destination(destination)
        folder.mkdir(parents=True, exist_ok=True)
        check_destination(folder, ["outputs/"])
        return self.workspace.backend.download_run_outputs(self.workspace.ref, self.id, folder)

    def to_azureml(self) -> object:
        """The ``azureml.core.Run`` behind this handle, for features mlboot does not wrap.

        Typed ``object`` because azureml-core ships no type information.  A
        :class:`~mlboot.testing.FakeBackend` has none and raises :class:`NotImplementedError`.
        """
        return self.workspace.backend.azureml_run(self.workspace.ref, self.id)


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


def run_from_details(workspace: Workspace, details: RunDetails) -> Run:
    """The handle for a run the backend described."""
    return Run(
        id=details.run_id,
        experiment=details.experiment,
        portal_url=details.portal_url,
        workspace=workspace,
    )


def _check_get_run(workspace: object, run_id: object) -> None:
    if not isinstance(workspace, Workspace):
        raise InvalidInputError(
            "workspace",
            type(workspace).__name__,
            "it must be an mlboot.Workspace",
            "pass the value mlboot.workspace_from_config() returns",
        )
    if not isinstance(run_id, str) or not run_id or run_id != run_id.strip():
        raise InvalidInputError(
            "run_id",
            run_id,
            "it must be a non-empty str without surrounding spaces",
            "pass the run's id, as Run.id or Azure ML studio shows it",
        )


def _check_destination(destination: object) -> Path:
    try:
        raw = os.fspath(destination)  # type: ignore[call-overload]  # checked at run time
    except TypeError:
        raw = None
    if not isinstance(raw, str) or not raw:
        raise InvalidInputError(
            "destination",
            destination,
            "it must be a non-empty path (str or pathlib.Path)",
            "pass the folder to download into",
        )
    folder = Path(raw)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(
            "destination",
            raw,
            "it exists and is not a folder",
            "pass a folder (it is created if it does not exist)",
        )
    return folder


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
