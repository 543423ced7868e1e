"""A run's data, above the seam: names, placeholders, local inputs and their upload.

:func:`mlboot.submit_script` calls these in order, so every backend gets the same request:

1. :func:`name_data` (no I/O): every :class:`~mlboot.Input` and :class:`~mlboot.Output` checked,
   each given among ``arguments`` named by position (``input_0``, ``output_0``...), the names of
   ``inputs=``/``outputs=`` checked, every ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` in
   an argument checked against them;
2. :func:`walk_local_input` (local files only): each local input exists, can be read, and holds
   no link leading out of it, no named pipe, socket or device;
3. :func:`resolve_data` (the backend, inside the submit's deadline): every datastore named is
   looked up, every registered dataset checked, then each local input is uploaded to the
   default datastore, content addressed (:func:`content_digest`): under
   ``mlboot/inputs/sha256-<hex>/``, with the marker ``mlboot/inputs/sha256-<hex>.complete``
   written last, so an unchanged input costs its hashing and one existence check.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import attrs

from mlboot._backends._seam import (
    DEFAULT_OUTPUT_PATH,
    DataInput,
    DataOutput,
    DatastorePathCheck,
)
from mlboot._data import (
    DATA_NAME,
    DATA_NAME_RULE,
    Input,
    Output,
    check_input,
    check_output,
    parse_dataset,
    parse_datastore_uri,
)
from mlboot._links import describe
from mlboot._log import logger
from mlboot._retry import call_with_retries
from mlboot._snapshot import LOCAL_WORKSPACE_MARKER, LOCAL_WORKSPACE_NAME, SnapshotPlan
from mlboot._validate import absolute_path, probe
from mlboot._warnings import warn
from mlboot.exceptions import InvalidInputError, NotFoundError, ServiceError

if TYPE_CHECKING:
    from mlboot._backends._seam import Backend, WorkspaceRef

__all__ = [
    "INPUT_VARIABLE_PREFIX",
    "OUTPUT_VARIABLE_PREFIX",
    "UPLOAD_FOLDER",
    "LocalInput",
    "NamedData",
    "check_destinations",
    "content_digest",
    "name_data",
    "output_destination",
    "placeholder",
    "resolve_data",
    "walk_local_input",
    "warn_inside_source",
]

INPUT_VARIABLE_PREFIX = "MLBOOT_INPUT_"
"""The script finds input ``<name>``'s path in the environment variable ``MLBOOT_INPUT_<name>``."""
OUTPUT_VARIABLE_PREFIX = "MLBOOT_OUTPUT_"
"""The script finds output ``<name>``'s folder in ``MLBOOT_OUTPUT_<name>``."""
UPLOAD_FOLDER = "mlboot/inputs"
"""Where in the default datastore local inputs are uploaded, each under ``sha256-<hex>/``."""

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE = re.compile(r"(inputs|outputs)\.([A-Za-z0-9_]+)", re.ASCII)
_CHUNK = 1024 * 1024
_LOCAL_FIX = (
    "pass an existing file or folder (relative paths start from the current folder), or a "
    "datastore path 'azureml://datastores/<name>/paths/<path>'"
)


def placeholder(kind: str, name: str) -> str:
    """The argument text of input (``kind="inputs"``) or output ``name``: ``${{inputs.x}}``."""
    return "${{" + f"{kind}.{name}" + "}}"


@attrs.frozen
class NamedData:
    """The run's arguments as strings, and every input and output under its name, in order."""

    arguments: tuple[str, ...]
    inputs: Mapping[str, Input]
    outputs: Mapping[str, Output]
    fields: Mapping[str, str] = attrs.field(factory=dict)
    """Where each was given, for messages: ``"arguments[3]"`` or ``"inputs['train']"``."""

    def field(self, name: str) -> str:
        """The field input or output ``name`` was given in."""
        default = f"inputs[{name!r}]" if name in self.inputs else f"outputs[{name!r}]"
        return self.fields.get(name, default)


