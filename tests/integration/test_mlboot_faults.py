"""HTTP faults on each call of mlboot's flow, counted on the emulator's wire.

For every route the workflow uses and every kind of transient fault, the whole flow (workspace,
existing cluster, submit, wait, metrics) runs twice in one emulator: once clean, once with the
fault. The faulted run must end the same way, every injected fault must have been answered, and
the route must see no more successful requests than in the clean run: mlboot adds no retries on
top of the SDK's own. 400, 401, 403 and 404 fail fast with a typed error.

The snapshot upload (``blob.put``, azureml-core's vendored storage client) has a matrix of its own
below: not every transient fault survives there, so each fault has its exact outcome and number
of requests, and the raw SDK is measured against the same fault in the same emulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from multiprocessing.pool import RUN
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import mlboot
from emulator import Emulator, sdk_run_warnings
from mlboot.exceptions import (
    AuthenticationError,
    MlbootError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    WorkspaceNotFoundError,
)

pytestmark = pytest.mark.sdk

FLOW_ROUTES = [
    "arm.workspace.get",
    "compute.get",
    "content.snapshot.getblob",
    # blob.put has its own matrix (BLOB_PUT_FAULTS below): a 429 there is not retried by the SDK
    # and fails the submit.
    "execution.snapshotrun",
    "history.run.get",
    "metric.list",
]

Fault = Callable[[Emulator, str], int]


def _fail(status: int, times: int, retry_after: float | None = None) -> Fault:
    def inject(emulator: Emulator, route: str) -> int:
        emulator.fail(route, status, times=times, retry_after=retry_after)
        return times

    return inject


def _reset(emulator: Emulator, route: str) -> int:
    emulator.reset_connection(route, times=1)
    return 1


def _slow(emulator: Emulator, route: str) -> int:
    emulator.delay(route, 0.5, times=1)
    return 0  # answered normally, only late


FAULTS: dict[str, Fault] = {
    "503-twice": _fail(503, 2),
    "500-once": _fail(500, 1),
    "429-retry-after": _fail(429, 1, retry_after=1),
    "connection-reset": _reset,
    "slow-answer": _slow,
}


def _config(emulator: Emulator, path: Path, workspace_name: str | None = None) -> Path:
    state = emulator.workspace
    path.write_text(
        json.dumps(
            {
                "subscription_id": state.subscription_id,
                "resource_group": state.resource_group,
                "workspace_name": workspace_name or state.name,
            }
        ),
        encoding="utf-8",
    )
    return path


def _flow(emulator: Emulator, config: Path, source_dir: Path) -> mlboot.RunStatus:
    emulator.program_run(["Running", "Completed"], metrics={"loss": [0.5, 0.25]})
    workspace = mlboot.workspace_from_config(config, auth=emulator.auth)
    cluster = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
    )
    run = mlboot.submit_script(
        workspace, "train.py", compute=cluster, experiment="faults", source_directory=source_dir
    )
    status = run.wait(timeout=120, poll_interval=0.05)
    assert run.metrics()["loss"] == [0.5, 0.25]
    return status


def _successes(emulator: Emulator, route: str) -> int:
    return sum(1 for r in emulator.requests_to(route) if r.fault is None)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("route", FLOW_ROUTES)
def test_the_flow_survives_a_transient_fault_without_extra_requests(
    emulator: Emulator, source_dir: Path, tmp_path: Path, *, route: str, fault: str
) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    config = _config(emulator, tmp_path / "config.json")
    assert _flow(emulator, config, source_dir) is mlboot.RunStatus.COMPLETED
    clean = _successes(emulator, route)
    assert clean >= 1, f"the flow does not use {route}"
    emulator.clear_requests()

    # Changed content: the SDK would otherwise reuse the snapshot and upload nothing.
    with (source_dir / "train.py").open("a", encoding="utf-8") as script:
        script.write("# edited\n")
    injected = FAULTS[fault](emulator, route)
    assert _flow(emulator, config, source_dir) is mlboot.RunStatus.COMPLETED
    faulted = [r for r in emulator.requests_to(route) if r.fault is not None]
    assert len(faulted) == max(injected, 1 if fault == "slow-answer" else 0)
    assert _successes(emulator, route) <= clean + (1 if fault == "slow-answer" else 0)


CLIENT_ERRORS = [
    pytest.param(route, status, error, id=f"{route}-{status}")
    for route in ("arm.workspace.get", "compute.get", "history.run.get")
    for status, error in (
        (400, ServiceError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
    )
    # A 404 on the compute lookup is "not found": it leads to a create, by design.
    if (route, status) != ("compute.get", 404)
]


@pytest.mark.parametrize(("route", "status", "error"), CLIENT_ERRORS)
def test_client_errors_fail_fast_with_a_typed_error(
    emulator: Emulator,
    source_dir: Path,
    tmp_path: Path,
    *,
    route: str,
    status: int,
    error: type[MlbootError],
) -> None:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    config = _config(emulator, tmp_path / "config.json")
    emulator.fail(route, status, times=50)
    expected: type[MlbootError] = error
    if route == "arm.workspace.get" and status == 404:
        expected = WorkspaceNotFoundError
    with pytest.raises(expected) as info:
        _flow(emulator, config, source_dir)
    assert isinstance(info.value, MlbootError)
    assert emulator.count(route) == 1
    assert emulator.count("arm.compute.put") == 0


# ---- the snapshot upload: blob.put -------------------------------------------------------------
#
# azureml-core uploads each new or changed file of the snapshot with its vendored storage client
# (azureml._vendor.azure_storage.blob, on azure-core), one PUT per file, files in parallel. Its
# ExponentialRetry sends at most 4 attempts per file (3 retries, 15 + 3**n s apart, +-3 s) on
# 408, 5xx other than 501/505, connection errors and time-outs, and never retries any other 4xx,
# 429 included, whatever Retry-After says. The SDK's own retry around it
# (clientbase.execute_func_with_reset, 3 retries) never fires: it does not recognise azure-core's
# exceptions. A file that still fails fails the submit, before any run exists.
#
# A submit that fails while the snapshot uploads would leave azureml-core's multiprocessing.dummy
# Pool(1) running, with its 4 threads (azureml/_execution/_commands.py, _start_internal:
# snapshot_async.get() raises before thread_pool.close()); freed later, in whichever test runs,
# Pool.__del__ warns "unclosed running multiprocessing pool". mlboot's deadline hooks close that
# pool as soon as its one task is queued, so none is left running, whatever the submit's outcome.
# The hooks are process-wide: the raw SDK's submits in these tests get them too. The `sdk_pools`
# fixture counts the pools made in a test and those left running (and ends any such).


class _SdkPools:
    """The thread pools azureml-core's submits made in one test (one each), kept to be counted."""

    def __init__(self) -> None:
        self.made: list[Any] = []
        self.counted = 0

    def since_last_asked(self) -> tuple[int, int]:
        """How many pools were made since last asked, and how many of them are still running."""
        made = self.made[self.counted :]
        running = [pool for pool in made if pool._state == RUN]
        self.counted = len(self.made)
        for pool in running:
            pool.terminate()  # no "unclosed running multiprocessing pool" when it is freed
        return len(made), len(running)


