"""The snapshot pre-check: what azureml-core would upload, found without reading any file.

azureml-core 1.61 checks the size of the source folder first (stat only, stopping at the
limit), but it hashes every file (SHA-512) before it checks the file count, and all of it only
once the run is being submitted.  :func:`plan_snapshot` walks the folder with
:func:`os.scandir`, never reads a file's contents, and selects exactly the files the SDK would
upload, under the SDK's own rules (read off the installed sources):

- ``_project/ignore_file.py``: ONLY ``<root>/.amlignore`` or, when it does not exist,
  ``<root>/.gitignore`` is read; nested ignore files are ordinary files.  Patterns are
  gitwildmatch (``pathspec``), matched against the POSIX path relative to the root, for files
  AND folders alike, always without a trailing slash.
- ``_base_sdk_common/merkle_tree.py`` (the upload set): an excluded folder is not entered, so a
  ``!`` pattern cannot bring back a file below it; symbolic links are followed (a link to a
  folder uploads the folder's files under the link's name; mlboot refuses a link that leads
  out of the root, and every backend uploads exactly the plan); files that :func:`os.access` says
  are unreadable are left out; empty folders carry no file.  Anything that is neither a file
  nor a folder after following links (broken link, FIFO, socket, device) and link loops make
  the SDK fail, so they are refused here with the path to leave out.
- ``_file_utils/file_utils.get_directory_size`` (the SDK's size check, run before hashing):
  :func:`os.walk` without following folder links, checking every file path against the
  patterns but never pruning folders.  Its total can differ from the upload set's in rare
  trees (``!`` patterns under an excluded folder, unreadable files, linked folders), so both
  totals are kept and the larger one is held against the limit.
- ``_restclient/snapshots_client.py``: refused when the size is ``> 300 * 1024**2`` bytes or the
  file count is ``> 2000``; a non-empty ``AML_SNAPSHOT_NO_FILE_LIMIT`` lifts the file limit,
  nothing lifts the size limit.  The SDK counts only the files added or changed since the
  workspace's previous snapshot; without asking the service, every file is counted here (an
  upper bound).  ``_execution/_commands.py`` warns when the size is ``>=`` 25 MiB.

mlboot's own rules come on top, the same on every backend: a local workspace folder (a folder
named ``.mlboot``, or holding a ``.mlboot-workspace`` file) is never part of a snapshot, whatever
the ignore file says, nor is a link into one; a symbolic link leading out of the root is refused
with :class:`~mlboot.exceptions.SnapshotLinkError`.

The walk always runs to the end, even once the verdict is known: the error message reports
the totals and the largest files and folders, and a ``stat`` per file is cheap next to
hashing.  The SDK's ``os.access`` test is only made while the verdict depends on it.
"""

from __future__ import annotations

import heapq
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import attrs

from mlboot._log import logger as _logger
from mlboot._validate import absolute_path, probe
from mlboot.exceptions import (
    InvalidInputError,
    LocalStorageError,
    SnapshotLinkError,
    SnapshotTooLargeError,
)

__all__ = [
    "AMLIGNORE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "DEFAULT_WARN_BYTES",
    "GITIGNORE",
    "LOCAL_WORKSPACE_MARKER",
    "LOCAL_WORKSPACE_NAME",
    "NO_FILE_LIMIT_ENV",
    "SnapshotPlan",
    "format_bytes",
    "materialize_snapshot",
    "plan_snapshot",
]


AMLIGNORE = ".amlignore"
GITIGNORE = ".gitignore"
#: ``SNAPSHOT_MAX_SIZE_BYTES`` in ``azureml/_restclient/constants.py``.
DEFAULT_MAX_BYTES = 300 * 1024**2
#: ``SNAPSHOT_MAX_FILES`` in ``azureml/_restclient/constants.py``.
DEFAULT_MAX_FILES = 2000
#: ``_max_zip_size_bytes`` in ``azureml/_execution/_commands.py``.
DEFAULT_WARN_BYTES = 25 * 1024**2
#: Any non-empty value lifts the file-count limit, as ``os.environ.get(...)`` does in the SDK.
NO_FILE_LIMIT_ENV = "AML_SNAPSHOT_NO_FILE_LIMIT"

#: The file every local workspace folder holds (:class:`mlboot.LocalBackend` writes it): a
#: folder holding it is never part of a snapshot, whatever the ignore file says.
LOCAL_WORKSPACE_MARKER = ".mlboot-workspace"
#: The local workspace folder's default name: a folder of this name is never part of a snapshot.
LOCAL_WORKSPACE_NAME = ".mlboot"

_TOP_N = 5
_MAX_SUGGESTED_LINES = 5
# The entry script is a .py file: never suggest leaving all of them out.
_NEVER_SUGGESTED_SUFFIXES = frozenset({".py"})
_GLOB_SPECIAL = frozenset("\\[]!*?#")
_LARGE_FILES_URL = "https://aka.ms/aml-largefiles"
_MAX_COPIED_LINES = 20