def name_data(
    arguments: Sequence[str | Input | Output],
    inputs: object,
    outputs: object,
) -> NamedData:
    """Name every input and output, and check every placeholder; raise ``InvalidInputError``."""
    named_inputs = _named("inputs", inputs, check_input)
    named_outputs = _named("outputs", outputs, check_output)
    strings: list[str] = []
    given: list[tuple[int, str]] = []  # (position, text) of the arguments the caller wrote
    counts = {"inputs": 0, "outputs": 0}
    fields: dict[str, str] = {}
    for position, value in enumerate(arguments):
        if isinstance(value, str):
            strings.append(value)
            given.append((position, value))
            continue
        kind = "inputs" if isinstance(value, Input) else "outputs"
        prefix = kind[:-1]
        name = f"{prefix}_{counts[kind]}"
        counts[kind] += 1
        field = f"arguments[{position}]"
        taken: Mapping[str, object] = named_inputs if kind == "inputs" else named_outputs
        if name in taken:
            raise InvalidInputError(
                f"{kind}[{name!r}]",
                taken[name],
                f"the name {name!r} is also the one given to the mlboot.{type(value).__name__} "
                f"at {field} (an input or output among arguments is named {prefix}_0, "
                f"{prefix}_1... by position)",
                f"give it another name in {kind}=",
            )
        fields[name] = field
        if isinstance(value, Input):
            named_inputs[name] = check_input(field, value)
        else:
            named_outputs[name] = check_output(field, value)
        strings.append(placeholder(kind, name))
    both = sorted(set(named_inputs) & set(named_outputs))
    if both:
        raise InvalidInputError(
            f"outputs[{both[0]!r}]",
            named_outputs[both[0]],
            f"{both[0]!r} names an input too: an input and an output cannot share a name (a "
            "placeholder ${{inputs.<name>}} or ${{outputs.<name>}} and the environment "
            "variables must say which is meant)",
            "rename the input or the output",
        )
    check_destinations(named_outputs, lambda name: fields.get(name, f"outputs[{name!r}]"))
    for position, text in given:
        _check_placeholders(f"arguments[{position}]", text, named_inputs, named_outputs)
    return NamedData(tuple(strings), named_inputs, named_outputs, fields)


def _named(field: str, mapping: object, check: Callable[[str, object], T]) -> dict[str, T]:
    if mapping is None:
        return {}
    kind = "Input" if field == "inputs" else "Output"
    if not isinstance(mapping, Mapping):
        raise InvalidInputError(
            field,
            mapping,
            f"it must be a mapping of names to mlboot.{kind} values, or None",
            f"pass e.g. {field}={{'train': mlboot.{kind}(...)}}",
        )
    checked: dict[str, T] = {}
    for name, value in mapping.items():
        if not isinstance(name, str) or not DATA_NAME.fullmatch(name):
            raise InvalidInputError(
                field, name, DATA_NAME_RULE, "pass a name such as 'train' or 'train_images'"
            )
        checked[name] = check(f"{field}[{name!r}]", value)
    return checked


def output_destination(name: str, output: Output) -> tuple[str | None, str]:
    """``(datastore, path)`` of output ``name``, ``{output-name}`` filled in, ``{run-id}`` left;
    ``None`` for the default datastore.  The path has no trailing ``/``."""
    if output.destination is None:
        store, path = None, DEFAULT_OUTPUT_PATH
    else:
        store, path = parse_datastore_uri(output.destination)
    return store, path.replace("{output-name}", name).rstrip("/")


def check_destinations(
    outputs: Mapping[str, Output], field: Callable[[str], str], default: str | None = None
) -> None:
    """Refuse two outputs whose folders are the same, or one inside the other, once
    ``{output-name}`` is filled in (``{run-id}`` is the same for both).

    An output without a destination is in the default datastore: ``default`` names it once it
    is known (before that, only such outputs are compared with each other).
    """
    placed: list[tuple[str, str | None, str]] = []
    for name, output in outputs.items():
        store, path = output_destination(name, output)
        store = store or default
        for other, other_store, other_path in placed:
            if store != other_store or not _overlap(path, other_path):
                continue
            if default is not None and outputs[other].destination is None:
                rule = (
                    f"{default!r} is the workspace's default datastore, where output {other!r} "
                    f"(given no destination) goes to {DEFAULT_OUTPUT_PATH}: the two folders "
                    "overlap"
                )
            else:
                how = "the same folder" if path == other_path else "a folder that overlaps it"
                where = other_store or "the default datastore"
                rule = f"output {other!r} has {how} ({other_path!r} in {where})"
            raise InvalidInputError(
                f"{field(name)}.destination",
                output.destination,
                f"{rule}: the two would overwrite or mix each other's files",
                "give each output its own folder, e.g. with {output-name} in its path",
            )
        placed.append((name, store, path))


