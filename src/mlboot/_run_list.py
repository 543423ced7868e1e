"""Recent runs of a workspace: :func:`list_runs` and the :class:`RunInfo` it returns."""

from __future__ import annotations

import datetime as dt
import re

import attrs

from mlboot._backends._seam import RunDetails
from mlboot._retry import call_with_retries
from mlboot._run import Run, RunStatus, run_from_details
from mlboot._workspace import Workspace, check_workspace
from mlboot.exceptions import InvalidInputError

__all__ = ["RunInfo", "check_list_options", "list_runs"]

_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?", re.ASCII
)


@attrs.frozen
class RunInfo:
    """One run as :func:`list_runs` found it: its handle, its status then, and its times.

    ``start_time`` and ``end_time`` are timezone-aware (UTC), ``None`` until the run has started
    or ended.
    """

    run: Run
    status: RunStatus
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    @property
    def duration(self) -> dt.timedelta | None:
        """How long the run ran, from start to end; ``None`` until it has both."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


def list_runs(
    workspace: Workspace,
    *,
    experiment: str | None = None,
    status: RunStatus | str | None = None,
    limit: int = 20,
) -> list[RunInfo]:
    """The workspace's most recent runs, newest first: at most ``limit`` of them.

    ``experiment`` keeps the runs of that experiment only (one that does not exist has none);
    ``status`` (a :class:`~mlboot.RunStatus` or its name, e.g. ``"Failed"``) keeps the runs
    with that status.  Each :class:`RunInfo` holds a :class:`~mlboot.Run` to follow, wait for
    or cancel.  A transient failure is retried, bounded.
    """
    wanted = _check(workspace, experiment, status, limit)
    backend, ref = workspace.backend, workspace.ref
    found = call_with_retries(
        lambda: backend.list_runs(
            ref, experiment=experiment, status=None if wanted is None else wanted.value, limit=limit
        ),
        clock=backend.clock,
        what=f"listing the runs of {ref}",
    )
    return [_info(workspace, details) for details in found[:limit]]


def _info(workspace: Workspace, details: RunDetails) -> RunInfo:
    return RunInfo(
        run=run_from_details(workspace, details),
        status=RunStatus.from_service(details.status),
        start_time=parse_time(details.start_time),
        end_time=parse_time(details.end_time),
    )


def parse_time(text: str | None) -> dt.datetime | None:
    """An ISO 8601 time from a backend as an aware datetime (UTC if it names no zone)."""
    found = _TIMESTAMP.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    day, time, fraction, zone = found.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if zone in (None, "Z") else zone
    try:
        return dt.datetime.fromisoformat(f"{day}T{time}.{micro}{offset}")
    except ValueError:
        return None


def _check(
    workspace: object, experiment: object, status: object, limit: object
) -> RunStatus | None:
    check_workspace(workspace)
    return check_list_options(experiment, status, limit)


def check_list_options(experiment: object, status: object, limit: object) -> RunStatus | None:
    """Check :func:`list_runs`'s filters, before anything remote; the status they keep."""
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise InvalidInputError(
            "experiment",
            experiment,
            "it must be a non-empty str, or None for every experiment",
            "pass the experiment's name, as Run.experiment shows it",
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(
            "limit", limit, "it must be an int greater than 0", "pass e.g. limit=20"
        )
    if status is None or isinstance(status, RunStatus):
        return status
    known = [member for member in RunStatus if member is not RunStatus.UNKNOWN]
    if isinstance(status, str):
        for member in known:
            if member.value.lower() == status.strip().lower():
                return member
    raise InvalidInputError(
        "status",
        status,
        f"it must be a run status: {', '.join(member.value for member in known)}",
        "pass e.g. status='Failed' or mlboot.RunStatus.FAILED",
    )
