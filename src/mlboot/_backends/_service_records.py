"""What both Azure ML backends read alike: run history's log files and errors, ARM's errors.

azureml-core (SDK v1) and azure-ai-ml (SDK v2) reach the same services: a run's log files and
its error come from run history's ``details`` in both, and a cluster's provisioning errors are
ARM error responses in both.  Reading them is one decision, kept here, so both backends pick
the same log and word an error the same way.  It imports no SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mlboot._backends._seam import ServiceErrorDetail

__all__ = ["arm_errors", "primary_log", "run_error_message"]

# ScriptRun._output_logs_pattern in azureml/core/script_run.py: the logs its own wait streams
# (azure-ai-ml's jobs.stream picks among the same names).
_RUN_LOG_PATTERN = re.compile(
    r"(user_logs/std_log[\D]*[0]*(?:_ps)?\.txt)|(azureml-logs/[\d]{2}.+\.txt)"
)
_RUN_PRIMARY_RANKS = ("rank_0", "worker_0")


def primary_log(names: Iterable[str]) -> str | None:
    """The log file that holds the script's output, as azureml-core's own wait picks it.

    The common runtime's ``user_logs/std_log.txt`` (rank 0 of a distributed run) when there is
    one; else, among ``azureml-logs/NN_*.txt``, the highest ``NN`` (``70_driver_log``), rank 0.
    """
    logs = sorted(name for name in names if _RUN_LOG_PATTERN.match(name))
    if not logs:
        return None
    user_logs = [name for name in logs if name.startswith("user_logs/")]
    if user_logs:
        return user_logs[0]
    newest = logs[-1].split("/", 1)[1][:2]
    candidates = [name for name in logs if name.split("/", 1)[1].startswith(newest)]
    for name in candidates:
        if any(rank in name for rank in _RUN_PRIMARY_RANKS):
            return name
    return candidates[0]


def run_error_message(raw: Any) -> str | None:
    """The service's error for a failed run, from run history's ``details['error']``.

    The shape is ``{"error": {"code", "message", "details": [...]}, ...}``; the message is
    prefixed with its code and followed by the details' messages.
    """
    if not raw:
        return None
    error = raw.get("error", raw) if isinstance(raw, dict) else None
    if not isinstance(error, dict):
        return str(raw)
    parts: list[str] = []
    message = str(error.get("message") or "").strip()
    code = str(error.get("code") or "").strip()
    if message:
        parts.append(f"{code}: {message}" if code else message)
    parts.extend(
        str(detail["message"]).strip()
        for detail in error.get("details") or ()
        if isinstance(detail, dict) and detail.get("message")
    )
    return "; ".join(parts) or (code or None)


def arm_errors(raw: Any) -> tuple[ServiceErrorDetail, ...]:
    """The service's errors (ARM error responses, ``{"error": {"code", "message", "details"}}``)."""
    if not raw:
        return ()
    found: list[ServiceErrorDetail] = []
    for item in raw if isinstance(raw, list) else [raw]:
        error = item.get("error", item) if isinstance(item, dict) else None
        if not isinstance(error, dict):
            found.append(ServiceErrorDetail("Unknown", str(item)))
            continue
        found.append(_arm_error_detail(error))
        found.extend(
            _arm_error_detail(detail)
            for detail in error.get("details") or ()
            if isinstance(detail, dict)
        )
    return tuple(found)


def _arm_error_detail(error: dict[str, Any]) -> ServiceErrorDetail:
    return ServiceErrorDetail(str(error.get("code") or "Unknown"), str(error.get("message") or ""))
