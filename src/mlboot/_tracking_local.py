"""What a local run's script logs, however it logs it, kept in an MLflow file store.

A local workspace holds an MLflow *file store* in ``<root>/mlruns/``, and every local run is an
MLflow run there, created by mlboot when the run is submitted (this module writes MLflow's files
itself: the submitting side never imports MLflow).  The script gets the variables Azure ML gives
every job for the same purpose, so that MLflow logs into that run with no change to the script:

- ``MLFLOW_TRACKING_URI`` = ``file://<root>/mlruns``, ``MLFLOW_EXPERIMENT_ID`` and
  ``MLFLOW_RUN_ID`` (the mlboot run id, which MLflow's ``start_run`` resumes);
- ``MLFLOW_ALLOW_FILE_STORE=true``: MLflow 3 refuses file stores without it.

Why a file store, not a tracking server or a database: nothing has to be started, kept alive or
migrated for a run, several runs (and processes of one run) can log at once (MLflow appends a
line per value), the files can be read without MLflow, and ``mlflow ui --backend-store-uri
file://<root>/mlruns`` shows every local run.  MLflow keeps file stores in maintenance mode,
which is all they need to be for this.

The script's other ways of logging land in the same run:

- :func:`mlboot.log_metric` appends to the run's ``metrics.jsonl`` (which keeps str values,
  steps left out and exact times) and copies every number into the MLflow run;
- azureml-core's ``Run.get_context()`` inside a local run is an offline run; the hook in
  ``mlboot/_shim/sitecustomize.py`` makes its ``log``, ``log_list``, ``log_row``,
  ``log_table``, ``tag``, ``set_tags`` and ``upload_file(s)`` record here (see
  :func:`patch_offline_run`).

- MLflow's own metric calls write to the file store, which the same hook makes note each value
  in ``metrics.jsonl`` too (see :func:`patch_mlflow_file_store`): the store keeps one file per
  metric with millisecond times, which would lose the order of values logged within one
  millisecond.

:func:`read_records` merges ``metrics.jsonl`` and the MLflow run's metrics into one list in
logging order: the journal's order, and MLflow's time for values only the store has; each value
with its name, value and step exactly as recorded (NaN and infinities as floats).

Like :mod:`mlboot._local_supervisor`, which calls :func:`finish_run`, this module imports only
the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "STORE_FOLDER",
    "TRACKING_FILE",
    "Record",
    "append_metric",
    "artifacts_folder",
    "create_run",
    "experiment_id",
    "finish_run",
    "read_records",
    "store_uri",
    "tracking_variables",
]

STORE_FOLDER = "mlruns"
"""The MLflow file store in a local workspace folder."""

TRACKING_FILE = "tracking.json"
"""In a run's folder: where its MLflow run is (written on submit)."""

METRICS_FILE = "metrics.jsonl"  # mlboot._script_api.METRICS_FILE, which imports attrs
OUTPUTS_FOLDER = "outputs"
ARTIFACTS_FOLDER = "artifacts"
"""In the MLflow run's folder: its artifacts (``mlflow.log_artifact``, ``upload_file``)."""

# MLflow's RunStatus numbers, as its file store writes them in meta.yaml.
_MLFLOW_STATUS = {"Running": 1, "Completed": 3, "Failed": 4, "Canceled": 5}
_MLFLOW_NAME = re.compile(r"[\w.\- :/]+\Z")
_MLFLOW_KEY_LIMIT = 250  # MLflow refuses longer metric, param and tag keys
_FILE_NAME_BYTES = 255  # the longest file name the file systems take: a key part is a file

Record = tuple[str, "float | int | str", "int | None", float]
"""One logged value: name, value, step (``None``: none given), time in seconds since the epoch."""


def store_uri(root: Path) -> str:
    """The MLflow tracking URI of a local workspace's runs."""
    return (root / STORE_FOLDER).absolute().as_uri()


def experiment_id(experiment: str) -> str:
    """The MLflow experiment id of an mlboot experiment: the same in every process, a number.

    A hash of the name, so that concurrent submitters agree without a lock.
    """
    return str(int(hashlib.sha256(experiment.encode()).hexdigest()[:15], 16))


