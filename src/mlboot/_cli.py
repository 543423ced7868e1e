"""The ``mlboot`` command: the same workflow from a shell, for people and for tools.

Run it as ``mlboot`` or ``python -m mlboot``.  Every command takes ``--config PATH`` (the
workspace config file or a folder to search from), ``--local`` (use the local backend),
``--json`` (one JSON object on stdout, for tools) and ``-v``/``--verbose``.  Errors are one line
on stderr, never a traceback; with ``--json`` an ``{"error": ...}`` object also goes to stdout.
The exit code says what happened: see :class:`ExitCode`.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import io
import json
import logging
import math
import os
import re
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from mlboot._compute import ComputeTarget, get_or_create_compute_target
from mlboot._data import Input, Output
from mlboot._environment import Environment
from mlboot._localio import storage_error
from mlboot._log import logger
from mlboot._run import (
    Run,
    RunStatus,
    check_prefix,
    get_run,
    interrupt_advice,
    local_outputs,
    read_details,
    runs_on_this_machine,
)
from mlboot._run_list import RunInfo, check_list_options, list_runs
from mlboot._submit import submit_script
from mlboot._workspace import Workspace, workspace_from_config
from mlboot.exceptions import (
    AuthenticationError,
    ComputeMismatchError,
    ConfigError,
    ConfigNotFoundError,
    InvalidInputError,
    MlbootError,
    MlbootWarning,
    NotFoundError,
    PermissionDeniedError,
    RunFailedError,
    SnapshotTooLargeError,
    WaitTimeoutError,
)

__all__ = ["ExitCode", "main"]


class ExitCode(enum.IntEnum):
    """What the ``mlboot`` command's exit status means."""

    OK = 0
    """Done: the run completed, the compute target is ready, the request was made."""
    RUN_FAILED = 1
    """The run ended ``Failed``."""
    BAD_INPUT = 2
    """Bad usage, argument, configuration or snapshot, or a compute target that differs."""
    AUTHENTICATION = 3
    """No usable credentials, or not allowed (HTTP 401 or 403)."""
    NOT_FOUND = 4
    """The workspace, run or compute target does not exist."""
    ERROR = 5
    """Any other error: the service, the network, provisioning, or a bug in mlboot."""
    RUN_CANCELED = 6
    """The run ended ``Canceled``."""
    TIMEOUT = 124
    """A wait ran out of time (as with ``timeout(1)``); the run or cluster was left alone."""
    INTERRUPTED = 130
    """Interrupted with Ctrl-C; a run being waited for goes on."""


_EXIT_CODES_HELP = """\
exit codes:
  0    success (for a wait: the run completed)
  1    the run ended Failed
  2    bad usage, argument, configuration or snapshot; compute target differs
  3    authentication or permission error
  4    workspace, run or compute target not found
  5    other error (service, network, provisioning)
  6    the run ended Canceled
  124  a wait timed out (the run or cluster was left alone)
  130  interrupted (Ctrl-C); the run goes on
"""


