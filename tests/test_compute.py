"""get_or_create_compute_target, every branch, through FakeBackend and its FakeClock."""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import mlboot
from fake_workspaces import make_workspace
from mlboot import ComputeTarget, get_or_create_compute_target
from mlboot.backend import ComputeSpec, WorkspaceRef
from mlboot.exceptions import (
    AuthenticationError,
    ComputeKindError,
    ComputeMismatchError,
    ComputeProvisioningError,
    ConflictError,
    InvalidInputError,
    MlbootError,
    MlbootWarning,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    SdkObjectUnavailableError,
    ServiceError,
    ThrottledError,
    WaitTimeoutError,
)
from mlboot.testing import Call, FakeBackend, FaultKind

# FakeBackend.add_compute's defaults describe this very cluster.
REQUEST: dict[str, Any] = {"vm_size": "Standard_DS3_v2", "max_nodes": 4}


@pytest.fixture
def mlboot_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="mlboot")
    return caplog


def operations(fake: FakeBackend) -> list[str]:
    return [call.operation for call in fake.calls]


def created_specs(fake: FakeBackend) -> list[ComputeSpec]:
    specs = [call.arguments["spec"] for call in fake.calls_to("create_compute")]
    assert all(isinstance(spec, ComputeSpec) for spec in specs)
    return cast("list[ComputeSpec]", specs)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mlboot" and r.levelno == logging.WARNING]


# -- validation: before anything remote ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"min_nodes": -1}, "min_nodes"),
        ({"min_nodes": 5}, "min_nodes"),  # above max_nodes=4
        ({"min_nodes": True}, "min_nodes"),
        ({"min_nodes": 1.0}, "min_nodes"),
        ({"max_nodes": 0}, "max_nodes"),
        ({"max_nodes": -3}, "max_nodes"),
        ({"max_nodes": True}, "max_nodes"),
        ({"max_nodes": "4"}, "max_nodes"),
        ({"vm_priority": "spot"}, "vm_priority"),
        ({"vm_priority": "low priority"}, "vm_priority"),
        ({"vm_priority": None}, "vm_priority"),
        ({"idle_seconds_before_scaledown": -1}, "idle_seconds_before_scaledown"),
        ({"idle_seconds_before_scaledown": False}, "idle_seconds_before_scaledown"),
        ({"idle_seconds_before_scaledown": 60.0}, "idle_seconds_before_scaledown"),
        ({"vm_size": "DS3_v2"}, "vm_size"),
        ({"vm_size": "Standard_"}, "vm_size"),
        ({"vm_size": "Standard DS3 v2"}, "vm_size"),
        ({"vm_size": "Standard_DS3_v2\n"}, "vm_size"),
        ({"vm_size": "Basic_A1"}, "vm_size"),
        ({"vm_size": ""}, "vm_size"),
        ({"vm_size": None}, "vm_size"),
        ({"on_mismatch": "ignore"}, "on_mismatch"),
        ({"on_mismatch": "ERROR"}, "on_mismatch"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5.0}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "60"}, "timeout"),
    ],
)
def test_invalid_argument_is_refused_before_anything_remote(
    fake: FakeBackend, workspace: mlboot.Workspace, changes: dict[str, Any], field: str
) -> None:
    arguments = {**REQUEST, **changes}

    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(workspace, "gpu", **arguments)

    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MlbootError)
    assert error.field == field
    assert error.value == arguments[field] or error.value is arguments[field]
    assert error.rule
    assert error.fix
    assert field in str(error)
    assert fake.calls == []


