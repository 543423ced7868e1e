"""mlboot against the raw SDK, side by side, as ratios: `nox -s bench` (or `--quick`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _workloads as work
from _harness import Figure, explain, side_by_side, table, timed

RUN_SECONDS = 600.0  # "a run that lasts 10 simulated minutes"


@dataclass
class Context:
    repetitions: int
    quick: bool
    tmp: Path
    _service: work.Service | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    _v2: bool = False

    def service(self) -> work.Service:
        if self._service is None:
            self._service = self._stack.enter_context(work.emulated_service(self.tmp / "svc"))
        return self._service

    def v2_service(self) -> work.Service:
        """The same emulator, with azure-ai-ml pointed at it too."""
        service = self.service()
        if not self._v2:
            self._stack.enter_context(work.v2_on(service))
            self._v2 = True
        return service


# -- 1. import ---------------------------------------------------------------------------------


def _import_seconds(statement: str) -> float:
    code = (
        "import time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"t = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return float(out.stdout.strip().splitlines()[-1])


# Everything the three calls and a Run load before they first need the SDK.
_FIRST_USE = (
    "import mlboot\n"
    "mlboot.workspace_from_config, mlboot.get_or_create_compute_target, mlboot.submit_script\n"
    "mlboot.Run, mlboot.Environment"
)


def bench_import(ctx: Context) -> list[Figure]:
    bare = side_by_side(
        "1. import",
        ("import azureml.core", lambda: _import_seconds("import azureml.core")),
        ("import mlboot", lambda: _import_seconds("import mlboot")),
        ctx.repetitions,
        at_most=0.05,
    )
    explain(
        bare,
        "time of the import statement in a fresh interpreter, start-up excluded. import mlboot "
        "loads mlboot.exceptions only; each public name loads its module on first use (PEP 562), "
        "because pytest imports mlboot (its plugin) in every project that has it installed. "
        "Before that change: 0.044-0.11 (~0.09-0.12 s; see 1b. for what it now costs later).",
        "MISSED: the import statement runs two small modules, so only a stall of the machine "
        "during those few milliseconds can make it miss; plan: rerun, then profile with "
        "python -X importtime if it repeats.",
    )
    first_use = side_by_side(
        "1b. import and first use",
        ("import azureml.core", lambda: _import_seconds("import azureml.core")),
        ("import mlboot + the three calls", lambda: _import_seconds(_FIRST_USE)),
        ctx.repetitions,
        at_most=None,
    )
    explain(
        first_use,
        "as 1., with mlboot's three functions, Run and Environment looked up after the import: "
        "what a program pays for mlboot before the first call loads the SDK itself. Of the "
        "standard library it loads, the SDK loads logging, typing, pathlib, re, enum and inspect "
        "too; attrs and mlboot's own modules (attrs classes built at import) are mlboot's alone.",
    )
    return [bare, first_use]


# -- 2. rejecting an oversized source folder -----------------------------------------------------


def _mlboot_rejects(root: Path) -> None:
    from mlboot import plan_snapshot  # noqa: PLC0415
    from mlboot.exceptions import SnapshotTooLargeError  # noqa: PLC0415

    try:
        plan_snapshot(root, environ={})
    except SnapshotTooLargeError:
        return
    raise AssertionError(f"mlboot accepted {root}")


def bench_reject(ctx: Context) -> list[Figure]:
    import mlboot  # noqa: F401, PLC0415  (imports paid before timing)

    client = work.sdk_snapshots_client()
    data_bytes, small = (400 * work.MB, 2_100) if ctx.quick else (1024 * work.MB, 30_000)
    root = work.oversized_tree(
        ctx.tmp / "oversized", data_bytes=data_bytes, data_files=4, small=small
    )
    files, size = work.tree_size(root)
    on_disk = work.disk_bytes(root)
    stats = work.sdk_size_check_stats(root)
    verdicts: dict[str, str] = {}

    def both_reject(name: str, target: Path, key: str) -> Figure:
        def sdk() -> float:
            return timed(lambda: verdicts.__setitem__(key, work.sdk_rejects(client, target)))

        return side_by_side(
            name,
            ("SDK create_snapshot", sdk),
            ("plan_snapshot", lambda: timed(lambda: _mlboot_rejects(target))),
            ctx.repetitions,
            at_most=0.05,
        )

    size_figure = both_reject("2. reject oversized folder (size)", root, "size")
    work.check("exceeds the limit of 300" in verdicts["size"], verdicts["size"])
    explain(
        size_figure,
        f"{files:,} files, {size / work.MB:,.0f} MiB ({on_disk / work.MB:,.1f} MiB on disk: "
        "data/ is sparse). Both raise (SDK: SnapshotException 'exceeds the limit of 300 MB'; "
        "mlboot: SnapshotTooLargeError). Measured: the SDK's real submit-time path, the "
        "unmodified SnapshotsClient.create_snapshot with the previous-snapshot lookup stubbed "
        "(no service). Its size check comes first and is stat-only with an early stop at "
        f"300 MB: in this tree's os.walk order it looked at {stats:,} of {files:,} files before "
        "rejecting, so sparse files change nothing here (no content is read). mlboot walks the "
        "whole tree (every stat, plus the .amlignore advice in the message) by design.",
        "MISSED, and not reachable as posed: the SDK's size rejection never hashes (it is "
        "a stat walk with an early stop), so a 20x win would need mlboot to be 20x faster "
        "than stat-ing the same files; plan_snapshot already runs at the cost of a bare "
        "os.walk + stat (see 2b.). It is faster than the SDK only because the SDK matches "
        "every path against the ignore spec. Plan: (a) stop mlboot's walk once the size "
        "verdict is known when the caller does not need the advice; (b) quote the end-to-end "
        "figure instead: mlboot rejects before any remote call, the SDK only after the "
        "workspace, experiment and compute requests of a submit; (c) retarget the issue's "
        "20x at the hashing path (2b./3.), where the SDK reads every byte.",
    )

    count_figure = both_reject("2b. reject too many files (count)", root / "src", "count")
    work.check("exceeds the file limit of 2000" in verdicts["count"], verdicts["count"])
    explain(
        count_figure,
        f"the same tree's src/ alone ({small:,} small files, under 300 MB): the SDK's size check "
        "passes, so it hashes every file (SHA-512 merkle tree) before its file-count check "
        "rejects; mlboot needs stats only. Both raise.",
        "MISSED (an extra figure; the issue's 20x target is for 2.): 64-byte files are "
        "cheap to hash, so the SDK's cost is mostly its own walk; mlboot's plan_snapshot "
        "takes about what a bare os.walk + stat of the 30,000 files takes (measured ~0.11 s "
        "vs ~0.11-0.14 s), so it is at the floor of any exact pre-check. The gap grows with "
        "file size (see 3.). Plan: none for the walk; state the figure per MB of source.",
    )
    shutil.rmtree(root, ignore_errors=True)
    return [size_figure, count_figure]


# -- 3. pre-checking a large allowed tree ------------------------------------------------------


def bench_precheck(ctx: Context) -> list[Figure]:
    from mlboot import plan_snapshot  # noqa: PLC0415

    total, files, big = (20 * work.MB, 200, 5) if ctx.quick else (250 * work.MB, 1_900, 50)
    root = work.allowed_tree(ctx.tmp / "allowed", total_bytes=total, files=files, big_files=big)
    count, size = work.tree_size(root)
    uploads: dict[str, int] = {}

    def sdk() -> float:
        return timed(lambda: uploads.__setitem__("sdk", work.sdk_hash_tree(root)))

    def ours() -> float:
        return timed(lambda: uploads.__setitem__("mlboot", plan_snapshot(root).file_count))

    figure = side_by_side(
        "3. pre-check allowed tree",
        ("SDK size check + merkle hash", sdk),
        ("plan_snapshot", ours),
        ctx.repetitions,
        at_most=None,
    )
    work.check(uploads["sdk"] == uploads["mlboot"] == count, f"different file sets: {uploads}")
    explain(
        figure,
        f"{count:,} files, {size / work.MB:,.0f} MiB; both pick the same {count:,} files. "
        f"The bulk ({big} files) is sparse: the SDK still reads and SHA-512-hashes every byte "
        "(the kernel serves holes as zeros, from memory), so its time is CPU-bound hashing, "
        "like a warm page cache; with real data on a cold disk the SDK side is slower still.",
    )
    shutil.rmtree(root, ignore_errors=True)
    return [figure]


# -- 4. remote calls and polls -----------------------------------------------------------------


def bench_wire(ctx: Context) -> list[Figure]:
    service = ctx.service()
    ours_running = len(work.mlboot_poll_times(RUN_SECONDS))
    sdk_running = len(work.sdk_poll_times(RUN_SECONDS))
    results: dict[str, tuple[int, int, float]] = {}

    def requests(side: str, workflow: Callable[..., object], running_reads: int) -> float:
        results[side] = work.counted(
            service,
            lambda: workflow(service, running_reads=running_reads, clock=work.VirtualClock()),
        )
        return float(results[side][0])

    # Warm-up: the first workflow of a process also fetches discovery and creates the
    # experiment; neither side should pay that inside the count.
    work.sdk_workflow(service)
    work.mlboot_workflow(service)
    calls = side_by_side(
        "4. remote calls, 10-min run",
        ("hand-written SDK", lambda: requests("sdk", work.sdk_workflow, sdk_running)),
        ("mlboot", lambda: requests("mlboot", work.mlboot_workflow, ours_running)),
        max(1, min(ctx.repetitions, 3)),
        at_most=1,
        unit="requests",
    )
    _, s_reads, s_time = results["sdk"]
    _, m_reads, m_time = results["mlboot"]
    explain(
        calls,
        "every request on the emulator's wire (ARM, discovery, data plane, blob) for workspace, "
        "existing cluster, submit and wait, each side on its real polling schedule in simulated "
        f"time (a virtual clock). Run reads: mlboot {m_reads} (its wait returned at "
        f"{m_time:.0f} simulated s), SDK {s_reads} (returned at {s_time:.0f} s).",
    )

    hour = 3600.0
    ours_hour = float(len(work.mlboot_poll_times(hour)))
    sdk_hour = float(len(work.sdk_poll_times(hour)))
    polls = side_by_side(
        "4b. status polls per run-hour",
        ("SDK wait_for_completion", lambda: sdk_hour),
        ("mlboot Run.wait", lambda: ours_hour),
        1,  # analytic: the same every time
        at_most=1,
        unit="polls",
    )
    explain(
        polls,
        "analytic, from the schedules: mlboot reads at once, then pauses 2 s x1.5 up to 60 s; "
        "the SDK sleeps max(2, 60/(1+100 exp(-t/20))) s before each read (azureml/core/run.py). "
        f"In 600 s: mlboot {ours_running} Running reads, SDK {sdk_running}; on the wire above "
        f"mlboot read the run {m_reads} times, the SDK {s_reads} (the schedule's Running reads, "
        "plus the Completed read, plus reads made at submit and the SDK's final get_details). "
        "Both converge on 60/h once at the cap.",
    )
    return [calls, polls]


# -- 6. the whole workflow, wall time ----------------------------------------------------------


def bench_workflow(ctx: Context) -> list[Figure]:
    service = ctx.service()
    # Warm both paths once (imports, discovery cache, TLS) so neither pays the first-call cost.
    work.sdk_workflow(service)
    work.mlboot_workflow(service)
    figure = side_by_side(
        "6. whole workflow, wall time",
        ("hand-written SDK", lambda: timed(lambda: work.sdk_workflow(service))),
        ("mlboot", lambda: timed(lambda: work.mlboot_workflow(service))),
        ctx.repetitions,
        at_most=1.05,
    )
    explain(
        figure,
        "workspace_from_config + get_or_create_compute_target (existing) + submit_script + "
        "Run.wait(poll_interval=0.05) against Workspace.from_config + ComputeTarget (try/except "
        "ComputeTargetException) + ScriptRunConfig + Experiment.submit + "
        "wait_for_completion(show_output=False) with the SDK's polling knobs at 0.05 s; the run "
        "is Running for 2 reads, then Completed. Fresh 2-file project per workflow.",
        "MISSED: see the remote-call count (4.) for the extra requests; plan: drop the "
        "duplicate lookups mlboot makes on top of the SDK's.",
    )
    return [figure]


# -- 5. local execution overhead ---------------------------------------------------------------


LOCAL = "5. local run overhead"


def _skipped(name: str, reason: str) -> Figure:
    figure = Figure(
        name=name,
        unit="s",
        baseline_label="python script.py",
        mlboot_label="LocalBackend submit+wait",
        target="<= 1.5",
        meets=lambda _ratio: False,
        baseline=[1.0],
        mlboot=[float("nan")],
    )
    return explain(figure, f"SKIPPED: {reason}")


def bench_local(ctx: Context) -> list[Figure]:
    try:
        import mlboot  # noqa: PLC0415
        from mlboot._backends.local._local import LocalBackend  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001
        return [_skipped(LOCAL, f"mlboot._backends.local._local does not import ({exc!r})")]
    project = ctx.tmp / "local" / "project"
    project.mkdir(parents=True)
    (project / "script.py").write_text("print('hello')\n", encoding="utf-8")
    (project / "one_second.py").write_text("import time\ntime.sleep(1)\n", encoding="utf-8")
    config = ctx.tmp / "local" / "config.json"
    config.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-000000000000", '
        '"resource_group": "bench-rg", "workspace_name": "bench-ws"}',
        encoding="utf-8",
    )
    workspace = mlboot.workspace_from_config(config, backend=LocalBackend(ctx.tmp / "local" / "ws"))
    pool = mlboot.get_or_create_compute_target(
        workspace, "local-pool", vm_size="Standard_DS3_v2", max_nodes=1
    )

    def direct(script: str) -> float:
        return timed(
            lambda: subprocess.run(
                [sys.executable, script], cwd=project, check=True, capture_output=True
            )
        )

    def ours(script: str) -> float:
        def submit_and_wait() -> None:
            run = mlboot.submit_script(
                workspace, script, compute=pool, experiment="bench-local", source_directory=project
            )
            status = run.wait(poll_interval=0.01)
            work.check(status is mlboot.RunStatus.COMPLETED, f"the local run ended {status}")

        return timed(submit_and_wait)

    try:
        ours("script.py")  # warm-up, and the check that the local backend works at all
    except Exception as exc:  # noqa: BLE001
        return [_skipped(LOCAL, f"LocalBackend submit + wait failed ({exc!r})")]
    trivial = side_by_side(
        LOCAL,
        ("python script.py", lambda: direct("script.py")),
        ("LocalBackend submit+wait", lambda: ours("script.py")),
        ctx.repetitions,
        at_most=1.5,
    )
    script = statistics.median(trivial.baseline)
    overhead = statistics.median(trivial.mlboot) - script
    explain(
        trivial,
        "submit_script + Run.wait(poll_interval=0.01) of a one-line script on LocalBackend "
        "(snapshot copy, run folder, detached supervisor interpreter, script interpreter) "
        "against subprocess python script.py; both start a fresh interpreter for the script. "
        "The wait returns when the run's status changes (the supervisor wakes waiters through "
        "a FIFO), not at its next poll.",
        f"MISSED: a fixed ~{overhead * 1000:.0f} ms on top of a ~{script * 1000:.0f} ms script "
        "(19.1x, ~230 ms, before the lean supervisor). Where it goes (profiled separately, "
        "medians): the supervisor is a second interpreter start in series (~8 ms), then its "
        "standard-library imports (json, subprocess, pathlib, ctypes: ~24 ms, the bulk; the "
        "rest of mlboot is no longer imported), then ~10 ms of subreaper, status, queue and "
        "slot work and spawning the script, and ~3 ms more than python script.py after the "
        "script ends, to reap it, record the ending and wake the wait. Not reachable while a "
        "Python supervisor is the script's parent (how a run outlives its launcher with its "
        "exit status recorded, PR_SET_PDEATHSIG and the subreaper): a bare python -S that only "
        "spawns the script and waits for it already costs 1.9x here; a /bin/sh supervisor would"
        " lose PR_SET_PDEATHSIG, the subreaper and (on macOS) flock. Plan: (a) start the script"
        " before the supervisor's imports (the launcher takes the slot; a first stage importing"
        " only os and ctypes forks the script; json and subprocess load while the script starts"
        " up), estimated ~3x; (b) retarget 5. at what a user feels: a fixed overhead (<= 50 "
        "ms), or the ratio for a script of a second or more (5b.).",
    )
    long = side_by_side(
        "5b. local run overhead, 1 s script",
        ("python one_second.py", lambda: direct("one_second.py")),
        ("LocalBackend submit+wait", lambda: ours("one_second.py")),
        ctx.repetitions,
        at_most=None,
    )
    explain(long, "as 5., with a script that runs for one second (time.sleep(1)).")
    return [trivial, long]


# -- 6. show_output: how soon a printed line is shown --------------------------------------------


STREAM = "6. local show_output line latency"
_LINES = 8
_STAMPED = (
    "import time\n"
    "for _ in range(8):\n"
    "    print(f'LINE {time.time():.6f}', flush=True)\n"
    "    time.sleep(0.3)\n"
)


class _Arrivals(io.TextIOBase):
    """A stdout that notes, for each stamped line, how long after its printing it arrived."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.latencies: list[float] = []
        self._pending = ""
        self._now = now

    def write(self, text: str) -> int:
        arrived = self._now()
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.startswith("LINE "):
                self.latencies.append(arrived - float(line.split()[1]))
        return len(text)