def _yaml(fields: Mapping[str, object]) -> str:
    # JSON scalars are YAML scalars; MLflow reads these files with yaml.safe_load.
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in sorted(fields.items()))


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _safe_key(name: str) -> bool:
    """Whether ``name`` is a metric or tag key MLflow accepts and a safe relative path."""
    parts = name.split("/")
    return (
        _MLFLOW_NAME.match(name) is not None
        and len(name) <= _MLFLOW_KEY_LIMIT
        and not name.startswith("/")
        and all(
            part not in {"", ".", ".."} and len(part.encode()) <= _FILE_NAME_BYTES for part in parts
        )
    )


def create_run(
    root: Path,
    run_dir: Path,
    *,
    experiment: str,
    script: str,
    tags: Mapping[str, str],
) -> dict[str, str]:
    """Create run ``run_dir``'s MLflow run; return the script's MLflow variables."""
    run_id = run_dir.name
    exp_id = experiment_id(experiment)
    store = root / STORE_FOLDER
    experiment_dir = store / exp_id
    run_mlflow = experiment_dir / run_id
    millis = int(time.time() * 1000)
    (run_mlflow / "metrics").mkdir(parents=True, exist_ok=True)
    (run_mlflow / "params").mkdir(exist_ok=True)
    (run_mlflow / "tags").mkdir(exist_ok=True)
    if not (experiment_dir / "meta.yaml").is_file():
        _write_atomically(
            experiment_dir / "meta.yaml",
            _yaml(
                {
                    "artifact_location": experiment_dir.absolute().as_uri(),
                    "creation_time": millis,
                    "experiment_id": exp_id,
                    "last_update_time": millis,
                    "lifecycle_stage": "active",
                    "name": experiment,
                }
            ),
        )
    artifacts = run_mlflow / ARTIFACTS_FOLDER  # MLflow's own place, which its store requires
    artifacts.mkdir(exist_ok=True)
    _write_atomically(
        run_mlflow / "meta.yaml",
        _yaml(
            {
                "artifact_uri": artifacts.absolute().as_uri(),
                "end_time": None,
                "entry_point_name": "",
                "experiment_id": exp_id,
                "lifecycle_stage": "active",
                "run_id": run_id,
                "run_name": run_id,
                "run_uuid": run_id,
                "source_name": "",
                "source_type": 4,  # LOCAL
                "source_version": "",
                "start_time": millis,
                "status": 2,  # SCHEDULED, until the supervisor starts the script
                "tags": [],
                "user_id": os.environ.get("USER", "mlboot"),
            }
        ),
    )
    chosen = {"mlflow.runName": run_id, "mlflow.source.name": script, **tags}
    for key, value in chosen.items():
        if _safe_key(key):
            path = run_mlflow / "tags" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(value), encoding="utf-8")
    _write_atomically(
        run_dir / TRACKING_FILE,
        # Relative to the run's folder, so mlboot still finds it in a workspace folder moved
        # whole (MLflow's own meta.yaml files hold absolute artifact URIs).
        json.dumps({"mlflow_run": os.path.relpath(run_mlflow, run_dir)}) + "\n",
    )
    return {
        "MLFLOW_TRACKING_URI": store_uri(root),
        "MLFLOW_EXPERIMENT_ID": exp_id,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }


SHIM_FOLDER = Path(__file__).resolve().parent / "_shim"
"""Holds the ``sitecustomize`` that hooks azureml-core's offline run (see its docstring)."""


def tracking_variables(
    root: Path,
    run_dir: Path,
    *,
    experiment: str,
    script: str,
    tags: Mapping[str, str],
    pythonpath: str | None,
) -> dict[str, str]:
    """Create the run's MLflow run; the script's variables: MLflow's and ``PYTHONPATH``."""
    variables = create_run(root, run_dir, experiment=experiment, script=script, tags=tags)
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM_FOLDER), pythonpath]))
    return variables