@pytest.mark.parametrize("name", ["", None, 42, b"gpu"])
def test_empty_or_non_str_name_is_refused_up_front(
    fake: FakeBackend, workspace: mlboot.Workspace, name: Any
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(workspace, name, **REQUEST)

    assert caught.value.field == "name"
    assert fake.calls == []


def test_a_workspace_that_is_not_mlboots_is_refused(fake: FakeBackend) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(object(), "gpu", **REQUEST)  # type: ignore[arg-type]

    assert caught.value.field == "workspace"
    assert "workspace_from_config" in caught.value.fix


@pytest.mark.parametrize("priority", ["LowPriority", "LOWPRIORITY", "lowpriority"])
def test_vm_priority_is_accepted_in_any_case_and_sent_in_lower_case(
    fake: FakeBackend, workspace: mlboot.Workspace, priority: str
) -> None:
    target = get_or_create_compute_target(workspace, "gpu", **REQUEST, vm_priority=priority)

    (create,) = fake.calls_to("create_compute")
    assert create.arguments["spec"] == ComputeSpec(
        vm_size="Standard_DS3_v2",
        vm_priority="lowpriority",
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scaledown=1800,
    )
    assert target.vm_priority == "lowpriority"


@pytest.mark.parametrize(
    "vm_size",
    [
        "Standard_NC6",
        "STANDARD_DS3_V2",
        "standard_d2s_v3",
        "Standard_NC24ads_A100_v4",
        "Standard_ND96amsr_A100_v4",
        "Standard_DS13-4_v2",  # a constrained-vCPU size
        "Standard_E64-16ds_v4",
    ],
)
def test_real_azure_vm_size_names_are_accepted(fake: FakeBackend, vm_size: str) -> None:
    get_or_create_compute_target(make_workspace(fake), "gpu", vm_size=vm_size, max_nodes=2)

    assert [spec.vm_size for spec in created_specs(fake)] == [vm_size]


@given(
    size=st.from_regex(r"Standard_[A-Za-z0-9]{1,8}(?:[-_][A-Za-z0-9]{1,4}){0,3}", fullmatch=True)
)
def test_any_size_shaped_like_an_azure_size_is_accepted(size: str) -> None:
    fake = FakeBackend()

    get_or_create_compute_target(make_workspace(fake), "gpu", vm_size=size, max_nodes=1)

    assert [spec.vm_size for spec in created_specs(fake)] == [size]


@given(
    prefix=st.sampled_from(["Standard_DS3", "Standard_NC6_v3"]),
    # Anything but an ASCII letter, digit, '_' or '-': spaces, newlines, dots, accented letters...
    intruder=st.characters(codec="utf-8").filter(
        lambda c: not (c.isascii() and (c.isalnum() or c in "_-"))
    ),
    suffix=st.sampled_from(["", "_v2", "x"]),
)
def test_a_size_with_any_other_character_is_refused_before_anything_remote(
    prefix: str, intruder: str, suffix: str
) -> None:
    fake = FakeBackend()

    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(
            make_workspace(fake), "gpu", vm_size=prefix + intruder + suffix, max_nodes=1
        )

    assert caught.value.field == "vm_size"
    assert fake.calls == []


@given(min_nodes=st.integers(-3, 12), max_nodes=st.integers(-3, 12))
def test_node_counts_are_accepted_exactly_when_0_le_min_le_max_and_max_ge_1(
    min_nodes: int, max_nodes: int
) -> None:
    fake = FakeBackend()
    workspace = make_workspace(fake)
    counts: dict[str, Any] = {
        "vm_size": "Standard_NC6",
        "min_nodes": min_nodes,
        "max_nodes": max_nodes,
    }

    if 0 <= min_nodes <= max_nodes and max_nodes >= 1:
        get_or_create_compute_target(workspace, "gpu", **counts)
        assert [(s.min_nodes, s.max_nodes) for s in created_specs(fake)] == [(min_nodes, max_nodes)]
    else:
        with pytest.raises(InvalidInputError) as caught:
            get_or_create_compute_target(workspace, "gpu", **counts)
        assert caught.value.field in {"min_nodes", "max_nodes"}
        assert fake.calls == []


# -- the cluster name: its service rules checked only before creating --------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "1gpu",  # starts with a digit
        "gpu_cluster",
        "gpu.cluster",
        "cpu-cluster-1",  # no letter after the last '-'
        "gpu-",
        "local",
        "AmlCompute",
        "containerinstance",
    ],
)
def test_a_new_cluster_name_breaking_the_service_rules_is_refused_before_creating(
    fake: FakeBackend, workspace: mlboot.Workspace, name: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(workspace, name, **REQUEST)

    assert caught.value.field == "name"
    assert caught.value.value == name
    assert operations(fake) == ["get_compute"]


@pytest.mark.parametrize(
    "name",
    [
        *("-gpu", "gpu cluster", "gpü-cluster", "gpu\x07", "gpu/../other", "gpu?x", "gpu#x"),
        *("a%2F", "a" * 25, "a" * 255),  # longer than any Azure ML naming rule allows
    ],
)
def test_a_name_no_compute_can_have_is_refused_before_the_lookup(
    fake: FakeBackend, workspace: mlboot.Workspace, name: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        get_or_create_compute_target(workspace, name, **REQUEST)

    assert caught.value.field == "name"
    assert caught.value.value == name
    assert "ASCII letters, digits" in str(caught.value)
    assert fake.calls == []


@pytest.mark.parametrize("name", ["gpu", "a" * 24, "cpu-cluster", "gpu-1a", "GPU-Cluster-a1"])
def test_a_new_cluster_name_within_the_rules_is_created(
    fake: FakeBackend, workspace: mlboot.Workspace, name: str
) -> None:
    target = get_or_create_compute_target(workspace, name, **REQUEST)

    assert target.name == name
    assert [c.arguments["name"] for c in fake.calls_to("create_compute")] == [name]


@given(name=st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,23}", fullmatch=True))
def test_any_letters_and_digits_name_of_3_to_24_characters_starting_with_a_letter_is_created(
    name: str,
) -> None:
    assume(name.lower() not in {"local", "amlcompute", "containerinstance"})
    fake = FakeBackend()

    get_or_create_compute_target(make_workspace(fake), name, **REQUEST)

    assert len(fake.calls_to("create_compute")) == 1


@pytest.mark.parametrize("name", ["cpu_cluster_1", "x", "cluster-2"])
def test_an_existing_cluster_stays_reachable_by_a_name_the_rules_would_refuse(
    fake: FakeBackend, workspace: mlboot.Workspace, name: str
) -> None:
    fake.add_compute(name)

    target = get_or_create_compute_target(workspace, name, **REQUEST)

    assert target.name == name
    assert operations(fake) == ["get_compute"]


# -- an existing cluster ---------------------------------------------------------------------------


def test_an_existing_matching_cluster_costs_exactly_one_lookup(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu")

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert fake.calls == [Call("get_compute", {"ref": workspace.ref, "name": "gpu"})]
    assert fake.clock.sleeps == []
    assert target == ComputeTarget(
        name="gpu",
        vm_size="STANDARD_DS3_V2",
        vm_priority="dedicated",
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scaledown=1800,
        provisioning_state="Succeeded",
        kind="AmlCompute",
        workspace=workspace,
    )
    assert target.workspace is workspace


def test_vm_size_and_priority_are_compared_case_insensitively(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", vm_size="standard_nc6", vm_priority="LowPriority")

    target = get_or_create_compute_target(
        workspace, "gpu", vm_size="STANDARD_NC6", vm_priority="lowPriority", max_nodes=4
    )

    assert target.vm_size == "standard_nc6"
    assert target.vm_priority == "lowpriority"
    assert operations(fake) == ["get_compute"]


def test_a_differing_cluster_raises_a_mismatch_listing_every_difference(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute(
        "gpu",
        vm_size="STANDARD_NC6",
        vm_priority="LowPriority",
        min_nodes=1,
        max_nodes=2,
        idle_seconds_before_scaledown=120,
    )

    with pytest.raises(ComputeMismatchError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    error = caught.value
    assert not isinstance(error, ComputeKindError)
    assert isinstance(error, ValueError)
    assert error.differences == {
        "vm_size": ("Standard_DS3_v2", "STANDARD_NC6"),
        "vm_priority": ("dedicated", "lowpriority"),
        "min_nodes": (0, 1),
        "max_nodes": (4, 2),
        "idle_seconds_before_scaledown": (1800, 120),
    }
    message = str(error)
    for field, (requested, actual) in error.differences.items():
        assert f"{field}: requested {requested!r}, actual {actual!r}" in message
    assert "pick another name" in message
    assert "actual values" in message
    assert "cannot change in place" in message
    assert operations(fake) == ["get_compute"]


def test_a_scale_only_mismatch_points_at_on_mismatch_update(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", max_nodes=2)

    with pytest.raises(ComputeMismatchError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert caught.value.differences == {"max_nodes": (4, 2)}
    assert "on_mismatch='update'" in str(caught.value)
    assert operations(fake) == ["get_compute"]


def test_warn_issues_exactly_one_mlboot_warning_at_the_callers_line_and_returns_the_cluster(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", vm_size="STANDARD_NC6", max_nodes=2)

    with pytest.warns(MlbootWarning) as caught:
        target = get_or_create_compute_target(workspace, "gpu", **REQUEST, on_mismatch="warn")

    (warning,) = caught.list
    assert warning.filename == __file__  # points at the user's call, not into mlboot
    message = str(warning.message)
    assert "vm_size: requested 'Standard_DS3_v2', actual 'STANDARD_NC6'" in message
    assert "max_nodes: requested 4, actual 2" in message
    assert (target.vm_size, target.max_nodes) == ("STANDARD_NC6", 2)
    assert operations(fake) == ["get_compute"]


def test_update_changes_the_scale_settings_to_the_requested_values(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", min_nodes=1, max_nodes=2, idle_seconds_before_scaledown=120)

    target = get_or_create_compute_target(
        workspace, "gpu", **REQUEST, min_nodes=0, on_mismatch="update"
    )

    assert operations(fake) == ["get_compute", "update_compute_scale"]
    (update,) = fake.calls_to("update_compute_scale")
    # The whole request goes down, like a create's: its VM size and priority are the cluster's.
    assert update.arguments == {
        "ref": workspace.ref,
        "name": "gpu",
        "spec": ComputeSpec("Standard_DS3_v2", "dedicated", 0, 4, 1800),
    }
    assert (target.min_nodes, target.max_nodes, target.idle_seconds_before_scaledown) == (
        0,
        4,
        1800,
    )


def test_update_does_nothing_when_the_cluster_already_matches(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu")

    get_or_create_compute_target(workspace, "gpu", **REQUEST, on_mismatch="update")

    assert operations(fake) == ["get_compute"]


@pytest.mark.parametrize(
    ("existing", "field"),
    [({"vm_size": "STANDARD_NC6"}, "vm_size"), ({"vm_priority": "LowPriority"}, "vm_priority")],
)
def test_update_refuses_a_vm_size_or_priority_change_and_changes_nothing(
    fake: FakeBackend, workspace: mlboot.Workspace, existing: dict[str, Any], field: str
) -> None:
    fake.add_compute("gpu", max_nodes=2, **existing)

    with pytest.raises(ComputeMismatchError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST, on_mismatch="update")

    assert set(caught.value.differences) == {field, "max_nodes"}
    assert "cannot change in place" in str(caught.value)
    assert "Nothing was changed" in str(caught.value)
    assert operations(fake) == ["get_compute"]


@pytest.mark.parametrize("kind", ["ComputeInstance", "VirtualMachine", "Kubernetes", "AKS"])
@pytest.mark.parametrize("on_mismatch", ["error", "warn", "update"])
def test_a_compute_of_another_kind_raises_a_kind_error_naming_it(
    fake: FakeBackend, workspace: mlboot.Workspace, kind: str, on_mismatch: Any
) -> None:
    fake.add_compute(
        "gpu",
        kind=kind,
        vm_size=None,
        vm_priority=None,
        min_nodes=None,
        max_nodes=None,
        idle_seconds_before_scaledown=None,
    )

    with pytest.raises(ComputeKindError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST, on_mismatch=on_mismatch)

    assert kind in str(caught.value)
    assert caught.value.differences == {"kind": ("AmlCompute", kind)}
    assert operations(fake) == ["get_compute"]


def test_a_cluster_being_deleted_is_reported_not_used(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", provisioning_state="Deleting")

    with pytest.raises(ComputeProvisioningError, match="being deleted"):
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert operations(fake) == ["get_compute"]


def test_a_cluster_described_without_its_settings_is_an_error_not_a_guess(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", vm_size=None)

    with pytest.raises(ServiceError, match="without all of its settings"):
        get_or_create_compute_target(workspace, "gpu", **REQUEST, on_mismatch="warn")


# -- a missing cluster -----------------------------------------------------------------------------


def test_a_missing_cluster_is_created_with_the_requested_settings(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    target = get_or_create_compute_target(
        workspace,
        "gpu-cluster",
        vm_size="Standard_NC6",
        min_nodes=1,
        max_nodes=3,
        vm_priority="lowpriority",
        idle_seconds_before_scaledown=600,
    )

    (create,) = fake.calls_to("create_compute")
    assert create.arguments == {
        "ref": workspace.ref,
        "name": "gpu-cluster",
        "spec": ComputeSpec(
            vm_size="Standard_NC6",
            vm_priority="lowpriority",
            min_nodes=1,
            max_nodes=3,
            idle_seconds_before_scaledown=600,
        ),
    }
    assert operations(fake)[:2] == ["get_compute", "create_compute"]
    assert target.provisioning_state == "Succeeded"
    assert (target.min_nodes, target.max_nodes, target.idle_seconds_before_scaledown) == (1, 3, 600)


@pytest.mark.parametrize(
    ("fault", "error_type", "transient"),
    [
        ("auth", AuthenticationError, False),
        ("permission", PermissionDeniedError, False),
        ("not_found", NotFoundError, False),
        ("throttled", ThrottledError, True),
        ("server", ServiceError, True),
        ("transient", ServiceError, True),
        ("network", NetworkError, True),
    ],
)
def test_a_failed_lookup_raises_at_once_and_never_creates(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    fault: FaultKind,
    error_type: type[Exception],
    transient: bool,
) -> None:
    fake.fail("get_compute", fault, times=5)

    with pytest.raises(error_type) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert getattr(caught.value, "transient", False) is transient
    # One attempt: the azureml-core backend already retries these itself.
    assert operations(fake) == ["get_compute"]
    assert fake.clock.sleeps == []


# -- races -----------------------------------------------------------------------------------------


def test_eight_threads_asking_for_one_new_name_create_it_once(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=45)
    # Widen the window between lookup and create, where an unguarded race would strike: without
    # in-process coordination every thread looks up, finds nothing, and creates.
    fake.before("create_compute", lambda _call: time.sleep(0.01))
    start = threading.Barrier(8)
    results: list[ComputeTarget] = []
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            results.append(get_or_create_compute_target(workspace, "gpu", **REQUEST))
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(fake.calls_to("create_compute")) == 1
    assert len(results) == 8
    assert all(result == results[0] for result in results)
    assert results[0].provisioning_state == "Succeeded"


def _created_elsewhere(fake: FakeBackend, **settings: Any) -> Callable[[Call], None]:
    def hook(call: Call) -> None:
        fake.add_compute(str(call.arguments["name"]), **settings)

    return hook


def test_a_conflict_on_create_rereads_and_uses_a_matching_cluster(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.before("create_compute", _created_elsewhere(fake))
    fake.fail("create_compute", ConflictError("compute target 'gpu' already exists (HTTP 409)"))

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert operations(fake) == ["get_compute", "create_compute", "get_compute"]
    assert target.name == "gpu"
    assert target.provisioning_state == "Succeeded"


def test_a_conflict_on_create_compares_the_other_creators_cluster(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.before("create_compute", _created_elsewhere(fake, max_nodes=2))
    fake.fail("create_compute", ConflictError("compute target 'gpu' already exists (HTTP 409)"))

    with pytest.raises(ComputeMismatchError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert caught.value.differences == {"max_nodes": (4, 2)}
    assert operations(fake) == ["get_compute", "create_compute", "get_compute"]


def test_a_conflict_without_a_cluster_to_find_says_the_name_is_taken(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.fail("create_compute", ConflictError("Compute name 'gpu' is not available (HTTP 409)"))

    with pytest.raises(ConflictError, match="unique within an Azure region") as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert isinstance(caught.value.__cause__, ConflictError)
    assert operations(fake) == ["get_compute", "create_compute", "get_compute"]


# -- waiting ---------------------------------------------------------------------------------------


def test_wait_polls_on_the_backend_clock_until_succeeded(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=95)

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert target.provisioning_state == "Succeeded"
    assert 95 <= fake.clock.monotonic() < 105
    assert fake.clock.sleeps
    assert all(0 < seconds <= 10 for seconds in fake.clock.sleeps)
    # One lookup, one create, then one read of the state after each pause.
    assert operations(fake) == ["get_compute", "create_compute"] + ["get_compute"] * 10
    polls = fake.calls_to("get_compute")[1:]
    assert len(polls) == len(fake.clock.sleeps) == 10


def test_wait_false_returns_at_once_with_the_current_state(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=95)

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST, wait=False)

    assert target.provisioning_state == "Creating"
    assert operations(fake) == ["get_compute", "create_compute"]
    assert fake.clock.sleeps == []


def test_a_cluster_found_creating_is_waited_for(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute("gpu", provisioning_state="Creating")

    def finish_on_third_poll(_call: Call) -> None:
        if len(fake.calls_to("get_compute")) == 1 + 3:  # the lookup, then the third poll
            fake.add_compute("gpu", provisioning_state="Succeeded")

    fake.before("get_compute", finish_on_third_poll)

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert target.provisioning_state == "Succeeded"
    assert operations(fake) == ["get_compute"] + ["get_compute"] * 3
    assert len(fake.clock.sleeps) == 3


@pytest.mark.parametrize("state", ["Creating", "Updating"])
def test_a_cluster_found_in_progress_is_returned_as_is_without_wait(
    fake: FakeBackend, workspace: mlboot.Workspace, state: str
) -> None:
    fake.add_compute("gpu", provisioning_state=state)

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST, wait=False)

    assert target.provisioning_state == state
    assert operations(fake) == ["get_compute"]


def test_a_wait_that_runs_out_of_time_says_what_is_known_and_leaves_the_cluster_alone(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=10_000)

    with pytest.raises(WaitTimeoutError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST, timeout=120)

    assert isinstance(caught.value, TimeoutError)
    message = str(caught.value)
    assert "'Creating'" in message
    assert "after 120 s" in message
    assert fake.clock.monotonic() == 120
    assert set(operations(fake)) == {"get_compute", "create_compute"}
    assert operations(fake)[:2] == ["get_compute", "create_compute"]
    assert len(fake.calls_to("get_compute")) > 1  # polled until the time-out
    assert fake.get_compute(workspace.ref, "gpu") is not None


def test_failed_provisioning_raises_with_the_services_quota_error(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    quota = (
        "QuotaExceeded",
        (
            "Operation could not be completed as it results in exceeding approved "
            "standardNCFamily Cores quota."
        ),
    )
    fake.program_provisioning("gpu", seconds=30, outcome="Failed", errors=[quota])

    with pytest.raises(ComputeProvisioningError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert isinstance(caught.value, RuntimeError)
    assert caught.value.errors == (quota,)
    assert "QuotaExceeded" in str(caught.value)
    assert "standardNCFamily Cores quota" in str(caught.value)
    assert "ended Failed" in str(caught.value)


def test_canceled_provisioning_raises(fake: FakeBackend, workspace: mlboot.Workspace) -> None:
    fake.program_provisioning("gpu", seconds=30, outcome="Canceled")

    with pytest.raises(ComputeProvisioningError, match="ended Canceled"):
        get_or_create_compute_target(workspace, "gpu", **REQUEST)


def test_an_existing_failed_cluster_raises_when_waiting_without_polling(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.add_compute(
        "gpu", provisioning_state="Failed", provisioning_errors=[("BadRequest", "no subnet")]
    )

    with pytest.raises(ComputeProvisioningError) as caught:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert caught.value.errors == (("BadRequest", "no subnet"),)
    assert operations(fake) == ["get_compute"]
    as_it_is = get_or_create_compute_target(workspace, "gpu", **REQUEST, wait=False)
    assert as_it_is.provisioning_state == "Failed"


def test_transient_poll_failures_are_retried_by_the_retry_policy(
    fake: FakeBackend, workspace: mlboot.Workspace, mlboot_log: pytest.LogCaptureFixture
) -> None:
    fake.program_provisioning("gpu", seconds=25)
    fake.fail("get_compute", "transient", times=2, after=1)  # the polls, not the lookup

    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert target.provisioning_state == "Succeeded"
    polls = len(fake.calls_to("get_compute")) - 1
    successful_polls = math.ceil(25 / 10)
    assert polls == successful_polls + 2
    assert len([r for r in warnings_in(mlboot_log) if "retry" in r.getMessage()]) == 2


def test_a_permanent_poll_failure_ends_the_wait_at_once(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=25)
    fake.fail("get_compute", "auth", times=5, after=1)  # the polls, not the lookup

    with pytest.raises(AuthenticationError):
        get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert operations(fake) == ["get_compute", "create_compute", "get_compute"]


def test_a_ready_cluster_reporting_errors_is_returned_with_a_warning(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning(
        "gpu", seconds=10, errors=[("ClusterCoreQuotaReached", "not enough cores for 2 nodes")]
    )

    with pytest.warns(MlbootWarning, match="ClusterCoreQuotaReached") as caught:
        target = get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert target.provisioning_state == "Succeeded"
    assert len(caught.list) == 1


def test_progress_is_logged_at_least_every_minute_while_waiting(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    fake.program_provisioning("gpu", seconds=300)
    said_at: list[tuple[float, str]] = []

    class OnTheFakeClock(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said_at.append((fake.clock.monotonic(), record.getMessage()))

    handler = OnTheFakeClock(level=logging.INFO)
    log = logging.getLogger("mlboot")
    previous_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        get_or_create_compute_target(workspace, "gpu", **REQUEST)
    finally:
        log.removeHandler(handler)
        log.setLevel(previous_level)

    times = [when for when, _ in said_at]
    assert times[0] == 0
    assert times[-1] >= 300
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) <= 60
    assert any("Creating -> Succeeded" in message for _, message in said_at)


def test_show_output_prints_progress_to_stdout(
    fake: FakeBackend, workspace: mlboot.Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.program_provisioning("gpu", seconds=95)

    get_or_create_compute_target(workspace, "gpu", **REQUEST, show_output=True)

    out = capsys.readouterr().out
    assert "Creating compute target 'gpu'" in out
    assert "still Creating" in out
    assert "Creating -> Succeeded" in out


def test_without_show_output_nothing_is_printed(
    fake: FakeBackend, workspace: mlboot.Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.program_provisioning("gpu", seconds=95)

    get_or_create_compute_target(workspace, "gpu", **REQUEST)

    assert capsys.readouterr() == ("", "")


# -- the ComputeTarget value -----------------------------------------------------------------------


def test_compute_target_equality_and_repr_leave_the_workspace_out(fake: FakeBackend) -> None:
    one = get_or_create_compute_target(make_workspace(fake), "gpu", **REQUEST)
    other_workspace = make_workspace(FakeBackend())
    same = attrs.evolve(one, workspace=other_workspace)

    assert one == same
    assert hash(one) == hash(same)
    assert "workspace" not in repr(one)
    assert "gpu" in repr(one)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.max_nodes = 8  # type: ignore[misc]


def test_to_azureml_asks_the_backend_for_the_sdk_object(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)
    calls = len(fake.calls)

    with pytest.raises(NotImplementedError) as caught:
        target.to_azureml()

    # The fake has no SDK objects: a typed error says so, and the backend is not asked.
    assert isinstance(caught.value, SdkObjectUnavailableError)
    assert "FakeBackend has no azureml-core objects" in str(caught.value)
    assert "compute target 'gpu'" in str(caught.value)
    assert len(fake.calls) == calls


def test_to_azureml_hands_out_the_sdk_object_of_a_backend_that_has_them(
    fake: FakeBackend, workspace: mlboot.Workspace
) -> None:
    target = get_or_create_compute_target(workspace, "gpu", **REQUEST)
    sdk_cluster = object()

    class WithObjects(FakeBackend):
        def azureml_workspace(self, ref: WorkspaceRef) -> object:
            raise AssertionError(ref)

        def azureml_compute(self, ref: WorkspaceRef, name: str) -> object:
            asked.append((ref, name))
            return sdk_cluster

        def azureml_run(self, ref: WorkspaceRef, run_id: str) -> object:
            raise AssertionError((ref, run_id))

    asked: list[tuple[WorkspaceRef, str]] = []
    backend = WithObjects()
    with_objects = attrs.evolve(target, workspace=attrs.evolve(workspace, backend=backend))

    assert with_objects.to_azureml() is sdk_cluster
    assert asked == [(workspace.ref, "gpu")]


def test_the_public_names_are_exported() -> None:
    assert {"ComputeTarget", "get_or_create_compute_target"} <= set(mlboot.__all__)
    assert mlboot.get_or_create_compute_target is get_or_create_compute_target