def bench_stream(ctx: Context) -> list[Figure]:
    import mlboot  # noqa: PLC0415
    from mlboot._backends.local._local import LocalBackend  # noqa: PLC0415

    project = ctx.tmp / "stream" / "project"
    project.mkdir(parents=True)
    (project / "stamped.py").write_text(_STAMPED, encoding="utf-8")
    config = ctx.tmp / "stream" / "config.json"
    config.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-000000000000", '
        '"resource_group": "bench-rg", "workspace_name": "bench-ws"}',
        encoding="utf-8",
    )
    root = ctx.tmp / "stream" / "ws"
    workspace = mlboot.workspace_from_config(config, backend=LocalBackend(root))
    pool = mlboot.get_or_create_compute_target(
        workspace, "stream-pool", vm_size="Standard_DS3_v2", max_nodes=1
    )

    def piped() -> float:
        arrivals = _Arrivals()
        with subprocess.Popen(
            [sys.executable, "stamped.py"], cwd=project, stdout=subprocess.PIPE, text=True
        ) as process:
            for line in process.stdout or ():
                arrivals.write(line)
        work.check(len(arrivals.latencies) == _LINES, "the piped script printed its lines")
        return statistics.median(arrivals.latencies)

    def streamed() -> float:
        run = mlboot.submit_script(
            workspace,
            "stamped.py",
            compute=pool,
            experiment="bench-stream",
            source_directory=project,
        )
        arrivals = _Arrivals()
        with contextlib.redirect_stdout(arrivals):
            status = run.wait(show_output=True, timeout=120)
        work.check(status is mlboot.RunStatus.COMPLETED, f"the streamed run ended {status}")
        work.check(len(arrivals.latencies) == _LINES, "Run.wait showed all the script's lines")
        return statistics.median(arrivals.latencies)

    figure = side_by_side(
        STREAM,
        ("a pipe read line by line", piped),
        ("Run.wait(show_output=True)", streamed),
        ctx.repetitions,
        at_most=None,
    )
    explain(
        figure,
        "Median time from the script printing a line (time.time() stamped in the line) to the "
        "line reaching stdout: a script printing 8 lines 0.3 s apart, run on LocalBackend and "
        "followed by Run.wait(show_output=True), against the same script's stdout read line by "
        "line from a pipe (the fastest a line can arrive). The issue's bound is about 0.5 s in "
        "absolute terms: mlboot reads the local log every 0.25 s while output is shown.",
    )
    return [figure]


