"""The local backend's run folder and the supervisor that runs a local run, on the stdlib alone.

A local run's supervisor is a fresh interpreter started for every run, between the submitter and
the script: whatever it imports before the script starts is paid on every local run.  So this
module imports only the standard library, :mod:`mlboot.exceptions`, :mod:`mlboot._localio`
and :mod:`mlboot._spellings` (which import nothing else),
and :data:`BOOTSTRAP` loads it without running ``mlboot/__init__.py``: it registers a bare
``mlboot`` package whose ``__path__`` is mlboot's folder, so
``import mlboot._backends.local._local_supervisor`` finds this file (and the two package files
above it, which import nothing) and nothing else of mlboot (``attrs``, ``logging``...) is
imported.  Everything the submitting side needs beyond the files (workspace, pools, submit) is
in :mod:`mlboot._backends.local._local`.

Waiting for a status change: a waiter (``Run.wait`` through
:meth:`mlboot.LocalBackend.pause_until_status_changes`) opens a FIFO in the run's ``waiters/``
folder, then reads the status, then blocks on the FIFO for at most its pause; whoever writes the
status (:meth:`RunFolder.write_status`) replaces ``status.json``, then writes a byte into every
FIFO there.  Either the waiter's read sees the new status, or its FIFO was there before the
write, so it is woken: a wait ends as soon as the status changes, not at its next poll.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from mlboot._localio import room_to_grow, storage_error, translated
from mlboot._spellings import TERMINAL_RUN_STATUSES
from mlboot.exceptions import LocalStorageError, ServiceError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: ``typing`` is not worth importing in the supervisor
    from collections.abc import Callable, Mapping
    from typing import Any

# The same values as mlboot._script_api's, which cannot be imported here (it imports attrs);
# tests/test_local_supervisor.py checks that they agree.
RUN_DIR_VARIABLE = "MLBOOT_RUN_DIR"
OUTPUTS_FOLDER = "outputs"
WORKING_FOLDERS = (OUTPUTS_FOLDER, "logs")
"""Created in the working folder before the script starts, as Azure ML does."""

RUN_ENV_VARIABLE = "_MLBOOT_RUN_ENVIRONMENT"
"""The supervisor's environment variable carrying the script's variables (JSON); removed."""

QUEUE_POLL_SECONDS = 0.1
SCRIPT_POLL_SECONDS = 0.1
"""How often the supervisor of a running script looks for a cancel and its maximum duration."""
CANCEL_GRACE_SECONDS = 5.0
"""How long a canceled script has between SIGTERM and SIGKILL."""
LEFTOVER_GRACE_SECONDS = 2.0
"""How long processes a finished script left behind have between SIGTERM and SIGKILL."""
LOG_TAIL_BYTES = 16 * 1024
RESERVE_BYTES = 8 * 1024
"""The size of a run's status reserve: room for its final status once the disk is full."""
_SHORTEST_CUT_ERROR = 64
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

LOADER = """\
import sys
package = type(sys)("mlboot")
package.__path__ = [sys.argv[3]]
sys.modules["mlboot"] = package
from mlboot._backends.local._local_supervisor import supervise
"""
"""Imports this module from mlboot's folder (``sys.argv[3]``) without mlboot's ``__init__``."""

BOOTSTRAP = (
    # The first process forks and exits at once, so the submitter can wait for it (no zombie,
    # no ResourceWarning) while the grandchild, in a session of its own, outlives the submitter.
    "import os\nif os.fork():\n    os._exit(0)\nos.setsid()\n"
    + LOADER
    + "sys.exit(supervise(sys.argv[1], int(sys.argv[2])))\n"
)
"""``python -S -c BOOTSTRAP RUN_DIR LOCK_FD MLBOOT_FOLDER``: the detached supervisor."""


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a ``Z``."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{nanoseconds // 1_000_000:03d}Z"


def write_json(path: Path, data: Mapping[str, object]) -> None:
    # Readers in other processes see the old file or the new one, never half of one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk leaves no half-written file behind
            temporary.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ServiceError(
            f"the local backend's file {str(path)!r} is damaged ({exc.msg} at line "
            f"{exc.lineno}). Fix: delete it (and for a run, its whole folder)."
        ) from exc
    if not isinstance(data, dict):
        raise ServiceError(f"the local backend's file {str(path)!r} is damaged. Fix: delete it.")
    return data


