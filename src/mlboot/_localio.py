"""How the local backend turns the operating system's file errors into one honest error.

Every file operation of the local backend (the submitting side in
:mod:`mlboot._backends.local._local`, the supervisor in
:mod:`mlboot._backends.local._local_supervisor`) that fails with an :class:`OSError` is raised
as a :class:`~mlboot.exceptions.LocalStorageError` built here: a full disk, a used-up quota, a
read-only file system, a refused permission or a failing disk, each said in words, with the
path, what was being done and how to fix it.  :func:`room_to_grow` tells whether a file can
still grow, which is how the supervisor learns that a script's log hit a full disk.

The supervisor imports this module, so it imports only the standard library and
:mod:`mlboot.exceptions`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from mlboot.exceptions import LocalStorageError, MlbootError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: ``typing`` is not worth importing in the supervisor
    from collections.abc import Iterator

__all__ = ["room_to_grow", "storage_error", "translated"]


# errno: (what went wrong, the fix), each said of ``{where}``, the path.
_REASONS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "the disk is full: no space is left on the file system holding {where}",
        "free space on the file system holding {where}",
    ),
    errno.EDQUOT: (
        "the disk quota is used up on the file system holding {where}",
        "free space on the file system holding {where}, or ask for a larger quota",
    ),
    errno.EFBIG: (
        (
            "{where} reached the largest file size allowed (the file size limit of this "
            "process, see `ulimit -f`, or the file system's own), so it cannot grow on disk"
        ),
        "raise the limit (`ulimit -f unlimited`) or write less to it",
    ),
    errno.EROFS: (
        "the file system holding {where} is read-only",
        "make it writable (remount it read-write), or use a folder on a writable disk",
    ),
    errno.EACCES: (
        "permission to use {where} was refused",
        "make it readable and writable by this user (chmod or chown it), or use another folder",
    ),
    errno.EIO: (
        "the disk holding {where} failed to read or write (input/output error)",
        "check the disk and its connection (`dmesg` shows the kernel's errors)",
    ),
    errno.ENOENT: (
        "{where} does not exist any more",
        "check that nothing removes the workspace folder while mlboot uses it",
    ),
}
_REASONS[errno.EPERM] = _REASONS[errno.EACCES]


def _reason_and_fix(code: int | None, strerror: str, where: str) -> tuple[str, str]:
    known = _REASONS.get(code) if code is not None else None
    if known is not None:
        return known[0].format(where=where), known[1].format(where=where)
    name = errno.errorcode.get(code, "no errno") if code is not None else "no errno"
    return f"{strerror} ({name}) on {where}", f"check that {where} can be read and written"


def storage_error(
    error: OSError,
    doing: str,
    *,
    path: str | os.PathLike[str] | None = None,
    near: str | os.PathLike[str] | None = None,
) -> LocalStorageError:
    """The :class:`~mlboot.exceptions.LocalStorageError` that says why ``doing`` failed.

    The path it names is ``path`` if given, else the file the error names, else ``near``.
    """
    chosen = path if path is not None else error.filename or near
    where = repr(os.fspath(chosen)) if chosen is not None else "an unnamed file"
    strerror = error.strerror or str(error) or type(error).__name__
    reason, fix = _reason_and_fix(error.errno, strerror, where)
    return LocalStorageError(
        f"{doing} failed: {reason}. Fix: {fix}.",
        errno=error.errno,
        filename=os.fspath(chosen) if isinstance(chosen, str | os.PathLike) else None,
    )


@contextlib.contextmanager
def translated(
    doing: str,
    *,
    path: str | os.PathLike[str] | None = None,
    near: str | os.PathLike[str] | None = None,
) -> Iterator[None]:
    """Raise any :class:`OSError` of the block as :func:`storage_error` says it.

    mlboot's own errors (some are :class:`OSError` too) pass through unchanged.
    """
    try:
        yield
    except MlbootError:
        raise
    except OSError as exc:
        raise storage_error(exc, doing, path=path, near=near) from exc


def room_to_grow(path: Path) -> OSError | None:
    """Why file ``path`` cannot grow any more, or ``None`` if it can (as far as one can tell).

    Two checks, both cheap: the file is still under this process's file size limit
    (``RLIMIT_FSIZE``, which the scripts it starts inherit), and one more block fits on its file
    system (written to a scratch file beside it, then removed).  The error names ``path``.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        return exc
    try:
        import resource  # noqa: PLC0415  (POSIX only, like the whole local backend)
    except ImportError:  # pragma: no cover  (not POSIX)
        limit = None
    else:
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        limit = None if soft == resource.RLIM_INFINITY else soft
    if limit is not None and size >= limit:
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    scratch = path.with_name(f".{path.name}.room-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            block = memoryview(bytes(max(os.fstat(descriptor).st_blksize, 4096)))
            while block:
                written = os.write(descriptor, block)
                if written <= 0:  # pragma: no cover  (write(2) reports ENOSPC instead)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                block = block[written:]
        finally:
            os.close(descriptor)
    except OSError as exc:
        return OSError(exc.errno, exc.strerror, str(path))
    finally:
        with contextlib.suppress(OSError):
            scratch.unlink()
    return None
