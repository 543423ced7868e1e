"""Submit a training script as an experiment run: :func:`submit_script`.

Every argument is checked before anything remote happens, the snapshot included
(:func:`mlboot._snapshot.plan_snapshot`); only then does one request reach the backend.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Protocol, TypeAlias

import attrs

from mlboot._backends._seam import InputKindCheck, RunRequest
from mlboot._data import Input, Output
from mlboot._data_submit import (
    LocalInput,
    NamedData,
    name_data,
    resolve_data,
    walk_local_input,
    warn_inside_source,
)
from mlboot._deadline import bounded
from mlboot._distribution import Distribution, MpiDistribution, PyTorchDistribution
from mlboot._environment import Environment, validate_environment
from mlboot._log import logger
from mlboot._retry import call_with_retries
from mlboot._run import Run, run_from_details
from mlboot._snapshot import SnapshotPlan, plan_snapshot
from mlboot._validate import (
    COMPUTE_NAME,
    COMPUTE_NAME_RULE,
    absolute_path,
    check_int,
    path_text,
    positive_seconds,
    probe,
)
from mlboot._workspace import Workspace, check_workspace
from mlboot.exceptions import InvalidInputError

__all__ = [
    "SUBMIT_TIMEOUT_SECONDS",
    "Argument",
    "NamedCompute",
    "check_experiment_name",
    "stringify_arguments",
    "submit_script",
]


# Stricter than azureml-core's ^[a-zA-Z0-9][\w\-]{0,254}$: \w there accepts any Unicode letter
# and $ a trailing newline.  fullmatch plus ASCII classes rule both out.
_EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}", re.ASCII)
_EXPERIMENT_RULE = (
    "an experiment name must be 1 to 255 ASCII letters, digits, '_' or '-', starting with a "
    "letter or digit"
)

SUBMIT_TIMEOUT_SECONDS = 600.0
"""The default bound of :func:`submit_script`: twice azureml-core's 300 s for a snapshot upload."""

Argument: TypeAlias = "str | int | float | os.PathLike[str] | Input | Output"
"""One command-line argument for the script; it reaches the script as ``str(value)``, an
:class:`~mlboot.Input` or :class:`~mlboot.Output` as the path of its data on the compute."""


class NamedCompute(Protocol):
    """Anything with a compute target's ``name``, such as :class:`mlboot.ComputeTarget`."""

    @property
    def name(self) -> str: ...


