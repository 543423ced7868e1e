"""The ``harness`` fixture: every test of the contract suite runs once per backend.

A backend that legitimately cannot do a scenario says why in its harness's ``cannot``; the
test is then marked skipped with that reason (``-ra`` lists it), never left out silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_harnesses import CANNOT, HARNESSES, PENDING, Harness


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in HARNESSES.items()])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    factory, _ = HARNESSES[request.param]
    yield from factory(request, tmp_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        if here not in item.path.parents or callspec is None:
            continue
        name = callspec.params.get("harness")
        scenario = getattr(item, "originalname", item.name)
        reason = CANNOT.get(name, {}).get(scenario)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"the {name} backend cannot: {reason}"))
        pending = PENDING.get(name, {}).get(scenario)
        if pending is not None:
            item.add_marker(pytest.mark.skip(reason=f"pending on the {name} backend: {pending}"))
