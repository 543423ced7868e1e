"""What the benchmarks run: generated trees, the emulator outside pytest, both workflows."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))  # tests/ is not a package: the emulator imports as "emulator"

MB = 1024**2
CLUSTER = "cpu-cluster"
VM_SIZE = "STANDARD_DS3_V2"
EXPERIMENT = "bench-exp"
TRAIN = "import sys\nprint('training', sys.argv[1:])\n"


def check(condition: bool, message: str) -> None:  # noqa: FBT001
    """A benchmark's sanity check that survives ``python -O`` (unlike ``assert``)."""
    if not condition:
        raise RuntimeError(message)


# -- generated trees ---------------------------------------------------------------------------


def sparse_file(path: Path, size: int) -> None:
    """A file of ``size`` bytes with (almost) nothing written: a hole the kernel reads as zeros."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(b"x")
        os.truncate(handle.fileno(), size)


def small_files(root: Path, count: int, *, per_folder: int = 1000, size: int = 64) -> None:
    body = (b"# generated\n" * (size // 12 + 1))[:size]
    for index in range(count):
        folder = root / f"pkg{index // per_folder:03d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod_{index:05d}.py").write_bytes(body)


def oversized_tree(root: Path, *, data_bytes: int, data_files: int, small: int) -> Path:
    """``data/`` (sparse, ``data_bytes`` in ``data_files``) plus ``src/`` (``small`` files)."""
    for index in range(data_files):
        sparse_file(root / "data" / f"shard_{index:02d}.bin", data_bytes // data_files)
    small_files(root / "src", small)
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    return root


def allowed_tree(root: Path, *, total_bytes: int, files: int, big_files: int) -> Path:
    """``files`` files holding ``total_bytes``: ``big_files`` sparse ones carry the bulk."""
    small = files - big_files - 1
    small_files(root / "src", small, per_folder=200, size=2048)
    bulk = total_bytes - small * 2048
    for index in range(big_files):
        sparse_file(root / "data" / f"part_{index:03d}.bin", bulk // big_files)
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    return root


def data_folder(root: Path, *, files: int, total_bytes: int, folders: int = 10) -> Path:
    """A local input folder: ``files`` files of random bytes (seeded) in ``folders`` folders.

    Real content, not sparse: hashing it is what mlboot's second upload costs.
    """
    import random  # noqa: PLC0415

    draw = random.Random(16)  # noqa: S311  (test data, not secrets)
    size = total_bytes // files
    for index in range(files):
        folder = root / f"part{index % folders:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"shard_{index:05d}.bin").write_bytes(draw.randbytes(size))
    return root


def tree_size(root: Path) -> tuple[int, int]:
    count = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            count += 1
            size += (Path(folder) / name).stat().st_size
    return count, size


def disk_bytes(root: Path) -> int:
    return sum(
        (Path(folder) / name).stat().st_blocks * 512
        for folder, _dirs, names in os.walk(root)
        for name in names
    )


def sdk_size_check_stats(root: Path) -> int:
    """How many files the SDK's stat-only size check looks at before it stops (walk order)."""
    seen = total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            seen += 1
            total += (Path(folder) / name).stat().st_size
            if total > 300 * MB:
                return seen
    return seen


# -- the SDK's own snapshot path, without a service ----------------------------------------------


class _NoPreviousSnapshot:
    """Stands in for ContentSnapshotCache: the answer of a workspace with no snapshot yet."""

    def get_latest_snapshot(self) -> tuple[Any, None]:
        from azureml._base_sdk_common.merkle_tree import DirTreeNode  # noqa: PLC0415

        node = DirTreeNode()
        node.load_object_from_dict({})  # what the service answers: {"id": null, "root": {}}
        return node, None

    def remove_latest(self) -> None:
        return None


def sdk_snapshots_client() -> Any:
    """A real ``SnapshotsClient`` whose service-facing parts are never reached before a verdict.

    ``create_snapshot`` runs unmodified: ignore file, stat-only size check (early stop at
    300 MB), previous-snapshot lookup (stubbed: none), SHA-512 merkle tree, diff, file count.
    Only a call that passes every check would go on to the network, and none does here.
    """
    from azureml._restclient.snapshots_client import SnapshotsClient  # noqa: PLC0415

    client = SnapshotsClient.__new__(SnapshotsClient)
    client._logger = logging.getLogger("bench.sdk.snapshots")  # noqa: SLF001
    client._cache = _NoPreviousSnapshot()  # noqa: SLF001
    return client