def submit_script(
    workspace: Workspace,
    script: str | os.PathLike[str],
    *,
    compute: NamedCompute | str,
    experiment: str,
    source_directory: str | os.PathLike[str] = ".",
    arguments: Iterable[Argument] = (),
    environment: Environment | None = None,
    distribution: Distribution | None = None,
    node_count: int = 1,
    tags: Mapping[str, str] | None = None,
    max_run_duration: float | dt.timedelta | None = None,
    timeout: float | dt.timedelta = SUBMIT_TIMEOUT_SECONDS,
    inputs: Mapping[str, Input] | None = None,
    outputs: Mapping[str, Output] | None = None,
) -> Run:
    """Submit ``script`` to run on ``compute`` as a run of ``experiment``; return its handle.

    ``script`` is a path relative to ``source_directory`` (as in azureml-core), or a path inside
    it; the whole ``source_directory`` is uploaded as the run's snapshot.  ``compute`` is a
    :class:`mlboot.ComputeTarget` or a compute target's name.  ``arguments`` are passed to the
    script in order, each as ``str(value)``.  ``environment`` is an :class:`mlboot.Environment`;
    without one, Azure ML runs the script in azureml-core's default environment (its
    ``openmpi4.1.0-ubuntu22.04`` CPU image with Python 3.8 and ``azureml-defaults``).
    ``distribution`` (:class:`mlboot.PyTorchDistribution` or :class:`mlboot.MpiDistribution`)
    spreads the run over ``node_count`` nodes; ``node_count`` above 1 needs one.  ``tags`` are
    set on the run.  ``max_run_duration`` (seconds, or a :class:`~datetime.timedelta`) makes
    Azure ML cancel a run that takes longer; ``None`` keeps the service's limit of 30 days.

    Data: an :class:`mlboot.Input` or :class:`mlboot.Output` among ``arguments`` reaches the
    script as the path of its data on the compute (named ``input_0``, ``input_1``... and
    ``output_0``... by position).  ``inputs`` and ``outputs`` name more: the script finds each
    path in the environment variable ``MLBOOT_INPUT_<name>`` / ``MLBOOT_OUTPUT_<name>``, and an
    argument may hold ``${{inputs.<name>}}`` / ``${{outputs.<name>}}``, replaced by the path.  A
    local file or folder is uploaded to the workspace's default datastore first, named by its
    content (an unchanged one is not uploaded again); every datastore and registered dataset
    named is looked up before the run is submitted.  See :doc:`/howto/data`.

    Raises :class:`~mlboot.exceptions.InvalidInputError` for a bad argument, and
    :class:`~mlboot.exceptions.SnapshotTooLargeError` for a source folder over the snapshot
    limits, and :class:`~mlboot.exceptions.SnapshotLinkError` for a symbolic link in it that
    leads out of it, before anything remote happens.  Returns once the service has accepted the run;
    call :meth:`Run.wait` to wait for it.

    ``timeout`` (seconds, or a :class:`~datetime.timedelta`; default 600) bounds the whole
    call, the snapshot upload and azureml-core's own retries included, whatever the service
    answers: a retry the SDK would make after the deadline is not waited for, and
    :class:`~mlboot.exceptions.WaitTimeoutError` is raised from the service's last error.  The
    default is twice azureml-core's own 300 s limit for uploading a snapshot.  A submit that
    timed out may still have created the run, if the service had accepted it (look in the
    experiment before submitting again).
    """
    check_workspace(workspace)
    experiment_name = check_experiment_name(experiment)
    compute_name = _compute_name(compute, workspace)
    data = name_data(_argument_values(arguments), inputs, outputs)
    tag_map = _check_tags(tags)
    nodes = _check_node_count(node_count)
    _check_distribution(distribution, nodes)
    _check_environment(environment)
    duration = max_run_duration_seconds(max_run_duration)
    limit = positive_seconds(
        "timeout",
        timeout,
        fix="pass e.g. timeout=600 (the default), or a longer one for a slow upload",
    )
    root, script_path = _check_script(source_directory, script)
    plan = plan_snapshot(root)
    if script_path not in plan.files:
        raise InvalidInputError(
            "script",
            script_path,
            f"it is left out of the snapshot by {plan.ignore_path}, so the run could not find it",
            f"change {plan.ignore_file} so that it no longer matches {script_path}",
        )
    local = _local_inputs(data, plan)
    request = RunRequest(
        experiment=experiment_name,
        source_directory=root,
        script=script_path,
        compute=compute_name,
        arguments=data.arguments,
        environment=environment,
        distribution=distribution,
        node_count=nodes,
        tags=tag_map,
        max_run_duration_seconds=duration,
        snapshot=plan,  # checked above: the backend sends exactly these files
    )
    backend = workspace.backend
    if isinstance(backend, InputKindCheck):  # what the backend cannot take, before anything remote
        backend.check_input_kinds({name: value.kind for name, value in data.inputs.items()})
    with bounded(
        backend.clock,
        limit,
        what=f"submitting {script_path!r} as a run of experiment {experiment_name!r}",
        limit=f"its time-out (timeout={limit:g} s)",
        fix="try again later (the service was throttling or failing), or pass a longer "
        "timeout; first look in the experiment for a run the service may have accepted.",
    ):
        if environment is not None and environment.kind == "registered":
            _check_registered(workspace, environment)
        if data.inputs or data.outputs:
            data_inputs, data_outputs = resolve_data(backend, workspace.ref, data, local)
            request = attrs.evolve(request, inputs=data_inputs, outputs=data_outputs)
        details = backend.submit_run(workspace.ref, request)
    run = run_from_details(workspace, details)
    logger.info(
        "Submitted %s (%d files, %d bytes) as run %s of experiment %r on %r: %s",
        script_path,
        len(plan.files),
        plan.total_bytes,
        run.id,
        run.experiment,
        compute_name,
        run.portal_url or "no portal URL",
    )
    return run


