"""Moving and copying files without ever following a symbolic link, on the standard library alone.

Three places move files a script or a user controls, and each must stay inside its folders:

- collecting a local run's ``outputs/`` when its script has ended (:func:`collect_outputs`, in
  the supervisor, which imports only the standard library: so does this module);
- downloading a run's outputs into a folder of the user's (:func:`download_tree` for a local
  run, :func:`check_destination` before azureml-core writes an Azure ML run's files);
- copying a snapshot's files (:func:`copy_regular_file`).

The rule is the same everywhere: every folder is opened with ``O_NOFOLLOW | O_DIRECTORY``
relative to its parent's descriptor, every file with ``O_NOFOLLOW | O_NONBLOCK`` and checked
with ``fstat`` to be a regular file, so a link swapped in after a check is refused by the kernel,
not by a path comparison; only regular files and folders are ever moved or copied (never a
symbolic link's target, a named pipe, a socket or a device); and the work is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from pathlib import Path

from mlboot.exceptions import LocalStorageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: ``typing`` is not worth importing in the supervisor
    from collections.abc import Callable, Iterable
    from os import _ScandirIterator

COLLECT_MAX_ENTRIES = 1_000_000
"""Collecting a run's ``outputs/`` fails the run beyond this many files and folders."""
COLLECT_MAX_SECONDS = 300.0
"""Collecting a run's ``outputs/`` fails the run when it takes longer than this."""
MAX_DEPTH = 100
"""Folders nested deeper than this are refused (each level holds a descriptor open)."""
LEFT_OUT_REPORTED = 20
"""How many left-out entries a run's status records by name (all are counted)."""

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1024 * 1024
_CHECK_EVERY = 64  # entries between two looks at the clock and at a cancel
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})  # O_NOFOLLOW met a link


def describe(mode: int, path: str | None = None, *, dir_fd: int | None = None) -> str:
    """What a file that is not a regular file or a folder is, for a message."""
    if stat.S_ISLNK(mode):
        target = "?"
        if path is not None:
            with contextlib.suppress(OSError):
                target = os.readlink(path, dir_fd=dir_fd)
        return f"a symbolic link (to {target!r})"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a device file"


def open_folder(name: str | Path, *, dir_fd: int | None = None) -> int:
    """A descriptor of the folder ``name``; ``OSError`` (ELOOP/ENOTDIR) if it is a link."""
    return os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)


def _is_link_error(exc: OSError) -> bool:
    return exc.errno in _LINK_ERRNOS


def _copy_data(source: int, target: int, size_hint: int) -> None:
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None and size_hint > 0:
        try:
            while copy_range(source, target, _CHUNK * 64):
                pass
        except OSError:  # another file system, an old kernel: copy the plain way
            pass
        else:
            return
        os.lseek(source, 0, os.SEEK_SET)
        os.lseek(target, 0, os.SEEK_SET)
        os.ftruncate(target, 0)
    while chunk := os.read(source, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view) :]


def copy_regular_file(
    source: str | Path,
    target_name: str | Path,
    *,
    source_dir_fd: int | None = None,
    target_dir_fd: int | None = None,
    exclusive: bool = False,
) -> os.stat_result:
    """Copy one regular file's bytes, permission bits and times, never through a link.

    ``source`` must be a regular file, not a link (``O_NOFOLLOW``); ``target_name`` is created
    (with ``exclusive``, it must not exist) or must be a regular file, which is overwritten.
    Raises :class:`LocalStorageError` naming the path that is not a regular file.
    """
    src = os.open(source, _READ_FLAGS, dir_fd=source_dir_fd)
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(
                f"{str(source)!r} is {describe(info.st_mode)}, not a regular file: it is not "
                "copied",
                errno=errno.EINVAL,
                filename=str(source),
            )
        flags = _WRITE_FLAGS | (os.O_EXCL if exclusive else 0)
        try:
            dst = os.open(target_name, flags, 0o600, dir_fd=target_dir_fd)
        except OSError as exc:
            if _is_link_error(exc):
                raise _link_refused(target_name, dir_fd=target_dir_fd) from exc
            raise
        try:
            written = os.fstat(dst)
            if not stat.S_ISREG(written.st_mode):
                raise LocalStorageError(
                    f"{str(target_name)!r} exists and is {describe(written.st_mode)}, not a "
                    "regular file: mlboot does not write into it. Fix: remove it, or choose "
                    "another folder.",
                    errno=errno.EINVAL,
                    filename=str(target_name),
                )
            os.ftruncate(dst, 0)
            _copy_data(src, dst, info.st_size)
            os.fchmod(dst, stat.S_IMODE(info.st_mode) & 0o777)
            os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return info