def status_of(record: Mapping[str, Any]) -> str:
    """A status record's status, read the one way every reader reads it."""
    return str(record.get("status", "NotStarted"))


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on ``path``, or ``None`` if someone has it."""
    import fcntl  # noqa: PLC0415  (POSIX only; LocalBackend refuses other systems up front)

    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in {errno.EROFS, errno.EACCES, errno.EPERM}:
            raise
        # A read-only folder: flock needs no write access to a file that exists.
        descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class RunFolder:
    """The files of one run, and the only code that reads or writes them.

    ``write_json`` writes a whole JSON file atomically (:func:`write_json`, unless a test
    passes a failing one to play a full disk).
    """

    def __init__(
        self, path: Path, *, write_json: Callable[[Path, Mapping[str, object]], None] = write_json
    ) -> None:
        self.path = path
        self._write_json = write_json
        self.request_file = path / "run.json"
        self.status_file = path / "status.json"
        self.reserve_file = path / "status.reserve"
        self.lock_file = path / "supervisor.lock"
        self.log_file = path / "std_log.txt"
        self.supervisor_log_file = path / "supervisor_log.txt"
        self.working_dir = path / "wd"
        self.outputs = path / OUTPUTS_FOLDER
        self.cancel_marker = path / "cancel_requested"
        self.waiters = path / "waiters"

    @property
    def run_id(self) -> str:
        return self.path.name

    def read_request(self) -> dict[str, Any]:
        return read_json(self.request_file)

    def read_status(self) -> dict[str, Any]:
        try:
            return read_json(self.status_file)
        except FileNotFoundError:
            return {"status": "NotStarted"}

    def write_status(self, status: str | None = None, **fields: object) -> None:
        """Change the status (``None``: keep it) and fields, then wake every waiter.

        Only the holder of the lock may.  A file error is raised as a
        :class:`~mlboot.exceptions.LocalStorageError`, except for a final status (Completed,
        Failed, Canceled): that one is then recorded as ``Failed``, saying why, in the status
        reserve (:meth:`make_reserve`), which needs no free space.
        """
        doing = f"recording the status of local run {self.run_id}"
        with translated(doing, path=self.status_file):
            record = self.read_status()
            record.update(fields)
            if status is not None:
                record["status"] = status
            final = record.get("status") in TERMINAL_RUN_STATUSES
            try:
                self._write_json(self.status_file, record)
            except OSError as exc:
                if not final:
                    raise
                problem = storage_error(exc, doing, path=self.status_file)
                self._record_in_reserve(self._ending_on_full_disk(record, problem), problem)
        self.wake_waiters(final=final)

    def make_reserve(self) -> None:
        """Write the status reserve: a file of :data:`RESERVE_BYTES` whose blocks are allocated.

        Once the disk is full, the final status is written over it in place (no new space
        needed) and it is renamed over ``status.json`` (readers see the old status or the new
        one, never half of one).  On a copy-on-write file system (btrfs, ZFS) even an
        overwrite needs free space, so there the reserve may not be enough.
        """
        self.reserve_file.write_bytes(b" " * (RESERVE_BYTES - 1) + b"\n")

    def _ending_on_full_disk(
        self, record: Mapping[str, Any], problem: LocalStorageError
    ) -> dict[str, Any]:
        """The final record the status reserve gets: ``Failed``, saying what the disk refused."""
        error = disk_failure(problem, str(record.get("status")), record.get("error"))
        return dict(record, status="Failed", error=error)

    def _record_in_reserve(self, record: dict[str, Any], problem: LocalStorageError) -> None:
        """Write ``record`` over the reserve in place, then rename it over ``status.json``.

        An error too long for the reserve loses its middle.  Raises ``problem`` if the reserve
        cannot be used (there is none, or the disk refuses even that).
        """
        try:
            descriptor = os.open(self.reserve_file, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:  # none (a run of an older mlboot), or used already
            raise problem from None
        try:
            size = os.fstat(descriptor).st_size
            error = str(record.get("error", ""))
            while True:
                data = json.dumps(dict(record, error=error), indent=2, sort_keys=True).encode()
                if len(data) < size or len(error) < _SHORTEST_CUT_ERROR:
                    break
                keep = max(0, len(error) - (len(data) - size) - _SHORTEST_CUT_ERROR)
                head = keep // 3
                error = f"{error[:head]} [...] {error[len(error) - (keep - head) :]}"
            view = memoryview(data + b"\n" + b" " * max(0, size - len(data) - 1))
            offset = 0
            while offset < len(view):
                offset += os.pwrite(descriptor, view[offset:], offset)
        except OSError:
            raise problem from None
        finally:
            os.close(descriptor)
        try:
            self.reserve_file.replace(self.status_file)
        except OSError:
            raise problem from None

    def wake_waiters(self, *, final: bool = False) -> None:
        """Write a byte into every waiter's FIFO, and remove those nobody reads any more.

        ``final``: the status will not change again, so remove them all once woken; a waiter
        killed in its pause then leaves nothing behind.
        """
        try:
            entries = os.scandir(self.waiters)
        except OSError:  # no waiter ever came (the usual case), or not ours to read
            return
        with entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if not stat.S_ISFIFO(entry.stat(follow_symlinks=False).st_mode):
                        continue
                    if not entry.name.startswith("."):
                        _poke(Path(entry.path), remove=final)
                    elif final:
                        # Not opened yet, or left by a waiter killed before it could: its waiter
                        # (if alive) cannot open it, so it sleeps its pause on the clock instead,
                        # and its next read sees this final status.
                        Path(entry.path).unlink()
        if final:
            with contextlib.suppress(OSError):  # a waiter came in meanwhile: it removes its own
                self.waiters.rmdir()

    def cancel_requested(self) -> bool:
        return self.cancel_marker.exists()

    def log_tail(self, max_bytes: int = LOG_TAIL_BYTES) -> str:
        try:
            with self.log_file.open("rb") as file:
                file.seek(0, os.SEEK_END)
                size = file.tell()
                file.seek(max(0, size - max_bytes))
                return file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def _poke(fifo: Path, *, remove: bool) -> None:
    try:
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # nobody has it open for reading: its waiter is gone
            fifo.unlink()
        return
    try:
        os.write(descriptor, b"\n")
    except BlockingIOError:  # full: its waiter has been woken already
        pass
    finally:
        os.close(descriptor)
    if remove:  # its waiter holds it open: it is woken all the same
        fifo.unlink()


def wait_for_change(
    folder: RunFolder,
    status: str,
    seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return after ``seconds``, or as soon as the run's status is no longer ``status``.

    Where no FIFO can be made (a read-only folder, say) it checks the status once, then sleeps
    the whole ``seconds`` with ``sleep``: the caller's next poll still sees any change.
    """
    if seconds <= 0:
        return
    started = time.monotonic()
    waiter: tuple[Path, int, int] | None = None
    try:
        with contextlib.suppress(OSError):
            waiter = _open_waiter(folder)
        try:
            if status_of(folder.read_status()) != status:
                return  # it changed before our FIFO was in place
        except (OSError, ServiceError):
            return  # let the caller's next read report it
        if waiter is None:
            sleep(seconds)
            return
        import selectors  # noqa: PLC0415  (only waiters need it)

        with selectors.DefaultSelector() as selector:
            selector.register(waiter[1], selectors.EVENT_READ)
            selector.select(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        if waiter is not None:
            fifo, reader, writer = waiter
            os.close(reader)
            os.close(writer)
            with contextlib.suppress(OSError):  # a folder made read-only, or removed
                fifo.unlink(missing_ok=True)


def _open_waiter(folder: RunFolder) -> tuple[Path, int, int]:
    """A FIFO in ``waiters/``, open for reading (and writing, so it never reads as ended)."""
    folder.waiters.mkdir(exist_ok=True)
    name = f"{os.getpid()}-{os.urandom(4).hex()}"
    # Made and opened under a dot name, which writers skip, so that a writer never takes a
    # FIFO that is not open yet for one whose waiter is gone.
    hidden = folder.waiters / f".{name}"
    fifo = folder.waiters / name
    os.mkfifo(hidden, 0o600)
    descriptors: list[int] = []
    try:
        descriptors.append(os.open(hidden, os.O_RDONLY | os.O_NONBLOCK))
        descriptors.append(os.open(hidden, os.O_WRONLY | os.O_NONBLOCK))
        hidden.rename(fifo)
    except BaseException:
        for descriptor in descriptors:
            os.close(descriptor)
        hidden.unlink(missing_ok=True)
        raise
    return fifo, descriptors[0], descriptors[1]


def disk_failure(problem: LocalStorageError, ending: str, prior: object) -> str:
    """The error of a run that a disk problem ended: what it was about to be, then the problem."""
    before = f"{ending}: {prior}" if prior else ending
    return (
        "the disk refused the run's files, so its log, metrics and outputs may be incomplete "
        f"(it was about to end {before}): {problem}"
    )


def pool_dir(root: Path, compute_name: str) -> Path:
    return root / "computes" / compute_name.casefold()


# -- abandoned runs --------------------------------------------------------------------------------


def supervisor_alive(folder: RunFolder) -> bool:
    try:
        lock = try_lock(folder.lock_file)
    except FileNotFoundError:
        return False
    if lock is None:
        return True
    os.close(lock)
    return False


def settle_if_abandoned(root: Path, folder: RunFolder, *, canceled: bool = False) -> None:
    """End a run whose supervisor died before writing a final status (killed, reboot...)."""
    try:
        lock = try_lock(folder.lock_file)
    except FileNotFoundError:
        return
    if lock is None:
        return  # the supervisor (or the submitter) is alive and in charge
    try:
        record = folder.read_status()
        if record.get("status") in TERMINAL_RUN_STATUSES:
            return
        _kill_orphaned_script(folder, record)
        with contextlib.suppress(OSError, ServiceError, KeyError):
            request = folder.read_request()
            queue = pool_dir(root, str(request["compute"])) / "queue"
            (queue / str(request["queue_entry"])).unlink(missing_ok=True)
        if canceled:
            folder.write_status("Canceled", end_time=now())
        else:
            why = _why_not_recorded(folder) or "it was killed, or the machine restarted"
            folder.write_status(
                "Failed",
                end_time=now(),
                error=(
                    "the local supervisor of this run ended without recording how the run "
                    f"ended ({why}); see {folder.supervisor_log_file}"
                ),
            )
    finally:
        os.close(lock)


FINAL_NOT_RECORDED = "the final status could not be recorded: "
"""How the supervisor's log says that even the status reserve refused the run's ending."""


def _why_not_recorded(folder: RunFolder) -> str | None:
    """The supervisor's last word on why it could not record the ending (a disk's refusal)."""
    try:
        with folder.supervisor_log_file.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        _, found, why = line.partition(f" {FINAL_NOT_RECORDED}")
        if found:
            return why
    return None


def _kill_orphaned_script(folder: RunFolder, record: Mapping[str, Any]) -> None:
    """Kill what is left of the script's process group after its supervisor died (Linux)."""
    group = record.get("script_pid")
    if not isinstance(group, int) or not sys.platform.startswith("linux"):
        return
    # Process ids are reused: only kill processes of that group that provably belong to this
    # run, by the MLBOOT_RUN_DIR they inherited.
    marker = f"{RUN_DIR_VARIABLE}={folder.path}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_group = os.getpgid(int(entry.name)) == group
            ours = in_group and marker in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


# -- the supervisor -------------------------------------------------------------------------------


class _Stopped(BaseException):
    """The supervisor itself was asked to stop (SIGTERM, SIGINT)."""


def _tracking_status(folder: RunFolder, status: str) -> None:
    """Tell the run's MLflow run its status (after the script started: never paid before)."""
    from mlboot._tracking_local import finish_run  # noqa: PLC0415

    finish_run(folder.path, status)


def _say(message: str) -> None:
    """A note in the supervisor's log; never raises (the disk may be full)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{now()} {message}\n")
        sys.stderr.flush()


def supervise(run_dir: str, lock: int) -> int:
    """Run one local run to its end; entry point of the detached supervisor process.

    ``lock`` is the inherited descriptor holding ``supervisor.lock``: it stays open until this
    process exits, which is how other processes tell a live supervisor from a dead one.
    """
    del lock  # held, on purpose, until the process exits
    folder = _SupervisedFolder(Path(run_dir))
    environment = json.loads(os.environ.pop(RUN_ENV_VARIABLE, "{}"))

    def stop(signum: int, frame: object) -> None:
        del frame
        raise _Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A file over this process's size limit is then an EFBIG error, reported in the status,
    # not a silent death (Python ignores SIGXFSZ already; this holds whoever started it).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    supervisor: _Supervisor | None = None
    try:
        supervisor = _Supervisor(folder, environment)
        return supervisor.run()
    except BaseException as exc:  # noqa: BLE001  (whatever happens, the run gets an ending)
        import traceback  # noqa: PLC0415  (only on this path)

        _say("the supervisor failed:\n" + traceback.format_exc())
        if supervisor is not None and supervisor.script_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(supervisor.script_pid, signal.SIGKILL)
        try:
            record = folder.read_status()
            if record.get("status") not in TERMINAL_RUN_STATUSES:
                if isinstance(exc, OSError) and not isinstance(exc, LocalStorageError):
                    # Its repr would drop the path: say the disk's problem in words, and where.
                    exc = storage_error(exc, "running the run")
                what = (
                    f"stopped by {exc}"
                    if isinstance(exc, _Stopped)
                    else f"failed: {exc}"
                    if isinstance(exc, LocalStorageError)
                    else f"failed: {exc!r}"
                )
                folder.write_status(
                    "Failed",
                    end_time=now(),
                    error=(
                        f"the local supervisor of this run {what}; see {folder.supervisor_log_file}"
                    ),
                )
        except (OSError, ServiceError) as again:  # even the status reserve failed
            _say(f"{FINAL_NOT_RECORDED}{again}")
        return 1


class _SupervisedFolder(RunFolder):
    """The supervisor's run folder: a disk that refuses a file ends the run, not the supervisor.

    A status other than the final one that cannot be written is noted and skipped.  The first
    such problem (or a log that cannot grow, :meth:`check_log_room`) turns the final status into
    ``Failed``, saying what the disk refused and where.
    """

    problem: LocalStorageError | None = None

    def write_status(self, status: str | None = None, **fields: object) -> None:
        final = status in TERMINAL_RUN_STATUSES
        if final and self.problem is not None:
            fields["error"] = disk_failure(self.problem, str(status), fields.get("error"))
            status = "Failed"
        if status is not None and (final or status == "Running"):
            # Its MLflow run first: whoever sees the final status sees MLflow's too.
            _tracking_status(self, status)
        try:
            super().write_status(status, **fields)
        except LocalStorageError as exc:
            if final:
                raise  # even the status reserve failed
            _say(str(exc))
            if self.problem is None:
                self.problem = exc

    def _ending_on_full_disk(
        self, record: Mapping[str, Any], problem: LocalStorageError
    ) -> dict[str, Any]:
        if self.problem is not None:  # the final record says what the disk refused already
            return dict(record, status="Failed")
        return super()._ending_on_full_disk(record, problem)

    def check_log_room(self) -> None:
        """Note a problem if the script's log cannot grow: its writes were refused too."""
        error = room_to_grow(self.log_file)
        if error is not None and self.problem is None:
            self.problem = storage_error(error, f"writing the log of local run {self.run_id}")
            _say(str(self.problem))


class _Supervisor:
    def __init__(self, folder: _SupervisedFolder, environment: Mapping[str, Any]) -> None:
        self.folder = folder
        self.request = folder.read_request()
        self.root = folder.path.parent.parent
        self.pool = pool_dir(self.root, str(self.request["compute"]))
        self.queue = self.pool / "queue"
        self.queue_entry = str(self.request["queue_entry"])
        self.environment = environment
        self.script_pid: int | None = None
        self.script_size_limit: int | None = None

    def run(self) -> int:
        _become_subreaper()
        self.folder.write_status(supervisor_pid=os.getpid())
        slot = self.wait_for_slot()
        if slot is None:
            (self.queue / self.queue_entry).unlink(missing_ok=True)
            self.folder.write_status("Canceled", end_time=now())
            _say("canceled before it started")
            return 0
        try:
            return self.execute()
        finally:
            os.close(slot)

    # -- queueing --

    def wait_for_slot(self) -> int | None:
        said_queued = False
        while True:
            if self.folder.cancel_requested():
                return None
            size = self.pool_size()
            if self.first_in_queue():
                for number in range(size):
                    slot = try_lock(self.pool / f"slot-{number}.lock")
                    if slot is not None:
                        (self.queue / self.queue_entry).unlink(missing_ok=True)
                        _say(f"took slot {number} of {size} in pool {self.request['compute']!r}")
                        return slot
            if not said_queued:
                self.folder.write_status("Queued")
                _say(f"queued: all {size} slots of pool {self.request['compute']!r} are busy")
                said_queued = True
            time.sleep(QUEUE_POLL_SECONDS)

    def pool_size(self) -> int:
        data = read_json(self.root / "computes" / f"{self.pool.name}.json")
        size = data.get("max_nodes")
        return size if isinstance(size, int) and size > 0 else 1

    def first_in_queue(self) -> bool:
        for entry in sorted(path.name for path in self.queue.iterdir()):
            if entry == self.queue_entry:
                return True
            other = RunFolder(self.root / "runs" / entry.partition("_")[2])
            if supervisor_alive(other):
                return False
            settle_if_abandoned(self.root, other)
            (self.queue / entry).unlink(missing_ok=True)
        return True  # pragma: no cover  (our own entry is only removed by us)

    # -- running --

    def execute(self) -> int:
        folder, request = self.folder, self.request
        env = dict(os.environ)
        for name in self.environment.get("unset", ()):
            env.pop(name, None)
        env.update(self.environment.get("set", {}))
        command = [sys.executable, str(request["script"]), *map(str, request["arguments"])]
        doing = f"making ./outputs and ./logs in the working folder of local run {folder.run_id}"
        try:
            # As on Azure ML, the script finds ./outputs and ./logs in its working folder.
            for name in WORKING_FOLDERS:
                (folder.working_dir / name).mkdir(exist_ok=True)
            doing = f"opening the log of local run {folder.run_id}"
            log = folder.log_file.open("ab")
        except OSError as exc:
            folder.write_status("Failed", end_time=now(), error=str(storage_error(exc, doing)))
            return 0
        started = time.monotonic()
        with log:
            try:
                process = subprocess.Popen(  # noqa: S603  (the user's own script, as submitted)
                    command,
                    cwd=folder.working_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),  # noqa: PLW1509  (this process has one thread)
                )
            except OSError as exc:
                folder.write_status(
                    "Failed", end_time=now(), error=f"the script could not be started: {exc}"
                )
                return 0
        self.script_pid = process.pid
        folder.write_status("Running", start_time=now(), script_pid=process.pid)
        _say(f"started {command} as process {process.pid}")
        reason = self.watch(process, started)
        code = process.returncode
        _end_process_group(process.pid, LEFTOVER_GRACE_SECONDS)
        folder.check_log_room()
        if reason is None:
            folder.write_status("Finalizing", exit_code=code)
        collect_error, canceled = _collect_outputs(folder, stoppable=reason is None)
        _give_back_write_bits(request.get("read_only_inputs", ()))
        if collect_error is None and not canceled:
            collect_error = _upload_data_outputs(folder, request.get("data_outputs", ()))
        if canceled:
            reason = "canceled"
            _say("canceled while its outputs were being collected")
        _say(f"the script ended with exit code {code}; reason: {reason or 'it ended'}")
        self.finish(reason, code, collect_error)
        return 0

    def finish(self, reason: str | None, code: int, collect_error: str | None) -> None:
        """Record the run's final status, from why the script ended and what collecting said."""
        folder, request = self.folder, self.request
        max_duration = request.get("max_run_duration_seconds")
        if reason == "canceled":
            folder.write_status("Canceled", end_time=now(), exit_code=code)
        elif reason == "timeout":
            folder.write_status(
                "Canceled",
                end_time=now(),
                exit_code=code,
                error=(
                    f"the run took longer than max_run_duration_seconds={max_duration} and was "
                    "canceled"
                ),
            )
        elif code != 0:
            folder.write_status(
                "Failed",
                end_time=now(),
                exit_code=code,
                error=_failure_message(
                    str(request["script"]), code, folder, size_limit=self.script_size_limit
                ),
            )
        elif collect_error is not None:
            folder.write_status("Failed", end_time=now(), exit_code=code, error=collect_error)
        else:
            folder.write_status("Completed", end_time=now(), exit_code=code)

    def watch(self, process: subprocess.Popen[bytes], started: float) -> str | None:
        """Wait for the script; end it on a cancel or after its maximum duration."""
        limit = self.request.get("max_run_duration_seconds")
        deadline = started + limit if isinstance(limit, int | float) else None
        watcher = ExitWatch(process)
        with watcher as exited:
            while not exited(SCRIPT_POLL_SECONDS):
                reason = None
                if self.folder.cancel_requested():
                    reason = "canceled"
                elif deadline is not None and time.monotonic() >= deadline:
                    reason = "timeout"
                if reason is not None:
                    self.folder.write_status("CancelRequested")
                    _say(f"ending the script's process group ({reason})")
                    _terminate_script(process, CANCEL_GRACE_SECONDS)
                    return reason
        self.script_size_limit = watcher.file_size_limit
        return None


