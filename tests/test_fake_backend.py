"""The public fake has tests of its own: state, recording, programming, faults, time."""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import pytest

from mlboot import plan_snapshot
from mlboot._backends._choice import chosen_backend
from mlboot._workspace import workspace_from_config
from mlboot.backend import ComputeSpec, RunRequest, WorkspaceRef
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
)
from mlboot.testing import FakeBackend, FakeClock, use_backend

REF = WorkspaceRef("00000000-0000-0000-0000-000000000000", "rg", "ws")
SPEC = ComputeSpec("STANDARD_D2_V2", "lowpriority", 0, 2, 600)


def request(tmp_path: Path) -> RunRequest:
    return RunRequest(experiment="exp", source_directory=tmp_path, script="train.py", compute="cpu")


def test_fake_clock_moves_only_when_slept_on_or_advanced() -> None:
    clock = FakeClock(10.0)
    assert clock.monotonic() == 10.0
    clock.sleep(2.5)
    clock.advance(1.0)
    clock.sleep(-1)
    assert clock.monotonic() == 13.5
    assert clock.sleeps == [2.5, -1]


def test_every_call_is_recorded_with_its_arguments() -> None:
    fake = FakeBackend()
    assert fake.get_compute(REF, "cpu") is None
    (call,) = fake.calls
    assert call.operation == "get_compute"
    assert call.arguments == {"ref": REF, "name": "cpu"}
    assert fake.calls_to("get_compute") == [call]


def test_created_compute_exists_and_provisions_on_the_fake_clock() -> None:
    fake = FakeBackend()
    fake.program_provisioning("cpu", seconds=30)
    created = fake.create_compute(REF, "cpu", SPEC)
    assert created.provisioning_state == "Creating"
    assert created.vm_priority == "lowpriority"  # mlboot's word, as every backend reports it
    creating = fake.get_compute(REF, "cpu")
    assert creating is not None
    assert creating.provisioning_state == "Creating"
    fake.clock.advance(30)
    found = fake.get_compute(REF, "cpu")
    assert found is not None
    assert found.provisioning_state == "Succeeded"
    assert found.max_nodes == 2


def test_provisioning_can_fail_with_service_errors() -> None:
    fake = FakeBackend()
    fake.program_provisioning("cpu", outcome="Failed", errors=[("QuotaExceeded", "no cores")])
    fake.create_compute(REF, "cpu", SPEC)
    info = fake.get_compute(REF, "cpu")
    assert info is not None
    assert info.provisioning_state == "Failed"
    assert info.provisioning_errors[0].code == "QuotaExceeded"


def test_creating_an_existing_compute_conflicts() -> None:
    fake = FakeBackend()
    fake.add_compute("cpu")
    with pytest.raises(ConflictError):
        fake.create_compute(REF, "cpu", SPEC)


def test_scale_update_changes_the_stored_cluster() -> None:
    fake = FakeBackend()
    fake.add_compute("cpu", max_nodes=1)
    spec = attrs.evolve(SPEC, min_nodes=1, max_nodes=8, idle_seconds_before_scaledown=60)
    fake.update_compute_scale(REF, "cpu", spec)
    found = fake.get_compute(REF, "cpu")
    assert found is not None
    assert (found.min_nodes, found.max_nodes, found.idle_seconds_before_scaledown) == (1, 8, 60)
    assert fake.calls_to("update_compute_scale")[0].arguments == {
        "ref": REF,
        "name": "cpu",
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("transient", ServiceError),
        ("throttled", ThrottledError),
        ("not_found", NotFoundError),
        ("auth", AuthenticationError),
        ("permission", PermissionDeniedError),
    ],
)
def test_faults_fire_the_requested_number_of_times(kind: str, error: type[Exception]) -> None:
    fake = FakeBackend()
    fake.fail("get_compute", kind, times=2)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(error):
            fake.get_compute(REF, "cpu")
    assert fake.get_compute(REF, "cpu") is None
    assert len(fake.calls_to("get_compute")) == 3


def test_faults_can_spare_the_first_calls() -> None:
    fake = FakeBackend()
    fake.add_compute("cpu")
    fake.fail("get_compute", "transient", times=2, after=1)
    assert fake.get_compute(REF, "cpu") is not None  # spared: the lookup before the polls
    for _ in range(2):
        with pytest.raises(ServiceError):
            fake.get_compute(REF, "cpu")
    assert fake.get_compute(REF, "cpu") is not None
    assert len(fake.calls_to("get_compute")) == 4


def test_unknown_operations_and_counts_are_refused() -> None:
    fake = FakeBackend()
    with pytest.raises(ValueError, match="unknown operation"):
        fake.fail("get_computer", "transient")
    with pytest.raises(ValueError, match="at least 1"):
        fake.fail("get_compute", "transient", times=0)
    with pytest.raises(ValueError, match="after"):
        fake.fail("get_compute", "transient", after=-1)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("get_compute_provisioning", "get_compute"),
        ("azureml_workspace", None),
        ("azureml_compute", None),
        ("azureml_run", None),
    ],
)
def test_operations_that_left_the_seam_are_refused_by_name(old: str, new: str | None) -> None:
    # The provisioning read is get_compute now; SDK objects are not the fake's to hand out.
    fake = FakeBackend()
    with pytest.raises(ValueError, match="unknown operation"):
        fake.fail(old, "transient")
    assert not hasattr(fake, old)
    if new is not None:
        assert hasattr(fake, new)