# -- 6b. show_output on Azure ML: mlboot's streaming against the SDK's own -----------------------


AZURE_STREAM = "6b. Azure ML show_output line latency"
_FIRST_MINUTE = 60.0


def bench_azure_stream(ctx: Context) -> list[Figure]:
    from azureml.core import Experiment, ScriptRunConfig, Workspace  # noqa: PLC0415

    import mlboot  # noqa: PLC0415
    from mlboot._backends.azureml._azureml import AzureMLBackend  # noqa: PLC0415

    service = ctx.service()
    emu = service.emulator
    horizon = 120.0 if ctx.quick else 300.0
    clock = work.SkippingClock()
    with contextlib.redirect_stdout(io.StringIO()):
        sdk_workspace = Workspace.from_config(path=str(service.config), auth=emu.auth)
    workspace = mlboot.workspace_from_config(
        service.config, auth=emu.auth, backend=AzureMLBackend(clock=clock)
    )
    cluster = mlboot.get_or_create_compute_target(
        workspace, work.CLUSTER, vm_size="Standard_DS3_v2", max_nodes=4
    )
    seeds = {"sdk": 0, "mlboot": 0}
    lines: dict[str, int] = {}
    first_minute: dict[str, list[float]] = {"sdk": [], "mlboot": []}
    requests: dict[str, list[int]] = {"sdk": [], "mlboot": []}

    def measured(side: str, submit: Callable[[], tuple[str, Callable[[], object]]]) -> float:
        # Repetition k of either side follows the same log: the same lines at the same times.
        times = work.line_times(seeds[side], horizon)
        seeds[side] += 1
        arrivals = _Arrivals(clock.time)
        before = len(emu.requests)
        with contextlib.redirect_stdout(arrivals):
            work.follow_growing_log(service, clock, submit, times, end=horizon)
        requests[side].append(len(emu.requests) - before)
        work.check(len(arrivals.latencies) == len(times), f"{side} showed every line once")
        lines[side] = len(times)
        paired = zip(times, arrivals.latencies, strict=True)
        early = [late for at, late in paired if at < _FIRST_MINUTE]
        first_minute[side].append(statistics.median(early))
        return statistics.median(arrivals.latencies)

    def sdk() -> tuple[str, Callable[[], object]]:
        script = ScriptRunConfig(
            source_directory=str(service.fresh_source()),
            script="train.py",
            compute_target=work.CLUSTER,
        )
        run = Experiment(workspace=sdk_workspace, name=work.EXPERIMENT).submit(script)

        def follow() -> None:
            with work.sdk_polling(clock):
                run.wait_for_completion(show_output=True)

        return run.id, follow

    def ours() -> tuple[str, Callable[[], object]]:
        run = mlboot.submit_script(
            workspace,
            "train.py",
            compute=cluster,
            experiment=work.EXPERIMENT,
            source_directory=service.fresh_source(),
        )
        return run.id, lambda: run.wait(show_output=True, timeout=horizon + 600)

    figure = side_by_side(
        AZURE_STREAM,
        ("SDK wait_for_completion(show_output=True)", lambda: measured("sdk", sdk)),
        ("Run.wait(show_output=True)", lambda: measured("mlboot", ours)),
        max(1, min(ctx.repetitions, 3)),
        at_most=1,
    )
    early = {side: statistics.median(values) for side, values in first_minute.items()}
    calls = {side: statistics.median(values) for side, values in requests.items()}
    explain(
        figure,
        f"median time from a line reaching the run's driver log ({work.DRIVER_LOG}) to it "
        "being printed, for mlboot's Run.wait(show_output=True) on the azureml-core backend and "
        "azureml-core's own Run.wait_for_completion(show_output=True), each following a run on "
        "the emulator whose log gains a line every 0.5-10 s (seeded, the same lines for both "
        f"sides of a repetition; {lines.get('sdk', 0)} lines in {horizon:.0f} s in the last), "
        "then Completed. "
        "Time is real with every sleep skipped: requests cost what they cost on loopback, the "
        "pauses pass at once, so each side polls on its real schedule (the SDK: get_details "
        "and the log download every max(2, 60/(1+100 exp(-t/20))) s; mlboot: the log on that "
        "schedule, the status at its own 2 s x1.5 back-off, each status read followed by a log "
        f"read). Lines of the first minute alone: mlboot {early['mlboot']:.2f} s, SDK "
        f"{early['sdk']:.2f} s. Requests per follow, submission included: mlboot "
        f"{calls['mlboot']:.0f}, SDK {calls['sdk']:.0f} (mlboot's extra are its status reads).",
        "MISSED: mlboot showed lines later than the SDK although its log reads are never "
        "further apart than the SDK's (tests/test_run.py pins that), so the cost per read is to "
        "blame: a status read, then run details and a download on a new session, against the "
        "SDK's details and download on one session; plan: profile one follow, then reuse one "
        "session for the log downloads (src/mlboot/_azureml.py get_run_logs).",
    )
    return [figure]