@attrs.frozen
class SnapshotPlan:
    """The files azureml-core would upload for a source folder, and their total size.

    ``files`` are POSIX paths relative to ``root``, sorted.  ``total_bytes`` is the sum of
    their sizes.  ``ignore_file`` names the ignore file in effect (``".amlignore"``,
    ``".gitignore"`` or ``None``).  ``sdk_checked_bytes`` is the total azureml-core's own size
    check measures; it equals ``total_bytes`` except in the rare trees described in the module
    documentation.

    ``links`` lists every symbolic link the snapshot follows, as ``(link, target)`` pairs of
    paths relative to ``root``, sorted: each one leads inside ``root`` (a link leading out of it
    is refused with :class:`~mlboot.exceptions.SnapshotLinkError`), and the snapshot holds the
    target's contents under the link's name.  ``left_out`` lists the folders (and links to
    them) left out whatever the ignore file says: mlboot's local workspace folders (a
    ``.mlboot`` folder, or any folder holding a ``.mlboot-workspace`` file), sorted.
    ``folders`` lists every folder azureml-core's upload walk enters, empty ones included (its
    tree of the snapshot has them), sorted.
    """

    root: Path
    files: tuple[str, ...]
    total_bytes: int
    ignore_file: str | None
    sdk_checked_bytes: int = attrs.field(
        kw_only=True,
        default=attrs.Factory(lambda self: self.total_bytes, takes_self=True),
    )
    links: tuple[tuple[str, str], ...] = attrs.field(kw_only=True, default=())
    left_out: tuple[str, ...] = attrs.field(kw_only=True, default=())
    folders: tuple[str, ...] = attrs.field(kw_only=True, default=())

    @property
    def file_count(self) -> int:
        """How many files would be uploaded."""
        return len(self.files)

    @property
    def measured_bytes(self) -> int:
        """The size held against the limits: the larger of the two totals."""
        return max(self.total_bytes, self.sdk_checked_bytes)

    @property
    def ignore_path(self) -> Path | None:
        """The ignore file in effect, as a path, or ``None`` when there is none."""
        return None if self.ignore_file is None else self.root / self.ignore_file


def format_bytes(size: int) -> str:
    """Format a byte count for people, in binary units (the SDK's "300 MB" is 300 MiB)."""
    if size < 1024:  # noqa: PLR2004  (the first binary unit)
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if round(value, 1) < 1024:  # noqa: PLR2004  (the next binary unit)
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


def plan_snapshot(
    source_directory: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    warn_bytes: int = DEFAULT_WARN_BYTES,
    environ: Mapping[str, str] | None = None,
) -> SnapshotPlan:
    """Select the files azureml-core would upload for ``source_directory``, and check limits.

    Only ``stat`` and ``access`` calls are made on the tree (the ignore file is the only file
    read); nothing is written.  Raises :class:`~mlboot.exceptions.SnapshotTooLargeError` when
    the snapshot is over ``max_bytes`` or ``max_files`` (compared with ``>``, as the SDK does;
    a non-empty ``AML_SNAPSHOT_NO_FILE_LIMIT`` in ``environ`` lifts the file limit), and
    :class:`~mlboot.exceptions.InvalidInputError` when the folder cannot be snapshotted at all
    (a named pipe, socket or device, a broken link), and its subclass
    :class:`~mlboot.exceptions.SnapshotLinkError` for a symbolic link leading out of the folder.
    A local workspace folder is always left out (``SnapshotPlan.left_out``).
    Logs one warning on the ``mlboot`` logger when the size is ``>= warn_bytes``.
    """
    limits: dict[str, object] = {
        "max_bytes": max_bytes,
        "max_files": max_files,
        "warn_bytes": warn_bytes,
    }
    for field, limit in limits.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(
                field, limit, "must be a whole number >= 0", f"Pass an int, e.g. {field}=100."
            )
    if environ is not None and not isinstance(environ, Mapping):
        raise InvalidInputError(
            "environ",
            environ,
            "it must be a mapping of variable names to values, or None",
            "pass e.g. dict(os.environ), or None for this process's environment",
        )
    env = os.environ if environ is None else environ

    root = _check_root(source_directory)
    ignore = _load_ignore_file(root)
    walk = _Walk(root, None if ignore is None else ignore.spec)
    walk.run()
    file_limit_applies = not env.get(NO_FILE_LIMIT_ENV)
    # Readability only matters while the verdict is open.  Past the size limit (which the
    # SDK's size check measures without asking) the snapshot is refused anyway, and past the
    # file limit it is once max_files + 1 files proved readable: the remaining access() calls
    # are skipped, so such a message may count a file you cannot read.
    if walk.checked_bytes <= max_bytes:
        over_files = file_limit_applies and len(walk.uploaded) > max_files
        walk.drop_unreadable(enough=max_files + 1 if over_files else None)

    plan = SnapshotPlan(
        root=root,
        files=tuple(sorted(walk.uploaded)),
        total_bytes=sum(walk.uploaded.values()),
        ignore_file=None if ignore is None else ignore.name,
        sdk_checked_bytes=walk.checked_bytes,
        links=tuple(sorted(walk.links)),
        left_out=tuple(sorted(walk.left_out)),
        folders=tuple(sorted(walk.uploaded_folders)),
    )
    too_many_bytes = plan.measured_bytes > max_bytes
    too_many_files = file_limit_applies and plan.file_count > max_files
    if too_many_bytes or too_many_files:
        raise SnapshotTooLargeError(
            _too_large_message(
                plan,
                walk,
                ignore,
                max_bytes=max_bytes,
                max_files=max_files if file_limit_applies else None,
            )
        )
    if plan.measured_bytes >= warn_bytes:
        _logger.warning(
            "The snapshot of %s is %s in %s (warning from %s on): uploading it may take "
            "a few minutes. List data, checkpoints and outputs in %s to leave them out.",
            root,
            format_bytes(plan.measured_bytes),
            _files(plan.file_count),
            format_bytes(warn_bytes),
            root / AMLIGNORE,
        )
    return plan