def sdk_rejects(client: Any, root: Path) -> str:
    """Run the SDK's submit-time snapshot path on ``root``; return its rejection message."""
    from azureml.exceptions import SnapshotException  # noqa: PLC0415

    try:
        client.create_snapshot(str(root))
    except SnapshotException as exc:
        return str(exc)
    raise AssertionError(f"azureml-core accepted {root}")


def sdk_hash_tree(root: Path) -> int:
    """What the SDK does to an allowed tree before uploading: size check, merkle tree, diff."""
    from azureml._base_sdk_common.merkle_tree import create_merkletree  # noqa: PLC0415
    from azureml._base_sdk_common.merkle_tree_differ import compute_diff  # noqa: PLC0415
    from azureml._project.ignore_file import get_project_ignore_file  # noqa: PLC0415

    client = sdk_snapshots_client()
    exclude = get_project_ignore_file(str(root)).is_file_excluded
    client._validate_snapshot_size(str(root), exclude, True)  # noqa: SLF001, FBT003
    previous, _snapshot_id = _NoPreviousSnapshot().get_latest_snapshot()
    tree = create_merkletree(str(root), exclude)
    return len([e for e in compute_diff(previous, tree) if e.is_file])


# -- the emulator outside pytest -----------------------------------------------------------------


@dataclass
class Service:
    emulator: Any
    config: Path
    work: Path

    def fresh_source(self) -> Path:
        """A new tiny project per workflow, so the SDK's local snapshot cache never skips one."""
        root = self.work / "src" / f"p{time.perf_counter_ns()}"
        root.mkdir(parents=True)
        (root / "train.py").write_text(TRAIN, encoding="utf-8")
        (root / "util.py").write_text("X = 1\n", encoding="utf-8")
        return root


@contextlib.contextmanager
def emulated_service(work: Path) -> Iterator[Service]:
    import pytest  # noqa: PLC0415

    from emulator import Emulator, isolate_sdk, stop_sdk_daemons  # noqa: PLC0415

    patch = pytest.MonkeyPatch()
    emu = Emulator(work / "emulator", time_limit=1800.0)
    emu.start()
    try:
        isolate_sdk(patch, emu, work / "home")
        state = emu.add_workspace()
        emu.add_compute(CLUSTER, vm_size=VM_SIZE, max_nodes=4)
        config = work / "config.json"
        config.write_text(
            json.dumps(
                {
                    "subscription_id": state.subscription_id,
                    "resource_group": state.resource_group,
                    "workspace_name": state.name,
                }
            ),
            encoding="utf-8",
        )
        yield Service(emu, config, work)
    finally:
        stop_sdk_daemons()
        emu.stop()
        patch.undo()
    if emu.handler_errors:
        raise RuntimeError("the emulator failed:\n" + "\n".join(emu.handler_errors))


# -- a local input, uploaded by mlboot ----------------------------------------------------------


class MlbootUpload:
    """mlboot's whole path for a local input folder, as submit_script takes it.

    The walk and checks (``walk_local_input``), then the content-addressed upload
    (``upload_local_input``: hash the tree, ask for its marker, else upload every file and the
    marker last), through the azureml-core backend, under a submit-sized deadline.
    """

    def __init__(self, service: Service) -> None:
        import mlboot  # noqa: PLC0415

        self._workspace = mlboot.workspace_from_config(service.config, auth=service.emulator.auth)
        backend = self._workspace.backend
        info = backend.get_datastore(self._workspace.ref, None)
        check(info is not None, "the emulator has no default datastore")
        self._datastore = info.name if info is not None else ""

    def __call__(self, root: Path) -> str:
        from mlboot._data_submit import upload_local_input, walk_local_input  # noqa: PLC0415
        from mlboot._deadline import bounded  # noqa: PLC0415

        backend = self._workspace.backend
        with bounded(backend.clock, 600.0, what="uploading", limit="600 s", fix="-"):
            local = walk_local_input("inputs['data'].source", root)
            return upload_local_input(backend, self._workspace.ref, self._datastore, local)


# -- polling schedules -------------------------------------------------------------------------


def mlboot_poll_times(horizon: float, first: float = 2.0) -> list[float]:
    """When mlboot's Run.wait reads the status: at once, then pauses 2 s, x1.5, capped at 60 s."""
    times, now, pause = [], 0.0, first
    while now < horizon:
        times.append(now)
        now += pause
        pause = min(pause * 1.5, max(first, 60.0))
    return times