# -- 7. a local input folder, uploaded twice -----------------------------------------------------


UPLOAD = "7. local input, unchanged second upload"


def _figure(name: str, labels: tuple[str, str], values: tuple[list[float], list[float]]) -> Figure:
    """A figure from values measured together (``labels``/``values``: baseline, mlboot)."""
    return Figure(
        name=name,
        unit="s",
        baseline_label=labels[0],
        mlboot_label=labels[1],
        target="(ratio only)",
        meets=lambda _ratio: True,
        baseline=values[0],
        mlboot=values[1],
    )


def bench_upload(ctx: Context) -> list[Figure]:
    from azureml.core import Workspace  # noqa: PLC0415

    # Datastore.upload's deprecation notice, logged once per process (the SDK's own).
    logging.getLogger("azureml.data._dataset_deprecation").setLevel(logging.ERROR)
    service = ctx.service()
    emu = service.emulator
    files, total = (50, 2 * work.MB) if ctx.quick else (1_000, 200 * work.MB)
    root = work.data_folder(ctx.tmp / "upload" / "input", files=files, total_bytes=total)
    count, size = work.tree_size(root)
    with contextlib.redirect_stdout(io.StringIO()):
        sdk_workspace = Workspace.from_config(path=str(service.config), auth=emu.auth)
    datastore = sdk_workspace.get_default_datastore()
    upload = work.MlbootUpload(service)
    times: dict[str, list[float]] = {"sdk 1": [], "sdk 2": [], "mlboot 1": [], "mlboot 2": []}
    blobs: dict[str, list[tuple[int, int]]] = {
        "sdk 1": [],
        "sdk 2": [],
        "mlboot 1": [],
        "mlboot 2": [],
    }

    def measured(key: str, action: Callable[[], object]) -> None:
        emu.clear_requests()
        times[key].append(timed(action))
        blob = [r.method for r in emu.requests if r.is_blob]
        blobs[key].append((blob.count("HEAD"), blob.count("PUT")))

    def sdk(rep: int) -> None:
        # A new target path per repetition: the first upload finds nothing there.
        def send() -> object:
            return datastore.upload(
                str(root), target_path=f"bench/sdk/{rep}", overwrite=False, show_progress=False
            )

        measured("sdk 1", send)
        measured("sdk 2", send)

    def ours(_rep: int) -> None:
        measured("mlboot 1", lambda: upload(root))
        measured("mlboot 2", lambda: upload(root))

    for rep in range(max(1, min(ctx.repetitions, 3))):
        # One changed file per repetition: a new digest, so mlboot's first upload is a first.
        (root / "repetition.txt").write_text(f"{rep}\n", encoding="utf-8")
        sides = [sdk, ours] if rep % 2 == 0 else [ours, sdk]
        for side in sides:
            side(rep)
        emu.delete_datastore_files("workspaceblobstore", "")  # blobs live in memory
    # Every file (and repetition.txt) on both sides; mlboot's marker besides.
    work.check(
        all(puts == count + 1 for _heads, puts in blobs["sdk 1"])
        and all(puts == count + 2 for _heads, puts in blobs["mlboot 1"]),
        f"a first upload did not send every file: {blobs}",
    )
    work.check(
        all(puts == 0 for _heads, puts in blobs["mlboot 2"] + blobs["sdk 2"]),
        f"a second upload sent files: {blobs}",
    )
    bar = Figure(
        name=UPLOAD,
        unit="s",
        baseline_label="mlboot first upload",
        mlboot_label="mlboot second upload",
        target="<= 0.05",
        meets=lambda ratio: ratio <= 0.05,  # noqa: PLR2004  (the issue's bar)
        baseline=times["mlboot 1"],
        mlboot=times["mlboot 2"],
    )
    sdk_ratio = statistics.median(times["sdk 2"]) / statistics.median(times["sdk 1"])

    def requests(key: str) -> str:
        heads, puts = blobs[key][-1]
        return f"{heads} HEAD, {puts} PUT"

    explain(
        bar,
        f"a local input folder of {count:,} files, {size / work.MB:,.0f} MiB (random bytes, in "
        "10 folders, one small file changed per repetition), uploaded to the emulator's default "
        "datastore by mlboot's content-addressed upload (sha256 of the tree; the files under "
        "mlboot/inputs/sha256-<hex>/, then a marker written last), then again unchanged; "
        "side by side in the same repetitions with azureml-core's "
        "datastore.upload(overwrite=False) to a new path, then again. Blob requests (the last "
        f"repetition): mlboot {requests('mlboot 1')}, then {requests('mlboot 2')}; SDK "
        f"{requests('sdk 1')}, then {requests('sdk 2')}. The SDK's own second upload took "
        f"{sdk_ratio:.0%} of its first (one HEAD per file, in the caller's thread, and a changed "
        "file is skipped, not sent); mlboot's second is the hashing and one HEAD.",
        "MISSED: the second upload is the hashing of the tree and one HEAD; plan: profile the "
        "hashing (read size, the per-file sha256) against sha256sum of the same files.",
    )
    first = _figure(
        "7b. local input, first upload",
        ("SDK datastore.upload(overwrite=False)", "mlboot"),
        (times["sdk 1"], times["mlboot 1"]),
    )
    explain(
        first,
        "the first uploads of 7.: mlboot hashes the tree, asks for the marker, then sends one "
        "PUT per file (overwriting) from 8 threads and the marker last; the SDK sends one HEAD "
        "per file in the caller's thread, each missing file's PUT queued to its thread pool.",
    )
    second = _figure(
        "7c. local input, unchanged second upload vs SDK",
        ("SDK datastore.upload(overwrite=False)", "mlboot"),
        (times["sdk 2"], times["mlboot 2"]),
    )
    explain(second, "the second uploads of 7.: mlboot's against the SDK's, unchanged folder.")
    shutil.rmtree(root, ignore_errors=True)
    return [bar, first, second]