# -- checks ----------------------------------------------------------------------------------------


def _argument_values(arguments: object) -> list[str | Input | Output]:
    """The arguments as text, but for the inputs and outputs among them (named later)."""
    _check_argument_list(arguments)
    assert isinstance(arguments, Iterable)  # noqa: S101  (checked just above; for the type checker)
    return [
        value if isinstance(value, Input | Output) else _stringify_argument(position, value)
        for position, value in enumerate(arguments)
    ]


def _local_inputs(data: NamedData, plan: SnapshotPlan) -> dict[str, LocalInput]:
    """Every local input walked and checked (no upload yet); a warning for one in the snapshot."""
    local: dict[str, LocalInput] = {}
    for name, value in data.inputs.items():
        if value.kind == "local":
            walked = walk_local_input(f"{data.field(name)}.source", value.source)
            warn_inside_source(walked, plan, value.source)
            local[name] = walked
    return local


def _check_registered(workspace: Workspace, environment: Environment) -> None:
    """Look the registered environment up before submitting, a transient failure retried."""
    backend = workspace.backend
    which = f"version {environment.version}" if environment.version else "the latest version"
    call_with_retries(
        lambda: backend.check_registered_environment(
            workspace.ref, environment.name, environment.version
        ),
        clock=backend.clock,
        what=f"looking up environment {environment.name!r} ({which})",
    )