def _overlap(path: str, other: str) -> bool:
    return path == other or path.startswith(other + "/") or other.startswith(path + "/")


def _check_placeholders(
    field: str, text: str, inputs: Mapping[str, object], outputs: Mapping[str, object]
) -> None:
    fix = "write ${{inputs.<name>}} or ${{outputs.<name>}} with a name given in inputs= or outputs="
    found = list(_PLACEHOLDER.finditer(text))
    if text.count("${{") != len(found):
        raise InvalidInputError(
            field,
            text,
            "it holds '${{' that does not start a placeholder ${{inputs.<name>}} or "
            "${{outputs.<name>}} closed by '}}'",
            fix,
        )
    for match in found:
        reference = _REFERENCE.fullmatch(match.group(1))
        if reference is None:
            raise InvalidInputError(
                field,
                text,
                f"the placeholder {match.group(0)} is not ${{{{inputs.<name>}}}} or "
                "${{outputs.<name>}} (spelled so, without spaces)",
                fix,
            )
        kind, name = reference.groups()
        table = inputs if kind == "inputs" else outputs
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise InvalidInputError(
                field,
                text,
                f"the placeholder {match.group(0)} names no {kind[:-1]} (the {kind} are: {known})",
                f"add {name!r} to {kind}=, or correct the name",
            )


# -- local inputs ---------------------------------------------------------------------------------


@attrs.frozen
class LocalInput:
    """A local file or folder checked for upload.

    ``files`` are ``(relative POSIX name, path to read)``, sorted by name; for a single file the
    name is its own.  ``stamps`` are each file's ``(size, mtime_ns)`` when it was walked.
    """

    field: str
    path: Path
    is_file: bool = attrs.field(kw_only=True)
    files: tuple[tuple[str, Path], ...] = attrs.field(kw_only=True)
    stamps: tuple[tuple[int, int], ...] = attrs.field(kw_only=True)

    @property
    def total_bytes(self) -> int:
        """The size of all its files."""
        return sum(size for size, _ in self.stamps)


def walk_local_input(field: str, source: object) -> LocalInput:
    """Check a local input (exists, readable, no link leading out, only files and folders)."""
    raw, path = absolute_path(field, source, what="local path", fix=_LOCAL_FIX)
    exists, is_file, is_dir = probe(path)
    if not exists:
        raise InvalidInputError(field, raw, f"it does not exist (looked for {path})", _LOCAL_FIX)
    if is_file:
        if raw.endswith(("/", os.sep)):
            raise InvalidInputError(
                field,
                raw,
                f"it ends with '/', which names a folder, but {path} is a file",
                f"drop the trailing '/': {raw.rstrip('/' + os.sep)!r}",
            )
        info = path.stat()
        _check_readable(field, raw, path, path.name)
        return LocalInput(
            field,
            path,
            is_file=True,
            files=((path.name, path),),
            stamps=((info.st_size, info.st_mtime_ns),),
        )
    if not is_dir:
        raise InvalidInputError(
            field,
            raw,
            f"it is {_what(path)}, not a regular file or folder",
            "pass a regular file or a folder",
        )
    files = _walk_folder(field, raw, path)
    if not files:
        raise InvalidInputError(
            field,
            raw,
            "the folder holds no file (a datastore keeps files, not folders, so an empty "
            "input could not be mounted or downloaded on Azure ML)",
            "put the files in it first, or leave the input out",
        )
    stamps = []
    for _, real in files:
        info = real.stat()
        stamps.append((info.st_size, info.st_mtime_ns))
    return LocalInput(field, path, is_file=False, files=tuple(files), stamps=tuple(stamps))


_Pending: TypeAlias = "tuple[str, str, tuple[tuple[int, int], ...]]"
"""A folder still to list: its real path, its path from the input's root, its ancestors."""