# -- 8-10. SDK v2 (azure-ai-ml): mlboot's azureml-v2 backend against hand-written v2 code ---------


def bench_v2_import(ctx: Context) -> list[Figure]:
    figure = side_by_side(
        "8. import, v2",
        ("import azure.ai.ml", lambda: _import_seconds("import azure.ai.ml")),
        ("import mlboot", lambda: _import_seconds("import mlboot")),
        ctx.repetitions,
        at_most=0.05,
    )
    explain(
        figure,
        "as 1., against azure-ai-ml: time of the import statement in a fresh interpreter, "
        "start-up excluded. import mlboot loads no SDK (the azureml-v2 backend imports "
        "azure.ai.ml on its first call).",
        "MISSED: see 1.; plan: rerun, then python -X importtime if it repeats.",
    )
    return [figure]


def bench_v2_submit(ctx: Context) -> list[Figure]:
    service = ctx.v2_service()
    ignored = 2_000 if ctx.quick else 20_000
    root = work.ignored_tree(ctx.tmp / "v2-ignored", ignored)
    client = work.sdk_v2_client(service)
    workspace = work.mlboot_v2_workspace(service)
    requests: dict[str, list[int]] = {"sdk": [], "mlboot": []}

    def submit(side: str, action: Callable[[], object]) -> float:
        work.touch_script(root)  # a new code hash: each submit uploads, none reuses
        before = len(service.emulator.requests)
        seconds = timed(action)
        requests[side].append(len(service.emulator.requests) - before)
        return seconds

    # Both run from the project folder, as a launcher usually is: azure-ai-ml records the git
    # details of the working directory, mlboot those of the source folder (here the same one).
    previous = Path.cwd()
    os.chdir(root)
    try:
        # Warm-up: imports and the first request of each client (sign-in, MLflow registration).
        work.sdk_v2_submit(client, root)
        work.mlboot_v2_submit(workspace, root)
        figure = side_by_side(
            "9. v2 submit, 20,000 ignored files"
            if not ctx.quick
            else "9. v2 submit, ignored files",
            (
                "jobs.create_or_update(command(...))",
                lambda: submit("sdk", lambda: work.sdk_v2_submit(client, root)),
            ),
            (
                "submit_script",
                lambda: submit("mlboot", lambda: work.mlboot_v2_submit(workspace, root)),
            ),
            ctx.repetitions,
            at_most=0.10,
        )
    finally:
        os.chdir(previous)
    (code,) = {len(service.emulator.code_files(c)) for c in service.emulator.code_versions}
    calls = {side: statistics.median(values) for side, values in requests.items()}
    explain(
        figure,
        f"a project of train.py, util.py and .amlignore, plus ignored/ ({ignored:,} files of 64 "
        "bytes in folders of 1,000) that the root .amlignore leaves out; every code version "
        f"uploaded holds the same {code} files. Each submit follows a new train.py (a code hash "
        "not seen before), so both sides hash, upload and PUT the job every time; the client "
        "and workspace are made before timing (the SDK's MLClient; mlboot's "
        "workspace_from_config on the azureml-v2 backend), both warmed by one submit. "
        "azure-ai-ml walks every file under the root, ignored or not, before matching it "
        "(Azure/azure-sdk-for-python#39235); mlboot's plan prunes ignored folders and hands "
        f"its file list to the upload. Both run from the project folder (not a git repository): "
        "azure-ai-ml asks git about the working directory once (rev-parse, which fails there); "
        "mlboot reads the source folder's git details itself and runs no git where no .git "
        "folder is found. mlboot creates the environment (its PUT) beside the snapshot upload, "
        "the SDK after it. Requests per submit: "
        f"mlboot {calls['mlboot']:.0f}, SDK {calls['sdk']:.0f}.",
        "MISSED: mlboot's side is its 10 requests (code lookup, pending upload, blobs, code, "
        "environment and job PUTs; the emulator closes each connection, so each is a new TLS "
        "connection) plus azure-ai-ml's job schema validation, none of it the walk; the ratio "
        "rests on how long the SDK's walk takes, which the machine's load moves. Plan: rerun on "
        "a quiet machine.",
    )
    shutil.rmtree(root, ignore_errors=True)
    return [figure]


