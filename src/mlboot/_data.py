"""Data in and out of runs: :class:`Input` and :class:`Output`.

An input is read by the script; its ``source`` is one of

- a local file or folder (a ``str`` path or a :class:`~pathlib.Path`): mlboot uploads it to the
  workspace's default datastore under ``mlboot/inputs/sha256-<digest>/``, named by its content,
  so an unchanged folder is never uploaded twice;
- a datastore path, ``azureml://datastores/<name>/paths/<path>`` (the URI both Azure ML SDKs
  read; ``<path>`` empty for the datastore's root);
- an ``http://`` or ``https://`` URL, downloaded (it cannot be mounted);
- a registered dataset, ``azureml:<name>:<version>`` or ``azureml:<name>@latest``.

An output is written by the script, to ``azureml://datastores/<name>/paths/<path>`` or, with no
destination, to a folder under the run (``dataset/<run id>/<output name>`` in the default
datastore).  An output's path may hold ``{run-id}`` and
``{output-name}``, replaced by the run's id and the output's name (as azureml-core's
``OutputFileDatasetConfig`` does); an input's may not, since it must name data that exists.

The values are checked when they are built (types, the URI's grammar, names, modes), raising
:class:`~mlboot.exceptions.InvalidInputError`; whether a local path exists, or a datastore does,
is checked by :func:`mlboot.submit_script`, before anything is uploaded or submitted.
"""

from __future__ import annotations

import os
import pathlib
import re
import unicodedata
import urllib.parse
from typing import Literal, TypeAlias

import attrs

from mlboot._spellings import name_pattern
from mlboot._validate import MAX_FILE_NAME_BYTES, path_text
from mlboot.exceptions import InvalidInputError

__all__ = [
    "DATASTORE_NAME_RULE",
    "DATA_NAME",
    "DATA_NAME_RULE",
    "OUTPUT_PLACEHOLDERS",
    "Input",
    "InputKind",
    "InputMode",
    "Output",
    "OutputMode",
    "check_input",
    "check_output",
    "datastore_uri",
    "input_kind",
    "parse_dataset",
    "parse_datastore_uri",
]

InputMode: TypeAlias = Literal["mount", "download"]
"""How an input reaches the script: read in place (``"mount"``) or copied first (``"download"``)."""
OutputMode: TypeAlias = Literal["upload", "mount"]
"""How an output leaves: copied at the end (``"upload"``) or written in place (``"mount"``)."""
InputKind: TypeAlias = Literal["local", "datastore", "url", "dataset"]
"""Where an :class:`Input` reads from, as :func:`input_kind` tells it from ``source``."""

_INPUT_MODES: tuple[InputMode, ...] = ("mount", "download")
_OUTPUT_MODES: tuple[OutputMode, ...] = ("upload", "mount")

DATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}", re.ASCII)
"""An input's or output's name: it is also part of an environment variable's name."""
DATA_NAME_RULE = (
    "an input or output name is 1 to 255 ASCII letters, digits or '_', not starting with a "
    "digit (it becomes part of the environment variable MLBOOT_INPUT_<name> or "
    "MLBOOT_OUTPUT_<name>)"
)

# Azure ML's rule for a datastore's name (azureml-core's Datastore.register and azure-ai-ml's
# datastore schema): letters, digits and '_'.
_DATASTORE_NAME = re.compile(r"[A-Za-z0-9_]{1,255}", re.ASCII)
DATASTORE_NAME_RULE = "a datastore name is 1 to 255 ASCII letters, digits or '_'"
_DATASET_NAME = re.compile(name_pattern(255), re.ASCII)
_DATASET_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,29}", re.ASCII)

_DATASTORE_URI = re.compile(r"azureml://datastores/([^/]*)/paths/(.*)", re.ASCII | re.DOTALL)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):", re.ASCII)
_DATASTORE_URI_FORM = "azureml://datastores/<name>/paths/<path>"