class _UsageError(Exception):
    """A command line argparse refused; shown as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # The same options are accepted before and after the command; below the top level they
    # default to "not given" so they never overwrite what was given above.
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the workspace config file, or a folder to search from (default: here, as "
        "Workspace.from_config searches)",
        **({"default": None} if top else default),
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="use the local backend (runs on this machine, in .mlboot/ beside the config "
        "file); the config's mlboot_backend key or MLBOOT_BACKEND=local does the same",
        **default,
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout, for tools", **default
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what mlboot does (on stderr), and show the full text of errors",
        **default,
    )


def _add_submit_options(submit: argparse.ArgumentParser) -> None:
    """``mlboot submit``'s options before ``--wait``: where, what from, and its data."""
    submit.add_argument("--compute", required=True, metavar="NAME", help="the compute target")
    submit.add_argument("--experiment", required=True, metavar="NAME", help="the experiment")
    submit.add_argument(
        "--source-dir",
        default=".",
        metavar="DIR",
        help="the folder uploaded as the run's snapshot (default: here)",
    )
    submit.add_argument(
        "--env",
        metavar="FILE",
        help="a pip requirements file, or a conda environment file (.yml, .yaml)",
    )
    submit.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="data the script reads, found in $MLBOOT_INPUT_NAME and ${{inputs.NAME}} in ARGS: "
        "a local path, azureml://datastores/<name>/paths/<path>, an http(s):// URL or "
        "azureml:<dataset>:<version> (repeatable)",
    )
    submit.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NAME[=DEST]",
        help="a folder the script writes, in $MLBOOT_OUTPUT_NAME and ${{outputs.NAME}}: "
        "azureml://datastores/<name>/paths/<path>, or under the run without =DEST (repeatable)",
    )
    submit.add_argument(
        "--mode",
        action="append",
        default=[],
        metavar="NAME=MODE",
        help="an input's mode (mount, the default, or download) or an output's (upload, the "
        "default, or mount)",
    )


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="mlboot",
        description="Submit training scripts to Azure ML (or to this machine), get or create "
        "compute clusters, and follow runs.",
        epilog=_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlboot {_version()}")
    _add_common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        group: argparse._SubParsersAction[_Parser],
        name: str,
        summary: str,
        handler: Callable[[argparse.Namespace], int] | None,
        description: str = "",
    ) -> _Parser:
        sub = group.add_parser(
            name,
            help=summary,
            description=description or summary,
            epilog=_EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(sub, top=False)
        if handler is not None:
            sub.set_defaults(handler=handler)
        return sub

    submit = command(
        commands,
        "submit",
        "submit a script as an experiment run",
        _submit,
        "Submit SCRIPT as a run of an experiment on a compute target. The script's own "
        "arguments follow it, or come after '--' when they start with '-': "
        "mlboot submit train.py --compute cpu --experiment demo -- --epochs 3",
    )
    submit.add_argument("script", metavar="SCRIPT", help="the script, inside --source-dir")
    submit.add_argument(
        "arguments", metavar="ARGS", nargs="*", help="arguments for the script (see above)"
    )
    _add_submit_options(submit)
    submit.add_argument(
        "--wait", action="store_true", help="wait for the run to end, streaming its log"
    )
    submit.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="with --wait: stop waiting after S seconds (exit code 124; the run goes on)",
    )

    compute = command(commands, "compute", "compute targets", None)
    compute_commands = compute.add_subparsers(dest="compute_command", metavar="ACTION")
    compute_commands.required = True
    ensure = command(
        compute_commands,
        "ensure",
        "get or create a compute cluster with these settings",
        _compute_ensure,
        "Get the compute cluster NAME, or create it; an existing cluster with other settings "
        "is an error (exit code 2) unless --on-mismatch says otherwise.",
    )
    ensure.add_argument("name", metavar="NAME", help="the cluster's name")
    ensure.add_argument("--vm-size", required=True, metavar="SIZE", help="e.g. Standard_DS3_v2")
    ensure.add_argument("--max-nodes", required=True, type=int, metavar="N")
    ensure.add_argument("--min-nodes", type=int, default=0, metavar="N", help="default: 0")
    ensure.add_argument(
        "--priority",
        default="dedicated",
        choices=("dedicated", "lowpriority"),
        help="default: dedicated",
    )
    ensure.add_argument(
        "--idle-seconds",
        type=int,
        default=1800,
        metavar="S",
        help="idle time before a node is released (default: 1800)",
    )
    ensure.add_argument(
        "--on-mismatch",
        default="error",
        choices=("error", "warn", "update"),
        help="when the existing cluster differs: fail (default), use it anyway, or update "
        "its scale settings",
    )
    ensure.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="how long to wait for provisioning (default: 1800)",
    )
    ensure.add_argument(
        "--no-wait", action="store_true", help="return without waiting for provisioning"
    )

    runs = command(commands, "runs", "runs submitted earlier", None)
    run_commands = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    run_commands.required = True
    listing = command(
        run_commands,
        "list",
        "recent runs of the workspace, newest first",
        _runs_list,
        "List the workspace's most recent runs (id, experiment, status, start, duration), "
        "newest first.",
    )
    listing.add_argument("--experiment", metavar="NAME", help="only the runs of this experiment")
    listing.add_argument(
        "--status", metavar="STATUS", help="only runs with this status, e.g. Failed or Running"
    )
    listing.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N runs (default: 20)"
    )
    show = command(run_commands, "show", "a run's status, error and metrics", _runs_show)
    show.add_argument("run_id", metavar="RUN_ID")
    wait = command(
        run_commands,
        "wait",
        "wait for a run to end, streaming its log; the exit code is the outcome",
        _runs_wait,
    )
    wait.add_argument("run_id", metavar="RUN_ID")
    wait.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="stop waiting after S seconds (exit code 124; the run goes on)",
    )
    logs = command(run_commands, "logs", "a run's log so far (stdout and stderr)", _runs_logs)
    logs.add_argument("run_id", metavar="RUN_ID")
    cancel = command(run_commands, "cancel", "cancel a run", _runs_cancel)
    cancel.add_argument("run_id", metavar="RUN_ID")
    _add_run_files(
        command(
            run_commands, "files", "the names of a run's files (outputs, logs...)", _runs_files
        ),
        command(
            run_commands,
            "download",
            "download a run's outputs/ folder, or its files that start with --prefix",
            _runs_download,
        ),
    )
    return _add_plot(parser, command(run_commands, "plot", "chart metrics over steps", _runs_plot))