def materialize_snapshot(plan: SnapshotPlan, destination: Path, *, link: bool = False) -> None:
    """Put exactly ``plan.files`` into the new folder ``destination``: what every backend runs.

    Each file is reached through its real path (the links the plan followed, resolved), which
    must still lead inside ``plan.root`` (else :class:`~mlboot.exceptions.SnapshotLinkError`)
    and be a regular file (else :class:`~mlboot.exceptions.LocalStorageError`); it is opened
    with ``O_NOFOLLOW``.  Without ``link`` its bytes, permission bits and times are copied (the
    local backend's run folder); with ``link`` it is hard-linked, or where that fails
    symbolically linked to its real path (a staging folder azureml-core uploads, which costs
    no copy).
    """
    from mlboot._links import copy_regular_file  # noqa: PLC0415  (only when materializing)

    real_root = os.path.realpath(plan.root)
    real_prefix = real_root.rstrip(os.sep) + os.sep
    destination.mkdir(parents=True)
    for folder in plan.folders:  # empty ones too: azureml-core's tree of the snapshot has them
        (destination / folder).mkdir(parents=True, exist_ok=True)
    for relative in plan.files:
        real = os.path.realpath(plan.root / relative)
        if not real.startswith(real_prefix):
            raise SnapshotLinkError(
                "source_directory",
                str(plan.root),
                f"{relative!r} now leads to {real!r}, outside the source folder (it changed "
                "after the snapshot was planned)",
                "Submit again once the folder no longer changes.",
                link=relative,
                target=real,
            )
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not link:
            copy_regular_file(real, target, exclusive=True)
            continue
        _link_regular_file(real, target)


def _link_regular_file(real: str, target: Path) -> None:
    info = os.lstat(real)
    if not stat.S_ISREG(info.st_mode):
        raise LocalStorageError(
            f"{real!r} is no longer a regular file (it changed after the snapshot was planned). "
            "Fix: submit again once the folder no longer changes.",
            filename=real,
        )
    try:
        os.link(real, target, follow_symlinks=False)
    except OSError:  # another file system, or hard links refused: a link to the real path
        target.symlink_to(real)


def _check_root(source_directory: str | os.PathLike[str]) -> Path:
    # The SDK works on os.path.abspath(source_directory): ".." is folded but links are kept.
    raw, root = absolute_path(
        "source_directory",
        source_directory,
        what="path to a folder",
        fix="Pass a str or pathlib.Path naming the folder that holds your training script.",
    )
    exists, _, _ = probe(root)
    if not exists:
        raise InvalidInputError(
            "source_directory",
            raw,
            f"does not exist (looked for {root})",
            "Pass the folder that holds your training script; relative paths are resolved "
            f"against the current folder {Path.cwd()}.",
        )
    if not root.is_dir():
        raise InvalidInputError(
            "source_directory",
            raw,
            "is not a folder",
            "Pass the folder that holds the script (e.g. its parent folder), not the script.",
        )
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise InvalidInputError(
            "source_directory",
            raw,
            f"cannot be listed ({exc.strerror or exc})",
            "Make the folder readable by the user running mlboot.",
        ) from exc
    return root


if TYPE_CHECKING:
    import pathspec


class _IgnoreFile(NamedTuple):
    name: str
    spec: pathspec.PathSpec
    lines: tuple[str, ...]


def _load_ignore_file(root: Path) -> _IgnoreFile | None:
    # pathspec (the SDK's own matcher) is imported only when there is an ignore file to read.
    import pathspec  # noqa: PLC0415
    from pathspec.patterns.gitwildmatch import GitWildMatchPatternError  # noqa: PLC0415

    # Same choice as azureml._project.ignore_file.get_project_ignore_file (os.path.exists):
    # a broken link does not count, and an empty .amlignore still hides .gitignore.
    for name in (AMLIGNORE, GITIGNORE):
        path = root / name
        if not path.exists():
            continue
        try:
            # The SDK iterates it in text mode with the locale's encoding: so do we.
            with path.open(encoding="locale") as handle:
                lines = tuple(handle)
            spec = pathspec.PathSpec.from_lines("gitwildmatch", lines)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                "source_directory",
                str(path),
                f"has an ignore file azureml-core cannot read ({exc})",
                f"Make {name} a readable text file in your locale's encoding, or delete it.",
            ) from exc
        except (GitWildMatchPatternError, re.error) as exc:  # "[z-a]" fails in re.compile
            raise InvalidInputError(
                "source_directory",
                str(path),
                f"has an ignore file with an invalid gitwildmatch pattern ({exc})",
                f"Fix or delete that line of {name}: azureml-core would fail on it.",
            ) from exc
        return _IgnoreFile(name, spec, lines)
    return None


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows links, like os.path.isfile in the SDK
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows links, like os.walk's own test
    except OSError:
        return False