def check_experiment_name(name: object) -> str:
    """Return ``name`` if it is a valid experiment name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not _EXPERIMENT_NAME.fullmatch(name):
        raise InvalidInputError(
            "experiment",
            name,
            _EXPERIMENT_RULE,
            "pass a name such as 'train-resnet' or 'nightly_eval'",
        )
    return name


def stringify_arguments(arguments: object) -> tuple[str, ...]:
    """The script's arguments as the strings it will receive, in order.

    ``str``, ``int``, ``float`` and path-like values are accepted.  ``bool`` is refused: the
    script would receive ``"True"`` or ``"False"``, which ``argparse`` with ``type=bool``
    reads as true either way, while a ``store_true`` flag takes no value at all.
    """
    _check_argument_list(arguments)
    assert isinstance(arguments, Iterable)  # noqa: S101  (checked just above; for the type checker)
    strings: list[str] = []
    for position, value in enumerate(arguments):
        strings.append(_stringify_argument(position, value))
    return tuple(strings)


def _check_argument_list(arguments: object) -> None:
    if isinstance(arguments, str | bytes | Mapping) or not isinstance(arguments, Iterable):
        raise InvalidInputError(
            "arguments",
            arguments,
            "it must be a list or tuple of arguments, not a single value",
            "pass e.g. ['--epochs', 10, '--lr', 0.001]",
        )
    if isinstance(arguments, AbstractSet):
        raise InvalidInputError(
            "arguments",
            arguments,
            "it must be in order, and a set has none: the script would receive its values in "
            "an order that changes from one run to the next",
            "pass a list or tuple, e.g. ['--epochs', 10, '--lr', 0.001]",
        )


def _stringify_argument(position: int, value: object) -> str:
    field = f"arguments[{position}]"
    if isinstance(value, bool):
        raise InvalidInputError(
            field,
            value,
            "a bool would reach the script as the text 'True' or 'False', which argparse's "
            "type=bool reads as true either way, and a store_true flag takes no value",
            "pass the flag alone (e.g. '--fp16') when it is true and leave it out when it is "
            "false, or pass the text the script expects (e.g. 'true')",
        )
    if isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, int):
        try:
            text = int.__repr__(value)
        except ValueError:  # over Python's limit on the digits of an int turned into text
            raise InvalidInputError(
                field, "an int of over 4300 digits", "it is too long to pass as text", "pass a str"
            ) from None
    elif isinstance(value, float):
        text = float.__repr__(value)
    elif isinstance(value, os.PathLike):
        try:
            path = os.fspath(value)
        except Exception as exc:
            raise InvalidInputError(
                field,
                value,
                f"its __fspath__() raised {type(exc).__name__}: {exc}",
                "pass the path as a str or pathlib.Path",
            ) from exc
        if not isinstance(path, str):
            raise InvalidInputError(
                field, value, "a path argument must be a str path", "pass str(path) or a Path"
            )
        text = path
    else:
        raise InvalidInputError(
            field,
            value,
            "each argument must be a str, int, float, path, mlboot.Input or mlboot.Output",
            f"convert it to text yourself, e.g. str(value), use one of those types, or an "
            f"mlboot.Input or mlboot.Output for data "
            f"(got {type(value).__name__})",
        )
    if "\x00" in text:
        raise InvalidInputError(
            field, value, "a command-line argument cannot contain a NUL character", "remove it"
        )
    return text


def _compute_name(compute: object, workspace: Workspace) -> str:
    name = compute if isinstance(compute, str) else getattr(compute, "name", None)
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise InvalidInputError(
            "compute",
            compute,
            "it must be an mlboot.ComputeTarget or a compute target's name (a non-empty str "
            "without surrounding spaces)",
            "pass the value get_or_create_compute_target() returns, or the cluster's name",
        )
    if not COMPUTE_NAME.fullmatch(name):
        raise InvalidInputError(
            "compute",
            name,
            COMPUTE_NAME_RULE,
            "pass the value get_or_create_compute_target() returns, or the name shown in Azure "
            "ML studio",
        )
    owner = getattr(compute, "workspace", None)
    if isinstance(owner, Workspace) and owner.ref != workspace.ref:
        raise InvalidInputError(
            "compute",
            name,
            f"it belongs to {owner.ref}, not to {workspace.ref} where the run is submitted",
            "get the compute target from the same workspace you submit to",
        )
    return name


def _check_tags(tags: object) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInputError(
            "tags", tags, "it must be a mapping of str to str", "pass e.g. {'team': 'vision'}"
        )
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(
                "tags", key, "a tag's name must be a non-empty str", "pass e.g. {'team': 'vision'}"
            )
        if not isinstance(value, str):
            raise InvalidInputError(
                f"tags[{key!r}]",
                value,
                "a tag's value must be a str",
                f"pass str(value), e.g. {{{key!r}: {str(value)!r}}}",
            )
        checked[key] = value
    return checked


def _check_node_count(node_count: object) -> int:
    return check_int("node_count", node_count, minimum=1, fix="pass e.g. node_count=1")


def _check_distribution(distribution: object, node_count: int) -> None:
    if distribution is None:
        if node_count > 1:
            raise InvalidInputError(
                "node_count",
                node_count,
                "a run on more than one node needs a distribution; without one every node "
                "would run the script on its own, unaware of the others",
                "pass distribution=mlboot.PyTorchDistribution(process_count_per_node=...) or "
                "mlboot.MpiDistribution(...), or node_count=1",
            )
        return
    if not isinstance(distribution, PyTorchDistribution | MpiDistribution):
        raise InvalidInputError(
            "distribution",
            distribution,
            "it must be an mlboot.PyTorchDistribution or an mlboot.MpiDistribution",
            "pass e.g. mlboot.PyTorchDistribution(process_count_per_node=4)",
        )


def _check_environment(environment: object) -> None:
    if environment is not None and not isinstance(environment, Environment):
        raise InvalidInputError(
            "environment",
            environment,
            "it must be an mlboot.Environment, or None for azureml-core's default environment",
            "build one with mlboot.Environment.from_pip_requirements(...), "
            "from_conda_specification(...), from_docker_image(...) or from_registered(...)",
        )
    if environment is not None:
        # A value built directly, or changed after it was built, is checked here rather than
        # failing later where the run is prepared.
        validate_environment(environment)


def max_run_duration_seconds(value: object) -> int | None:
    """Whole seconds for ``max_run_duration``, rounded up (a limit is never cut short)."""
    if value is None:
        return None
    seconds = positive_seconds(
        "max_run_duration",
        value,
        fix="pass e.g. datetime.timedelta(hours=12) or 43200, or None for the service's 30 days",
        or_none=True,
    )
    return math.ceil(seconds)


def _check_script(source_directory: object, script: object) -> tuple[Path, str]:
    """The source folder (absolute, links kept) and the script's POSIX path inside it."""
    root = _check_source_directory(source_directory)
    fix = "pass the script's path relative to source_directory, e.g. 'train.py'"
    raw = path_text("script", script, fix=fix)
    if not raw.strip():
        raise InvalidInputError("script", script, "it must be a non-empty path", fix)
    # normpath folds '..' the way the path reads; the link check below catches the rest.
    candidate = Path(os.path.normpath(root / raw))
    try:
        relative = candidate.relative_to(root)
    except ValueError:
        raise InvalidInputError(
            "script",
            raw,
            f"it must be inside source_directory ({root})",
            "pass a path relative to source_directory, or move the script into it (only "
            "source_directory is uploaded)",
        ) from None
    try:
        real_root = root.resolve()
        real_script = candidate.resolve()
        is_file, exists = candidate.is_file(), candidate.exists()
    except OSError as exc:  # e.g. a path the system finds too long once joined to the folder
        raise InvalidInputError(
            "script", raw, f"the system refuses the path {candidate} ({exc.strerror or exc})", fix
        ) from exc
    if not real_script.is_relative_to(real_root):
        raise InvalidInputError(
            "script",
            raw,
            f"it is a symbolic link (or lies below one) that leads out of source_directory, to "
            f"{real_script}",
            "copy the script into source_directory instead of linking to it",
        )
    if not is_file:
        what = "is not a file" if exists else "does not exist"
        raise InvalidInputError(
            "script",
            raw,
            f"it {what} (looked for {candidate}; the script's path is relative to "
            f"source_directory, {root})",
            _script_hint(root, raw),
        )
    return root, relative.as_posix()