class ExitWatch:
    """``exited(seconds)``: whether the process has ended, waiting at most ``seconds`` for it.

    Woken the moment the process ends, through a pidfd (Linux 5.3+); elsewhere
    :meth:`subprocess.Popen.wait`, which polls (up to 50 ms late).  With a pidfd,
    ``file_size_limit`` is the process's own ``RLIMIT_FSIZE`` as it ended (read before it is
    reaped: a script may lower its limit itself), ``None`` if unlimited or unknown.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pidfd: int | None = None
        self.file_size_limit: int | None = None

    def __enter__(self) -> Callable[[float], bool]:
        opener = getattr(os, "pidfd_open", None)
        if opener is not None:
            with contextlib.suppress(OSError):  # an old kernel, or one that forbids it
                self.pidfd = opener(self.process.pid)
        return self.exited

    def __exit__(self, *exc_info: object) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def exited(self, seconds: float) -> bool:
        if self.pidfd is None:
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        import select  # noqa: PLC0415  (already loaded by subprocess)

        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        if poller.poll(seconds * 1000):
            self.file_size_limit = file_size_limit_of(self.process.pid)
        return self.process.poll() is not None


def file_size_limit_of(pid: int) -> int | None:
    """Process ``pid``'s soft ``RLIMIT_FSIZE`` in bytes (Linux, even once it is a zombie)."""
    try:
        lines = Path(f"/proc/{pid}/limits").read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if line.startswith("Max file size"):
            soft = line[len("Max file size") :].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


