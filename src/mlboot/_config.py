"""Finding and reading the workspace configuration, exactly where azureml-core looks for it."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from mlboot._validate import absolute_path, probe
from mlboot._warnings import warn
from mlboot.exceptions import ConfigError, ConfigNotFoundError

__all__ = ["ENV_VARIABLES", "WorkspaceConfig", "candidate_paths", "find_config_file", "load_config"]

# The order azureml-core's Workspace.from_config uses: every (folder, file) pair walks up the
# parents before the next pair is tried, so `.azureml/config.json` in ANY ancestor wins over a
# plain `./config.json`.
_CONFIG_DIRS: tuple[str | None, ...] = (".azureml", "aml_config", None)
_CONFIG_FILES = ("config.json", "project.json")

ENV_VARIABLES: Mapping[str, str] = {
    "subscription_id": "MLBOOT_SUBSCRIPTION_ID",
    "resource_group": "MLBOOT_RESOURCE_GROUP",
    "workspace_name": "MLBOOT_WORKSPACE_NAME",
    "tenant_id": "MLBOOT_TENANT_ID",
    "cloud": "MLBOOT_CLOUD",
    "backend": "MLBOOT_BACKEND",
}
"""Config key to the environment variable that supplies or overrides it."""

KNOWN_KEYS: tuple[str, ...] = (
    "subscription_id",
    "resource_group",
    "workspace_name",
    "Scope",
    "tenant_id",
    "cloud",
    "mlboot_backend",
)
"""The config file keys mlboot reads."""

# Keys that Azure ML's own tools write (the studio's download, `az ml folder attach`, SDK v2):
# read by nobody here, but expected in a real file, so they never warn.
_TOOL_KEYS = ("Id", "friendly_name", "location", "workspace_id", "mlflow_tracking_uri")

CLOUDS = ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment")
BACKENDS = ("azureml", "azureml-v2", "local")

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# Azure resource group names: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'.
_RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]\Z", re.ASCII)
# Azure ML workspace names: 3-33 characters, letters, digits, '-' and '_', starting alphanumeric.
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,32}\Z")
_SCOPE = re.compile(
    r"/subscriptions/(?P<subscription_id>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<workspace_name>[^/]+)/?\Z",
    re.IGNORECASE,
)


@attrs.frozen
class WorkspaceConfig:
    """A validated workspace configuration, and the file it came from (``None``: environment)."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    tenant_id: str | None = None
    cloud: str = "AzureCloud"
    backend: str | None = None
    source: Path | None = None


def candidate_paths(start: Path) -> list[Path]:
    """Every path ``Workspace.from_config`` checks from folder ``start``, in its order."""
    candidates: list[Path] = []
    for folder in _CONFIG_DIRS:
        for file_name in _CONFIG_FILES:
            relative = file_name if folder is None else os.path.join(folder, file_name)
            # Mirror the SDK's walk: an absolute start, then realpath() of each parent.
            current = os.path.abspath(os.path.expanduser(start))
            root = os.path.abspath(os.sep)
            while True:
                candidates.append(Path(current, relative))
                if current == root:
                    break
                current = os.path.realpath(os.path.join(current, os.path.pardir))
    return candidates


