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