def _add_run_files(files: _Parser, download: _Parser) -> None:
    files.add_argument("run_id", metavar="RUN_ID")
    files.add_argument(
        "--prefix", metavar="P", help="only the names that start with P, e.g. outputs/ or logs/"
    )
    download.add_argument("run_id", metavar="RUN_ID")
    download.add_argument(
        "destination",
        metavar="DEST",
        nargs="?",
        default=".",
        help="files land in DEST/<name>, e.g. DEST/outputs/model.pt (default: here)",
    )
    download.add_argument(
        "--prefix",
        metavar="P",
        help="download the run's files whose names start with P (e.g. logs/, or '' for all) "
        "instead of its outputs/ folder",
    )


def _add_plot(parser: _Parser, plot: _Parser) -> _Parser:
    from mlboot._cli_plot import add_arguments  # noqa: PLC0415

    add_arguments(plot)
    return parser


def _runs_plot(options: argparse.Namespace) -> int:
    from mlboot._cli_plot import plot  # noqa: PLC0415

    workspace = _workspace(options)
    record = plot(options, lambda run_id: get_run(workspace, run_id))
    _emit(options, record, [f"Wrote {record['file']} ({', '.join(record['metrics'])})"])
    return ExitCode.OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("mlboot")
    except PackageNotFoundError:  # pragma: no cover  (run from a source tree)
        return "unknown"


# -- commands ------------------------------------------------------------------------------------


def _workspace(options: argparse.Namespace) -> Workspace:

    return workspace_from_config(options.config, backend="local" if options.local else None)


def _environment(path: str) -> Environment:

    if Path(path).suffix.lower() in {".yml", ".yaml"}:
        return Environment.from_conda_specification(path)
    return Environment.from_pip_requirements(path)


def _name_value(option: str, text: str, *, value_needed: bool = True) -> tuple[str, str | None]:
    name, equals, value = text.partition("=")
    if not name or (value_needed and not equals):
        form = "NAME=MODE" if option == "--mode" else "NAME=SOURCE"
        raise _UsageError(f"mlboot submit: {option} {text!r}: write it as {form}")
    return name, value if equals else None


def _data_options(options: argparse.Namespace) -> tuple[dict[str, Input], dict[str, Output]]:
    """``--input``, ``--output`` and ``--mode`` as ``inputs=`` and ``outputs=``."""
    modes: dict[str, str] = {}
    for text in options.mode:
        name, mode = _name_value("--mode", text)
        modes[name] = str(mode)
    sources: dict[str, str] = {}
    for text in options.input:
        name, source = _name_value("--input", text)
        if name in sources:
            raise _UsageError(f"mlboot submit: --input {name}=... is given twice")
        sources[name] = str(source)
    destinations: dict[str, str | None] = {}
    for text in options.output:
        name, destination = _name_value("--output", text, value_needed=False)
        if name in destinations or name in sources:
            raise _UsageError(f"mlboot submit: the name {name!r} is given twice")
        destinations[name] = destination or None
    unknown = sorted(set(modes) - set(sources) - set(destinations))
    if unknown:
        raise _UsageError(f"mlboot submit: --mode {unknown[0]}=... names no --input or --output")
    inputs = {
        name: Input(source, mode=modes.get(name, "mount"))  # type: ignore[arg-type]  # checked by Input
        for name, source in sources.items()
    }
    outputs = {
        name: Output(destination, mode=modes.get(name, "upload"))  # type: ignore[arg-type]  # checked by Output
        for name, destination in destinations.items()
    }
    return inputs, outputs


