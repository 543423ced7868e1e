"""The inter-process lock around get-or-create: exclusive, bounded in time, released, private.

Contention is made inside this one process: ``flock`` locks belong to an open file description,
so a second ``open`` of the same lock file contends exactly as another process would.  The wait
runs on a fake clock: nothing here sleeps.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import threading
import types
from pathlib import Path

import pytest
from typing_extensions import Self

import mlboot
from mlboot import _compute, _filelock
from mlboot._filelock import interprocess_lock, lock_folder
from mlboot.exceptions import WaitTimeoutError
from mlboot.testing import FakeBackend, FakeClock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX only")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "locks"
    path.mkdir(mode=0o700)
    return path


class Held:
    """The lock ``key`` held by "another process" (another open file description)."""

    def __init__(self, folder: Path, key: str) -> None:
        self._context = interprocess_lock(key, timeout=1.0, what="holding", folder=folder)
        self._held = False

    def __enter__(self) -> Self:
        self._context.__enter__()
        self._held = True
        return self

    def release(self) -> None:
        if self._held:
            self._held = False
            self._context.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_held_lock_times_out_on_the_clock_naming_the_action_and_the_fix(folder: Path) -> None:
    clock = FakeClock()
    with (
        Held(folder, "k"),
        pytest.raises(WaitTimeoutError) as caught,
        interprocess_lock(
            "k",
            timeout=3.0,
            what="get-or-create of compute target 'gpu'",
            folder=folder,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        ),
    ):
        pytest.fail("the lock was taken while another holder had it")
    message = str(caught.value)
    assert "waited 3 s" in message
    assert "get-or-create of compute target 'gpu'" in message
    assert "pass a longer timeout" in message
    assert isinstance(caught.value, TimeoutError)
    # Back-off from 10 ms, doubling, capped at 250 ms, and never past the deadline.
    assert clock.sleeps[:5] == [0.01, 0.02, 0.04, 0.08, 0.16]
    assert max(clock.sleeps) == 0.25
    assert sum(clock.sleeps) == pytest.approx(3.0)


def test_a_waiter_gets_the_lock_once_the_holder_lets_go(folder: Path) -> None:
    clock = FakeClock()
    entered = False
    with Held(folder, "k") as holder:

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            if len(clock.sleeps) == 3:
                holder.release()

        with interprocess_lock(
            "k", timeout=60, what="x", folder=folder, monotonic=clock.monotonic, sleep=sleep
        ):
            entered = True
    assert entered
    assert len(clock.sleeps) == 3


def test_the_lock_is_released_after_the_block_even_when_it_raises(folder: Path) -> None:
    clock = FakeClock()
    with (
        pytest.raises(RuntimeError),
        interprocess_lock("k", timeout=1, what="x", folder=folder),
    ):
        raise RuntimeError("boom")
    with interprocess_lock(
        "k", timeout=1, what="x", folder=folder, monotonic=clock.monotonic, sleep=clock.sleep
    ):
        pass
    assert clock.sleeps == []


def test_different_keys_do_not_wait_for_each_other(folder: Path) -> None:
    clock = FakeClock()
    with (
        Held(folder, "gpu"),
        interprocess_lock(
            "cpu", timeout=1, what="x", folder=folder, monotonic=clock.monotonic, sleep=clock.sleep
        ),
    ):
        pass
    assert clock.sleeps == []


def test_the_lock_file_is_private_and_named_by_a_hash_of_the_key(folder: Path) -> None:
    with interprocess_lock("compute secret-name", timeout=1, what="x", folder=folder):
        (path,) = folder.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "secret-name" not in path.name


@pytest.fixture
def tmpdir_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return tmp_path


def test_the_lock_folder_is_created_private_to_the_user(tmpdir_here: Path) -> None:
    folder = lock_folder()
    assert folder == tmpdir_here / f"mlboot-locks-{os.getuid()}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_folder_others_can_write_is_not_used(tmpdir_here: Path) -> None:
    shared = tmpdir_here / f"mlboot-locks-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    assert lock_folder() is None


def test_a_symbolic_link_in_place_of_the_folder_is_not_followed(tmpdir_here: Path) -> None:
    elsewhere = tmpdir_here / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmpdir_here / f"mlboot-locks-{os.getuid()}").symlink_to(elsewhere)
    assert lock_folder() is None


def test_without_a_usable_folder_the_block_still_runs(
    tmpdir_here: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmpdir_here / f"mlboot-locks-{os.getuid()}").write_text("not a folder")
    caplog.set_level("DEBUG", logger="mlboot")
    ran = False
    with interprocess_lock("k", timeout=1, what="x"):
        ran = True
    assert ran
    assert "No inter-process lock" in caplog.text


# -- through get_or_create_compute_target ----------------------------------------------------------


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(
        _filelock, "time", types.SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep)
    )
    return clock


def test_get_or_create_waits_for_another_process_then_finds_its_cluster(
    tmpdir_here: Path, fake_time: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBackend()
    workspace = mlboot.Workspace(
        name="ws", subscription_id="s", resource_group="rg", location="westeurope", backend=fake
    )
    key = repr(("compute", "s", "rg", "ws", "GPU-Race")).casefold()
    with Held(lock_folder() or tmpdir_here, key) as holder:

        def sleep(seconds: float) -> None:
            fake_time.sleep(seconds)
            if len(fake_time.sleeps) == 2:  # the other process creates it, then lets go
                fake.add_compute("gpu-race", vm_size="STANDARD_DS3_V2", max_nodes=4)
                holder.release()

        monkeypatch.setattr(_filelock.time, "sleep", sleep)
        target = mlboot.get_or_create_compute_target(
            workspace, "gpu-race", vm_size="Standard_DS3_v2", max_nodes=4, wait=False
        )

    assert target.name == "gpu-race"
    assert fake.calls_to("create_compute") == []
    assert [c.operation for c in fake.calls] == ["get_compute"]


def test_get_or_create_gives_up_on_the_lock_within_its_timeout(
    tmpdir_here: Path, fake_time: FakeClock
) -> None:
    fake = FakeBackend()
    workspace = mlboot.Workspace(
        name="ws", subscription_id="s", resource_group="rg", location="westeurope", backend=fake
    )
    key = repr(("compute", "s", "rg", "ws", "gpu-race")).casefold()
    with Held(lock_folder() or tmpdir_here, key), pytest.raises(WaitTimeoutError) as caught:
        mlboot.get_or_create_compute_target(
            workspace, "gpu-race", vm_size="Standard_DS3_v2", max_nodes=4, timeout=90, wait=False
        )
    assert "another process on this machine" in str(caught.value)
    assert sum(fake_time.sleeps) == pytest.approx(90)
    assert fake.calls == []


def test_a_file_system_without_flock_runs_the_block_unlocked(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    caplog.set_level("DEBUG", logger="mlboot")
    ran = False
    with interprocess_lock("k", timeout=1, what="x", folder=folder):
        ran = True
    assert ran
    assert "cannot lock" in caplog.text


def test_an_error_in_the_block_carries_no_lock_error_as_its_context(folder: Path) -> None:
    with (
        pytest.raises(ValueError, match="boom") as caught,
        interprocess_lock("k", timeout=1, what="x", folder=folder / "missing"),
    ):
        raise ValueError("boom")
    assert caught.value.__context__ is None


def test_a_thread_holding_the_name_makes_get_or_create_time_out_naming_it() -> None:
    fake = FakeBackend()
    workspace = mlboot.Workspace(
        name="ws", subscription_id="s", resource_group="rg", location="westeurope", backend=fake
    )
    held = _compute._creation_locks.setdefault((workspace.ref, "gpu-held"), threading.Lock())
    with held, pytest.raises(WaitTimeoutError) as caught:
        mlboot.get_or_create_compute_target(
            workspace, "GPU-held", vm_size="Standard_DS3_v2", max_nodes=2, timeout=0.001, wait=False
        )
    assert "another thread of this process" in str(caught.value)
    assert fake.calls == []