def _mlflow_run(run_dir: Path) -> Path | None:
    try:
        data = json.loads((run_dir / TRACKING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a run from before this file existed, or one being created
    found = data.get("mlflow_run") if isinstance(data, dict) else None
    return run_dir / found if isinstance(found, str) else None


def _artifacts(run_dir: Path) -> Path:
    found = _mlflow_run(run_dir)
    return (run_dir if found is None else found) / ARTIFACTS_FOLDER


def artifacts_folder(run_dir: Path) -> Path:
    """The folder of a local run's MLflow artifacts (``log_artifact``, ``upload_file``).

    ``outputs/`` in it mirrors the run's collected outputs (see :func:`finish_run`).
    """
    return _artifacts(run_dir)


def finish_run(run_dir: Path, status: str) -> None:
    """Record a local run's status (Running or a final one) in its MLflow run; never raises."""
    found = _mlflow_run(run_dir)
    number = _MLFLOW_STATUS.get(status)
    if found is None or number is None:
        return
    meta = found / "meta.yaml"
    with contextlib.suppress(OSError):
        text = meta.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^status: .*$", f"status: {number}", text)
        if status != "Running":
            text = re.sub(r"(?m)^end_time: .*$", f"end_time: {int(time.time() * 1000)}", text)
        _write_atomically(meta, text)
    if status != "Running":
        _show_outputs(run_dir / OUTPUTS_FOLDER, found / ARTIFACTS_FOLDER / OUTPUTS_FOLDER)


def _show_outputs(outputs: Path, shown: Path) -> None:
    """Put the run's collected outputs among its MLflow artifacts, as hard links.

    Hard links take no space and are regular files; MLflow refuses to list through a symbolic
    link leading out of the artifacts.  Where a link cannot be made, the file is copied.  Only
    regular files (never a link) are shown; a file MLflow already has at that name is kept.
    """
    for dirpath, folders, files in os.walk(outputs):
        folders[:] = [name for name in folders if not (Path(dirpath) / name).is_symlink()]
        for name in files:
            source = Path(dirpath) / name
            target = shown / source.relative_to(outputs)
            with contextlib.suppress(OSError):
                if source.is_symlink() or not source.is_file() or target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)


def append_metric(
    run_dir: Path,
    name: str,
    value: float | str,
    step: int | None,
    *,
    when: float | None = None,
) -> None:
    """Record one value in ``metrics.jsonl`` and, a number, in the MLflow run too."""
    import fcntl  # noqa: PLC0415  (POSIX only; the local backend runs only there)

    moment = time.time() if when is None else when
    record: dict[str, object] = {"name": name, "value": value, "step": step, "time": moment}
    found = _mlflow_run(run_dir)
    mirrored = found is not None and not isinstance(value, str) and _safe_key(name)
    millis = int(moment * 1000)
    if mirrored:
        record["mlflow"] = millis
    # json.dumps writes NaN/Infinity for non-finite floats, which json.loads reads back.
    line = json.dumps(record, allow_nan=True) + "\n"
    with (run_dir / METRICS_FILE).open("a", encoding="utf-8") as file:
        # Processes of one run (data loader workers, ranks) may log at the same moment.
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        file.write(line)
        file.flush()
    if mirrored and found is not None:
        # Only a copy, for MLflow's UI: the journal line above is the record, so a copy the
        # disk refuses is left out (read_records does without it).
        with contextlib.suppress(OSError):
            path = found / "metrics" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as file:
                file.write(f"{millis} {float(value)} {step or 0}\n")


def _journal(run_dir: Path) -> tuple[list[tuple[float, Record]], list[tuple[str, int, float, int]]]:
    """``metrics.jsonl``: its records by time, and what of them was copied into MLflow."""
    try:
        text = (run_dir / METRICS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    records: list[tuple[float, Record]] = []
    mirrored: list[tuple[str, int, float, int]] = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if not isinstance(data, dict):
            continue
        name, value, step = data.get("name"), data.get("value"), data.get("step")
        if not isinstance(name, str) or not isinstance(value, int | float | str):
            continue
        step = step if isinstance(step, int) and not isinstance(step, bool) else None
        moment = data.get("time")
        moment = float(moment) if isinstance(moment, int | float) else 0.0
        # At MLflow's resolution (whole milliseconds), so that ties are ties.
        records.append((float(int(moment * 1000)), (name, value, step, moment)))
        copied = data.get("mlflow")
        if isinstance(copied, int) and isinstance(value, int | float):
            mirrored.append((name, copied, float(value), step or 0))
    return records, mirrored


def _mlflow_metrics(folder: Path) -> Iterable[tuple[str, int, float, int]]:
    """MLflow's metric files below ``folder``: (key, timestamp ms, value, step), file order."""
    for dirpath, _, files in os.walk(folder):
        for file in sorted(files):
            path = Path(dirpath) / file
            key = path.relative_to(folder).as_posix()
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if len(parts) not in {2, 3, 5}:
                    continue
                try:
                    stamp, value = int(parts[0]), float(parts[1])
                    step = int(parts[2]) if len(parts) > 2 else 0  # noqa: PLR2004
                except ValueError:
                    continue
                yield key, stamp, value, step


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def read_records(run_dir: Path) -> list[Record]:
    """Everything a local run logged, by any means, in logging order (see the module doc)."""
    journal, mirrored = _journal(run_dir)
    found = _mlflow_run(run_dir)
    unmatched: dict[tuple[str, int, int], list[float]] = {}
    for name, stamp, value, step in mirrored:
        unmatched.setdefault((name, stamp, step), []).append(value)
    others: list[tuple[float, Record]] = []
    if found is not None:
        for key, stamp, value, step in _mlflow_metrics(found / "metrics"):
            copies = unmatched.get((key, stamp, step), [])
            match = next((i for i, copy in enumerate(copies) if _same(copy, value)), None)
            if match is not None:  # mlboot.log_metric's own copy, already in the journal
                del copies[match]
                continue
            others.append((float(stamp), (key, value, step, stamp / 1000)))
    # sorted() is stable: equal times keep the journal first, then each file's order.
    return [record for _, record in sorted([*journal, *others], key=lambda entry: entry[0])]


def read_metrics(run_dir: Path) -> dict[str, list[float | int | str]]:
    """:func:`read_records` as name to values, names in the order first logged."""
    metrics: dict[str, list[float | int | str]] = {}
    for name, value, _, _ in read_records(run_dir):
        metrics.setdefault(name, []).append(value)
    return metrics


# -- azureml-core's offline run ------------------------------------------------------------------


def _number_or_text(value: object) -> float | int | str:
    if isinstance(value, int | float | str):
        return value
    try:
        return float(value)  # type: ignore[arg-type]  # numpy scalars and the like
    except (TypeError, ValueError):
        return str(value)


def _write_tag(run_dir: Path, key: object, value: object) -> None:
    found = _mlflow_run(run_dir)
    name = str(key)
    if found is None or not _safe_key(name):
        return
    path = found / "tags" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("" if value is None else str(value), encoding="utf-8")


def _upload(run_dir: Path, name: str, source: Any) -> None:
    """Azure ML's ``upload_file``: ``outputs/...`` to the run's outputs, else its artifacts."""
    relative = Path(str(name).lstrip("/"))
    if ".." in relative.parts or not relative.parts or "\x00" in str(name):
        msg = (
            f"upload_file: the name {name!r} names no file inside the run's files; use a "
            "relative file name, e.g. 'outputs/model.pkl'"
        )
        raise ValueError(msg)
    if relative.parts[:1] == ("outputs",):
        target = Path.cwd() / relative  # collected with ./outputs when the script ends
    else:
        target = _artifacts(run_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(source, "read"):
        data = source.read()
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    elif Path(source).resolve() != target.resolve():
        shutil.copyfile(source, target)


class _RecordingOfflineRun:
    """The methods :func:`patch_offline_run` gives azureml-core's offline run."""

    _mlboot_run_dir: Path

    def log(self, name: str, value: object, description: str = "", step: Any = None) -> None:
        del description
        append_metric(self._mlboot_run_dir, str(name), _number_or_text(value), step)

    def log_list(self, name: str, value: Iterable[object], description: str = "") -> None:
        del description
        for item in value:
            append_metric(self._mlboot_run_dir, str(name), _number_or_text(item), None)

    def log_row(self, name: str, description: object = None, **kwargs: object) -> None:
        del description
        for column, item in kwargs.items():
            append_metric(self._mlboot_run_dir, f"{name}/{column}", _number_or_text(item), None)

    def log_table(
        self, name: str, value: Mapping[str, Iterable[object]], description: str = ""
    ) -> None:
        del description
        for column, cells in value.items():
            for item in cells:
                append_metric(self._mlboot_run_dir, f"{name}/{column}", _number_or_text(item), None)

    def tag(self, name: str, value: object = None) -> None:
        _write_tag(self._mlboot_run_dir, name, value)

    def set_tags(self, tags: Any) -> None:
        items = tags.items() if hasattr(tags, "items") else ((name, None) for name in tags)
        for name, value in items:
            _write_tag(self._mlboot_run_dir, name, value)

    def upload_file(self, name: str, path_or_stream: Any, datastore_name: object = None) -> None:
        del datastore_name
        _upload(self._mlboot_run_dir, name, path_or_stream)

    def upload_files(
        self, names: Iterable[str], paths: Iterable[Any], *args: object, **kwargs: object
    ) -> None:
        del args, kwargs  # return_artifacts, timeout_seconds, datastore_name
        for name, path in zip(names, paths, strict=True):
            _upload(self._mlboot_run_dir, name, path)

    def upload_folder(self, name: str, path: str, datastore_name: object = None) -> None:
        del datastore_name
        for dirpath, _, files in os.walk(path):
            for file in files:
                source = Path(dirpath) / file
                relative = source.relative_to(path).as_posix()
                _upload(self._mlboot_run_dir, f"{name}/{relative}", source)


def patch_offline_run(module: Any, run_dir: Path) -> None:
    """Make ``azureml.core.run._OfflineRun`` record into local run ``run_dir``.

    The methods azureml-core's documentation shows for logging (``log``, ``log_list``,
    ``log_row``, ``log_table``, ``tag``, ``set_tags``, ``upload_file``, ``upload_files``,
    ``upload_folder``) record what they are given, unchanged, instead of printing
    "Attempted to ...".  Rows and tables become one metric per column, ``<name>/<column>``, as
    mlboot reads them from Azure ML.  Everything else of the offline run is left as it is.
    """
    offline = getattr(module, "_OfflineRun", None)
    if offline is None:
        return
    offline._mlboot_run_dir = run_dir  # noqa: SLF001  (azureml-core's class, patched on purpose)
    for name, function in vars(_RecordingOfflineRun).items():
        if callable(function) and not name.startswith("_"):
            setattr(offline, name, function)


def _journal_mlflow_metrics(run_dir: Path, metrics: Iterable[Any]) -> None:
    """Note MLflow metrics just written to the file store in ``metrics.jsonl``, in order.

    MLflow's file store keeps one file per metric and times in milliseconds, so the order of
    values of different metrics logged within one millisecond is lost there; the journal keeps
    it.  Each note carries ``"mlflow"`` (the value's MLflow timestamp) like
    :func:`append_metric`'s copies, so :func:`read_records` takes the note instead of the file's
    line, and keeps the journal's order.
    """
    import fcntl  # noqa: PLC0415  (POSIX only; the local backend runs only there)

    lines = []
    for metric in metrics:
        key, value, step, stamp = metric.key, metric.value, metric.step, metric.timestamp
        if not (isinstance(key, str) and isinstance(stamp, int) and isinstance(value, int | float)):
            continue
        record = {
            "name": key,
            "value": float(value),
            "step": int(step or 0),
            "time": time.time(),
            "mlflow": stamp,
        }
        lines.append(json.dumps(record, allow_nan=True) + "\n")
    if not lines:
        return
    with (run_dir / METRICS_FILE).open("a", encoding="utf-8") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        file.write("".join(lines))
        file.flush()


def patch_mlflow_file_store(module: Any, run_dir: Path, run_id: str) -> None:
    """Make MLflow's ``FileStore`` note, in the run's journal, the metrics it writes for it.

    Only the run ``run_id`` (the local run's MLflow run); whatever the note meets (a full disk,
    an MLflow whose classes differ), the script's own call is never disturbed: the values are
    still in MLflow's files, only their order within one millisecond is then MLflow's.
    """
    store = getattr(module, "FileStore", None)
    if store is None:
        return
    import inspect  # noqa: PLC0415  (only when MLflow's file store is imported)

    def patched(name: str, original: Any) -> Any:
        signature = inspect.signature(original)

        def method(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)  # the script's call, untouched
            with contextlib.suppress(Exception):  # a note never disturbs the call
                given = signature.bind(*args, **kwargs).arguments
                if given.get("run_id") == run_id:
                    found = [given["metric"]] if name == "log_metric" else given.get("metrics")
                    _journal_mlflow_metrics(run_dir, list(found or ()))
            return result

        method.__wrapped__ = original  # type: ignore[attr-defined]
        return method

    for name in ("log_metric", "log_batch"):
        original = getattr(store, name, None)
        if callable(original):
            setattr(store, name, patched(name, original))