def _submit(options: argparse.Namespace) -> int:

    if options.timeout is not None and not options.wait:
        raise _UsageError("mlboot submit: --timeout needs --wait (see 'mlboot submit --help')")
    inputs, outputs = _data_options(options)
    workspace = _workspace(options)
    environment = _environment(options.env) if options.env else None
    run = submit_script(
        workspace,
        options.script,
        compute=options.compute,
        experiment=options.experiment,
        source_directory=options.source_dir,
        arguments=[*options.arguments, *options.after_double_dash],
        environment=environment,
        inputs=inputs,
        outputs=outputs,
    )
    if not options.wait:
        record = _run_record(run)
        _emit(
            options,
            record,
            [
                f"Submitted run {run.id} (experiment {run.experiment}): {record['status']}",
                f"Follow it with: mlboot runs wait {run.id}",
            ],
        )
        return ExitCode.OK
    return _wait_and_report(options, run)


def _compute_ensure(options: argparse.Namespace) -> int:

    workspace = _workspace(options)
    target = get_or_create_compute_target(
        workspace,
        options.name,
        vm_size=options.vm_size,
        max_nodes=options.max_nodes,
        min_nodes=options.min_nodes,
        vm_priority=options.priority,
        idle_seconds_before_scaledown=options.idle_seconds,
        on_mismatch=options.on_mismatch,
        wait=not options.no_wait,
        timeout=options.timeout,
        show_output=not options.json,
    )
    _emit(options, _compute_record(target), [_compute_line(target)])
    return ExitCode.OK


def _runs_show(options: argparse.Namespace) -> int:
    run = _get_run(options)
    record = _run_record(run, details=True, metrics=True)
    _emit(options, record, _run_lines(record))
    return ExitCode.OK


def _runs_list(options: argparse.Namespace) -> int:
    # The library's own checks, before the workspace is even read: a bad option never reaches a
    # service.  Its error names the keyword (limit=0), which _report says as the option.
    check_list_options(options.experiment, options.status, options.limit)
    found = list_runs(
        _workspace(options),
        experiment=options.experiment,
        status=options.status,
        limit=options.limit,
    )
    records = [_info_record(info) for info in found]
    _emit(options, {"runs": records}, _info_lines(records))
    return ExitCode.OK


def _info_record(info: RunInfo) -> dict[str, Any]:
    duration = info.duration
    return {
        "run_id": info.run.id,
        "experiment": info.run.experiment,
        "status": str(info.status),
        "start_time": None if info.start_time is None else info.start_time.isoformat(),
        "end_time": None if info.end_time is None else info.end_time.isoformat(),
        "duration_seconds": None if duration is None else duration.total_seconds(),
    }