def bench_v2_workflow(ctx: Context) -> list[Figure]:
    service = ctx.v2_service()
    emu = service.emulator
    requests: dict[str, list[int]] = {"sdk": [], "mlboot": []}

    def measured(side: str, workflow: Callable[[work.Service], None]) -> float:
        emu.clear_requests()
        seconds = timed(lambda: workflow(service))
        requests[side].append(len(emu.requests))
        return seconds

    # Warm both paths once (imports, MLflow's registration, the TLS session).
    work.sdk_v2_workflow(service)
    work.mlboot_v2_workflow(service)
    wall = side_by_side(
        "10. v2 whole workflow, wall time",
        ("hand-written azure-ai-ml", lambda: measured("sdk", work.sdk_v2_workflow)),
        ("mlboot azureml-v2", lambda: measured("mlboot", work.mlboot_v2_workflow)),
        ctx.repetitions,
        at_most=1.05,
    )
    calls = side_by_side(
        "10b. v2 whole workflow, requests",
        ("hand-written azure-ai-ml", lambda: float(statistics.median(requests["sdk"]))),
        ("mlboot azureml-v2", lambda: float(statistics.median(requests["mlboot"]))),
        1,  # counted during 10.
        at_most=1,
        unit="requests",
    )
    explain(
        wall,
        "MLClient + compute.get (try/except ResourceNotFoundError, create) + "
        "jobs.create_or_update(command(code=..., environment=Environment(image=...))) + "
        "jobs.stream (its run-history polling bounds at 0, as the emulator setup has them) "
        "against workspace_from_config + get_or_create_compute_target (existing) + "
        "submit_script + Run.wait(poll_interval=0.001, the nearest to jobs.stream's 0), both "
        "on azure-ai-ml against one emulator; the job is Queued, Running for 2 reads, then "
        "Completed. Fresh 2-file project per workflow.",
        "MISSED: see the request count (10b.); plan: profile one mlboot workflow against the "
        "hand-written one request by request.",
    )
    explain(
        calls,
        "every request on the emulator's wire (ARM, data plane, run history, blob) during one "
        "workflow of 10., medians over its repetitions. Measured sequences: the hand-written "
        "code sends compute get, code list + get, environment PUT, job PUT + GET, then "
        "jobs.stream's workspace GET, discovery and 3 run-history details reads (11); mlboot "
        "sends the workspace GET first (workspace_from_config), then the same submit requests, "
        "then 3 jobs.get reads in Run.wait and no discovery (10). The two files of each fresh "
        "project have the same contents, so both sides find the code version by its hash and "
        "upload nothing (8. measures the upload).",
        "MISSED: plan: compare the two request sequences (Emulator.route_sequence) and drop "
        "mlboot's extra reads.",
    )
    return [wall, calls]