def _kind(path: str) -> str:
    """Say what a path that is neither a file nor a folder is, for the error message."""
    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        if Path(path).is_symlink():
            return "a broken or looping symbolic link"
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file, neither a regular file nor a folder"


def _required_literal(pattern: str) -> str:
    """A substring every path matched by the gitwildmatch ``pattern`` must contain ("" if none).

    pathspec turns each plain character of a segment into ``re.escape(char)``, so a run of plain
    characters must appear as is.  Anything that could be special (``\\ * ? [ ] !``, ``/``,
    whitespace that may be stripped) ends a run, and a ``[`` ends the segment.
    """
    best = ""
    for segment in pattern.split("/"):
        run = ""
        escaped = False
        for char in segment:
            if escaped:  # the escaped character is literal, but keep it out of the run
                escaped = False
            elif char == "[":
                break
            elif char == "\\":
                escaped = True
            elif char in "*?]!" or char.isspace():
                pass
            else:
                run += char
                if len(run) > len(best):
                    best = run
                continue
            run = ""
    return best


class _Matcher:
    """``PathSpec.match_file`` (the last matching pattern wins), with substring pre-checks.

    A pattern's regex only runs when the path contains the pattern's required literal.  Per
    folder, one combined search over the entry's name rules out every pattern whose literal is
    not in the folder's path, so a long ``.gitignore`` costs about one regex call per entry.
    The answer is the same as pathspec's.
    """

    def __init__(self, spec: pathspec.PathSpec) -> None:
        from pathspec.pattern import RegexPattern  # noqa: PLC0415  (see _load_ignore_file)

        patterns: list[tuple[str, Callable[[str], object], bool]] = []
        for pattern in spec.patterns:
            if pattern.include is None:
                continue  # comments and blank lines
            if isinstance(pattern, RegexPattern) and isinstance(pattern.pattern, str):
                literal = _required_literal(pattern.pattern)
                patterns.append((literal, pattern.regex.match, pattern.include))
            else:
                patterns.append(("", pattern.match_file, pattern.include))
        self._reversed = patterns[::-1]

    def __call__(self, rel: str) -> bool:
        for literal, match, include in self._reversed:
            if literal in rel and match(rel) is not None:
                return include
        return False

    def in_folder(self, prefix: str) -> Callable[[str], bool]:
        """A matcher for the entries of the folder ``prefix`` (ends with "/"), given a name."""
        # A literal holds no "/", so it is in prefix + name only if it is in one of the two.
        always = [
            (match, include) for literal, match, include in self._reversed if literal in prefix
        ]
        others = sorted({literal for literal, _match, _include in self._reversed} - {""})
        others = [literal for literal in others if literal not in prefix]
        if not others:
            return lambda name: self(prefix + name)
        search_any = re.compile("|".join(map(re.escape, others))).search

        def match_name(name: str) -> bool:
            rel = prefix + name
            if search_any(name) is not None:
                return self(rel)
            for match, include in always:
                if match(rel) is not None:
                    return include
            return False

        return match_name


# Listing a folder through a descriptor lets each stat resolve one name, not a whole path.
_BY_DESCRIPTOR = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


@contextmanager
def _list_folder(path: str) -> Iterator[Iterator[os.DirEntry[str]]]:
    """Entries of a folder; their ``stat()`` must be called before the block ends."""
    if not _BY_DESCRIPTOR:
        with os.scandir(path) as entries:
            yield entries
        return
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(descriptor) as entries:
            yield entries
    finally:
        os.close(descriptor)


class _Folder(NamedTuple):
    path: str
    prefix: str  # its path relative to the root, with a trailing "/" ("" for the root)
    uploaded: bool  # reached by the SDK's merkle-tree walk (what is uploaded)
    checked: bool  # reached by the SDK's os.walk size check
    ancestors: tuple[tuple[int, int], ...]  # (st_dev, st_ino) of the uploaded folders above


