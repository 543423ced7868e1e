"""Every time-out holds while the service keeps throttling or failing (the real SDK's back-offs).

The emulator answers 429 (with and without ``Retry-After``), 500 or 503 to every request of one
route for the whole test, on the compute lookup, the submit and the run status.  azureml-core's
own back-offs are put back to their real values (32/64/128 s after a 429, 2/4/8 s after a 500, a
fixed 5 s standing in for its random 2-10 s after a 503), which would keep one call busy for
minutes.  Each mlboot call must still end within its time-out plus the stated margin, with
:class:`~mlboot.exceptions.WaitTimeoutError` raised from the SDK's error.

Two clocks: the backend's real clock with time-outs of a few seconds (the wall time is
measured), and a :class:`~mlboot.testing.FakeClock` with the time-outs of the issue (60 s,
30 s): then every SDK back-off must go through mlboot's deadline-aware hook (a leak would sleep
for real and trip the watchdog), and the fake time is measured.  A watchdog fails any test that
runs for longer than it could with the bound in place, instead of letting a regression hang.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

import mlboot
from emulator import Emulator, sdk_run_warnings
from mlboot._backends.azureml._azureml import AzureMLBackend
from mlboot._clock import Clock, SystemClock
from mlboot._deadline import CALL_BOUND_SECONDS
from mlboot.exceptions import MlbootError, ServiceError, WaitTimeoutError
from mlboot.testing import FakeClock

pytestmark = pytest.mark.sdk

MARGIN_SECONDS = 1.0
"""How far past its time-out a call may end (docs/howto/reliability.md states the same)."""

WATCHDOG_SECONDS = 30.0
"""No test here needs more than a few seconds; the behaviour fixed took minutes."""

LASTING = 100_000  # answers: every request of the route, for the rest of the test

# azureml-core's own values (azureml/_restclient/clientbase.py); the emulator fixture zeroes them.
SDK_429_BACKOFF = 32
SDK_500_BACKOFF = 2
SDK_503_BACKOFF = 5  # the SDK picks 2..10 at random, once per process

FAULTS: dict[str, tuple[int, float | None]] = {
    "429": (429, None),
    "429-retry-after-1": (429, 1),
    "500": (500, None),
    "503": (503, None),
}


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """Fail the test (in its own thread, interrupting any sleep) once it runs too long."""

    def bark(_signum: int, _frame: FrameType | None) -> None:
        pytest.fail(f"watchdog: the test ran for more than {WATCHDOG_SECONDS:g} s")

    previous = signal.signal(signal.SIGALRM, bark)
    signal.setitimer(signal.ITIMER_REAL, WATCHDOG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def real_sdk_backoffs(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """azureml-core's back-offs as they are outside the tests (the fixture had set them to 0)."""
    from azureml._restclient import clientbase  # noqa: PLC0415

    monkeypatch.setattr(clientbase, "DEFAULT_BACKOFF", SDK_429_BACKOFF)
    monkeypatch.setattr(clientbase, "DEFAULT_500_BACKOFF", SDK_500_BACKOFF)
    monkeypatch.setattr(clientbase, "DEFAULT_503_BACKOFF", SDK_503_BACKOFF)


def _workspace(emulator: Emulator, config: Path, clock: Clock) -> mlboot.Workspace:
    emulator.add_compute("cpu-cluster", vm_size="STANDARD_DS3_V2", max_nodes=4)
    return mlboot.workspace_from_config(
        config, auth=emulator.auth, backend=AzureMLBackend(clock=clock)
    )


def _lasting(emulator: Emulator, route: str, fault: str) -> None:
    status, retry_after = FAULTS[fault]
    emulator.fail(route, status, times=LASTING, retry_after=retry_after)