def _walk_folder(field: str, raw: str, root: Path) -> list[tuple[str, Path]]:
    real_root = os.path.realpath(root)
    if os.path.lexists(Path(real_root, LOCAL_WORKSPACE_MARKER)):
        raise InvalidInputError(
            field,
            raw,
            f"it is a local workspace folder of mlboot (it holds {LOCAL_WORKSPACE_MARKER})",
            "pass the folder of the data itself",
        )
    found: list[tuple[str, Path]] = []
    root_info = Path(real_root).stat()
    pending: list[_Pending] = [(real_root, "", ((root_info.st_dev, root_info.st_ino),))]
    while pending:
        folder, rel_prefix, ancestors = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            raise InvalidInputError(
                field,
                raw,
                f"its folder {rel_prefix or '.'!r} cannot be listed ({exc.strerror or exc})",
                "make it readable, or pass another folder",
            ) from exc
        if rel_prefix and any(entry.name == LOCAL_WORKSPACE_MARKER for entry in entries):
            continue  # a local workspace inside is never uploaded, as for snapshots
        for entry in entries:
            child = _visit(field, raw, real_root, entry, rel_prefix, ancestors, found)
            if child is not None:
                pending.append(child)
    return sorted(found)


def _visit(  # noqa: PLR0917  (one entry of the walk above, and all it needs)
    field: str,
    raw: str,
    real_root: str,
    entry: os.DirEntry[str],
    rel_prefix: str,
    ancestors: tuple[tuple[int, int], ...],
    found: list[tuple[str, Path]],
) -> _Pending | None:
    """Note a file in ``found``; return a folder to list; refuse anything else."""
    rel = rel_prefix + entry.name
    real = entry.path
    if entry.is_symlink():
        real = os.path.realpath(entry.path)
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            raise InvalidInputError(
                field,
                raw,
                f"it holds the symbolic link {rel!r}, which leads to {real!r}, outside the "
                "input folder; an input never follows a link out of its folder",
                "copy the data into the folder, or pass a folder that holds both the link and "
                "its target",
            )
    try:
        mode, ident = _mode_and_identity(Path(real))
    except FileNotFoundError:
        mode, ident = 0, (0, 0)  # a broken link, or gone since it was listed: said below
    except OSError as exc:
        raise InvalidInputError(
            field,
            raw,
            f"its entry {rel!r} cannot be read ({exc.strerror or exc})",
            "make it readable (chmod u+rx on its folder), or leave it out",
        ) from exc
    if stat.S_ISDIR(mode):
        if entry.name == LOCAL_WORKSPACE_NAME:
            return None
        if ident in ancestors:
            raise InvalidInputError(
                field,
                raw,
                f"it holds {rel!r}, a symbolic link to a folder that contains it",
                "remove the link",
            )
        return (real, rel + "/", (*ancestors, ident))
    if not stat.S_ISREG(mode):
        raise InvalidInputError(
            field,
            raw,
            f"it holds {rel!r}, which is {_what(Path(entry.path))}; only regular files and "
            "folders can be uploaded",
            "remove it, or pass a folder without it",
        )
    _check_readable(field, raw, Path(real), rel)
    found.append((rel, Path(real)))
    return None


def _mode_and_identity(path: Path) -> tuple[int, tuple[int, int]]:
    info = path.stat()
    return info.st_mode, (info.st_dev, info.st_ino)


def _check_readable(field: str, raw: str, path: Path, rel: str) -> None:
    if not os.access(path, os.R_OK):
        raise InvalidInputError(
            field,
            raw,
            f"its file {rel!r} cannot be read (permission denied)",
            "make it readable (chmod u+r), or leave it out",
        )


def _what(path: Path) -> str:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "a broken symbolic link"
    return describe(mode)


def warn_inside_source(
    local: LocalInput, plan: SnapshotPlan, source: str | os.PathLike[str]
) -> None:
    """Warn when the snapshot holds the input's files too: they would be uploaded twice."""
    real_root = Path(os.path.realpath(plan.root))
    real = Path(os.path.realpath(local.path))
    if not real.is_relative_to(real_root):
        return
    rel = real.relative_to(real_root).as_posix()
    inside = [f for f in plan.files if rel in {".", f} or f.startswith(rel + "/")]
    if inside:
        warn(
            f"{local.field}={os.fspath(source)!r} lies inside source_directory ({plan.root}): its "
            f"{len(inside)} file(s) are uploaded twice, in the run's snapshot and as the input. "
            f"Fix: list {rel!r} in {plan.root / '.amlignore'} to leave it out of the snapshot, "
            "or move the data out of source_directory."
        )