def _terminate_script(process: subprocess.Popen[bytes], grace: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover  (a member changed its user id)
        return True
    return True


def _reap_children() -> None:
    """Reap orphans that were re-parented to this process (a subreaper) and have ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _end_process_group(group: int, grace: float) -> None:
    """End every process left in the script's group: SIGTERM, then SIGKILL after ``grace``.

    Called once the script's main process has been waited for, so reaping any child here can
    no longer take its exit status away from ``Popen``.
    """
    _reap_children()
    if not _group_alive(group):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    for signal_after_wait in (signal.SIGKILL, None):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap_children()
            if not _group_alive(group):
                return
            time.sleep(0.02)
        if signal_after_wait is not None:
            _say(f"processes of group {group} outlived SIGTERM by {grace:.0f} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal_after_wait)


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: PLC0415  (Linux only)

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover  (a libc without prctl)
        return None
    return prctl


def _become_subreaper() -> None:
    # Orphans of the script then become this process's children, so they can be reaped even
    # where PID 1 never reaps (containers), and a dead process group is seen as dead.
    prctl = _libc_prctl()
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _die_with_parent() -> Callable[[], None] | None:
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arrange() -> None:
        # If the supervisor dies, the script dies with it instead of keeping a freed slot busy.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def _collect_outputs(folder: RunFolder, *, stoppable: bool = False) -> tuple[str | None, bool]:
    """Move ``wd/outputs`` to the run's ``outputs/``, as Azure ML uploads it: (error, canceled).

    Never follows a link and never copies a byte (see :func:`mlboot._links.collect_outputs`):
    links, named pipes, sockets and devices are left out, named in the log and the status.
    ``stoppable``: a cancel asked for meanwhile stops it (``canceled`` is then true).
    """
    from mlboot._links import LEFT_OUT_REPORTED, collect_outputs  # noqa: PLC0415  (only now)

    source = folder.working_dir / OUTPUTS_FOLDER
    try:
        done = collect_outputs(
            source,
            folder.outputs,
            should_stop=folder.cancel_requested if stoppable else lambda: False,
        )
    except OSError as exc:
        message = str(storage_error(exc, f"collecting the run's outputs from {source}"))
        _say(message)
        return message, False
    if done.left_out:
        count = len(done.left_out)
        note = (
            f"mlboot: {count} {'entry was' if count == 1 else 'entries were'} left out of the "
            "run's outputs (only "
            "regular files and folders are collected; links are never followed): "
            + "; ".join(done.left_out[:LEFT_OUT_REPORTED])
        )
        _say(note)
        with contextlib.suppress(OSError), folder.log_file.open("a", encoding="utf-8") as log:
            log.write(f"\n{note}\n")
        folder.write_status(
            outputs_left_out=done.left_out[:LEFT_OUT_REPORTED],
            outputs_left_out_count=len(done.left_out),
        )
    if done.error is not None:
        _say(f"collecting outputs failed: {done.error}")
        return f"the run's outputs could not be collected: {done.error}", False
    return None, done.stopped


def _give_back_write_bits(folders: object) -> None:
    """Let the owner write to the read-only copies of mounted inputs again, so they can go."""
    for top in folders if isinstance(folders, list) else ():
        for current, names, _files in os.walk(str(top)):
            with contextlib.suppress(OSError):
                Path(current).chmod(0o700)  # the owner's bits: the copy was 0o555
            names[:] = [n for n in names if not Path(current, n).is_symlink()]


def _upload_data_outputs(folder: RunFolder, uploads: object) -> str | None:
    """Move each upload-mode output into its datastore folder, once the script has ended.

    Each output's folder is first collected as ``outputs/`` is (links, named pipes, sockets and
    devices left out, never followed), then its files are moved into the datastore folder,
    replacing files of the same name there; a link on the way there is refused.  Returns the
    error that fails the run, if any.
    """
    from mlboot._links import (  # noqa: PLC0415  (only now)
        LEFT_OUT_REPORTED,
        check_destination,
        collect_outputs,
        copy_regular_file,
    )

    for record in uploads if isinstance(uploads, list) else ():
        name, source = str(record["name"]), Path(record["source"])
        datastore, path = Path(record["datastore"]), str(record["path"])
        target = datastore / path
        staging = folder.path / "data_outputs_collected" / name
        try:
            staging.parent.mkdir(exist_ok=True)
            done = collect_outputs(source, staging, should_stop=folder.cancel_requested)
            if done.error is not None:
                return f"output {name!r} could not be collected: {done.error}"
            if done.left_out:
                _say(
                    f"output {name!r}: left out (only regular files and folders are uploaded): "
                    + "; ".join(done.left_out[:LEFT_OUT_REPORTED])
                )
            files = [
                Path(current, file_name).relative_to(staging).as_posix()
                for current, _names, names in os.walk(staging)
                for file_name in names
            ]
            check_destination(datastore, [f"{path}/{f}" for f in files] or [f"{path}/"])
            target.mkdir(parents=True, exist_ok=True)
            for relative in sorted(files):
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                try:
                    (staging / relative).replace(destination)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    copy_regular_file(staging / relative, destination)
            _say(f"output {name!r}: {len(files)} file(s) moved to {target}")
        except OSError as exc:
            message = str(storage_error(exc, f"uploading output {name!r} to {target}"))
            _say(message)
            return message
    return None


def _failure_message(
    script: str, code: int, folder: RunFolder, *, size_limit: int | None = None
) -> str:
    how = f"exited with code {code}"
    if code < 0:
        with contextlib.suppress(ValueError):
            how = f"was ended by signal {signal.Signals(-code).name}"
    tail = folder.log_tail()
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    last = f": {lines[-1]}" if lines else " and wrote nothing to its log"
    note = _file_size_note(folder, code, size_limit, tail)
    return f"the script {script!r} {how}{last} (log: {folder.log_file}){note}"


def _file_size_note(folder: RunFolder, code: int, limit: int | None, tail: str) -> str:
    """What a failed script's file size limit had to do with it, or ``""``: nothing seen.

    Seen when the script was killed by ``SIGXFSZ``, when a file it wrote (its log, a file in its
    outputs or working folder) reached its limit, or when its log ends with Python's error.
    """
    killed = code == -signal.SIGXFSZ
    full = _files_at_limit(folder, limit) if limit is not None else []
    if not (killed or full or f"[Errno {errno.EFBIG}]" in tail):
        return ""
    size = f" of {limit} bytes" if limit is not None else ""
    where = f" in {', '.join(repr(str(path)) for path in full)}" if full else ""
    return (
        f". mlboot: the script hit its file size limit{size} (RLIMIT_FSIZE, see `ulimit -f`){where}"
        ", so that file could not grow (error EFBIG, or the signal SIGXFSZ). Fix: raise the "
        "limit (`ulimit -f unlimited`, or resource.setrlimit in the script) or write less"
    )


_AT_LIMIT_REPORTED = 3
_AT_LIMIT_SCANNED = 10_000


def _files_at_limit(folder: RunFolder, limit: int) -> list[Path]:
    """The run's files (log, outputs, working folder) that reached ``limit`` bytes; bounded."""
    found: list[Path] = []
    with contextlib.suppress(OSError):
        if folder.log_file.stat().st_size >= limit:
            found.append(folder.log_file)
    pending, scanned = [folder.outputs, folder.working_dir], 0
    while pending and len(found) < _AT_LIMIT_REPORTED and scanned < _AT_LIMIT_SCANNED:
        with contextlib.suppress(OSError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                scanned += 1
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False) and entry.stat().st_size >= limit:
                    found.append(Path(entry.path))
    return found[:_AT_LIMIT_REPORTED]