BENCHMARKS: dict[str, Callable[[Context], list[Figure]]] = {
    "import": bench_import,
    "reject": bench_reject,
    "precheck": bench_precheck,
    "wire": bench_wire,
    "workflow": bench_workflow,
    "local": bench_local,
    "stream": bench_stream,
    "azure-stream": bench_azure_stream,
    "upload": bench_upload,
    "v2-import": bench_v2_import,
    "v2-submit": bench_v2_submit,
    "v2-workflow": bench_v2_workflow,
}

# Run by default only where the v2 extra (mlboot[v2]) is installed.
_V2 = frozenset({"v2-import", "v2-submit", "v2-workflow"})


def _has_v2() -> bool:
    import importlib.util  # noqa: PLC0415

    try:
        return importlib.util.find_spec("azure.ai.ml") is not None
    except ModuleNotFoundError:  # no azure package at all
        return False


_HAS_V2 = _has_v2()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition, small inputs")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    repetitions = 1 if args.quick else args.repetitions
    warnings.simplefilter("ignore")  # azureml-core's import-time deprecation noise
    logging.getLogger("mlboot").setLevel(logging.ERROR)  # the 25 MB snapshot warning, 3.
    figures: list[Figure] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlboot-bench-") as tmp:
        ctx = Context(repetitions, args.quick, Path(tmp))
        with ctx._stack:  # noqa: SLF001
            for name in args.only or [n for n in BENCHMARKS if _HAS_V2 or n not in _V2]:
                figures += BENCHMARKS[name](ctx)
    text = table(figures)
    print(text)
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