_HINT_FOLDERS_WALKED = 2000
"""The search for a script of the same name stops after this many folders: a hint, not a scan."""
_HINT_PATHS = 3


def _script_hint(root: Path, raw: str) -> str:
    """A fix that names only paths that exist: each one would work as ``script`` as it is."""
    name = Path(raw).name
    found: list[str] = []
    # The path as given, read from the current folder, may already be inside source_directory
    # (script='src/train.py' with source_directory='src'): its path from the root then works.
    from_here = Path(os.path.abspath(raw))  # noqa: PTH100  (links are kept, like the root)
    if from_here.is_file() and from_here.is_relative_to(root):
        found.append(from_here.relative_to(root).as_posix())
    for walked, (folder, folders, files) in enumerate(os.walk(root), start=1):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f != "__pycache__")
        if name in files:
            path = (Path(folder) / name).relative_to(root).as_posix()
            if path not in found:
                found.append(path)
        if len(found) >= _HINT_PATHS or walked >= _HINT_FOLDERS_WALKED:
            break
    if found:
        listing = " or ".join(repr(path) for path in found[:3])
        return f"pass script={listing}, the path inside source_directory"
    return (
        f"pass the script's path relative to source_directory ({root}), or pass the folder "
        "that holds the script as source_directory"
    )


def _check_source_directory(source_directory: object) -> Path:
    raw, root = absolute_path(
        "source_directory",
        source_directory,
        what="path to a folder",
        fix="pass the folder that holds your training code, e.g. '.' or 'src'",
    )
    exists, _, is_dir = probe(root)
    if not is_dir:
        what = "is not a folder" if exists else "does not exist"
        raise InvalidInputError(
            "source_directory",
            raw,
            f"it {what} (looked for {root})",
            f"pass the folder that holds your training code; relative paths start from "
            f"{Path.cwd()}",
        )
    return root
