"""The counters behind the reliability summary: every test adds what it really tried.

Kept out of ``conftest.py`` so that test modules can import it (``tests/`` is not a package;
pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import attrs
import pytest

PLANTED_SECRETS = (
    "planted-sp-secret-Qx7~vV2.kT9_mZ4rR8",
    "eyJhbGciOiJSUzI1NiJ9.planted-token-payload.c2lnbmF0dXJlLXBsYW50ZWQ",
)
"""Values no test output may ever contain: a service principal secret and a bearer token."""


@attrs.define
class Ledger:
    """What the suite tried and what it saw, for the session summary."""

    bad_inputs_tried: set[str] = attrs.field(factory=set)
    bad_inputs_handled: set[str] = attrs.field(factory=set)
    bad_inputs_with_lookup: set[str] = attrs.field(factory=set)
    property_examples: int = 0
    faults_injected: int = 0
    faults_survived: int = 0
    permanent_failures_fast: int = 0
    attempts_observed_max: int = 0
    attempt_bound: int = 0
    interrupts: int = 0
    texts_scanned: int = 0
    chars_scanned: int = 0
    secrets_leaked: int = 0
    no_credentials_seconds: tuple[float, float] | None = None  # (in all, after the import)
    deadline_calls: int = 0
    deadline_calls_held: int = 0
    deadline_share_max: float = 0.0  # the largest elapsed / bound seen
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def bad_input(self, case_id: str, *, handled: bool, lookup: bool = False) -> None:
        with self._lock:
            self.bad_inputs_tried.add(case_id)
            if handled:
                self.bad_inputs_handled.add(case_id)
            if lookup:
                self.bad_inputs_with_lookup.add(case_id)

    def property_example(self) -> None:
        with self._lock:
            self.property_examples += 1

    def fault(self, injected: int, *, survived: bool, attempts: int) -> None:
        with self._lock:
            self.faults_injected += injected
            if survived:
                self.faults_survived += injected
            self.attempts_observed_max = max(self.attempts_observed_max, attempts)

    def failed_fast(self) -> None:
        with self._lock:
            self.permanent_failures_fast += 1

    def bound(self, attempts: int) -> None:
        with self._lock:
            self.attempt_bound = max(self.attempt_bound, attempts)

    def deadline(self, elapsed: float, bound: float) -> None:
        """A call with a time-out or a documented bound took ``elapsed`` seconds."""
        with self._lock:
            self.deadline_calls += 1
            if elapsed <= bound:
                self.deadline_calls_held += 1
            self.deadline_share_max = max(self.deadline_share_max, elapsed / bound)

    def interrupt(self) -> None:
        with self._lock:
            self.interrupts += 1

    def scan(self, text: str, *, where: str) -> list[str]:
        """Count ``text`` as scanned; return (and count) the planted secrets found in it."""
        leaks = [f"{where}: {secret[:12]}..." for secret in PLANTED_SECRETS if secret in text]
        with self._lock:
            self.texts_scanned += 1
            self.chars_scanned += len(text)
            self.secrets_leaked += len(leaks)
        return leaks

    def to_json(self) -> dict[str, object]:
        """The counters as JSON values: what an xdist worker sends its controller."""
        with self._lock:
            return {
                field.name: sorted(value) if isinstance(value, set) else value
                for field in attrs.fields(Ledger)
                if not field.name.startswith("_")
                for value in [getattr(self, field.name)]
            }

    def merge(self, other: dict[str, object]) -> None:
        """Add a worker's counters (:meth:`to_json`) to these: sets join, counts add, maxima."""
        maxima = {"attempts_observed_max", "attempt_bound", "deadline_share_max"}
        with self._lock:
            for field in attrs.fields(Ledger):
                name = field.name
                if name.startswith("_") or name not in other:
                    continue
                value, mine = other[name], getattr(self, name)
                if isinstance(mine, set):
                    assert isinstance(value, (list, tuple))
                    mine.update(value)
                elif name == "no_credentials_seconds":
                    if value is not None:
                        assert isinstance(value, (list, tuple))
                        self.no_credentials_seconds = (float(value[0]), float(value[1]))
                elif name in maxima:
                    setattr(self, name, max(mine, value))
                else:
                    setattr(self, name, mine + value)


LEDGER = Ledger()

RELIABILITY_PROPERTY = "mlboot_reliability"
"""The user property a ``@pytest.mark.reliability(kind)`` test carries into its reports."""

KINDS = {
    "links": "link, FIFO, socket and device attacks on a run's files: contained",
    "workspace": "sources holding the workspace folder: it was never in the snapshot",
    "disk": "disk faults (injected x each public call, or a real small disk): typed errors",
    "disk-supervisor": "disk faults injected into the local supervisor: run ended saying where",
    "file-size-limit": "runs over a file size limit (RLIMIT_FSIZE): ended Failed naming the file",
    "strict-json": "CLI exits with --json checked: exactly one strict JSON object",
    "abandoned": "runs a killed submitter left: cleaned up or shown abandoned, never listed",
    "secrets": "secret-hiding checks (repr, asdict, pickling, logs, CLI, run folder): hidden",
}
"""Each kind a test can be marked with, and what its passing cases show (the summary's words)."""


def outcomes_by_kind(reports: Iterable[object]) -> dict[str, dict[str, str]]:
    """For each kind, each marked test's outcome (``passed``, ``failed`` or ``skipped``).

    A test failed if any of its phases failed, was skipped if it was, and passed if its call
    passed; a test without a call report (a setup error) counts as failed.
    """
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    found: dict[str, dict[str, str]] = {}
    for report in reports:
        if not isinstance(report, pytest.TestReport):
            continue
        kinds = [value for name, value in report.user_properties if name == RELIABILITY_PROPERTY]
        if report.failed:
            outcome = "failed"
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            continue
        for kind in kinds:
            seen = found.setdefault(str(kind), {})
            if rank[outcome] >= rank.get(seen.get(report.nodeid, "passed"), 0):
                seen[report.nodeid] = outcome
    return found