class NotRegularFileError(LocalStorageError):
    """The file to copy is not a regular file (a named pipe, a device...): it is not copied."""


def _link_refused(name: str | Path, *, dir_fd: int | None = None) -> LocalStorageError:
    try:
        what = describe(os.lstat(name, dir_fd=dir_fd).st_mode, str(name), dir_fd=dir_fd)
    except OSError:
        what = "a symbolic link"
    return LocalStorageError(
        f"{str(name)!r} is {what}: mlboot never writes through a symbolic link. Fix: remove "
        "the link, or choose a folder without links in it.",
        errno=errno.ELOOP,
        filename=str(name),
    )


# -- collecting a local run's outputs -------------------------------------------------------------


class Collected:
    """What :func:`collect_outputs` did: ``left_out`` entries, and ``error`` or ``stopped``."""

    __slots__ = ("entries", "error", "left_out", "stopped")

    def __init__(self) -> None:
        self.left_out: list[str] = []  # "path: what it is", relative to outputs/
        self.entries = 0
        self.error: str | None = None
        self.stopped = False


class _Stop(Exception):  # noqa: N818  (control flow, never seen outside)
    pass


def collect_outputs(
    source: Path,
    destination: Path,
    *,
    max_entries: int = COLLECT_MAX_ENTRIES,
    max_seconds: float = COLLECT_MAX_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> Collected:
    """Move the folder ``source`` to ``destination`` once only regular files and folders are left.

    Nothing is followed and no file's bytes are copied: a symbolic link, named pipe, socket or
    device inside is removed (the link itself, never its target) and reported in ``left_out``;
    ``source`` being a link, or anything but a folder, is left where it is and reported.  Then
    the folder is renamed into place, which costs the same for a byte or a terabyte.  More than
    ``max_entries`` entries, more than ``max_seconds``, or folders nested deeper than
    :data:`MAX_DEPTH` set ``error`` and leave ``source`` where it is (``destination`` is then an
    empty folder); ``should_stop()`` (asked every few entries) returning true sets ``stopped``.
    """
    done = Collected()
    _clear_destination(destination, done)
    try:
        top = open_folder(source)
    except FileNotFoundError:
        _make_folder(destination)
        return done
    except OSError as exc:
        if not _is_link_error(exc):
            raise
        info = source.lstat()
        done.left_out.append(f"{source.name}: {describe(info.st_mode, str(source))}")
        _make_folder(destination)
        return done
    try:
        identity = os.fstat(top)
        cleaner = _Cleaner(done, max_entries, clock() + max_seconds, should_stop, clock)
        try:
            cleaner.clean(top)
        except _Stop as stop:
            if not done.stopped:
                done.error = f"{stop}; its outputs were not collected and are still in {source}"
            _make_folder(destination)
            return done
        source.rename(destination)
    finally:
        os.close(top)
    moved = destination.lstat()
    if (moved.st_dev, moved.st_ino) != (identity.st_dev, identity.st_ino):
        # Replaced by something else between the walk and the rename: do not keep it.
        if not stat.S_ISDIR(moved.st_mode):
            destination.unlink()
        _make_folder(destination)
        done.error = f"{source} was replaced while its outputs were being collected"
    return done


def _clear_destination(destination: Path, done: Collected) -> None:
    """Make room for the rename: remove an empty folder, or a link or file the script put there."""
    try:
        info = destination.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):  # not empty: the rename then reports it
            destination.rmdir()
        return
    done.left_out.append(
        f"{destination} (in the run's folder): {describe(info.st_mode, str(destination))}"
    )
    destination.unlink()