OUTPUT_PLACEHOLDERS = ("{run-id}", "{output-name}")
"""What an output's path may hold, replaced by the run's id and the output's name."""
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", re.ASCII)
_SIGNATURE = re.compile(r"([?&]sig=)[^&#]*", re.ASCII | re.IGNORECASE)
# Azure Blob Storage's limit on a blob's name, and the file system's on one name in it.
_MAX_DATASTORE_PATH = 1024
_PATH_TYPES = (
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    pathlib.PosixPath,
    pathlib.WindowsPath,
)

_INPUT_SOURCE_FIX = (
    "pass a local path, 'azureml://datastores/<name>/paths/<path>', an 'https://...' URL, or "
    "'azureml:<dataset>:<version>' / 'azureml:<dataset>@latest'"
)


def _plain_source(value: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``value`` as a plain ``str`` or :class:`pathlib.Path`, so that what was checked is used.

    A ``str`` subclass could answer ``str()`` otherwise than its text, and an ``os.PathLike``
    could answer each ``os.fspath()`` otherwise: mlboot reads them once, here.  A value that
    cannot be read is kept, for the validator to refuse.
    """
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, os.PathLike) and type(value) not in _PATH_TYPES:  # type: ignore[redundant-expr]  # a caller's object may be neither
        try:
            text = os.fspath(value)
        except Exception:  # noqa: BLE001  (refused, with its error, by the validator)
            return value
        if isinstance(text, str):
            return pathlib.Path(str.__str__(text))
    return value


def _plain_destination(value: str | None) -> str | None:
    return str.__str__(value) if isinstance(value, str) else value


@attrs.frozen
class Input:
    """Data the script reads, given among ``arguments`` or in ``inputs=`` of
    :func:`mlboot.submit_script`.

    ``source`` is a local file or folder, ``"azureml://datastores/<name>/paths/<path>"``, an
    ``http(s)://`` URL or a registered dataset (``"azureml:<name>:<version>"``,
    ``"azureml:<name>@latest"``).  ``mode`` is ``"mount"`` (the default: the script reads the
    files where they are, and cannot write to them) or ``"download"`` (copied to the compute
    before the script starts; needed for a URL).  The script gets the path on the compute: as the
    argument's text, and in the environment variable ``MLBOOT_INPUT_<name>``.

    >>> Input("azureml://datastores/training_data/paths/images", mode="download").kind
    'datastore'
    """

    source: str | os.PathLike[str] = attrs.field(
        converter=_plain_source, validator=lambda _, __, v: _check_source(v)
    )
    mode: InputMode = attrs.field(
        default="mount", validator=lambda i, __, v: _check_input_mode(i.source, v)
    )

    @property
    def kind(self) -> InputKind:
        """``"local"``, ``"datastore"``, ``"url"`` or ``"dataset"``: what ``source`` names."""
        return input_kind(self.source)


@attrs.frozen
class Output:
    """Data the script writes, given among ``arguments`` or in ``outputs=`` of
    :func:`mlboot.submit_script`.

    ``destination`` is ``"azureml://datastores/<name>/paths/<path>"``, whose path may hold
    ``{run-id}`` and ``{output-name}``; ``None`` (the default) is a folder under the run:
    ``dataset/<run id>/<output name>`` in the default datastore, as azureml-core places it.
    ``mode`` is ``"upload"`` (the default: the script writes to a local folder, copied to the
    destination when it ends) or ``"mount"`` (written in place as the script goes).  The script
    gets the folder to write to: as the argument's text, and in the environment variable
    ``MLBOOT_OUTPUT_<name>``.

    >>> Output("azureml://datastores/workspaceblobstore/paths/models/{run-id}").mode
    'upload'
    """

    destination: str | None = attrs.field(
        default=None,
        converter=_plain_destination,
        validator=lambda _, __, v: _check_destination(v),
    )
    mode: OutputMode = attrs.field(
        default="upload", validator=lambda _, __, v: _check_output_mode(v)
    )


def check_input(field: str, value: object) -> Input:
    """A plain :class:`Input` equal to ``value``, if it is one whose fields still pass (built,
    evolved or changed in place, a subclass's included)."""
    if not isinstance(value, Input):
        raise InvalidInputError(
            field,
            value,
            "it must be an mlboot.Input",
            f"wrap the data's location in one, e.g. mlboot.Input({_example_source(value)!r})",
        )
    _check_source(value.source, field=f"{field}.source")
    _check_input_mode(value.source, value.mode, field=f"{field}.mode")
    return Input(value.source, value.mode)


def check_output(field: str, value: object) -> Output:
    """A plain :class:`Output` equal to ``value``, if it is one whose fields still pass."""
    if not isinstance(value, Output):
        raise InvalidInputError(
            field,
            value,
            "it must be an mlboot.Output",
            "pass e.g. mlboot.Output() for a folder under the run, or "
            "mlboot.Output('azureml://datastores/<name>/paths/<path>')",
        )
    _check_destination(value.destination, field=f"{field}.destination")
    _check_output_mode(value.mode, field=f"{field}.mode")
    return Output(value.destination, value.mode)


def input_kind(source: str | os.PathLike[str]) -> InputKind:
    """What a checked ``source`` names: a URI's scheme tells it, anything else is a local path."""
    if not isinstance(source, str):
        return "local"
    if source.startswith("azureml://"):
        return "datastore"
    if source.startswith("azureml:"):
        return "dataset"
    if source.startswith(("http://", "https://")):
        return "url"
    return "local"


def parse_datastore_uri(uri: str) -> tuple[str, str]:
    """``(datastore, path)`` of a checked ``azureml://datastores/<name>/paths/<path>``.

    ``path`` is as written (a checked one has no leading ``/``): a trailing ``/`` is kept, since
    it says the path is a folder (azureml-core downloads a path as a prefix of blob names, so
    ``images`` would also bring ``images.csv``); ``""`` is the datastore's root.
    """
    match = _DATASTORE_URI.fullmatch(uri)
    if match is None:  # pragma: no cover - only checked URIs reach here
        raise ValueError(uri)
    return match.group(1), match.group(2)


def datastore_uri(datastore: str, path: str) -> str:
    """The ``azureml://`` URI of ``path`` in ``datastore``."""
    return f"azureml://datastores/{datastore}/paths/{path}"


def parse_dataset(source: str) -> tuple[str, str | None]:
    """``(name, version)`` of a checked ``azureml:<name>:<version>`` (``None``: ``@latest``)."""
    rest = source.removeprefix("azureml:")
    if rest.endswith("@latest"):
        return rest.removesuffix("@latest"), None
    name, _, version = rest.rpartition(":")
    return name, version


# -- checks ----------------------------------------------------------------------------------------


def _check_source(value: object, *, field: str = "source") -> None:
    if isinstance(value, str):
        scheme = _SCHEME.match(value)
        # "C:" and "C:\data" are Windows drives, not schemes: a scheme has two letters or more.
        if scheme is not None and len(scheme.group(1)) > 1:
            _check_uri_source(field, value, scheme.group(1).lower())
            return
    path_text(field, value, what="local path", fix=_INPUT_SOURCE_FIX)


def _masked(value: str) -> str:
    """``value`` with a URL's user name, password and SAS signature left out, for messages."""
    return _SIGNATURE.sub(r"\1<signature>", _USERINFO.sub(r"\1<credentials>@", value))


def _check_uri_source(field: str, value: str, scheme: str) -> None:
    if value.startswith("azureml://"):
        _check_datastore_uri(field, value, output=False)
    elif value.startswith("azureml:"):
        _check_dataset(field, value)
    elif scheme in {"http", "https"} and value.startswith(("http://", "https://")):
        _check_url(field, value)
    elif scheme in {"http", "https", "azureml"}:
        raise InvalidInputError(
            field,
            _masked(value),
            f"a {scheme}: URI is read only in lower case and in the forms http(s)://<host>/..., "
            f"{_DATASTORE_URI_FORM} or azureml:<dataset>:<version>",
            _INPUT_SOURCE_FIX,
        )
    else:
        raise InvalidInputError(
            field,
            _masked(value),
            f"an input's source is a local path, {_DATASTORE_URI_FORM}, an http(s):// URL or "
            f"azureml:<dataset>:<version>; {scheme}: URIs are not read",
            "register the storage as a datastore of the workspace and pass "
            "'azureml://datastores/<name>/paths/<path>'; a local path whose name holds ':' "
            "can be passed as a pathlib.Path",
        )


def _check_datastore_uri(field: str, value: str, *, output: bool) -> None:
    what = "an output's destination" if output else "a datastore input"
    form_fix = f"write it as '{_DATASTORE_URI_FORM}', e.g. 'azureml://datastores/workspaceblobstore/paths/data/train'"
    match = _DATASTORE_URI.fullmatch(value)
    if match is None:
        raise InvalidInputError(
            field, value, f"{what} must have the form {_DATASTORE_URI_FORM}", form_fix
        )
    name, path = match.groups()
    if not _DATASTORE_NAME.fullmatch(name):
        raise InvalidInputError(
            field,
            value,
            f"its datastore name {name!r} breaks the rule: {DATASTORE_NAME_RULE}",
            "pass the datastore's name as the workspace lists it (Azure ML studio, Data, "
            "Datastores), e.g. 'workspaceblobstore'",
        )
    _check_datastore_path(field, value, path, output=output)


def _check_datastore_path(field: str, value: str, path: str, *, output: bool) -> None:
    fix = "write the path in the datastore with '/' between folders, e.g. 'data/train'"
    if any(_is_control(c) or unicodedata.category(c) == "Cs" for c in path) or "\\" in path:
        raise InvalidInputError(
            field,
            value,
            "a datastore path cannot hold control characters, lone surrogates or '\\'",
            fix,
        )
    if path.startswith("/") or "//" in path:
        raise InvalidInputError(
            field,
            value,
            "a datastore path cannot start with '/' or hold an empty folder name ('//')",
            fix,
        )
    if len(path) > _MAX_DATASTORE_PATH or any(
        len(part.encode("utf-8")) > MAX_FILE_NAME_BYTES for part in path.split("/")
    ):
        raise InvalidInputError(
            field,
            value,
            f"a datastore path is at most {_MAX_DATASTORE_PATH:,} characters, with no folder or "
            f"file name over {MAX_FILE_NAME_BYTES} bytes (Azure Blob Storage's limit on a blob's "
            "name, and a file system's on one name)",
            "shorten the path or its longest name",
        )
    if any(part in {".", ".."} for part in path.split("/")):
        raise InvalidInputError(
            field,
            value,
            "a datastore path cannot hold '.' or '..' (it would name data outside the path as "
            "written)",
            fix,
        )
    placeholders = _PLACEHOLDER.findall(path)
    if output:
        unknown = [p for p in placeholders if p not in OUTPUT_PLACEHOLDERS]
        if (
            unknown
            or _PLACEHOLDER.sub("", path).count("{")
            or _PLACEHOLDER.sub("", path).count("}")
        ):
            raise InvalidInputError(
                field,
                value,
                "an output's path may hold only the placeholders "
                f"{' and '.join(OUTPUT_PLACEHOLDERS)}"
                f"{f' (found {unknown[0]})' if unknown else ' (found an unmatched brace)'}",
                "use {run-id} and {output-name}, spelled so, or leave braces out of the path",
            )
        if not path.strip("/"):
            raise InvalidInputError(
                field,
                value,
                "an output needs a path below the datastore's root (the run's files would be "
                "mixed with everything else there)",
                "add a folder, e.g. 'azureml://datastores/workspaceblobstore/paths/models/{run-id}'",
            )
    elif any(p in OUTPUT_PLACEHOLDERS for p in placeholders):
        raise InvalidInputError(
            field,
            value,
            f"an input's path names data that exists already, so it cannot hold "
            f"{' or '.join(OUTPUT_PLACEHOLDERS)} (only an output's can)",
            "write the run id or name the path has, e.g. 'models/<run id>'",
        )


def _check_dataset(field: str, value: str) -> None:
    rest = value.removeprefix("azureml:")
    fix = (
        "write 'azureml:<dataset>:<version>' (e.g. 'azureml:images:3') or "
        "'azureml:<dataset>@latest'"
    )
    if rest.endswith("@latest"):
        name, version = rest.removesuffix("@latest"), None
    else:
        name, colon, version = rest.rpartition(":")
        if not colon:
            raise InvalidInputError(
                field,
                value,
                "a registered dataset is named with its version, or @latest",
                fix,
            )
    if not _DATASET_NAME.fullmatch(name):
        raise InvalidInputError(
            field,
            value,
            f"its dataset name {name!r} must be 1 to 255 ASCII letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            fix,
        )
    if version is not None and version.lower() == "latest":
        raise InvalidInputError(
            field,
            value,
            "the latest version is written @latest: ':latest' would name a version called 'latest'",
            f"write 'azureml:{name}@latest'",
        )
    if version is not None and not _DATASET_VERSION.fullmatch(version):
        raise InvalidInputError(
            field,
            value,
            f"its version {version!r} must be 1 to 30 ASCII letters, digits, '_', '.' or '-' "
            "(e.g. '3')",
            fix,
        )


def _check_url(field: str, value: str) -> None:
    fix = "pass the address as a browser shows it, e.g. 'https://example.com/data/train.csv'"
    shown = _masked(value)  # every message below: a password never reaches a log
    if any(c == " " or _is_control(c) for c in value):
        raise InvalidInputError(
            field,
            shown,
            "a URL cannot hold spaces or control characters",
            fix + " (%20 for a space)",
        )
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        reason = _masked(str(exc)) if shown == value else "its host or port cannot be read"
        raise InvalidInputError(field, shown, f"it is not a valid URL ({reason})", fix) from None
    if not parts.hostname:
        raise InvalidInputError(field, shown, "a URL must name a host", fix)
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            field,
            shown,
            "a URL with credentials would be stored with the run and shown in its definition",
            "make the file readable without them (e.g. a SAS URL of a blob, or a datastore)",
        )