class _Walk:
    """One pass over the tree computing the SDK's upload set and its size-check total.

    A folder is visited when it is "uploaded" (the merkle-tree walk reaches it: no excluded
    ancestor, links followed) and/or "checked" (``os.walk`` reaches it: no folder link on the
    way, exclusions do not prune).  Without a ``!`` line in the patterns, every path below an
    excluded folder is excluded too, so "checked"-only folders are skipped.

    The loop is written for speed: a regular file costs one ``stat``.  Readability (the SDK's
    ``os.access`` test) is left to :meth:`drop_unreadable`, which only runs when the verdict
    depends on it.
    """

    def __init__(self, root: Path, spec: pathspec.PathSpec | None) -> None:
        self.root = root
        self.spec = spec
        self.has_negation = spec is not None and any(p.include is False for p in spec.patterns)
        # The upload set, folder by folder: (prefix, {name: size}); flattened by run().
        self.folders: list[tuple[str, dict[str, int]]] = []
        self.uploaded: dict[str, int] = {}
        self.checked_bytes = 0
        # The rare differences between the two sets, kept for the error message.
        self.checked_only: dict[str, int] = {}
        self.uploaded_only: set[str] = set()
        # The links followed, (link, target) relative to the root, and what is left out.
        self.links: list[tuple[str, str]] = []
        self.left_out: list[str] = []
        self.uploaded_folders: list[str] = []  # every folder the upload walk enters, empty or not
        real = os.path.realpath(root)
        self.real_root = real
        self.real_prefix = real.rstrip(os.sep) + os.sep

    def run(self) -> None:
        info = self.root.stat()
        top = _Folder(
            path=str(self.root),
            prefix="",
            uploaded=True,
            checked=True,
            ancestors=((info.st_dev, info.st_ino),),
        )
        stack = [top]
        matcher = None if self.spec is None else _Matcher(self.spec)
        while stack:
            folder = stack.pop()
            with ExitStack() as scope:
                try:
                    entries = scope.enter_context(_list_folder(folder.path))
                except OSError as exc:
                    if folder.uploaded:
                        what = f"a folder that cannot be listed ({exc.strerror or exc})"
                        raise self._refuse(folder.prefix.rstrip("/"), what) from exc
                    continue  # os.walk skips the folders it cannot list
                listed = list(entries)
                if self._is_workspace(folder, listed):
                    continue
                match = None if matcher is None else matcher.in_folder(folder.prefix)
                in_both = folder.uploaded and folder.checked
                checked_bytes = 0
                names: dict[str, int] = {}
                for entry in listed:
                    name = entry.name
                    excluded = match is not None and match(name)
                    if in_both and not excluded and entry.is_file(follow_symlinks=False):
                        # The common case: a regular file, in both sets.
                        size = entry.stat(follow_symlinks=False).st_size
                        checked_bytes += size
                        names[name] = size
                        continue
                    child = self._visit(folder, entry, names, excluded=excluded)
                    if child is not None:
                        stack.append(child)
                self.checked_bytes += checked_bytes
                if names:
                    self.folders.append((folder.prefix, names))
        self.uploaded = {
            prefix + name: size for prefix, names in self.folders for name, size in names.items()
        }

    def _visit(
        self, folder: _Folder, entry: os.DirEntry[str], names: dict[str, int], *, excluded: bool
    ) -> _Folder | None:
        """Every entry but a plain file in both sets; ``names`` collects the folder's uploads."""
        rel = folder.prefix + entry.name
        # With a folder listed through its descriptor, entry.path is only the name.
        path = f"{folder.path}{os.sep}{entry.name}"
        is_dir = _is_dir(entry)
        if self._left_out(
            rel, path, entry, is_dir=is_dir, followed=folder.uploaded and not excluded
        ):
            return None
        child_uploaded = False
        in_upload = False
        if folder.uploaded and not excluded:
            if _is_file(entry):
                in_upload = True
                names[entry.name] = entry.stat().st_size
            elif is_dir:
                child_uploaded = True
            else:
                raise self._refuse(rel, _kind(path))
        if folder.checked and not is_dir and not excluded:
            self._count_checked(entry, path, rel, in_upload=in_upload)
        elif in_upload:
            self.uploaded_only.add(rel)
        child_checked = (
            folder.checked
            and is_dir
            and not entry.is_symlink()
            and (child_uploaded or self.has_negation)
        )
        if child_uploaded:
            info = entry.stat()
            ident = (info.st_dev, info.st_ino)
            if ident in folder.ancestors:
                raise self._refuse(rel, "a symbolic link to a folder that contains it")
            ancestors = (*folder.ancestors, ident)
        elif not child_checked:
            return None
        else:
            ancestors = folder.ancestors
        return _Folder(
            path=path,
            prefix=rel + "/",
            uploaded=child_uploaded,
            checked=child_checked,
            ancestors=ancestors,
        )

    def _is_workspace(self, folder: _Folder, listed: list[os.DirEntry[str]]) -> bool:
        """Leave out a local workspace folder (it holds the marker); else note the folder."""
        if any(entry.name == LOCAL_WORKSPACE_MARKER for entry in listed):
            if not folder.prefix:
                raise InvalidInputError(
                    "source_directory",
                    str(self.root),
                    "it is a local workspace folder of mlboot (it holds "
                    f"{LOCAL_WORKSPACE_MARKER}), which is never part of a snapshot",
                    "Pass the folder that holds your training script.",
                )
            self.left_out.append(folder.prefix.rstrip("/"))
            return True
        if folder.uploaded and folder.prefix:
            self.uploaded_folders.append(folder.prefix.rstrip("/"))
        return False

    def _left_out(
        self, rel: str, path: str, entry: os.DirEntry[str], *, is_dir: bool, followed: bool
    ) -> bool:
        """Leave out a local workspace folder, or a link into one; refuse a link leading out."""
        if (is_dir and entry.name == LOCAL_WORKSPACE_NAME) or (
            followed and entry.is_symlink() and not self._follow(rel, path)
        ):
            self.left_out.append(rel)
            return True
        return False

    def _follow(self, rel: str, path: str) -> bool:
        """Whether to follow the link ``rel``: refused if it leads out, False into a workspace."""
        target = os.path.realpath(path)
        if target != self.real_root and not target.startswith(self.real_prefix):
            line = _anchored_line(rel)
            leave_out = f"adding the line {line} to" if line else "listing it in"
            raise SnapshotLinkError(
                "source_directory",
                str(self.root),
                f"it holds the symbolic link {rel!r}, which leads to {target!r}, outside the "
                "source folder; a snapshot never follows a link out of its folder, on any "
                "backend",
                "Copy what the job needs into the folder, leave the link out by "
                f"{leave_out} {self.root / AMLIGNORE}, or submit a folder that holds both the "
                "link and its target",
                link=rel,
                target=target,
            )
        # Into a local workspace folder (its marker, or its name, on the way from the root)?
        inside = target[len(self.real_prefix) :] if target != self.real_root else ""
        folder = self.real_root
        for part in Path(inside).parts if inside else ():
            folder = f"{folder.rstrip(os.sep)}{os.sep}{part}"
            if part == LOCAL_WORKSPACE_NAME or os.path.lexists(
                f"{folder}{os.sep}{LOCAL_WORKSPACE_MARKER}"
            ):
                return False
        self.links.append((rel, inside.replace(os.sep, "/") or "."))
        return True

    def drop_unreadable(self, *, enough: int | None = None) -> None:
        """Leave out the files ``os.access`` says may not be read, as the SDK's _get_hash does.

        The SDK's size check still counts them.  With ``enough``, stop asking once that many
        files proved readable: the caller's verdict is then settled.
        """
        access, readable = os.access, os.R_OK
        base = f"{self.root}{os.sep}"
        proven = 0
        for prefix, names in self.folders:
            for name in [name for name in names if not access(base + prefix + name, readable)]:
                rel = prefix + name
                size = names.pop(name)
                del self.uploaded[rel]
                if rel in self.uploaded_only:
                    self.uploaded_only.discard(rel)
                else:
                    self.checked_only[rel] = size
            proven += len(names)
            if enough is not None and proven >= enough:
                return

    def _count_checked(
        self, entry: os.DirEntry[str], path: str, rel: str, *, in_upload: bool
    ) -> None:
        try:
            size = entry.stat().st_size  # os.path.getsize follows links too
        except OSError as exc:
            raise self._refuse(rel, _kind(path)) from exc
        self.checked_bytes += size
        if not in_upload:
            self.checked_only[rel] = size

    def _refuse(self, rel: str, what: str) -> InvalidInputError:
        line = _anchored_line(rel)
        leave_out = f"adding the line {line} to" if line else "listing it in"
        return InvalidInputError(
            "source_directory",
            str(self.root),
            f"contains {rel!r}, which is {what}; azureml-core cannot snapshot it",
            f"Remove it, or leave it out by {leave_out} {self.root / AMLIGNORE}.",
        )


