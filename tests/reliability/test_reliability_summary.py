"""The reliability summary counts what the marked tests really did, from their reports."""

from __future__ import annotations

import pytest
from reliability_ledger import KINDS, RELIABILITY_PROPERTY, outcomes_by_kind


def _report(nodeid: str, when: str, outcome: str, *kinds: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=nodeid,
        location=("test_x.py", 0, nodeid),
        keywords={},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=None if outcome == "passed" else ("test_x.py", 1, "reason"),
        when=when,  # type: ignore[arg-type]
        user_properties=[(RELIABILITY_PROPERTY, kind) for kind in kinds],
    )


def test_each_marked_test_counts_once_by_its_worst_phase() -> None:
    reports = [
        _report("a", "setup", "passed", "links"),
        _report("a", "call", "passed", "links"),
        _report("a", "teardown", "passed", "links"),
        _report("b", "call", "passed", "links"),
        _report("b", "teardown", "failed", "links"),  # a failing teardown fails the test
        _report("c", "setup", "skipped", "disk"),
        _report("d", "setup", "failed", "disk"),  # no call report: failed
        _report("e", "call", "passed"),  # not marked: not counted
        "not a report",
    ]

    assert outcomes_by_kind(reports) == {
        "links": {"a": "passed", "b": "failed"},
        "disk": {"c": "skipped", "d": "failed"},
    }


def test_a_test_of_two_kinds_counts_in_both() -> None:
    reports = [_report("a", "call", "passed", "links", "abandoned")]

    assert outcomes_by_kind(reports) == {"links": {"a": "passed"}, "abandoned": {"a": "passed"}}


@pytest.mark.reliability("self-check")  # a kind the summary does not print
def test_a_mark_reaches_the_test_s_reports(request: pytest.FixtureRequest) -> None:
    assert (RELIABILITY_PROPERTY, "self-check") in request.node.user_properties
    assert "self-check" not in KINDS


def test_a_worker_s_counters_add_up_in_the_controller_s_ledger() -> None:
    from reliability_ledger import Ledger  # noqa: PLC0415  (the class, not the session's ledger)

    controller, worker = Ledger(), Ledger()
    controller.bad_input("a", handled=True)
    controller.fault(2, survived=True, attempts=3)
    controller.deadline(1.0, 4.0)
    worker.bad_input("b", handled=False, lookup=True)
    worker.fault(1, survived=False, attempts=5)
    worker.deadline(3.0, 4.0)
    worker.no_credentials_seconds = (1.5, 0.25)

    controller.merge(worker.to_json())

    assert controller.bad_inputs_tried == {"a", "b"}
    assert controller.bad_inputs_handled == {"a"}
    assert controller.bad_inputs_with_lookup == {"b"}
    assert (controller.faults_injected, controller.faults_survived) == (3, 2)
    assert controller.attempts_observed_max == 5
    assert (controller.deadline_calls, controller.deadline_calls_held) == (2, 2)
    assert controller.deadline_share_max == 0.75
    assert controller.no_credentials_seconds == (1.5, 0.25)
