"""A lock shared by the processes of one user on one machine, with a time-out.

Used around get-or-create of a compute cluster: threads of one process already share a
``threading.Lock``; this adds the processes (notebook kernels, parallel test workers, two
terminals) that run as the same user on the same machine.  It is an advisory ``flock`` on a file
in a private folder under the temporary folder, so a crashed holder releases it at once.

Where ``fcntl`` does not exist (Windows) or the folder cannot be used safely, the lock is skipped
with a DEBUG message: the caller still has its thread lock and the service's conflict answer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlboot._log import logger
from mlboot.exceptions import WaitTimeoutError

__all__ = ["interprocess_lock", "lock_folder"]


_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.25


def lock_folder() -> Path | None:
    """This user's private lock folder (created, mode 0700), or ``None`` if it is unsafe."""
    if sys.platform == "win32":  # pragma: no cover - no fcntl there
        return None
    import tempfile  # noqa: PLC0415 - paid for on first use, not by import mlboot

    folder = Path(tempfile.gettempdir()) / f"mlboot-locks-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        logger.debug("No inter-process lock: cannot use %s (%s)", folder, exc)
        return None
    # Another user's folder, or a symbolic link planted in a shared /tmp, is not ours to use.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        logger.debug("No inter-process lock: %s is not a private folder of this user", folder)
        return None
    return folder


@contextlib.contextmanager
def interprocess_lock(
    key: str,
    *,
    timeout: float,
    what: str,
    folder: Path | None = None,
    monotonic: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[None]:
    """Hold the lock named ``key`` for the ``with`` block; wait at most ``timeout`` seconds for it.

    ``what`` names the guarded action in the :class:`~mlboot.exceptions.WaitTimeoutError` raised
    when another process holds the lock for longer.  ``monotonic`` and ``sleep`` are the clock
    the wait uses (real time by default: the other party is a real process).
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder = folder if folder is not None else lock_folder()
    if folder is None:
        yield
        return
    import hashlib  # noqa: PLC0415 - paid for on first use, not by import mlboot

    path = folder / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:40] + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        logger.debug("No inter-process lock: cannot open %s (%s)", path, exc)
        fd = None
    if fd is None:
        yield
        return
    monotonic = monotonic or time.monotonic
    sleep = sleep or time.sleep
    try:
        deadline = monotonic() + timeout
        pause = _FIRST_PAUSE
        while (locked := _try_flock(fd, path)) is False:
            left = deadline - monotonic()
            if left <= 0:
                raise WaitTimeoutError(
                    f"waited {timeout:g} s for another process on this machine to finish "
                    f"{what} (lock file {path}). Fix: let that process finish, or pass a "
                    "longer timeout."
                )
            sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_PAUSE)
        try:
            yield
        finally:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int, path: Path) -> bool | None:
    """``True``: locked; ``False``: another process has it; ``None``: no flock on this system."""
    import fcntl  # noqa: PLC0415 - POSIX only; the caller has imported it already

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:  # a file system without flock (some NFS or 9p mounts)
        logger.debug("No inter-process lock: cannot lock %s (%s)", path, exc)
        return None
    return True