# -- the error message -------------------------------------------------------------------------


def _escape_name(name: str) -> str | None:
    """Escape one path segment for a gitwildmatch line; None when no line can express it."""
    if not name or "\n" in name or "\r" in name:
        return None  # a line break cannot be written inside a line
    escaped = "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in name)
    if name[-1].isspace():
        # The parser strips trailing whitespace.  pathspec keeps an escaped final space ("\ ")
        # only when the line has no newline after it, and the SDK passes lines with their
        # newline: a bracket expression survives both.
        escaped = f"{escaped[:-1]}[{name[-1]}]"
    return escaped


def _anchored_line(rel: str, *, folder: bool = False) -> str | None:
    """The ``.amlignore`` line matching exactly ``rel`` (a folder when ``folder``) from the root."""
    parts = [_escape_name(part) for part in rel.split("/")]
    if any(part is None for part in parts):
        return None
    line = "/" + "/".join(part for part in parts if part is not None)
    return line + "/" if folder else line


def _group_of(rel: str) -> tuple[str, str]:
    """The top-level folder ("" for a file at the top) and the suffix ("" if none) of a path.

    A dot file such as ``.env``, or a name ending in a dot, has no suffix.
    """
    top, slash, _rest = rel.partition("/")
    head, _dot, tail = rel.rpartition(".")
    has_suffix = tail and head and head[-1] != "/" and "/" not in tail
    return (top if slash else ""), ("." + tail if has_suffix else "")


def _suffix_line(suffix: str) -> str | None:
    if not suffix or suffix in _NEVER_SUGGESTED_SUFFIXES:
        return None
    escaped = _escape_name(suffix)
    return None if escaped is None else "*" + escaped


def _largest(sizes: Mapping[str, int], n: int) -> list[tuple[str, int]]:
    """The ``n`` largest items, ties broken by name; cheap even when every size is equal."""
    if not sizes:
        return []
    threshold = heapq.nlargest(n, sizes.values())[-1]
    above = sorted(
        ((rel, size) for rel, size in sizes.items() if size > threshold),
        key=lambda item: (-item[1], item[0]),
    )
    tied = heapq.nsmallest(
        n - len(above), (rel for rel, size in sizes.items() if size == threshold)
    )
    return [*above, *((rel, threshold) for rel in tied)]