_MAX_CONFIG_BYTES = 1 << 20
"""Larger files are refused unread: a workspace config file is a few hundred bytes."""


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Find the config file as ``azureml.core.Workspace.from_config(path)`` would.

    ``path`` may be a file (used as is) or an existing folder to start the upward search from
    (default: the current one).  A ``path`` that does not exist is never searched from: it is a
    :class:`~mlboot.exceptions.ConfigNotFoundError` naming it, so a mistyped file name cannot
    select a ``config.json`` found elsewhere.  When the search finds nothing, the error lists
    every place searched.
    """
    text, start = _start(path)
    if _is_file(start):
        return start
    if path is not None and not probe(start)[2]:
        raise ConfigNotFoundError(
            f"workspace config file {text!r} does not exist (looked for {str(start)!r}); a "
            "path that is not an existing folder is not searched from, so that a mistyped name "
            "never selects another workspace's config. Fix: correct the path, pass the folder "
            "that holds config.json to search upwards from it, or leave the path out to search "
            "from the current folder.",
            searched=[str(start)],
        )
    searched = candidate_paths(start)
    for candidate in searched:
        if _is_file(candidate):
            return candidate
    listing = "\n  ".join(str(p) for p in searched)
    raise ConfigNotFoundError(
        f"no workspace config file found from {str(start)!r}. Searched, in order:\n  {listing}\n"
        "Fix: download config.json from your workspace's page in Azure ML studio into "
        "this folder or .azureml/, pass its path, or set "
        f"{ENV_VARIABLES['subscription_id']}, {ENV_VARIABLES['resource_group']} and "
        f"{ENV_VARIABLES['workspace_name']}.",
        searched=[str(p) for p in searched],
    )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a path the system refuses (too long once made absolute): no file there
        return False


def _start(path: object) -> tuple[str, Path]:
    return absolute_path(
        "path",
        "." if path is None else path,
        expand_user=True,
        what="path to a config file or a folder",
        fix="pass the path as a str or pathlib.Path, or leave it out to search from the current "
        "folder",
    )


def _read_json(file: Path) -> dict[str, object]:
    try:
        size = file.stat().st_size
        if size > _MAX_CONFIG_BYTES:
            raise ConfigError(
                f"workspace config file {str(file)!r} is {size:,} bytes; a config file is a few "
                f"hundred bytes, and mlboot reads at most {_MAX_CONFIG_BYTES:,}. Fix: point at "
                "the config.json downloaded from your workspace's page in Azure ML studio."
            )
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            f"cannot read workspace config file {str(file)!r}: {exc.strerror or exc}. "
            "Fix: check that the file exists and is readable."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"workspace config file {str(file)!r} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}). Fix: save it as UTF-8 JSON."
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"workspace config file {str(file)!r} is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}. Fix: correct the JSON there (download a fresh "
            "config.json from Azure ML studio if unsure)."
        ) from exc
    except RecursionError as exc:
        raise ConfigError(
            f"workspace config file {str(file)!r} nests JSON arrays or objects too deeply to "
            "read. Fix: it must be one flat object with subscription_id, resource_group and "
            "workspace_name (download a fresh config.json from Azure ML studio)."
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"workspace config file {str(file)!r} holds a JSON {type(data).__name__}, not an "
            "object. Fix: it must be an object with subscription_id, resource_group and "
            "workspace_name."
        )
    return data


def _text(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: {key}={value!r} must be a string, not {type(value).__name__}. "
            f"Fix: write it as a JSON string."
        )
    return value.strip()


def _values_from_file(file: Path) -> dict[str, str]:
    data = _read_json(file)
    where = f"workspace config file {str(file)!r}"
    _warn_unknown_keys(data, where)
    values: dict[str, str] = {}
    scope = data.get("Scope")
    if scope:
        match = _SCOPE.match(_text(where, "Scope", scope))
        if match is None:
            raise ConfigError(
                f"{where}: Scope={scope!r} is not a workspace ARM id. Rule: /subscriptions/"
                "<id>/resourceGroups/<group>/providers/Microsoft.MachineLearningServices/"
                "workspaces/<name>. Fix: copy the workspace's resource id from the Azure portal, "
                "or use subscription_id, resource_group and workspace_name instead."
            )
        values.update(match.groupdict())
    else:
        for key in ("subscription_id", "resource_group", "workspace_name"):
            if key in data and data[key] is not None:
                values[key] = _text(where, key, data[key])
    for key, config_key in (
        ("tenant_id", "tenant_id"),
        ("cloud", "cloud"),
        ("backend", "mlboot_backend"),
    ):
        if data.get(config_key) is not None:
            values[key] = _text(where, config_key, data[config_key])
    return values


def _warn_unknown_keys(data: Mapping[str, object], where: str) -> None:
    for key in data:
        if key in KNOWN_KEYS or key in _TOOL_KEYS:
            continue
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        warn(
            f"{where}: unknown key {key!r} is ignored; {hint}the keys mlboot reads are "
            f"{', '.join(KNOWN_KEYS)}. Fix: correct or remove the key."
        )


def _validate(values: Mapping[str, str], where: str) -> None:
    missing = [
        key
        for key in ("subscription_id", "resource_group", "workspace_name")
        if not values.get(key)
    ]
    if missing:
        names = ", ".join(missing)
        variables = ", ".join(ENV_VARIABLES[key] for key in missing)
        raise ConfigError(
            f"{where}: {names} {'is' if len(missing) == 1 else 'are'} missing or empty. "
            f"Fix: add {'it' if len(missing) == 1 else 'them'} to the config file, "
            f"or set {variables}."
        )
    rules = (
        ("subscription_id", _GUID, "a GUID such as 00000000-0000-0000-0000-000000000000"),
        ("tenant_id", _GUID, "a GUID (the directory id of your Azure AD tenant)"),
        (
            "resource_group",
            _RESOURCE_GROUP,
            "1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
        ),
        (
            "workspace_name",
            _WORKSPACE,
            "3-33 letters, digits, '-' or '_', starting with a letter or digit",
        ),
    )
    for key, pattern, rule in rules:
        value = values.get(key)
        if value is not None and not pattern.match(value):
            raise ConfigError(
                f"{where}: {key}={value!r} is invalid: it must be {rule}. Fix: copy the value "
                f"from the workspace's page in Azure ML studio, or set {ENV_VARIABLES[key]}."
            )
    cloud = values.get("cloud")
    if cloud is not None and cloud not in CLOUDS:
        raise ConfigError(
            f"{where}: cloud={cloud!r} is not a known Azure cloud; it must be one of "
            f"{', '.join(CLOUDS)}. Fix: correct it, or remove it to use AzureCloud."
        )
    backend = values.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(
            f"{where}: backend={backend!r} is not supported; it must be one of "
            f"{', '.join(BACKENDS)}. Fix: correct {ENV_VARIABLES['backend']} or mlboot_backend."
        )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> WorkspaceConfig:
    """Find, read and validate the workspace configuration; nothing remote happens here.

    Environment variables (:data:`ENV_VARIABLES`) override the file's keys one by one.  When
    they supply the three required keys no file is needed at all, unless ``path`` is given.
    """
    env = os.environ if environ is None else environ
    from_env = {
        key: env[name].strip() for key, name in ENV_VARIABLES.items() if env.get(name, "").strip()
    }
    env_complete = all(
        key in from_env for key in ("subscription_id", "resource_group", "workspace_name")
    )

    source: Path | None = None
    values: dict[str, str] = {}
    if path is not None or not env_complete:
        source = find_config_file(path)
        values = _values_from_file(source)
    from_file_backend = values.get("backend")
    values.update(from_env)
    if from_file_backend is not None:
        # The backend is the one exception to "the environment overrides the file": a project
        # whose config.json says mlboot_backend stays on it, and MLBOOT_BACKEND only fills in.
        values["backend"] = from_file_backend
    where = f"workspace config file {str(source)!r}" if source else "workspace configuration"
    if from_env:
        where += f" (with {', '.join(ENV_VARIABLES[k] for k in from_env)} from the environment)"
    _validate(values, where)
    return WorkspaceConfig(
        subscription_id=values["subscription_id"],
        resource_group=values["resource_group"],
        workspace_name=values["workspace_name"],
        tenant_id=values.get("tenant_id"),
        cloud=values.get("cloud", "AzureCloud"),
        backend=values.get("backend"),
        source=source,
    )