def content_digest(local: LocalInput) -> tuple[str, str]:
    """``(hex, manifest)``: SHA-256 of the sorted (relative POSIX name, size, SHA-256) lines.

    The manifest is those lines, one per file (``<sha256>  <size>  <name>``); its own SHA-256
    is the digest, so a renamed, added, removed or changed file gives a new one.
    """
    lines = []
    for name, path in local.files:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        lines.append(f"{digest.hexdigest()}  {size}  {_escaped(name)}\n")
    manifest = "".join(lines)
    return hashlib.sha256(manifest.encode("utf-8", "surrogateescape")).hexdigest(), manifest


def _escaped(name: str) -> str:
    return name.replace("\\", "\\\\").replace("\n", "\\n")


# -- resolving, against the workspace ----------------------------------------------------------


def resolve_data(
    backend: Backend,
    ref: WorkspaceRef,
    named: NamedData,
    local: Mapping[str, LocalInput],
) -> tuple[tuple[DataInput, ...], tuple[DataOutput, ...]]:
    """Look up every datastore and dataset named, then upload the local inputs; the seam records.

    Every check comes before the first upload, so a submit refused for its data has written
    nothing.
    """
    _check_datastores(backend, ref, named)
    for name, value in named.inputs.items():
        if value.kind == "dataset":
            _check_dataset(backend, ref, named, name, str(value.source))
    needs_default = bool(local) or (
        any(o.destination is None for o in named.outputs.values())
        and any(o.destination is not None for o in named.outputs.values())
    )
    default = _default_datastore(backend, ref) if needs_default else None
    if default is not None:
        check_destinations(named.outputs, named.field, default)
    if local and default is None:
        raise ServiceError(
            f"{ref} has no default datastore to upload the local inputs to. Fix: set one "
            "(Azure ML studio, Data, Datastores), or pass the inputs as datastore paths."
        )
    if isinstance(backend, DatastorePathCheck):
        _check_datastore_paths(backend, ref, named)
    inputs: list[DataInput] = []
    for name, value in named.inputs.items():
        inputs.append(
            _data_input(
                backend, ref=ref, name=name, value=value, local=local.get(name), default=default
            )
        )
    outputs = []
    for name, output in named.outputs.items():
        store, path = (None, None)
        if output.destination is not None:
            store, path = parse_datastore_uri(output.destination)
        outputs.append(DataOutput(name=name, mode=output.mode, datastore=store, path=path))
    return tuple(inputs), tuple(outputs)


def _check_datastore_paths(
    backend: DatastorePathCheck, ref: WorkspaceRef, named: NamedData
) -> None:
    for name, value in named.inputs.items():
        if value.kind == "datastore":
            store, path = parse_datastore_uri(str(value.source))
            backend.check_datastore_path(
                ref, store, path, what=f"{named.field(name)}.source={value.source!r}"
            )


def _default_datastore(backend: Backend, ref: WorkspaceRef) -> str | None:
    info = call_with_retries(
        lambda: backend.get_datastore(ref, None),
        clock=backend.clock,
        what="looking up the workspace's default datastore",
    )
    return None if info is None else info.name


def _check_dataset(
    backend: Backend, ref: WorkspaceRef, named: NamedData, name: str, source: str
) -> None:
    """Look the registered dataset up; a refusal names the field the input was given in."""
    dataset, version = parse_dataset(source)
    which = f"version {version}" if version else "the latest version"
    field = f"{named.field(name)}.source"
    try:
        call_with_retries(
            functools.partial(backend.check_registered_dataset, ref, dataset, version),
            clock=backend.clock,
            what=f"looking up dataset {dataset!r} ({which}) for input {name!r}",
        )
    except InvalidInputError as exc:
        if exc.field == field:
            raise
        raise InvalidInputError(field, exc.value, exc.rule, exc.fix) from exc
    except NotFoundError as exc:
        if type(exc) is not NotFoundError:  # a missing workspace says so as it is
            raise
        raise NotFoundError(f"{field}={source!r}: {exc}") from exc