def _check_input_mode(source: object, value: object, *, field: str = "mode") -> None:
    if value not in _INPUT_MODES:
        raise InvalidInputError(
            field,
            value,
            "an input's mode is 'mount' (read in place) or 'download' (copied first)",
            "pass mode='mount' or mode='download'",
        )
    if value == "mount" and isinstance(source, str) and input_kind(source) == "url":
        raise InvalidInputError(
            field,
            value,
            "a URL cannot be mounted, only downloaded",
            "pass mode='download'",
        )


def _check_destination(value: object, *, field: str = "destination") -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInputError(
            field,
            value,
            f"an output's destination is a str, {_DATASTORE_URI_FORM}, or None for a folder "
            "under the run",
            "pass e.g. 'azureml://datastores/workspaceblobstore/paths/models/{run-id}'",
        )
    _check_datastore_uri(field, value, output=True)


def _check_output_mode(value: object, *, field: str = "mode") -> None:
    if value not in _OUTPUT_MODES:
        raise InvalidInputError(
            field,
            value,
            "an output's mode is 'upload' (copied when the script ends) or 'mount' (written in "
            "place)",
            "pass mode='upload' or mode='mount'",
        )


def _is_control(character: str) -> bool:
    """A C0 control character or DEL: never part of a path or URL one means to write."""
    return unicodedata.category(character) == "Cc"


def _example_source(value: object) -> str:
    if isinstance(value, str | os.PathLike):
        try:
            return str(os.fspath(value))
        except TypeError:  # pragma: no cover - os.PathLike with a broken __fspath__
            pass
    return "data/train"