def sdk_poll_times(horizon: float, low: float = 2.0, high: float = 60.0) -> list[float]:
    """azureml/core/run.py: sleep max(2, 60 / (1 + 100 exp(-t / 20))) BEFORE each status read."""
    times, now = [], 0.0
    while True:
        now += max(low, high / (1.0 + 100 * math.exp(-now / 20.0)))
        if now >= horizon:
            return times
        times.append(now)


class VirtualClock:
    """Simulated time: sleeping moves it forward at once (mlboot Clock and SDK `time` alike)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # the rest of the time module, for azureml/core/run.py


# -- the two workflows -------------------------------------------------------------------------


def _stretch(emu: Any, run_id: str, running_reads: int) -> None:
    """From now on, the run answers Running for ``running_reads`` more reads, then Completed."""
    state = emu.run(run_id)
    state.program.status_sequence = ["Running"] * (state.index + running_reads) + ["Completed"]


def sdk_workflow(
    service: Service,
    *,
    running_reads: int = 2,
    clock: VirtualClock | None = None,
) -> float:
    """The hand-written launcher of the origin article; returns the simulated wait length."""
    from azureml.core import Experiment, ScriptRunConfig, Workspace  # noqa: PLC0415
    from azureml.core.compute import AmlCompute, ComputeTarget  # noqa: PLC0415
    from azureml.core.compute_target import ComputeTargetException  # noqa: PLC0415

    emu = service.emulator
    emu.program_run(["Running"])
    with contextlib.redirect_stdout(io.StringIO()):
        workspace = Workspace.from_config(path=str(service.config), auth=emu.auth)
        try:
            cluster = ComputeTarget(workspace=workspace, name=CLUSTER)
        except ComputeTargetException:
            config = AmlCompute.provisioning_configuration(vm_size=VM_SIZE, max_nodes=4)
            cluster = ComputeTarget.create(workspace, CLUSTER, config)
            cluster.wait_for_completion(show_output=False)
        script = ScriptRunConfig(
            source_directory=str(service.fresh_source()),
            script="train.py",
            arguments=["--epochs", 3],
            compute_target=cluster,
        )
        run = Experiment(workspace=workspace, name=EXPERIMENT).submit(script)
        _stretch(emu, run.id, running_reads)
        if clock is None:
            run.wait_for_completion(show_output=False)
            return 0.0
        # The SDK's real schedule (2 s to 60 s), in simulated time; the emulator helpers had
        # shortened it for the wall-time runs, so it is put back as it was afterwards.
        with sdk_polling(clock):
            run.wait_for_completion(show_output=False)
        return clock.now


def mlboot_workflow(
    service: Service,
    *,
    running_reads: int = 2,
    clock: VirtualClock | None = None,
    poll_interval: float = 0.05,
) -> float:
    """The same workflow in mlboot's three calls; returns the simulated wait length."""
    import mlboot  # noqa: PLC0415
    from mlboot._backends.azureml._azureml import AzureMLBackend  # noqa: PLC0415

    emu = service.emulator
    emu.program_run(["Running"])
    backend = AzureMLBackend(clock=clock) if clock is not None else None
    workspace = mlboot.workspace_from_config(service.config, auth=emu.auth, backend=backend)
    cluster = mlboot.get_or_create_compute_target(
        workspace, CLUSTER, vm_size="Standard_DS3_v2", max_nodes=4
    )
    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute=cluster,
        experiment=EXPERIMENT,
        source_directory=service.fresh_source(),
        arguments=["--epochs", 3],
    )
    _stretch(emu, run.id, running_reads)
    status = run.wait(poll_interval=2.0 if clock is not None else poll_interval)
    check(status is mlboot.RunStatus.COMPLETED, f"the mlboot run ended {status}")
    return clock.now if clock is not None else 0.0


def counted(service: Service, workflow: Callable[[], float]) -> tuple[int, int, float]:
    """(requests, status reads, simulated seconds) of one workflow on the emulator's wire."""
    emu = service.emulator
    emu.clear_requests()
    simulated = workflow()
    reads = sum(
        1
        for r in emu.requests
        if r.route
        and r.route.startswith("history.run.")
        and r.method == "GET"
        and ("get" in r.route or "details" in r.route)
    )
    return len(emu.requests), reads, simulated