def _info_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    if not records:
        return ["No runs found."]
    rows = [("RUN", "EXPERIMENT", "STATUS", "STARTED", "DURATION")]
    for record in records:
        start = record["start_time"]
        seconds = record["duration_seconds"]
        rows.append(
            (
                record["run_id"],
                record["experiment"],
                record["status"],
                "-" if start is None else start[:19].replace("T", " "),
                "-" if seconds is None else _duration(seconds),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _runs_wait(options: argparse.Namespace) -> int:
    return _wait_and_report(options, _get_run(options))


def _runs_logs(options: argparse.Namespace) -> int:
    run = _get_run(options)
    text = run.logs()
    if options.json:
        _print_json({"run_id": run.id, "logs": text})
    else:
        sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return ExitCode.OK


def _runs_cancel(options: argparse.Namespace) -> int:
    run = _get_run(options)
    run.cancel()
    status = run.status()
    _emit(
        options,
        {"run_id": run.id, "status": str(status)},
        [f"Asked to cancel run {run.id}; it is {status} now."],
    )
    return ExitCode.OK


def _runs_files(options: argparse.Namespace) -> int:
    check_prefix(options.prefix)  # before the run is looked up: nothing remote for a bad one
    run = _get_run(options)
    names = run.file_names(prefix=options.prefix)
    where = f" whose names start with {options.prefix!r}" if options.prefix else ""
    _emit(
        options, {"run_id": run.id, "names": names}, names or [f"Run {run.id} has no files{where}."]
    )
    return ExitCode.OK


def _runs_download(options: argparse.Namespace) -> int:
    check_prefix(options.prefix)  # before the run is looked up: nothing remote for a bad one
    run = _get_run(options)
    if options.prefix is None:
        paths, none = run.download_outputs(options.destination), "no files in outputs/"
    else:
        paths = run.download_files(options.destination, prefix=options.prefix)
        none = f"no files whose names start with {options.prefix!r}"
    _emit(
        options,
        {"run_id": run.id, "files": [str(p) for p in paths]},
        [str(p) for p in paths] or [f"Run {run.id} has {none}."],
    )
    return ExitCode.OK


def _get_run(options: argparse.Namespace) -> Run:

    return get_run(_workspace(options), options.run_id)


def _wait_and_report(options: argparse.Namespace, run: Run) -> int:
    # A local run's status is a file read: poll it often.  Azure ML is asked every 2 s at first.
    local = runs_on_this_machine(run.workspace.backend)
    said: list[str] = []

    def advice(run: Run, *, cancel_failed: bool) -> str:
        said.append(run.id)
        if cancel_failed:
            return f"Cancel it with: {_shell_command(options, 'cancel', run.id)}."
        return (
            f"Reattach with: {_shell_command(options, 'wait', run.id)}; stop it with: "
            f"{_shell_command(options, 'cancel', run.id)}."
        )

    token = interrupt_advice.set(advice)
    try:
        status = run.wait(
            timeout=getattr(options, "timeout", None),
            show_output=not options.json,
            poll_interval=0.2 if local else 2.0,
        )
    except RunFailedError as failure:
        # The failed run's own record is the one JSON object a tool gets, log tail included.
        record = _run_record(run, details=True, metrics=True)
        record["log_tail"] = list(failure.log_tail)
        _emit(options, record, _run_lines(record))
        return _report(failure, options, json_error=False)
    except KeyboardInterrupt:
        # Run.wait has said it once, with the shell command above; say nothing more on stderr.
        if not said:
            _say_error(
                f"stopped waiting; run {run.id} goes on (reattach with: "
                f"{_shell_command(options, 'wait', run.id)})"
            )
        if options.json:
            _json_error(
                "KeyboardInterrupt",
                f"interrupted; run {run.id} goes on (reattach with: "
                f"{_shell_command(options, 'wait', run.id)})",
                ExitCode.INTERRUPTED,
                run_id=run.id,
            )
        return ExitCode.INTERRUPTED
    finally:
        interrupt_advice.reset(token)
    record = _run_record(run, details=True, metrics=True)
    _emit(options, record, _run_lines(record))
    return _status_code(status)


def _shell_command(options: argparse.Namespace, action: str, run_id: str) -> str:
    """The ``mlboot runs ACTION RUN_ID`` command, with the options that find the same run."""
    words = ["mlboot", "runs", action, run_id]
    if options.config is not None:
        words += ["--config", str(Path(options.config).absolute())]
    if options.local:
        words.append("--local")
    return shlex.join(words)


def _status_code(status: RunStatus) -> int:
    if status.is_successful:
        return ExitCode.OK
    if str(status) == "Canceled":
        return ExitCode.RUN_CANCELED
    return ExitCode.RUN_FAILED  # pragma: no cover  (wait returns only on a terminal status)


# -- output ----------------------------------------------------------------------------------------


def _run_record(run: Run, *, details: bool = False, metrics: bool = False) -> dict[str, Any]:

    record: dict[str, Any] = {
        "run_id": run.id,
        "experiment": run.experiment,
        "portal_url": run.portal_url,
    }
    if details:
        found = read_details(run)
        record.update(
            status=found.status,
            error=found.error,
            start_time=found.start_time,
            end_time=found.end_time,
        )
    else:
        record["status"] = str(run.status())
    outputs = local_outputs(run)
    if outputs is not None:  # a local run's outputs are already on this machine
        record["outputs"] = str(outputs)
    if metrics:
        record["metrics"] = {name: list(values) for name, values in run.metrics().items()}
    return record


def _run_lines(record: Mapping[str, Any]) -> list[str]:
    rows = [
        ("run", record["run_id"]),
        ("experiment", record["experiment"]),
        ("status", record.get("status")),
        ("error", record.get("error")),
        ("started", record.get("start_time")),
        ("ended", record.get("end_time")),
        ("portal", record.get("portal_url")),
        ("outputs", record.get("outputs")),
    ]
    lines = [f"{key:<11}{value}" for key, value in rows if value]
    for name, values in (record.get("metrics") or {}).items():
        last = _human_value(values[-1]) if values else ""
        shown = last if len(values) == 1 else f"{last} (last of {len(values)})"
        lines.append(f"{'metric':<11}{name} = {shown}")
    return lines


def _human_value(value: object) -> str:
    """A metric value for people: floats to 6 significant digits, NaN and infinities by name."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return format(value, ".6g")
    return str(value)


def _compute_record(target: ComputeTarget) -> dict[str, Any]:
    return {
        "name": target.name,
        "kind": target.kind,
        "vm_size": target.vm_size,
        "vm_priority": target.vm_priority,
        "min_nodes": target.min_nodes,
        "max_nodes": target.max_nodes,
        "idle_seconds_before_scaledown": target.idle_seconds_before_scaledown,
        "provisioning_state": target.provisioning_state,
    }


def _compute_line(target: ComputeTarget) -> str:
    return (
        f"Compute target {target.name}: {target.vm_size}, {target.vm_priority}, "
        f"{target.min_nodes} to {target.max_nodes} nodes, "
        f"{target.idle_seconds_before_scaledown} s idle before scale-down, "
        f"{target.provisioning_state}"
    )


def _strict(data: object) -> object:
    """``data`` with NaN and infinite floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(data, float) and not math.isfinite(data):
        return _human_value(data)
    if isinstance(data, Mapping):
        return {str(key): _strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strict(item) for item in data]
    return data


class _Output:
    """Whether this ``main`` call has written its one JSON object yet."""

    json_written = False


def _print_json(data: object) -> None:
    if _Output.json_written:  # one object per exit, whatever happens after the first
        return
    text = json.dumps(_strict(data), indent=2, default=str, allow_nan=False)
    _Output.json_written = True
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_error(kind: str, message: str, code: int, **extra: object) -> None:
    _print_json({"error": {"type": kind, "message": message, "exit_code": int(code), **extra}})


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _emit(options: argparse.Namespace, record: object, lines: Sequence[str]) -> None:
    if options.json:
        _print_json(record)
    else:
        _print_lines(lines)


def _say_error(message: str, details: Sequence[str] = ()) -> None:
    sys.stderr.write(f"mlboot: error: {message}\n")
    for line in details:
        sys.stderr.write(f"  {line}\n")
    sys.stderr.flush()


# -- errors ----------------------------------------------------------------------------------------

_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (RunFailedError, ExitCode.RUN_FAILED),
    (WaitTimeoutError, ExitCode.TIMEOUT),
    (AuthenticationError, ExitCode.AUTHENTICATION),
    (PermissionDeniedError, ExitCode.AUTHENTICATION),
    (InvalidInputError, ExitCode.BAD_INPUT),
    (ConfigError, ExitCode.BAD_INPUT),
    (SnapshotTooLargeError, ExitCode.BAD_INPUT),
    (ComputeMismatchError, ExitCode.BAD_INPUT),
    (NotFoundError, ExitCode.NOT_FOUND),
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code the ``mlboot`` command uses for ``error``."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return ExitCode.ERROR


def _summary(error: BaseException) -> tuple[str, list[str]]:
    """One line for ``error``, and the rest of its text."""
    if isinstance(error, ConfigNotFoundError) and len(error.searched) == 1:
        # A path that does not exist: it was not searched from (an upward search tries more).
        line = (
            f"workspace config file {error.searched[0]} does not exist. Fix: correct "
            "--config PATH, give --config the folder that holds config.json, or leave --config "
            "out to search from here"
        )
        return line, [str(error)]
    if isinstance(error, ConfigNotFoundError):
        start = Path(error.searched[0]).parent.parent if error.searched else Path.cwd()
        line = (
            f"no workspace config file found (searched {len(error.searched)} places from "
            f"{start}). Fix: pass --config PATH, or put config.json here or in .azureml/"
        )
        return line, [f"searched {place}" for place in error.searched]
    text = str(error).strip() or type(error).__name__
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[0], lines[1:]


def _report(error: BaseException, options: argparse.Namespace, *, json_error: bool = True) -> int:
    """Say ``error`` in one line on stderr (and as JSON on stdout); return its exit code."""
    verbose = bool(options.verbose)
    code = exit_code_for(error)
    if isinstance(error, MlbootError):
        line, rest = _summary(error)
        line, rest = shell_fix(line), [shell_fix(part) for part in rest]
    elif isinstance(error, MlbootWarning):  # raised, not shown: warnings are errors (-W error)
        line, rest = _summary(error)
        line, rest = f"a warning, raised as an error (-W error): {shell_fix(line)}", []
    else:
        line, rest = (
            f"internal error (a bug in mlboot, please report it): {type(error).__name__}: {error}",
            traceback.format_exc().splitlines(),
        )
    if rest and not verbose:
        line += " (more with --verbose)"
    _say_error(line, rest if verbose else ())
    if options.json and json_error:
        payload: dict[str, Any] = {
            "type": type(error).__name__,
            "message": shell_fix(str(error)) if isinstance(error, MlbootError) else line,
            "exit_code": int(code),
        }
        if isinstance(error, RunFailedError):
            payload.update(run_id=error.run_id, log_tail=list(error.log_tail))
        _print_json({"error": payload})
    return int(code)


@contextlib.contextmanager
def _logging_to(stream: TextIO, level: int) -> Iterator[None]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter())
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"mlboot: {record.levelname.lower()}: {message}"
        return f"mlboot: {message}"


def _split_double_dash(arguments: list[str]) -> tuple[list[str], list[str]]:
    if "--" in arguments:
        at = arguments.index("--")
        return arguments[:at], arguments[at + 1 :]
    return arguments, []


def _parse(own: list[str], after_double_dash: list[str]) -> argparse.Namespace:
    try:
        options = _build_parser().parse_args(own)
    except _UsageError as error:
        if "unrecognized arguments" in str(error) and "submit" in own:
            raise _UsageError(f"{error}; the script's own options go after '--'") from None
        raise
    for name in ("local", "json", "verbose"):
        setattr(options, name, bool(getattr(options, name, False)))
    options.after_double_dash = after_double_dash
    if after_double_dash and options.command != "submit":
        raise _UsageError(
            f"mlboot {options.command}: '--' and what follows are only for 'mlboot submit'"
        )
    return options


def _run(options: argparse.Namespace) -> int:
    try:
        return int(options.handler(options))
    except _UsageError as error:
        return _usage_error(str(error), json_wanted=options.json)
    except KeyboardInterrupt:
        _say_error("interrupted")
        if options.json:
            _json_error("KeyboardInterrupt", "interrupted", ExitCode.INTERRUPTED)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): nothing left to say.
        _Output.json_written = True
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as error:  # noqa: BLE001  (one line, never a traceback)
        if isinstance(error, OSError) and not isinstance(error, MlbootError):
            # A file the system refused (stdout redirected to a full disk...): not a bug.
            error = storage_error(error, f"mlboot {options.command}")
        return _report(error, options)