def test_before_hooks_run_ahead_of_the_operation() -> None:
    fake = FakeBackend()
    fake.before("create_compute", lambda _call: fake.add_compute("cpu"))
    with pytest.raises(ConflictError):
        fake.create_compute(REF, "cpu", SPEC)


def test_runs_follow_their_programmed_statuses(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.program_run(statuses=["Running", "Failed"], logs="boom\n", error="exit code 1")
    details = fake.submit_run(REF, request(tmp_path))
    assert details.status == "NotStarted"
    assert fake.get_run_status(REF, details.run_id) == "Running"
    assert fake.get_run_status(REF, details.run_id) == "Failed"
    assert fake.get_run_status(REF, details.run_id) == "Failed"
    assert fake.get_run_details(REF, details.run_id).error == "exit code 1"
    assert fake.get_run_logs(REF, details.run_id) == "boom\n"
    assert fake.submitted == [request(tmp_path)]


def test_run_metrics_and_outputs(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.add_run("r1", metrics={"loss": [0.5, 0.25]}, outputs={"model/w.bin": b"\x00\x01"})
    assert fake.get_run_metrics(REF, "r1") == {"loss": [0.5, 0.25]}
    paths = fake.download_run_outputs(REF, "r1", tmp_path)
    assert paths == [tmp_path / "outputs" / "model" / "w.bin"]
    assert paths[0].read_bytes() == b"\x00\x01"


def test_cancel_moves_through_cancel_requested(tmp_path: Path) -> None:
    fake = FakeBackend()
    fake.program_run(statuses=["Running"])
    run_id = fake.submit_run(REF, request(tmp_path)).run_id
    assert fake.get_run_status(REF, run_id) == "Running"
    fake.cancel_run(REF, run_id)
    assert fake.get_run_status(REF, run_id) == "CancelRequested"
    assert fake.get_run_status(REF, run_id) == "Canceled"


def test_unknown_runs_are_not_found() -> None:
    with pytest.raises(NotFoundError, match="nope"):
        FakeBackend().get_run_status(REF, "nope")


def test_concurrent_creates_make_exactly_one_cluster() -> None:
    fake = FakeBackend()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait(timeout=10)
        try:
            fake.create_compute(REF, "cpu", SPEC)
            outcomes.append("created")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["conflict"] * 7 + ["created"]


def test_use_backend_chooses_the_default_and_restores_the_previous_one_even_on_error(
    config_file: Path,
) -> None:
    config = config_file
    outer, inner = FakeBackend(), FakeBackend()
    with use_backend(outer) as chosen:
        assert chosen is outer
        assert workspace_from_config(config).backend is outer
        seen: list[object] = []

        def fail_inside() -> None:
            with use_backend(inner):
                seen.append(workspace_from_config(config).backend)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail_inside()
        assert seen == [inner]
        assert workspace_from_config(config).backend is outer
    assert chosen_backend() is None
    assert [call.operation for call in inner.calls] == ["get_workspace"]
    assert [call.operation for call in outer.calls] == ["get_workspace", "get_workspace"]


def test_use_backend_leaves_an_explicit_backend_and_a_configured_local_one_alone(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_file
    fake, explicit = FakeBackend(), FakeBackend()
    with use_backend(fake):
        assert workspace_from_config(config, backend=explicit).backend is explicit
        monkeypatch.setenv("MLBOOT_BACKEND", "local")
        assert type(workspace_from_config(config).backend).__name__ == "LocalBackend"
    assert fake.calls == []


def test_use_backend_is_seen_by_threads_the_code_under_test_starts() -> None:
    fake = FakeBackend()
    seen: list[object] = []
    with use_backend(fake):
        thread = threading.Thread(target=lambda: seen.append(chosen_backend()))
        thread.start()
        thread.join()
    assert seen == [fake]


def test_use_backend_refuses_a_value_that_is_not_a_backend() -> None:
    with pytest.raises(InvalidInputError, match="backend") as caught, use_backend("fake"):  # type: ignore[arg-type]
        pass
    assert "mlboot.backend.Backend" in str(caught.value)
    assert chosen_backend() is None


def test_a_request_built_by_hand_plans_its_snapshot_by_the_same_rules(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n", encoding="utf-8")
    (tmp_path / ".amlignore").write_text("data/\n", encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"x")
    built = request(tmp_path)

    assert built.snapshot is None
    assert built.snapshot_plan().files == (".amlignore", "train.py")
    planned = plan_snapshot(tmp_path)
    assert attrs.evolve(built, snapshot=planned).snapshot_plan() is planned