class _Timed:
    """The wall time and the backend clock's time one call took."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.wall = 0.0
        self.on_clock = 0.0

    def __call__(
        self,
        call: Callable[[], object],
        expected: type[MlbootError] | tuple[type[MlbootError], ...] = WaitTimeoutError,
    ) -> MlbootError:
        wall, on_clock = time.monotonic(), self.clock.monotonic()
        try:
            with pytest.raises(expected) as info:
                call()
        finally:
            self.wall = time.monotonic() - wall
            self.on_clock = self.clock.monotonic() - on_clock
        return info.value


def _assert_names_the_call_and_comes_from_the_sdk(
    error: MlbootError, *, words: str, timeout: float
) -> None:
    assert isinstance(error, WaitTimeoutError), repr(error)
    text = str(error)
    assert text.startswith(words), text
    assert f"{timeout:g} s" in text, text
    assert "Fix:" in text, text
    cause = error.__cause__
    assert cause is not None, "the time-out must be raised from the service's error"
    assert not type(cause).__module__.startswith("mlboot"), repr(cause)


# -- the compute lookup ----------------------------------------------------------------------------


@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_compute_lookup_ends_within_its_timeout_while_the_service_fails(
    emulator: Emulator, config: Path, fault: str
) -> None:
    timed = _Timed(SystemClock())
    workspace = _workspace(emulator, config, timed.clock)
    _lasting(emulator, "compute.get", fault)
    error = timed(
        lambda: mlboot.get_or_create_compute_target(
            workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4, timeout=4
        )
    )
    assert timed.wall <= 4 + MARGIN_SECONDS, error
    _assert_names_the_call_and_comes_from_the_sdk(
        error, words="get_or_create_compute_target for 'cpu-cluster'", timeout=4
    )
    assert emulator.count("arm.compute.put") == 0  # a failed lookup never leads to a create


@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_compute_lookup_with_a_60_s_timeout_ends_by_it_on_the_backend_clock(
    emulator: Emulator, config: Path, fault: str
) -> None:
    clock = FakeClock()
    timed = _Timed(clock)
    workspace = _workspace(emulator, config, clock)
    _lasting(emulator, "compute.get", fault)
    # The SDK's retries after a 500 (2 + 4 + 8 s) or a 503 (5 + 10 + 20 s) fit in 60 s: the
    # call then ends in time with the service's error; after a 429 (32 + 64 s) they do not.
    error = timed(
        lambda: mlboot.get_or_create_compute_target(
            workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4, timeout=60
        ),
        WaitTimeoutError if fault.startswith("429") else ServiceError,
    )
    assert timed.on_clock <= 60, error
    assert timed.wall <= 5 * MARGIN_SECONDS, "an SDK back-off slept in real time"
    assert clock.sleeps, "the SDK's back-offs go through the backend's clock"


@pytest.mark.usefixtures("real_sdk_backoffs")
def test_the_sdk_still_retries_a_throttled_lookup_when_the_retry_fits_the_timeout(
    emulator: Emulator, config: Path
) -> None:
    clock = FakeClock()
    workspace = _workspace(emulator, config, clock)
    emulator.fail("compute.get", 429, times=1)
    cluster = mlboot.get_or_create_compute_target(
        workspace, "cpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4, timeout=60
    )
    assert cluster.name == "cpu-cluster"
    assert SDK_429_BACKOFF in clock.sleeps
    assert emulator.statuses("compute.get")[-2:] == [429, 200]


# -- the submit ------------------------------------------------------------------------------------


def _submit(workspace: mlboot.Workspace, source_dir: Path) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu-cluster",
        experiment="deadline",
        source_directory=source_dir,
        timeout=4,
    )


@sdk_run_warnings
@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_submit_ends_within_its_timeout_while_the_service_fails(
    emulator: Emulator, config: Path, source_dir: Path, fault: str
) -> None:
    timed = _Timed(SystemClock())
    workspace = _workspace(emulator, config, timed.clock)
    emulator.program_run(["Running", "Completed"])
    _lasting(emulator, "execution.snapshotrun", fault)
    error = timed(lambda: _submit(workspace, source_dir))
    assert timed.wall <= 4 + MARGIN_SECONDS, error
    _assert_names_the_call_and_comes_from_the_sdk(
        error, words="submitting 'train.py' as a run of experiment 'deadline'", timeout=4
    )


# The snapshot's own requests: the content service's snapshot calls, and the upload of its files
# to blob storage (azureml-core's vendored storage client, with back-offs of its own).
SNAPSHOT_ROUTES = ("blob.put", "content.snapshot.getblob", "content.snapshot.create")


@sdk_run_warnings
@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("route", SNAPSHOT_ROUTES)
def test_a_submit_ends_within_its_timeout_while_the_snapshot_upload_fails(
    emulator: Emulator, config: Path, source_dir: Path, route: str, fault: str
) -> None:
    timed = _Timed(SystemClock())
    workspace = _workspace(emulator, config, timed.clock)
    emulator.program_run(["Running", "Completed"])
    _lasting(emulator, route, fault)
    # A fault the SDK does not retry ends the submit at once with the service's error; one it
    # retries ends it by the time-out.  Either way within the time-out and its margin.
    error = timed(
        lambda: _submit(workspace, source_dir),
        (WaitTimeoutError, ServiceError),
    )
    assert timed.wall <= 4 + MARGIN_SECONDS, error
    assert emulator.count(route) >= 1, f"the fault on {route} was never reached"
    assert emulator.count("execution.snapshotrun") == 0, "a run was started without its snapshot"
    assert "train.py" in str(error), error


# -- the status polls ------------------------------------------------------------------------------


@pytest.fixture
def reattached(emulator: Emulator, config: Path) -> Callable[[Clock], mlboot.Run]:
    def reattach(clock: Clock) -> mlboot.Run:
        workspace = _workspace(emulator, config, clock)
        state = emulator.add_run("deadline", ("Running",))
        run = mlboot.get_run(workspace, state.run_id)
        run.status()  # the adapter's SDK run is made before the faults start
        return run

    return reattach


@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_wait_ends_within_its_timeout_while_the_status_polls_fail(
    emulator: Emulator, reattached: Callable[[Clock], mlboot.Run], fault: str
) -> None:
    timed = _Timed(SystemClock())
    run = reattached(timed.clock)
    _lasting(emulator, "history.run.get.by_id", fault)
    error = timed(lambda: run.wait(timeout=4, poll_interval=0.05))
    assert timed.wall <= 4 + MARGIN_SECONDS, error
    _assert_names_the_call_and_comes_from_the_sdk(
        error, words=f"waiting for run {run.id!r}", timeout=4
    )


@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_wait_with_a_30_s_timeout_ends_by_it_on_the_backend_clock(
    emulator: Emulator, reattached: Callable[[Clock], mlboot.Run], fault: str
) -> None:
    timed = _Timed(FakeClock())
    run = reattached(timed.clock)
    _lasting(emulator, "history.run.get.by_id", fault)
    error = timed(lambda: run.wait(timeout=30, poll_interval=0.05))
    assert timed.on_clock <= 30, error
    assert timed.wall <= 5 * MARGIN_SECONDS, "an SDK back-off slept in real time"


@pytest.mark.usefixtures("real_sdk_backoffs")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_status_read_ends_within_its_documented_bound_while_the_service_fails(
    emulator: Emulator, reattached: Callable[[Clock], mlboot.Run], fault: str
) -> None:
    timed = _Timed(FakeClock())
    run = reattached(timed.clock)
    _lasting(emulator, "history.run.get.by_id", fault)
    error = timed(run.status)
    assert timed.on_clock <= CALL_BOUND_SECONDS, error
    assert timed.wall <= 5 * MARGIN_SECONDS, "an SDK back-off slept in real time"
    _assert_names_the_call_and_comes_from_the_sdk(
        error, words=f"reading the status of run {run.id!r}", timeout=CALL_BOUND_SECONDS
    )