def _usage_error(message: str, *, json_wanted: bool) -> int:
    _say_error(message)
    if json_wanted:
        _json_error("UsageError", message, ExitCode.BAD_INPUT)
    return ExitCode.BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mlboot`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    With ``--json`` anywhere before ``--``, every exit writes exactly one strict JSON object on
    stdout: the command's record, or ``{"error": ...}`` (usage errors and Ctrl-C included).
    """
    _Output.json_written = False
    own, after_double_dash = _split_double_dash(list(sys.argv[1:] if argv is None else argv))
    json_wanted = "--json" in own
    try:
        code = _main(own, after_double_dash, json_wanted=json_wanted)
    except KeyboardInterrupt:  # before a command's own handler could see it
        _say_error("interrupted")
        code = ExitCode.INTERRUPTED
        if json_wanted:
            _json_error("KeyboardInterrupt", "interrupted", code)
    if json_wanted and not _Output.json_written:  # pragma: no cover  (every path writes one)
        _json_error("InternalError", "mlboot wrote no JSON object (a bug in mlboot)", code)
    return int(code)


def _main(own: list[str], after_double_dash: list[str], *, json_wanted: bool) -> int:
    help_text = io.StringIO()
    try:
        with contextlib.redirect_stdout(help_text) if json_wanted else contextlib.nullcontext():
            options = _parse(own, after_double_dash)
    except _UsageError as error:
        return _usage_error(str(error), json_wanted=json_wanted)
    except SystemExit as done:  # --help and --version
        code = done.code if isinstance(done.code, int) else ExitCode.OK
        if json_wanted:
            text = help_text.getvalue()
            key = "version" if "--version" in own and text.startswith("mlboot ") else "help"
            _print_json({key: text.strip() if key == "version" else text})
        return code
    # Progress a person asked for is printed on stdout by the commands themselves; the logger
    # adds warnings, and everything with --verbose.
    level = logging.DEBUG if options.verbose else logging.WARNING
    with _logging_to(sys.stderr, level):
        return _run(options)


# -- fixes in shell terms --------------------------------------------------------------------------

# The library's messages say their fixes as Python (``on_mismatch='update'``, ``timeout=3600``,
# ``run.wait()``); the command line says them as the options and commands that do the same.
# Keywords: Python keyword -> CLI option (None: no CLI option, left as it is).
_KEYWORD_OPTIONS: dict[str, str] = {
    "on_mismatch": "--on-mismatch",
    "timeout": "--timeout",
    "prefix": "--prefix",
    "limit": "--limit",
    "status": "--status",
    "experiment": "--experiment",
    "compute": "--compute",
    "source_directory": "--source-dir",
    "environment": "--env",
    "vm_size": "--vm-size",
    "max_nodes": "--max-nodes",
    "min_nodes": "--min-nodes",
    "vm_priority": "--priority",
    "idle_seconds_before_scaledown": "--idle-seconds",
}
_FIXES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # The command takes its credentials from the environment only.
    (re.compile(r"(?:,\s*|\s+|^)or pass auth= explicitly"), ""),
    (re.compile(r"\bwait=False\b"), "--no-wait"),
    (
        re.compile(
            r"\benvironment=\s*mlboot\.Environment\.from_\w+\(\.\.\.\)(?: \(or another "
            r"Environment\))?"
        ),
        "--env FILE (a pip requirements file or a conda .yml)",
    ),
    (re.compile(r"\bmlboot\.get_run\(workspace, '([^']+)'\)"), r"mlboot runs show \1"),
    (re.compile(r"(?:\bcall )?\.cancel\(\)(?: on it\b)?"), "mlboot runs cancel RUN_ID"),
    (re.compile(r"\b(?:call )?run\.wait\(\)"), "run mlboot runs wait RUN_ID"),
    (re.compile(r"\bmlboot\.RunStatus\.[A-Z_]+"), "--status NAME"),
    # An input's or output's mode: the command takes it per name (`--mode NAME=MODE`).
    (re.compile(r"\bmode='(\w+)'"), r"--mode NAME=\1"),
    (re.compile(r"\bpass script="), "give SCRIPT as "),
    (re.compile(r"\bscript="), "SCRIPT "),
    (
        re.compile(
            r"\b(" + "|".join(_KEYWORD_OPTIONS) + r")=(?:'([^']*)'|\"([^\"]*)\"|([\w.:+-]*\w))"
        ),
        None,  # _keyword
    ),
    (re.compile(r"\bsource_directory\b(?!=)"), "--source-dir"),
    (
        re.compile(r"\bNone to wait as long as the run takes\b"),
        "no --timeout to wait as long as the run takes",
    ),
)


def _keyword(found: re.Match[str]) -> str:
    value = next((group for group in found.groups()[1:] if group is not None), "")
    return f"{_KEYWORD_OPTIONS[found.group(1)]} {shlex.quote(value)}"


def shell_fix(text: str) -> str:
    """``text`` with the Python keyword fixes it names written as ``mlboot`` options."""
    for pattern, replacement in _FIXES:
        text = pattern.sub(_keyword if replacement is None else replacement, text)
    return text
