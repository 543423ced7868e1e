"""mlboot's own words for what each service spells its own way: defined once, above the seam.

What crosses the :class:`~mlboot.backend.Backend` seam is said in these words; each backend
maps its service's words to them and back.  azureml-core reports a cluster's priority as
``"Dedicated"``/``"LowPriority"`` and takes ``"dedicated"``/``"lowpriority"``; azure-ai-ml
says ``"dedicated"``/``"low_priority"`` and types a cluster ``"amlcompute"``; the local backend
and the fake store mlboot's words as they are.  The decisions made with them (which run statuses
are final, which provisioning states end a wait, which names are safe) are mlboot's, so a new
service's words never change them.

The supervisor of a local run imports this module, so it imports nothing.
"""

from __future__ import annotations

__all__ = [
    "CANCEL_REQUESTED",
    "CLUSTER_KIND",
    "DEDICATED",
    "LOW_PRIORITY",
    "PROVISIONING_ENDED",
    "PROVISIONING_FAILED",
    "PROVISIONING_SUCCEEDED",
    "TERMINAL_RUN_STATUSES",
    "VM_PRIORITIES",
    "name_pattern",
]

CLUSTER_KIND = "AmlCompute"
"""``ComputeInfo.kind`` of a training cluster (other kinds keep the service's own name)."""

DEDICATED = "dedicated"
"""``vm_priority`` of a cluster whose nodes are never taken back."""
LOW_PRIORITY = "lowpriority"
"""``vm_priority`` of a cluster of cheaper nodes the service may take back (preempt)."""
VM_PRIORITIES = (DEDICATED, LOW_PRIORITY)

PROVISIONING_SUCCEEDED = "Succeeded"
"""``ComputeInfo.provisioning_state`` of a compute target that is ready."""
PROVISIONING_FAILED = frozenset({"Failed", "Canceled"})
"""Provisioning states that end a wait with an error."""
PROVISIONING_ENDED = PROVISIONING_FAILED | {PROVISIONING_SUCCEEDED}
"""Provisioning states after which the state no longer changes by itself."""

TERMINAL_RUN_STATUSES = frozenset({"Completed", "Failed", "Canceled"})
"""Run statuses (:class:`mlboot.RunStatus` values) after which a run never changes again.

azure-ai-ml counts ``NotResponding`` and ``Paused`` as final too; mlboot does not: a run in
either can still go on, so a wait keeps polling through them.
"""
CANCEL_REQUESTED = "CancelRequested"
"""The status of a run asked to cancel that has not ended yet."""

_NAME_FIRST = "A-Za-z0-9"
_NAME_REST = "A-Za-z0-9_.-"


def name_pattern(longest: int) -> str:
    """The regular expression (for ``re.ASCII``) of a name mlboot lets through to a service.

    ASCII letters and digits, then letters, digits, ``_``, ``.`` and ``-``, at most ``longest``
    characters: never a space, a path separator, ``..`` alone or URL syntax, so that a name is
    safe in an address (a compute lookup) and as a file name (the local backend's folders).
    """
    return f"[{_NAME_FIRST}][{_NAME_REST}]{{0,{longest - 1}}}"
