"""A local run's data: inputs copied into the run's folder, outputs placed in datastore folders.

A local datastore is the folder ``datastores/<name>/`` of the local workspace;
``workspaceblobstore`` (the default) always exists, any other once its folder does
(:meth:`mlboot.LocalBackend.add_datastore`).  Before the script starts (a missing datastore or
path fails the submit, so no run is made):

- an input in ``download`` mode is copied to ``inputs/<name>/`` in the run's folder;
- an input in ``mount`` mode is copied there too, then made read-only (no write bit on its files
  and folders): a read-only bind mount needs root or a mount namespace, which a local run does not
  have, so a copy is the view.  Either way nothing the script does reaches the datastore (a
  process of root, which ignores the bits, writes to the copy only);
- an ``http(s)://`` input is downloaded there, with a time-out;
- an output in ``upload`` mode gets the empty folder ``data_outputs/<name>/`` of the run, which
  the supervisor moves into the datastore folder once the script has ended (links, named pipes,
  sockets and devices left out, as for ``outputs/``); one in ``mount`` mode is the datastore
  folder itself, written in place.

An output with no destination goes to ``dataset/<run id>/<name>`` of the default datastore, where
azureml-core puts it too.  Nothing is ever read or written through a symbolic link in a
datastore folder.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from mlboot._backends._seam import DEFAULT_OUTPUT_PATH, DataInput, DataOutput, RunRequest
from mlboot._links import check_destination, copy_regular_file, download_tree
from mlboot._validate import MAX_FILE_NAME_BYTES
from mlboot.exceptions import InvalidInputError, NotFoundError, ServiceError

__all__ = [
    "DATASTORES_FOLDER",
    "DEFAULT_DATASTORE",
    "DEFAULT_OUTPUT_PATH",
    "INPUTS_FOLDER",
    "OUTPUTS_UPLOAD_FOLDER",
    "URL_TIMEOUT_SECONDS",
    "LocalData",
    "check_datastore_path",
    "expand_output_path",
    "make_read_only",
    "prepare_data",
    "remove_tree",
    "upload_records",
]

DATASTORES_FOLDER = "datastores"
"""The folder of the local workspace that holds one folder per datastore."""
DEFAULT_DATASTORE = "workspaceblobstore"
"""The default datastore of every local workspace, as of every Azure ML one."""
INPUTS_FOLDER = "inputs"
"""The folder of a local run that holds its inputs' copies."""
OUTPUTS_UPLOAD_FOLDER = "data_outputs"
"""The folder of a local run where the script writes its upload-mode outputs."""
URL_TIMEOUT_SECONDS = 60.0
"""How long an ``http(s)://`` input's server may stay silent before the download fails."""
_URL_CHUNK = 1024 * 1024
_RUN_ONLY_MODE = 0o555
_READ_ONLY_FILE_MODE = 0o444


class LocalData:
    """What the script gets: each input's and output's path, and the uploads for afterwards."""

    def __init__(self) -> None:
        self.paths: dict[tuple[str, str], str] = {}  # ("inputs" | "outputs", name) -> path
        self.uploads: list[dict[str, str]] = []  # for the supervisor: folder -> datastore path
        self.read_only: list[str] = []  # input copies made read-only (given back write bits)

    def variables(self) -> dict[str, str]:
        """``MLBOOT_INPUT_<name>`` and ``MLBOOT_OUTPUT_<name>``."""
        prefixes = {"inputs": "MLBOOT_INPUT_", "outputs": "MLBOOT_OUTPUT_"}
        return {prefixes[kind] + name: path for (kind, name), path in self.paths.items()}

    def substitute(self, arguments: tuple[str, ...]) -> list[str]:
        """The arguments with every ``${{inputs.<name>}}`` / ``${{outputs.<name>}}`` replaced."""
        replaced = []
        for argument in arguments:
            for (kind, name), path in self.paths.items():
                argument = argument.replace("${{" + f"{kind}.{name}" + "}}", path)  # noqa: PLW2901  (rewritten in place)
            replaced.append(argument)
        return replaced


def expand_output_path(path: str, *, run_id: str, name: str) -> str:
    """``path`` with ``{run-id}`` and ``{output-name}`` replaced."""
    return path.replace("{run-id}", run_id).replace("{output-name}", name)


def prepare_data(
    root: Path, request: RunRequest, prepared: Path, final: Path, run_id: str
) -> LocalData:
    """Copy the inputs into ``prepared`` (the run's folder, renamed to ``final`` later) and
    place the outputs; paths are given as they will be, under ``final``."""
    data = LocalData()
    for data_input in request.inputs:
        relative = _prepare_input(root, data_input, prepared)
        data.paths["inputs", data_input.name] = str(final / relative)
        if data_input.mode == "mount":
            data.read_only.append(str(final / INPUTS_FOLDER / data_input.name))
    for output in request.outputs:
        data.paths["outputs", output.name] = _prepare_output(
            root, output, prepared, final, run_id, data
        )
    return data


def make_read_only(folder: Path) -> None:
    """Take every write bit off the copy ``folder`` (its files and folders; links untouched)."""
    for current, folders, files in os.walk(folder, topdown=False):
        for name in files:
            path = Path(current, name)
            if not path.is_symlink():
                path.chmod(_READ_ONLY_FILE_MODE)
        for name in folders:
            path = Path(current, name)
            if not path.is_symlink():
                path.chmod(_RUN_ONLY_MODE)
    folder.chmod(_RUN_ONLY_MODE)