@pytest.fixture
def sdk_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[_SdkPools]:
    """Track the pool each SDK submit makes, so a test can count those left running."""
    from azureml._execution import _commands  # noqa: PLC0415

    from mlboot._backends.azureml._azureml import install_deadline_hooks  # noqa: PLC0415

    install_deadline_hooks()  # first, so that the pools tracked are the ones mlboot hooks
    pools = _SdkPools()
    make_pool = _commands.Pool

    def tracked(*args: Any, **kwargs: Any) -> Any:
        pool = make_pool(*args, **kwargs)
        pools.made.append(pool)
        return pool

    monkeypatch.setattr(_commands, "Pool", tracked)
    yield pools
    assert pools.since_last_asked()[1] == 0, "SDK pools left running"


@pytest.fixture
def no_storage_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage client's waits between attempts (18, 24, 42 s, +-3 s; no SDK knob) -> 0."""
    from azureml._vendor.azure_storage.blob._shared.policies import (  # noqa: PLC0415
        ExponentialRetry,
    )

    monkeypatch.setattr(ExponentialRetry, "get_backoff_time", lambda _self, _settings: 0)


def _edit(source_dir: Path) -> None:
    # New content: the SDK uploads train.py, and only train.py, again (one PUT without a fault).
    with (source_dir / "train.py").open("a", encoding="utf-8") as script:
        script.write("# edited\n")


def _raw_submit(workspace: Any, source_dir: Path) -> type[Exception] | None:
    """Submit with the raw SDK; the class of its error, if any (never the error: see above)."""
    from azureml.core import Experiment, ScriptRunConfig  # noqa: PLC0415

    config = ScriptRunConfig(str(source_dir), "train.py", compute_target="cpu-cluster")
    try:
        Experiment(workspace, "faults").submit(config)
    except Exception as exc:  # noqa: BLE001  (the SDK's own, untyped failure is the result)
        return type(exc)
    return None


def _always(status: int) -> Fault:
    return _fail(status, 50)


def _reset_always(emulator: Emulator, route: str) -> int:
    emulator.reset_connection(route, times=50)
    return 50


class _BlobCase(NamedTuple):
    inject: Fault  # before each submit
    requests: int  # blob.put requests for the one changed file: the raw SDK's and mlboot's
    error: type[MlbootError] | None = None  # mlboot's; None: the flow survives
    status: int | None = None  # the error's, when it is a ServiceError