def _make_folder(path: Path) -> None:
    with contextlib.suppress(FileExistsError):
        path.mkdir()


class _Cleaner:
    """Removes every entry of a tree that is neither a regular file nor a folder, within bounds."""

    def __init__(
        self,
        done: Collected,
        max_entries: int,
        deadline: float,
        should_stop: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.done = done
        self.max_entries = max_entries
        self.deadline = deadline
        self.should_stop = should_stop
        self.clock = clock

    def clean(self, top: int) -> None:
        # One descriptor (and one listing) open per level of the folder being walked.
        stack: list[tuple[int, _ScandirIterator[str], str]] = []
        try:
            stack.append((top, os.scandir(top), ""))
            while stack:
                fd, entries, prefix = stack[-1]
                entry = next(entries, None)
                if entry is None:
                    stack.pop()
                    entries.close()
                    if fd != top:
                        os.close(fd)
                    continue
                self.count()
                child = self.visit(fd, entry, prefix + entry.name, depth=len(stack))
                if child is not None:
                    try:
                        stack.append((child, os.scandir(child), f"{prefix}{entry.name}/"))
                    except BaseException:
                        os.close(child)
                        raise
        finally:
            for fd, entries, _prefix in stack:
                entries.close()
                if fd != top:
                    os.close(fd)

    def count(self) -> None:
        done = self.done
        done.entries += 1
        if done.entries > self.max_entries:
            raise _Stop(f"the run's outputs hold more than {self.max_entries:,} files and folders")
        if done.entries % _CHECK_EVERY == 0:
            if self.should_stop():
                done.stopped = True
                raise _Stop("stopped")
            if self.clock() > self.deadline:
                raise _Stop("collecting the run's outputs took too long")

    def visit(self, fd: int, entry: os.DirEntry[str], rel: str, *, depth: int) -> int | None:
        """A descriptor of the entry to walk into, if it is a folder; else checks it."""
        if entry.is_dir(follow_symlinks=False):
            if depth >= MAX_DEPTH:
                raise _Stop(f"the run's outputs nest folders deeper than {MAX_DEPTH} levels")
            try:
                return open_folder(entry.name, dir_fd=fd)
            except OSError as exc:
                if not _is_link_error(exc):
                    raise
                # Replaced by a link meanwhile: left out below.
        elif entry.is_file(follow_symlinks=False):
            return None
        try:
            info = os.lstat(entry.name, dir_fd=fd)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
            return None  # replaced by a plain file or folder meanwhile: keep it
        self.done.left_out.append(f"{rel}: {describe(info.st_mode, entry.name, dir_fd=fd)}")
        os.unlink(entry.name, dir_fd=fd)
        return None


# -- downloading into a user's folder --------------------------------------------------------------


def escaping_name(name: object) -> str | None:
    """Why file ``name`` (a service's, or a caller's) would not stay inside a folder, or ``None``.

    A name that stays inside is a non-empty POSIX relative path of non-empty parts, with no
    ``..`` or ``.`` part, no NUL and no backslash (which a Windows service means as a
    separator), not ending with ``/``.
    """
    if not isinstance(name, str) or not name:
        return "it is not a non-empty str"
    parts = name.split("/")
    rules = (
        ("\x00" in name, "it holds a NUL character"),
        ("\\" in name, "it holds a backslash (use / between folders)"),
        (name.startswith("/"), "it is an absolute path"),
        (".." in parts, "it has a '..' part, which leads out of the folder"),
        ("" in parts or "." in parts, "it has an empty or '.' part (or ends with /)"),
    )
    return next((why for broken, why in rules if broken), None)


def check_destination(destination: Path, relative_paths: Iterable[str]) -> None:
    """Refuse, before anything is written, to write any of ``relative_paths`` through a link.

    Every part of each path below ``destination`` (the folder the caller chose, which may
    itself be a link) must be missing, or a real folder (for a folder part) or a regular file
    (for the last part, unless the path ends with ``/``).  Raises :class:`LocalStorageError`
    naming the first offending path.
    """
    checked: set[str] = set()
    for relative in relative_paths:
        parts = [part for part in relative.split("/") if part]
        for index in range(len(parts)):
            rel = "/".join(parts[: index + 1])
            if rel in checked:
                continue
            checked.add(rel)
            path = destination / rel
            last = index == len(parts) - 1 and not relative.endswith("/")
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                break  # nothing below a missing folder exists either
            except NotADirectoryError:  # pragma: no cover  (reported at the part above)
                break
            if stat.S_ISLNK(info.st_mode):
                raise _link_refused(path)
            wanted = stat.S_ISREG if last else stat.S_ISDIR
            if not wanted(info.st_mode):
                raise LocalStorageError(
                    f"{str(path)!r} exists and is {describe(info.st_mode)}, not "
                    f"{'a regular file' if last else 'a folder'}: the download would need it "
                    "to be one. Fix: remove it, or download into another folder.",
                    errno=errno.EEXIST,
                    filename=str(path),
                )


class Downloaded:
    """What :func:`download_tree` did: ``written`` paths and ``skipped`` entries."""

    __slots__ = ("skipped", "written")

    def __init__(self) -> None:
        self.written: list[Path] = []
        self.skipped: list[str] = []


def _list_tree(top: int, source: Path, done: Downloaded) -> list[tuple[str, ...]]:
    """The regular files below ``top``, as path parts, never following a link."""
    files: list[tuple[str, ...]] = []
    pending: list[tuple[str, ...]] = [()]
    while pending:
        parts = pending.pop()
        # Reopened part by part from the top: one descriptor open at a time, however wide.
        fd = _open_chain(top, parts, create=False, path=source)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    child = (*parts, entry.name)
                    if entry.is_dir(follow_symlinks=False):
                        if len(child) > MAX_DEPTH:
                            done.skipped.append(f"{'/'.join(child)}: nested too deep")
                        else:
                            pending.append(child)
                    elif entry.is_file(follow_symlinks=False):
                        files.append(child)
                    else:
                        info = entry.stat(follow_symlinks=False)
                        what = describe(info.st_mode, entry.name, dir_fd=fd)
                        done.skipped.append(f"{'/'.join(child)}: {what}")
        finally:
            os.close(fd)
    return sorted(files)


def _open_chain(top: int, parts: Iterable[str], *, create: bool, path: Path) -> int:
    """A descriptor of the folder ``top/parts...``, each part opened without following links."""
    fd = os.dup(top)
    for part in parts:
        path /= part
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            child = open_folder(part, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if _is_link_error(exc):
                raise _link_refused(path) from exc
            raise
        os.close(fd)
        fd = child
    return fd


def _open_source(source: Path, done: Downloaded, name: str) -> int | None:
    """A descriptor of folder ``source``; ``None`` when it is missing or a link (noted)."""
    try:
        return open_folder(source)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if not _is_link_error(exc):
            raise
        done.skipped.append(f"{name}: {describe(source.lstat().st_mode, str(source))}")
        return None


def download_tree(source: Path, destination: Path, name: str) -> Downloaded:
    """Copy the regular files below folder ``source`` to ``destination/name/``, link-free.

    Links, named pipes, sockets and devices in ``source`` are never followed nor copied: they
    are listed in ``skipped``.  ``source`` itself being a link copies nothing.  Every path
    written is first checked with :func:`check_destination`, and then written through
    descriptors with ``O_NOFOLLOW``, so a link in ``destination`` is refused with
    :class:`LocalStorageError` (before any file is written, unless it appears meanwhile).
    """
    done = Downloaded()
    top = _open_source(source, done, name)
    if top is None:
        return done
    try:
        files = _list_tree(top, source, done)
        check_destination(destination, [f"{name}/{'/'.join(parts)}" for parts in files])
        _copy_into(files, (top, source), destination, (name,), done)
    finally:
        os.close(top)
    return done


def list_files(source: Path) -> list[str]:
    """The regular files below folder ``source``, as sorted POSIX names relative to it.

    Never follows a link: links, pipes, sockets and devices are not listed, nor is anything
    below a folder that is a link; a missing ``source``, or one that is a link, has no files.
    """
    done = Downloaded()
    top = _open_source(source, done, source.name)
    if top is None:
        return []
    try:
        return ["/".join(parts) for parts in _list_tree(top, source, done)]
    finally:
        os.close(top)


def copy_files(
    source: Path, names: Iterable[str], destination: Path, prefix: tuple[str, ...] = ()
) -> Downloaded:
    """Copy the regular files ``names`` (POSIX, relative to ``source``) to ``destination/prefix/``.

    The rules of :func:`download_tree` for files chosen by name: each is opened part by part
    below ``source`` without following a link (a name that meets a link, or that is not a
    regular file, is left out and listed in ``skipped``; one that is gone is left out), and
    written through descriptors that never follow one.  The caller checks ``destination``
    first (:func:`check_destination`).
    """
    done = Downloaded()
    top = _open_source(source, done, source.name)
    if top is None:
        return done
    try:
        files: list[tuple[str, ...]] = []
        for name in names:
            parts = tuple(name.split("/"))
            if escaping_name(name) is None:
                files.append(parts)
            else:  # only from a caller's mistake: the name is the caller's, not the run's
                done.skipped.append(f"{name}: not a name inside {source}")
        files.sort()
        _copy_into(files, (top, source), destination, prefix, done)
    finally:
        os.close(top)
    return done


def _copy_into(
    files: list[tuple[str, ...]],
    source: tuple[int, Path],
    destination: Path,
    prefix: tuple[str, ...],
    done: Downloaded,
) -> None:
    if not files:
        return
    target_top = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _copy_files(files, source, (target_top, destination), prefix, done)
    finally:
        os.close(target_top)


def _open_pair(
    parts: tuple[str, ...],
    source: tuple[int, Path],
    target: tuple[int, Path],
    prefix: tuple[str, ...],
    done: Downloaded,
) -> tuple[tuple[str, ...], int, int] | None:
    """The source and target folders of file ``parts``; ``None``: the source folder is not one."""
    try:
        source_fd = _open_chain(source[0], parts[:-1], create=False, path=source[1])
    except FileNotFoundError:
        return None  # removed meanwhile
    except LocalStorageError:  # a folder on its way is a link: never followed
        done.skipped.append(f"{'/'.join(parts)}: a folder on its way is a link")
        return None
    try:
        target_fd = _open_chain(target[0], (*prefix, *parts[:-1]), create=True, path=target[1])
    except BaseException:
        os.close(source_fd)
        raise
    return parts[:-1], source_fd, target_fd


def _copy_files(
    files: list[tuple[str, ...]],
    source: tuple[int, Path],
    target: tuple[int, Path],
    prefix: tuple[str, ...],
    done: Downloaded,
) -> None:
    folders: tuple[tuple[str, ...], int, int] | None = None  # the last folder pair opened
    try:
        for parts in files:
            if folders is None or folders[0] != parts[:-1]:
                if folders is not None:
                    os.close(folders[1])
                    os.close(folders[2])
                    folders = None
                folders = _open_pair(parts, source, target, prefix, done)
                if folders is None:
                    continue
            try:
                copy_regular_file(
                    parts[-1], parts[-1], source_dir_fd=folders[1], target_dir_fd=folders[2]
                )
            except NotRegularFileError:  # replaced meanwhile
                done.skipped.append(f"{'/'.join(parts)}: not a regular file")
                continue
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError as exc:
                if not exc.filename and not isinstance(exc, LocalStorageError):
                    # A write refused (full disk, file size limit) names no file: name it.
                    exc.filename = str(target[1].joinpath(*prefix, *parts))
                raise
            done.written.append(target[1].joinpath(*prefix, *parts))
    finally:
        if folders is not None:
            os.close(folders[1])
            os.close(folders[2])