def remove_tree(folder: Path) -> None:
    """Remove a run folder being prepared, read-only input copies included; errors ignored."""
    for current, names, _files in os.walk(folder):
        with contextlib.suppress(OSError):
            Path(current).chmod(0o700)
        names[:] = [n for n in names if not Path(current, n).is_symlink()]
    shutil.rmtree(folder, ignore_errors=True)


def _datastore_folder(root: Path, name: str) -> Path:
    folder = root / DATASTORES_FOLDER / name
    if name == DEFAULT_DATASTORE:
        folder.mkdir(parents=True, exist_ok=True)
    try:
        is_folder = stat.S_ISDIR(folder.lstat().st_mode)
    except FileNotFoundError:
        is_folder = False
    if not is_folder:
        raise NotFoundError(
            f"the local workspace {root} has no datastore {name!r} (no folder {folder}); the "
            "run was not started. Fix: make it with LocalBackend.add_datastore("
            f"{name!r}), or correct the name."
        )
    return folder


def _in_datastore(root: Path, store: str, path: str, *, what: str) -> Path:
    """The existing file or folder ``path`` of datastore ``store``, reached without a link."""
    folder = _datastore_folder(root, store)
    parent = posixpath.dirname(path)
    check_destination(folder, [parent + "/"] if parent else [])
    target = folder / path if path else folder
    try:
        info = target.lstat()
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        check_destination(folder, [path])  # refuses the link, naming it
    if info is None or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        raise NotFoundError(
            f"{what}: {path!r} does not exist in the local datastore {store!r} (looked for "
            f"{target}); the run was not started. Fix: put the data there first, or correct "
            "the path."
        )
    return target


def check_datastore_path(root: Path, store: str, path: str, *, what: str) -> None:
    """``NotFoundError`` unless ``path`` is a file or folder of local datastore ``store``."""
    _in_datastore(root, store, path.rstrip("/"), what=what)


def _prepare_input(root: Path, data_input: DataInput, prepared: Path) -> str:
    """Copy one input into ``prepared/inputs/<name>/``; its path relative to the run folder."""
    name = data_input.name
    what = f"input {name!r}"
    inputs = prepared / INPUTS_FOLDER
    inputs.mkdir(exist_ok=True)
    if data_input.kind == "datastore":
        path = (data_input.path or "").rstrip("/")
        source = _in_datastore(root, str(data_input.datastore), path, what=what)
        if source.is_dir():
            download_tree(source, inputs, name)
            (inputs / name).mkdir(exist_ok=True)
            relative = f"{INPUTS_FOLDER}/{name}"
        else:
            (inputs / name).mkdir()
            copy_regular_file(source, inputs / name / source.name, exclusive=True)
            relative = f"{INPUTS_FOLDER}/{name}/{source.name}"
    elif data_input.kind == "url":
        relative = _download_url(str(data_input.url), inputs, name)
    else:
        raise InvalidInputError(
            "source",
            f"azureml:{data_input.dataset}",
            "the local backend has no registered datasets",
            "pass the dataset's files as a local folder or a local datastore path",
        )
    if data_input.mode == "mount":
        make_read_only(inputs / name)
    return relative


def _download_url(url: str, inputs: Path, name: str) -> str:
    """Download ``url`` to ``inputs/<name>/<its file name>``, every read bounded in time."""
    file_name = _url_file_name(url)
    folder = inputs / name
    folder.mkdir()
    target = folder / file_name
    try:
        with (
            urllib.request.urlopen(url, timeout=URL_TIMEOUT_SECONDS) as response,  # noqa: S310  (http(s) only: checked above the seam)
            target.open("xb") as stream,
        ):
            shutil.copyfileobj(response, stream, _URL_CHUNK)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # the error holds the answer's connection open
        reason = getattr(exc, "reason", exc)
        raise ServiceError(
            f"input {name!r}: downloading {url} failed ({reason}); the run was not started. "
            "Fix: check the address, or try again later.",
            status=getattr(exc, "code", None),
            transient=not isinstance(exc, urllib.error.HTTPError) or getattr(exc, "code", 0) >= 500,  # noqa: PLR2004  (server errors)
        ) from exc
    return f"{INPUTS_FOLDER}/{name}/{file_name}"


def _url_file_name(url: str) -> str:
    """The last name of ``url``'s path, if it can be a file's name here; else ``download``."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path)
    try:
        too_long = len(os.fsencode(name)) > MAX_FILE_NAME_BYTES
    except UnicodeError:  # pragma: no cover - a checked URL holds no lone surrogate
        too_long = True
    if name in {"", ".", ".."} or too_long:
        return "download"
    return name


def _prepare_output(  # noqa: PLR0917  (one output, and where it goes)
    root: Path, output: DataOutput, prepared: Path, final: Path, run_id: str, data: LocalData
) -> str:
    store = output.datastore or DEFAULT_DATASTORE
    path = expand_output_path(
        output.path if output.path is not None else DEFAULT_OUTPUT_PATH,
        run_id=run_id,
        name=output.name,
    ).rstrip("/")
    folder = _datastore_folder(root, store)
    check_destination(folder, [path + "/"])  # never written through a link
    if output.mode == "mount":
        (folder / path).mkdir(parents=True, exist_ok=True)
        return str(folder / path)
    (prepared / OUTPUTS_UPLOAD_FOLDER / output.name).mkdir(parents=True)
    source = final / OUTPUTS_UPLOAD_FOLDER / output.name
    data.uploads.append(
        {"name": output.name, "source": str(source), "datastore": str(folder), "path": path}
    )
    return str(source)


def upload_records(data: LocalData) -> Mapping[str, object]:
    """What the run's ``run.json`` keeps of its data, for the supervisor."""
    return {"data_outputs": data.uploads, "read_only_inputs": data.read_only}