# -- following a run's log (show_output) -------------------------------------------------------

DRIVER_LOG = "azureml-logs/70_driver_log.txt"


class SkippingClock:
    """Real time, with every sleep skipped: now = wall seconds elapsed + seconds slept.

    Requests cost what they cost on the wire; the pauses between them pass at once. Each read
    or sleep first calls ``on_time(now)`` (a log written on a schedule of these times).
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._slept = 0.0
        self.on_time: Callable[[float], None] = lambda _now: None

    def _now(self) -> float:
        return time.perf_counter() - self._start + self._slept

    def monotonic(self) -> float:
        now = self._now()
        self.on_time(now)
        return now

    def time(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        self._slept += max(seconds, 0.0)
        self.on_time(self._now())

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)  # the rest of the time module, for azureml/core/run.py


@dataclass
class GrowingLog:
    """One run's driver log, a stamped line at each of ``times`` (s after ``start``), then the end.

    Driven by a :class:`SkippingClock`: whenever a follower looks at the time, the lines due by
    then are appended on the emulator (its log URL serves them at once), and the run answers
    Completed from ``end`` on.
    """

    emulator: Any
    run_id: str
    times: list[float]
    end: float
    start: float
    written: int = 0
    ended: bool = False

    def __call__(self, now: float) -> None:
        due = now - self.start
        while self.written < len(self.times) and self.times[self.written] <= due:
            stamp = self.start + self.times[self.written]
            self.emulator.append_log(self.run_id, f"LINE {stamp:.6f}\n")
            self.written += 1
        if not self.ended and due >= self.end:
            self.emulator.set_run_status(self.run_id, "Completed")
            self.ended = True


def line_times(seed: int, horizon: float) -> list[float]:
    """When the script prints: gaps drawn uniformly from 0.5-10 s, up to ``horizon``."""
    import random  # noqa: PLC0415

    draw, times, now = random.Random(seed), [], 0.0  # noqa: S311  (a seeded schedule)
    while True:
        now += draw.uniform(0.5, 10.0)
        if now >= horizon:
            return times
        times.append(round(now, 3))


@contextlib.contextmanager
def sdk_polling(clock: VirtualClock | SkippingClock) -> Iterator[None]:
    """azureml/core/run.py on ``clock``, with its real 2 s to 60 s schedule, put back after."""
    import azureml.core.run as sdk_run  # noqa: PLC0415

    run_class = sdk_run.Run
    saved = (
        sdk_run.time,
        run_class._WAIT_COMPLETION_POLLING_INTERVAL_MIN,  # noqa: SLF001
        run_class._WAIT_COMPLETION_POLLING_INTERVAL_MAX,  # noqa: SLF001
    )
    sdk_run.time = clock  # type: ignore[assignment]
    run_class._WAIT_COMPLETION_POLLING_INTERVAL_MIN = 2.0  # noqa: SLF001
    run_class._WAIT_COMPLETION_POLLING_INTERVAL_MAX = 60.0  # noqa: SLF001
    try:
        yield
    finally:
        (
            sdk_run.time,
            run_class._WAIT_COMPLETION_POLLING_INTERVAL_MIN,  # noqa: SLF001
            run_class._WAIT_COMPLETION_POLLING_INTERVAL_MAX,  # noqa: SLF001
        ) = saved


def follow_growing_log(
    service: Service,
    clock: SkippingClock,
    submit: Callable[[], tuple[str, Callable[[], object]]],
    times: list[float],
    end: float,
) -> None:
    """Submit a run (``submit`` returns its id and its follow), grow its log, follow it."""
    service.emulator.program_run(["Running"], logs={DRIVER_LOG: ""})
    run_id, follow = submit()
    clock.on_time = GrowingLog(service.emulator, run_id, times, end, start=clock.monotonic())
    try:
        follow()
    finally:
        clock.on_time = lambda _now: None


# -- SDK v2 (azure-ai-ml) on the same emulator ---------------------------------------------------

V2_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"


@contextlib.contextmanager
def v2_on(service: Service) -> Iterator[None]:
    """azure-ai-ml and azureml-mlflow pointed at ``service``'s emulator (on top of v1's setup)."""
    import pytest  # noqa: PLC0415

    from emulator import isolate_v2_sdk  # noqa: PLC0415

    patch = pytest.MonkeyPatch()
    isolate_v2_sdk(patch, service.emulator)
    try:
        yield
    finally:
        patch.undo()


def v2_credential(service: Service) -> Any:
    from emulator import StaticTokenCredential  # noqa: PLC0415

    return StaticTokenCredential.for_emulator(service.emulator)


def sdk_v2_client(service: Service) -> Any:
    """``MLClient`` as a hand-written launcher makes it (it sends nothing by itself)."""
    from azure.ai.ml import MLClient  # noqa: PLC0415

    from emulator import v2_client_kwargs  # noqa: PLC0415

    state = service.emulator.workspace
    return MLClient(
        v2_credential(service),
        state.subscription_id,
        state.resource_group,
        state.name,
        **v2_client_kwargs(),
    )


def mlboot_v2_workspace(service: Service) -> Any:
    import mlboot  # noqa: PLC0415

    return mlboot.workspace_from_config(
        service.config, auth=v2_credential(service), backend="azureml-v2"
    )


def ignored_tree(root: Path, ignored: int) -> Path:
    """A project of two files whose root .amlignore leaves out ``ignored/`` (``ignored`` files)."""
    small_files(root / "ignored", ignored)
    (root / ".amlignore").write_text("ignored/\n", encoding="utf-8")
    (root / "util.py").write_text("X = 1\n", encoding="utf-8")
    touch_script(root)
    return root


def touch_script(root: Path) -> None:
    """A new train.py: a code hash not seen before, so the next submit uploads again."""
    (root / "train.py").write_text(f"{TRAIN}# {time.perf_counter_ns()}\n", encoding="utf-8")


def sdk_v2_submit(client: Any, source: Path) -> str:
    """The hand-written v2 submit: ``jobs.create_or_update(command(code=folder, ...))``."""
    from azure.ai.ml import command  # noqa: PLC0415
    from azure.ai.ml.entities import Environment  # noqa: PLC0415

    job = command(
        code=str(source),
        command="python train.py --epochs 3",
        environment=Environment(image=V2_IMAGE),
        compute=CLUSTER,
        experiment_name=EXPERIMENT,
    )
    return str(client.jobs.create_or_update(job).name)


def mlboot_v2_submit(workspace: Any, source: Path) -> Any:
    import mlboot  # noqa: PLC0415

    return mlboot.submit_script(
        workspace,
        "train.py",
        compute=CLUSTER,
        experiment=EXPERIMENT,
        source_directory=source,
        arguments=["--epochs", 3],
        environment=mlboot.Environment.from_docker_image(V2_IMAGE),
    )


_V2_STATUSES = ("Queued", "Running", "Running", "Completed")


def sdk_v2_workflow(service: Service) -> None:
    """The hand-written v2 launcher: client, existing cluster (or create), submit, stream."""
    from azure.ai.ml.entities import AmlCompute  # noqa: PLC0415
    from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

    service.emulator.program_job(_V2_STATUSES)
    client = sdk_v2_client(service)
    try:
        client.compute.get(CLUSTER)
    except ResourceNotFoundError:
        cluster = AmlCompute(name=CLUSTER, size=VM_SIZE, max_instances=4)
        client.compute.begin_create_or_update(cluster).result()
    name = sdk_v2_submit(client, service.fresh_source())
    with contextlib.redirect_stdout(io.StringIO()) as stream:
        client.jobs.stream(name)  # the documented wait: returns at the end, raises if Failed
    output = stream.getvalue()
    check("Execution Summary" in output, f"the hand-written v2 job did not end: {output!r}")


def mlboot_v2_workflow(service: Service, *, poll_interval: float = 0.001) -> None:
    """The same workflow in mlboot's three calls on the azureml-v2 backend."""
    import mlboot  # noqa: PLC0415

    service.emulator.program_job(_V2_STATUSES)
    workspace = mlboot_v2_workspace(service)
    cluster = mlboot.get_or_create_compute_target(
        workspace, CLUSTER, vm_size="Standard_DS3_v2", max_nodes=4
    )
    run = mlboot.submit_script(
        workspace,
        "train.py",
        compute=cluster,
        experiment=EXPERIMENT,
        source_directory=service.fresh_source(),
        arguments=["--epochs", 3],
        environment=mlboot.Environment.from_docker_image(V2_IMAGE),
    )
    status = run.wait(poll_interval=poll_interval, timeout=120)
    check(status is mlboot.RunStatus.COMPLETED, f"the mlboot v2 run ended {status}")
