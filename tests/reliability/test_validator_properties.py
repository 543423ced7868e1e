"""Property-based tests of the validators: every input is either accepted or refused with
InvalidInputError naming its field, never anything else, and never after a remote call."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_ledger import LEDGER

import mlboot
from mlboot._compute import _check_new_cluster_name, _validated_spec
from mlboot._submit import check_experiment_name
from mlboot.exceptions import InvalidInputError
from mlboot.testing import FakeBackend

# The autouse environment fixture does not need resetting between examples.
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

EXPERIMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}\Z", re.ASCII)
NEW_CLUSTER = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,23}\Z", re.ASCII)
VM_SIZE = re.compile(r"Standard_[A-Z0-9]+(?:[-_][A-Z0-9]+)*\Z", re.IGNORECASE | re.ASCII)

names = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_letters + string.digits + "-_ .\x00\n\u00e9\u200b", max_size=30),
)


def _refused(call: Callable[[], object], field: str) -> bool:
    error: InvalidInputError | None = None
    try:
        call()
    except InvalidInputError as exc:
        error = exc
    if error is None:
        return False
    assert type(error) is InvalidInputError
    assert error.field == field
    assert field in str(error)
    return True


@SETTINGS
@given(name=st.one_of(names, st.from_regex(EXPERIMENT, fullmatch=True)))
def test_experiment_names(name: str) -> None:
    refused = _refused(lambda: check_experiment_name(name), "experiment")
    assert refused == (EXPERIMENT.match(name) is None)
    LEDGER.property_example()


@SETTINGS
@given(name=st.one_of(names, st.from_regex(r"[a-z][a-z0-9-]{1,20}[a-z]", fullmatch=True)))
def test_new_cluster_names(name: str) -> None:
    refused = _refused(lambda: _check_new_cluster_name(name), "name")
    tail_has_letter = any(c.isalpha() for c in name.rpartition("-")[2])
    reserved = name.lower() in {"amlcompute", "local", "containerinstance"}
    valid = NEW_CLUSTER.match(name) is not None and tail_has_letter and not reserved
    assert refused == (not valid)
    LEDGER.property_example()


def _spec(
    vm_size: object = "Standard_DS3_v2", min_nodes: object = 0, max_nodes: object = 2
) -> None:
    _validated_spec(
        vm_size=vm_size,
        vm_priority="dedicated",
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        idle_seconds_before_scaledown=1800,
    )


@SETTINGS
@given(
    vm_size=st.one_of(
        names,
        st.from_regex(r"Standard_[A-Za-z0-9]{1,6}(?:[-_][A-Za-z0-9]{1,4}){0,3}", fullmatch=True),
    )
)
def test_vm_sizes(vm_size: str) -> None:
    refused = _refused(lambda: _spec(vm_size=vm_size), "vm_size")
    assert refused == (VM_SIZE.match(vm_size) is None)
    LEDGER.property_example()


@SETTINGS
@given(
    min_nodes=st.one_of(st.integers(-5, 10), st.booleans(), st.floats(allow_nan=True)),
    max_nodes=st.one_of(st.integers(-5, 10), st.booleans(), st.floats(allow_nan=True)),
)
def test_node_counts(min_nodes: object, max_nodes: object) -> None:
    error: InvalidInputError | None = None
    try:
        _spec(min_nodes=min_nodes, max_nodes=max_nodes)
    except InvalidInputError as exc:
        error = exc
    refused = error is not None
    if error is not None:
        assert type(error) is InvalidInputError
        assert error.field in {"min_nodes", "max_nodes"}
    ints = all(isinstance(n, int) and not isinstance(n, bool) for n in (min_nodes, max_nodes))
    valid = ints and 0 <= min_nodes <= max_nodes and max_nodes >= 1  # type: ignore[operator]
    assert refused == (not valid)
    LEDGER.property_example()


@SETTINGS
@given(max_nodes=st.integers(max_value=0), vm_size=names)
def test_the_public_function_refuses_before_any_remote_call(max_nodes: int, vm_size: str) -> None:
    fake = FakeBackend()
    workspace = mlboot.Workspace(
        name="ws-rel", subscription_id="s", resource_group="rg", location="x", backend=fake
    )
    with pytest.raises(InvalidInputError):
        mlboot.get_or_create_compute_target(workspace, "gpu", vm_size=vm_size, max_nodes=max_nodes)
    assert fake.calls == []
    LEDGER.property_example()