class _Gain:
    """What leaving out a group of files saves, towards each limit."""

    __slots__ = ("checked_bytes", "counted", "files", "total_bytes", "upload_bytes")

    def __init__(self) -> None:
        self.upload_bytes = 0  # towards the upload total
        self.checked_bytes = 0  # towards the SDK's size-check total
        self.files = 0  # uploaded files, towards the file count
        self.total_bytes = 0  # every counted file, for display
        self.counted = 0  # every counted file, for display

    def add(self, size: int, *, uploaded: bool, checked: bool) -> None:
        if uploaded:
            self.upload_bytes += size
            self.files += 1
        if checked:
            self.checked_bytes += size
        self.total_bytes += size
        self.counted += 1

    def merge(self, other: _Gain) -> None:
        self.upload_bytes += other.upload_bytes
        self.checked_bytes += other.checked_bytes
        self.files += other.files
        self.total_bytes += other.total_bytes
        self.counted += other.counted


class _Tally:
    """The counted files grouped by (top-level folder, suffix, own path for the largest five).

    Every candidate ``.amlignore`` line covers whole groups, so the suggestions work on a few
    groups instead of every file.
    """

    def __init__(self, walk: _Walk) -> None:
        self.sizes = {**walk.checked_only, **walk.uploaded}
        self.largest = _largest(self.sizes, _TOP_N)
        own = {rel for rel, _size in self.largest}
        # The bulk (files both uploaded and checked) is summed folder by folder in a tight
        # loop; the few others (the largest files, files in one set only) are then moved.
        sums: dict[tuple[str, str], list[int]] = {}
        for prefix, names in walk.folders:
            top = prefix.partition("/")[0]
            for name, size in names.items():
                head, _dot, tail = name.rpartition(".")
                key = (top, "." + tail if head and tail else "")  # as _group_of does
                bucket = sums.get(key)
                if bucket is None:
                    sums[key] = [size, 1]
                else:
                    bucket[0] += size
                    bucket[1] += 1
        moved = own | walk.uploaded_only
        for rel in moved & walk.uploaded.keys():
            bucket = sums[_group_of(rel)]
            bucket[0] -= walk.uploaded[rel]
            bucket[1] -= 1
        self.groups: dict[tuple[str, str, str], _Gain] = {}
        for (top, suffix), (size, count) in sums.items():
            if count:
                gain = self.groups[top, suffix, ""] = _Gain()
                gain.upload_bytes = gain.checked_bytes = gain.total_bytes = size
                gain.files = gain.counted = count
        for rel in moved | walk.checked_only.keys():
            top, suffix = _group_of(rel)
            group = self.groups.setdefault((top, suffix, rel if rel in own else ""), _Gain())
            in_upload = rel in walk.uploaded
            checked = not in_upload or rel not in walk.uploaded_only
            group.add(self.sizes[rel], uploaded=in_upload, checked=checked)

    def top_level_folders(self) -> dict[str, _Gain]:
        folders: dict[str, _Gain] = {}
        for (top, _suffix, _own), gain in self.groups.items():
            if top:
                folders.setdefault(top, _Gain()).merge(gain)
        return folders

    def lines_of(self, key: tuple[str, str, str]) -> tuple[str, ...]:
        top, suffix, own = key
        lines = (
            _anchored_line(top, folder=True) if top else None,
            _suffix_line(suffix),
            _anchored_line(own) if own else None,
        )
        return tuple(line for line in lines if line is not None)


def _suggest_lines(
    tally: _Tally, *, max_bytes: int, max_files: int | None
) -> list[tuple[str, _Gain]]:
    """Greedily pick up to five ``.amlignore`` lines that bring the snapshot under the limits.

    Candidates are the top-level folders, the file suffixes and the five largest files; each
    round takes the line that removes the biggest share of what is still over the limits.
    """
    groups = [(gain, tally.lines_of(key)) for key, gain in tally.groups.items()]
    chosen: list[tuple[str, _Gain]] = []
    while len(chosen) < _MAX_SUGGESTED_LINES:
        left = _Gain()
        for gain, _lines in groups:
            left.merge(gain)
        excess_bytes = max(left.upload_bytes, left.checked_bytes) - max_bytes
        excess_files = 0 if max_files is None else left.files - max_files
        if excess_bytes <= 0 and excess_files <= 0:
            break
        gains: dict[str, _Gain] = {}
        for gain, lines in groups:
            for line in lines:
                gains.setdefault(line, _Gain()).merge(gain)
        scores = {
            line: _score(gain, excess_bytes=excess_bytes, excess_files=excess_files)
            for line, gain in gains.items()
        }
        # Ties go to the line removing more, then to a folder over a suffix over a file.
        best = max(
            sorted(gains),
            key=lambda line: (scores[line], gains[line].total_bytes, _line_kind(line)),
            default=None,
        )
        if best is None or scores[best] <= 0:
            break
        chosen.append((best, gains[best]))
        groups = [(gain, lines) for gain, lines in groups if best not in lines]
    return chosen


def _line_kind(line: str) -> int:
    if line.endswith("/"):
        return 2  # a folder
    return 1 if line.startswith("*") else 0


def _score(gain: _Gain, *, excess_bytes: int, excess_files: int) -> float:
    """The share of the excess a line removes: 1.0 per limit it fully fixes."""
    value = 0.0
    if excess_bytes > 0:
        value += min(max(gain.upload_bytes, gain.checked_bytes), excess_bytes) / excess_bytes
    if excess_files > 0:
        value += min(gain.files, excess_files) / excess_files
    return value