def _check_datastores(backend: Backend, ref: WorkspaceRef, named: NamedData) -> None:
    uses: dict[str, tuple[str, str]] = {}  # datastore -> (field, uri) of its first use
    for name, value in named.inputs.items():
        if value.kind == "datastore":
            store, _ = parse_datastore_uri(str(value.source))
            uses.setdefault(store, (f"{named.field(name)}.source", str(value.source)))
    for name, output in named.outputs.items():
        if output.destination is not None:
            store, _ = parse_datastore_uri(output.destination)
            uses.setdefault(store, (f"{named.field(name)}.destination", output.destination))
    for store, (field, uri) in uses.items():
        info = call_with_retries(
            functools.partial(backend.get_datastore, ref, store),
            clock=backend.clock,
            what=f"looking up datastore {store!r}",
        )
        if info is None:
            raise InvalidInputError(
                field,
                uri,
                f"{ref} has no datastore called {store!r}",
                "register the datastore first (Azure ML studio, Data, Datastores; on the local "
                "backend, LocalBackend.add_datastore), or correct the name",
            )


def _data_input(
    backend: Backend,
    *,
    ref: WorkspaceRef,
    name: str,
    value: Input,
    local: LocalInput | None,
    default: str | None,
) -> DataInput:
    source = str(value.source) if isinstance(value.source, str) else ""
    if local is not None and default is not None:
        path = upload_local_input(backend, ref, default, local)
        return DataInput(name=name, mode=value.mode, kind="datastore", datastore=default, path=path)
    if value.kind == "datastore":
        store, path = parse_datastore_uri(source)
        return DataInput(name=name, mode=value.mode, kind="datastore", datastore=store, path=path)
    if value.kind == "url":
        return DataInput(name=name, mode=value.mode, kind="url", url=source)
    dataset, version = parse_dataset(source)
    return DataInput(name=name, mode=value.mode, kind="dataset", dataset=dataset, version=version)


def upload_local_input(
    backend: Backend, ref: WorkspaceRef, datastore: str, local: LocalInput
) -> str:
    """Upload ``local`` unless its content is there already; its path in ``datastore``."""
    digest, manifest = content_digest(local)
    base = f"{UPLOAD_FOLDER}/sha256-{digest}"
    # A folder's path ends in '/': read as a prefix of blob names, "sha256-<hex>" alone would
    # also take its marker "sha256-<hex>.complete".
    path = f"{base}/{local.files[0][0]}" if local.is_file else f"{base}/"
    marker = f"sha256-{digest}.complete"
    present = call_with_retries(
        lambda: backend.datastore_file_exists(ref, datastore, f"{UPLOAD_FOLDER}/{marker}"),
        clock=backend.clock,
        what=f"looking for {base} in datastore {datastore!r}",
    )
    if present:
        logger.info(
            "%s (%s) is in datastore %r already, as %s: not uploaded again",
            local.field,
            local.path,
            datastore,
            base,
        )
        return path
    files = [(real, rel) for rel, real in local.files]
    call_with_retries(
        lambda: backend.upload_to_datastore(ref, datastore, base, files),
        clock=backend.clock,
        what=f"uploading {local.path} to datastore {datastore!r}",
    )
    _check_unchanged(local)
    with _manifest_file(manifest) as written:
        call_with_retries(
            lambda: backend.upload_to_datastore(ref, datastore, UPLOAD_FOLDER, [(written, marker)]),
            clock=backend.clock,
            what=f"marking {base} complete in datastore {datastore!r}",
        )
    logger.info(
        "Uploaded %s (%d files, %d bytes) to datastore %r as %s",
        local.path,
        len(local.files),
        local.total_bytes,
        datastore,
        base,
    )
    return path


def _check_unchanged(local: LocalInput) -> None:
    """Refuse to mark an upload complete when a file changed since it was hashed."""
    for (rel, real), stamp in zip(local.files, local.stamps, strict=True):
        try:
            info = real.stat()
            now = (info.st_size, info.st_mtime_ns)
        except OSError:
            now = None
        if now != stamp:
            raise InvalidInputError(
                local.field,
                str(local.path),
                f"its file {rel!r} changed while it was being uploaded, so the upload may not "
                "match its content (it is not marked complete, and will be sent again)",
                "submit again once the data no longer changes",
            )


@contextlib.contextmanager
def _manifest_file(manifest: str) -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="mlboot-manifest-", suffix=".txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors="surrogateescape") as stream:
            stream.write(manifest)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            Path(name).unlink()