BLOB_PUT_FAULTS: dict[str, _BlobCase] = {
    "503-twice": _BlobCase(FAULTS["503-twice"], 3),
    "500-once": _BlobCase(FAULTS["500-once"], 2),
    "429-retry-after": _BlobCase(FAULTS["429-retry-after"], 1, ThrottledError, 429),
    "connection-reset": _BlobCase(FAULTS["connection-reset"], 2),
    "slow-answer": _BlobCase(FAULTS["slow-answer"], 1),
    "500-always": _BlobCase(_always(500), 4, ServiceError, 500),
    "503-always": _BlobCase(_always(503), 4, ServiceError, 503),
    "reset-always": _BlobCase(_reset_always, 4, NetworkError),
    "400": _BlobCase(_always(400), 1, ServiceError, 400),
    "401": _BlobCase(_always(401), 1, AuthenticationError),
    "403": _BlobCase(_always(403), 1, PermissionDeniedError),
    "404": _BlobCase(_always(404), 1, NotFoundError),
}


@sdk_run_warnings
@pytest.mark.usefixtures("no_storage_backoff")
@pytest.mark.parametrize("fault", list(BLOB_PUT_FAULTS))
def test_a_snapshot_upload_fault_costs_mlboot_what_it_costs_the_raw_sdk(
    emulator: Emulator,
    workspace: Any,
    source_dir: Path,
    tmp_path: Path,
    *,
    sdk_pools: _SdkPools,
    fault: str,
) -> None:
    inject, requests, error, status = BLOB_PUT_FAULTS[fault]
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    config = _config(emulator, tmp_path / "config.json")
    assert _flow(emulator, config, source_dir) is mlboot.RunStatus.COMPLETED  # uploads 4 files

    _edit(source_dir)
    inject(emulator, "blob.put")
    emulator.clear_requests()
    raw_error = _raw_submit(workspace, source_dir)
    raw = [(r.status, r.fault) for r in emulator.requests_to("blob.put")]
    assert (raw_error is None) == (error is None), raw_error
    assert emulator.count("execution.snapshotrun") == (1 if error is None else 0)

    _edit(source_dir)
    inject(emulator, "blob.put")
    emulator.clear_requests()
    if error is None:
        assert _flow(emulator, config, source_dir) is mlboot.RunStatus.COMPLETED
    else:
        with pytest.raises(error) as info:
            _flow(emulator, config, source_dir)
        assert type(info.value) is error
        if isinstance(info.value, ServiceError):
            assert info.value.status == status
            assert info.value.transient is (status != 400)
            # the Retry-After the SDK ignored, for the caller to honour
            assert info.value.retry_after == (1.0 if status == 429 else None)
    ours = [(r.status, r.fault) for r in emulator.requests_to("blob.put")]
    assert emulator.count("execution.snapshotrun") == (1 if error is None else 0)

    assert len(ours) == requests, ours
    assert ours == raw
    # Three submits (the first flow, the raw SDK's, mlboot's), one pool each, none left running
    # even by a failed submit.
    assert sdk_pools.since_last_asked() == (3, 0)


def _wait_for_the_upload_to_end(emulator: Emulator) -> None:
    # The SDK stops waiting but its upload thread goes on: the late PUT, then the HEAD it sends
    # after every upload. Both must be over before the next submit and before the emulator stops.
    deadline = time.monotonic() + 10
    while emulator.count("blob.head") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.count("blob.head") == 1


@sdk_run_warnings
def test_an_upload_slower_than_the_sdk_time_limit_is_a_network_error(
    emulator: Emulator,
    workspace: Any,
    source_dir: Path,
    tmp_path: Path,
    *,
    sdk_pools: _SdkPools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azureml._restclient import snapshots_client  # noqa: PLC0415

    # The SDK waits 300 s for its snapshot's files (AZUREML_SNAPSHOT_DEFAULT_TIMEOUT), then
    # raises AzureMLException "Failed to flush task queue"; 1 s here, and a 2.5 s slow answer.
    monkeypatch.setattr(snapshots_client, "AZUREML_SNAPSHOT_DEFAULT_TIMEOUT", 1)
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    config = _config(emulator, tmp_path / "config.json")
    assert _flow(emulator, config, source_dir) is mlboot.RunStatus.COMPLETED

    _edit(source_dir)
    emulator.delay("blob.put", 2.5, times=1)
    emulator.clear_requests()
    raw_error = _raw_submit(workspace, source_dir)
    assert raw_error is not None
    assert raw_error.__name__ == "AzureMLException"
    _wait_for_the_upload_to_end(emulator)
    raw = [(r.status, r.fault) for r in emulator.requests_to("blob.put")]

    _edit(source_dir)
    emulator.delay("blob.put", 2.5, times=1)
    emulator.clear_requests()
    with pytest.raises(NetworkError, match="did not answer in time while submitting") as info:
        _flow(emulator, config, source_dir)
    assert info.value.transient
    _wait_for_the_upload_to_end(emulator)
    ours = [(r.status, r.fault) for r in emulator.requests_to("blob.put")]

    assert ours == raw == [(201, "delay")]  # answered late, never sent again
    assert emulator.count("execution.snapshotrun") == 0
    assert sdk_pools.since_last_asked() == (3, 0)  # one pool per submit, none left running