def _listing(rows: Iterable[tuple[str, str]]) -> list[str]:
    return [f"  {size:>10}  {name}" for size, name in rows]


def _too_large_message(
    plan: SnapshotPlan,
    walk: _Walk,
    ignore: _IgnoreFile | None,
    *,
    max_bytes: int,
    max_files: int | None,
) -> str:
    tally = _Tally(walk)
    lines = _headline(plan, max_bytes=max_bytes, max_files=max_files)
    lines += ["", *_biggest(plan, tally), ""]
    lines += _advice(plan, tally, ignore, max_bytes=max_bytes, max_files=max_files)
    if max_files is not None and plan.file_count > max_files:
        lines.append(f"Setting {NO_FILE_LIMIT_ENV}=1 lifts the file limit (not the size limit).")
    if plan.measured_bytes > max_bytes:
        lines.append("Keep large data in a datastore, not in the snapshot: " + _LARGE_FILES_URL)
    return "\n".join(lines)


def _headline(plan: SnapshotPlan, *, max_bytes: int, max_files: int | None) -> list[str]:
    measured = plan.measured_bytes
    over: list[str] = []
    if measured > max_bytes:
        over.append(f"{measured:,} bytes > {max_bytes:,}")
    if max_files is not None and plan.file_count > max_files:
        over.append(f"{plan.file_count:,} files > {max_files:,}")
    files_limit = "no file limit" if max_files is None else f"{max_files:,} files"
    lines = [
        (
            f"The snapshot of {plan.root} is too large for azureml-core: "
            f"{format_bytes(measured)} in {_files(plan.file_count)}, over the limits of "
            f"{format_bytes(max_bytes)} and {files_limit} ({'; '.join(over)}). "
            "Nothing was uploaded."
        ),
    ]
    if plan.sdk_checked_bytes != plan.total_bytes:
        lines.append(
            f"(azureml-core's own size check counts {format_bytes(plan.sdk_checked_bytes)}; "
            f"the files it would upload hold {format_bytes(plan.total_bytes)}.)"
        )
    return lines


def _biggest(plan: SnapshotPlan, tally: _Tally) -> list[str]:
    applied = f"{plan.ignore_file} applied" if plan.ignore_file else "no ignore file"
    lines = [f"Largest files ({applied}):"]
    lines += _listing((format_bytes(size), rel) for rel, size in tally.largest)
    folders = tally.top_level_folders()
    if folders:
        ranked = heapq.nsmallest(
            _TOP_N, folders.items(), key=lambda kv: (-kv[1].total_bytes, kv[0])
        )
        lines += ["", "Largest top-level folders:"]
        lines += _listing(
            (format_bytes(gain.total_bytes), f"{name}/ ({_files(gain.counted)})")
            for name, gain in ranked
        )
    return lines


def _copied_gitignore_lines(ignore: _IgnoreFile | None) -> tuple[str, ...] | None:
    """The .gitignore lines to repeat in a new .amlignore (None: too many to show)."""
    if ignore is None or ignore.name != GITIGNORE:
        return ()
    lines = tuple(line.rstrip("\n") for line in ignore.lines if line.strip())
    return lines if len(lines) <= _MAX_COPIED_LINES else None


def _advice(
    plan: SnapshotPlan,
    tally: _Tally,
    ignore: _IgnoreFile | None,
    *,
    max_bytes: int,
    max_files: int | None,
) -> list[str]:
    suggestions = _suggest_lines(tally, max_bytes=max_bytes, max_files=max_files)
    amlignore = plan.root / AMLIGNORE
    copied = _copied_gitignore_lines(ignore)
    lines: list[str] = []
    if suggestions:
        if plan.ignore_file == AMLIGNORE:
            lines.append(f"Add these lines to {amlignore} to leave the biggest contributors out")
        else:
            lines.append(
                f"Create {amlignore} with these lines to leave the biggest contributors out"
            )
        lines[-1] += " (gitignore syntax; check them before pasting):"
        lines.append("")
        if copied:
            lines.append(f"    # from your {GITIGNORE}")
            lines += [f"    {line}" for line in copied]
        for line, gain in suggestions:
            lines.append(f"    # {format_bytes(gain.total_bytes)} in {_files(gain.counted)}")
            lines.append(f"    {line}")
        lines.append("")
    else:
        lines.append(f"List what the job does not need in {amlignore} (gitignore syntax).")
    if plan.ignore_file != GITIGNORE:
        lines.append(
            "Note: an .amlignore replaces .gitignore for uploads (.gitignore is only read when "
            "there is no .amlignore): copy any .gitignore lines you rely on into it too."
        )
    elif copied and suggestions:
        lines.append(
            "Note: an .amlignore replaces .gitignore for uploads: once .amlignore exists, "
            ".gitignore is no longer read, which is why its lines are repeated above."
        )
    else:
        lines.append(
            "Note: an .amlignore replaces .gitignore for uploads. Your .gitignore is applied "
            f"today, but once {AMLIGNORE} exists .gitignore is no longer read: copy your "
            f".gitignore lines into {AMLIGNORE} too."
        )
    if plan.ignore_file is None:
        lines.append("Without an ignore file everything is uploaded, .git/ included.")
    return lines


def _files(count: int) -> str:
    return f"{count:,} file" if count == 1 else f"{count:,} files"
