"""Faults on the wire: mlboot adds no request to what the raw SDK sends for the same fault.

For the workspace lookup, the compute lookup and the run status, each fault (429 with
Retry-After, 500, 503, a connection reset, a slow answer) is injected once for the raw SDK call
and once for the mlboot call; the EXTRA requests the fault causes are counted on the emulator
for each, and must be equal.  Client errors fail fast with a typed error; eight threads, or four
processes, asking for one new cluster create it once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mlboot
from emulator import Emulator
from mlboot.exceptions import (
    AuthenticationError,
    MlbootError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    WorkspaceNotFoundError,
)

pytestmark = pytest.mark.sdk


@pytest.fixture
def flows(
    emulator: Emulator, config: Path, workspace: Any
) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """route -> (the raw SDK call, the mlboot call) that reach it."""
    from azureml.core import Run, Workspace  # noqa: PLC0415
    from azureml.core.compute import ComputeTarget  # noqa: PLC0415

    state = emulator.workspace
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    run_state = emulator.add_run("rel", ("Running",))
    ours = mlboot.workspace_from_config(config, auth=emulator.auth)
    # Both handles made (and the adapter's SDK run cached) before anything is counted.
    raw_run = Run.get(workspace, run_state.run_id)
    our_run = mlboot.get_run(ours, run_state.run_id)
    our_run.status()

    def raw_workspace() -> object:
        return Workspace.get(
            state.name,
            auth=emulator.auth,
            subscription_id=state.subscription_id,
            resource_group=state.resource_group,
        )

    return {
        "arm.workspace.get": (
            raw_workspace,
            lambda: mlboot.workspace_from_config(config, auth=emulator.auth),
        ),
        "compute.get": (
            lambda: ComputeTarget._get(workspace, "cpu-cluster"),  # the call the adapter makes
            lambda: mlboot.get_or_create_compute_target(
                ours, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
            ),
        ),
        "history.run.get.by_id": (raw_run.get_status, our_run.status),
    }


FAULTS: dict[str, Callable[[Emulator, str], None]] = {
    "429-retry-after": lambda e, r: e.fail(r, 429, times=1, retry_after=1),
    "500": lambda e, r: e.fail(r, 500, times=1),
    "503-twice": lambda e, r: e.fail(r, 503, times=2),
    "connection-reset": lambda e, r: e.reset_connection(r, times=1),
    "slow-answer": lambda e, r: e.delay(r, 0.5, times=1),
}


def _requests(emulator: Emulator, route: str, call: Callable[[], object]) -> int:
    emulator.clear_requests()
    call()
    return emulator.count(route)


@pytest.mark.filterwarnings("ignore:setDaemon\\(\\) is deprecated:DeprecationWarning")
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("route", ["arm.workspace.get", "compute.get", "history.run.get.by_id"])
def test_transient_fault_costs_mlboot_no_more_than_the_raw_sdk(
    emulator: Emulator, flows: dict[str, Any], route: str, fault: str
) -> None:
    raw, ours = flows[route]
    raw_clean = _requests(emulator, route, raw)
    ours_clean = _requests(emulator, route, ours)
    FAULTS[fault](emulator, route)
    raw_faulted = _requests(emulator, route, raw)
    FAULTS[fault](emulator, route)
    ours_faulted = _requests(emulator, route, ours)
    faulted = [r for r in emulator.requests_to(route) if r.fault is not None]
    assert ours_clean >= 1, emulator.route_sequence()
    assert faulted, f"the {fault} fault was never answered on {route}: {emulator.route_sequence()}"
    assert ours_faulted - ours_clean == raw_faulted - raw_clean, (
        f"raw SDK: {raw_clean} -> {raw_faulted}; mlboot: {ours_clean} -> {ours_faulted}"
    )


@pytest.mark.parametrize(
    ("route", "status", "error"),
    [
        pytest.param(route, status, error, id=f"{route}-{status}")
        for route in ("arm.workspace.get", "compute.get", "history.run.get.by_id")
        for status, error in (
            (400, ServiceError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
        )
        if (route, status) != ("compute.get", 404)  # "not found" leads to a create, by design
    ],
)
def test_client_errors_fail_fast_with_the_raw_sdk_count(
    emulator: Emulator,
    flows: dict[str, Any],
    route: str,
    status: int,
    error: type[MlbootError],
) -> None:
    raw, ours = flows[route]
    emulator.fail(route, status, times=50)
    emulator.clear_requests()
    with pytest.raises(Exception):  # noqa: B017, PT011  (the SDK's own, untyped failure)
        raw()
    baseline = emulator.count(route)
    emulator.clear_requests()
    expected = WorkspaceNotFoundError if (route, status) == ("arm.workspace.get", 404) else error
    with pytest.raises(expected):
        ours()
    assert emulator.count(route) == baseline == 1
    assert emulator.count("arm.compute.put") == 0


def test_eight_threads_create_one_new_cluster_once(emulator: Emulator, config: Path) -> None:
    workspace = mlboot.workspace_from_config(config, auth=emulator.auth)
    emulator.clear_requests()
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        try:
            results.append(
                mlboot.get_or_create_compute_target(
                    workspace, "gpu-race", vm_size="Standard_NC6s_v3", max_nodes=2, wait=False
                )
            )
        except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 8
    assert {getattr(r, "name", None) for r in results} == {"gpu-race"}
    assert emulator.count("arm.compute.put") == 1


def test_four_processes_create_one_new_cluster_once(
    emulator: Emulator, config: Path, tmp_path: Path
) -> None:
    # Each process does its own lookup and, without the lock shared by the processes of one
    # user on one machine, each would PUT: the resource provider's PUT creates or updates.
    child = Path(__file__).with_name("race_child.py")
    go = tmp_path / "go"
    children = []
    for number in range(4):
        spec = {
            "arm_url": emulator.arm_url,
            "tenant_id": emulator.tenant_id,
            "object_id": emulator.object_id,
            "subscriptions": emulator.auth._subscriptions,
            "config": str(config),
            "ready": str(tmp_path / f"ready-{number}"),
            "go": str(go),
        }
        children.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, str(child), json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        _wait_for_files([tmp_path / f"ready-{n}" for n in range(4)], children)
        go.touch()
        outcomes = [c.communicate(timeout=120) for c in children]
    finally:
        for c in children:
            c.kill()
            c.wait(timeout=30)
    for c, (out, err) in zip(children, outcomes, strict=True):
        assert c.returncode == 0, err
        assert json.loads(out) == {"name": "gpu-race", "vm_size": "STANDARD_NC6S_V3"}
    assert emulator.count("arm.compute.put") == 1
    assert emulator.count("compute.get") + emulator.count("arm.compute.get") >= 4


def _wait_for_files(files: list[Path], children: list[subprocess.Popen[str]]) -> None:
    import time  # noqa: PLC0415 - real processes start in real time

    deadline = time.monotonic() + 120
    while not all(f.exists() for f in files):
        assert all(c.poll() is None for c in children), "a child process ended before its start"
        assert time.monotonic() < deadline, "the child processes did not get ready in 120 s"
        time.sleep(0.01)
