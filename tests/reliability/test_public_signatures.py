"""Every public callable answers any argument with success or an mlboot error, nothing else.

The parameters of each public function, class constructor and method (of ``mlboot``,
``mlboot.testing`` and ``mlboot.backend``) are read with :func:`inspect.signature`; hypothesis
then passes arbitrary values (``None``, bools, ints, NaN and infinities, text with NUL
characters, huge or non-ASCII text, bytes, paths, lists, dicts, plain objects) mixed with valid
ones, so that each rule deeper in a call is reached too.  A call must return, or raise a
:class:`~mlboot.exceptions.MlbootError` whose message names its field: never a raw
``ValueError``, ``TypeError``, ``OSError`` or ``AttributeError``.  Everything runs against the
fake backend and the local backend in a temporary folder (no run is ever started: the local
workspaces have no compute to run on), so nothing remote happens.  The ``mlboot`` command gets
the same treatment: arbitrary command lines end with one of its documented exit codes, never an
internal error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_ledger import LEDGER

import mlboot
import mlboot.backend
from mlboot._cli import ExitCode, main
from mlboot.exceptions import InvalidInputError, MlbootError, MlbootWarning
from mlboot.testing import Call, FakeBackend, FakeClock, use_backend

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)

GUID = "00000000-0000-0000-0000-000000000000"

# Text never holds '/' and is never '..': relative paths stay inside the test's folder.
_text = st.text(max_size=12).map(lambda t: t.replace("/", "_")).filter(lambda t: t != "..")
_nasty_text = st.sampled_from(
    [
        "",
        " ",
        "a\x00b",
        "\x00",
        "train.py\x00",
        "a" * 253,
        "a" * 255,
        "x" * 5000,
        "é" * 200,
        "\ud800",
        "line\nbreak",
        "\t",
        "cpu cluster",
        "Standard_DS3_v2",
        "local",
        "azureml",
        "yes",
        "true",
        "nan",
        "-1",
        "\u200b",
        "outputs",
    ]
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, -1, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    _text,
    _nasty_text,
    st.binary(max_size=8),
    st.builds(Path, st.one_of(_text, _nasty_text.filter(lambda t: t != "\ud800"))),
    st.just(object()),
    st.just(dt.timedelta(seconds=-1)),
    st.just(dt.timedelta(days=1)),
)
_nasty_paths = st.builds(Path, _nasty_text.filter(lambda t: t != "\ud800"))
ANYTHING = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(_text, _nasty_text, st.integers()), inner, max_size=3),
    ),
    max_leaves=5,
)


@attrs.define
class World:
    """Valid values to mix in, built in a temporary folder that is also the current one."""

    tmp: Path
    fake: FakeBackend
    fake_ws: mlboot.Workspace
    local_ws: mlboot.Workspace
    config: Path
    source: Path
    requirements: Path
    conda: Path
    run: mlboot.Run
    local_run: mlboot.Run
    environment: mlboot.Environment
    broken_environment: mlboot.Environment

    def valid(self) -> dict[str, list[object]]:
        """Valid values by parameter name (per target overrides come first)."""
        return {
            "workspace": [self.fake_ws, self.local_ws],
            "script": ["train.py", self.source / "train.py"],
            "compute": ["cpu", "gpu-cluster"],
            "experiment": ["exp"],
            "source_directory": [self.source, "src", "."],
            "arguments": [(), ["--epochs", 3, 0.5, Path("data")]],
            "environment": [None, self.environment, self.broken_environment],
            "distribution": [None, mlboot.PyTorchDistribution(2), mlboot.MpiDistribution()],
            "node_count": [1, 2],
            "tags": [None, {"team": "vision"}],
            "max_run_duration": [None, 60, dt.timedelta(hours=1)],
            "name": ["cpu-a", "gpu-cluster", "loss", "env-a"],
            "vm_size": ["Standard_DS3_v2"],
            "max_nodes": [1, 2],
            "min_nodes": [0],
            "vm_priority": ["dedicated", "LowPriority"],
            "idle_seconds_before_scaledown": [0, 1800],
            "on_mismatch": ["error", "warn", "update"],
            "wait": [True, False],
            "timeout": [None, 30.0, dt.timedelta(seconds=5)],
            "show_output": [False, True],
            "poll_interval": [0.5, 2.0],
            "cancel_on_interrupt": [False, True],
            "destination": [self.tmp / "downloads", "downloads"],
            "run_id": ["r1", "missing-run"],
            "path": [self.config, self.tmp],
            "backend": [None, self.fake, "local", "azureml", mlboot.LocalBackend(self.tmp / "lb")],
            "auth": [None, mlboot.AzureCliAuth()],
            "python_version": [None, "3.11"],
            "variables": [None, {"A_B": "1"}],
            "version": [None, "3", 3],
            "image": ["mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"],
            "value": [0.5, 3, "text"],
            "step": [None, 0, 7],
            "metrics": [{"loss": 0.1}],
            "root": [self.tmp / "roots", None],
            "tenant_id": [GUID, None],
            "client_id": ["app", None],
            "client_secret": ["s3cr3t-value"],
            "environ": [None, {}],
            "text": ["Completed", "Weird"],
            "status": ["Completed"],
            "operation": ["get_compute", "submit_run"],
            "error": ["transient", mlboot.exceptions.ServiceError("boom")],
            "times": [1, 2],
            "hook": [lambda _: None],
            "clock": [None, FakeClock()],
            "location": ["westeurope"],
            "start": [0.0, 5],
            "statuses": [("Completed",), ["Running", "Failed"]],
            "logs": ["", "line\n"],
            "outputs": [None, {"a.txt": b"x"}],
            "files": [None, {"logs/a.txt": b"x"}],
            "prefix": [None, "outputs/", "logs", ""],
            "seconds": [0.0, 3.0],
            "outcome": ["Succeeded", "Failed"],
            "errors": [(), [("Quota", "no quota")]],
            "kind": ["pip", "AmlCompute"],
            "max_bytes": [10**9],
            "max_files": [2000],
            "warn_bytes": [10**9],
            "process_count_per_node": [1, 4],
            "communication_backend": ["nccl", "gloo"],
        }


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.chdir(tmp_path)
    fake = FakeBackend()
    # Nothing may reach Azure: the default backend is a fake too.
    stack = contextlib.ExitStack()
    stack.enter_context(use_backend(fake))
    config = tmp_path / "config.json"
    config.write_text(
        f'{{"subscription_id": "{GUID}", "resource_group": "rg", "workspace_name": "ws-sig"}}',
        encoding="utf-8",
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n", encoding="utf-8")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("attrs\n", encoding="utf-8")
    conda = tmp_path / "environment.yml"
    conda.write_text("dependencies:\n  - python=3.11\n  - pip:\n    - attrs\n", encoding="utf-8")
    fake_ws = mlboot.workspace_from_config(config, backend=fake)
    # A local workspace with no compute: a valid submit ends in NotFoundError, never in a run.
    local_ws = mlboot.workspace_from_config(
        config, backend=mlboot.LocalBackend(tmp_path / "local-ws")
    )
    fake.add_run("r1", outputs={"a.txt": b"x"})
    environment = mlboot.Environment.from_pip_requirements(requirements, python_version="3.11")
    broken = mlboot.Environment.from_pip_requirements(requirements, python_version="3.11")
    object.__setattr__(broken, "python_version", "2.7")
    with stack:
        yield World(
            tmp=tmp_path,
            fake=fake,
            fake_ws=fake_ws,
            local_ws=local_ws,
            config=config,
            source=source,
            requirements=requirements,
            conda=conda,
            run=mlboot.get_run(fake_ws, "r1"),
            local_run=mlboot.Run(id="local-1", experiment="exp", workspace=local_ws),
            environment=environment,
            broken_environment=broken,
        )


# Each target: the callable under test, built from the world, and valid values of its own.
Target = Callable[[World], tuple[Callable[..., object], dict[str, list[object]]]]


def _record(
    record: Callable[..., object], _: World
) -> tuple[Callable[..., object], dict[str, list[object]]]:
    return record, {}


_PROTOCOLS_AND_ALIASES = {
    "AzureMLObjects",
    "Backend",
    "Clock",
    "Credential",
    "MetricValue",
    "Metrics",
}

TARGETS: dict[str, Target] = {
    "workspace_from_config": lambda _: (mlboot.workspace_from_config, {}),
    "get_or_create_compute_target": lambda _: (mlboot.get_or_create_compute_target, {}),
    "submit_script": lambda _: (mlboot.submit_script, {}),
    "get_run": lambda _: (mlboot.get_run, {}),
    "list_runs": lambda w: (mlboot.list_runs, {"workspace": [w.fake_ws, w.local_ws]}),
    "RunInfo": lambda w: (mlboot.RunInfo, {"run": [w.run], "status": [mlboot.RunStatus.RUNNING]}),
    "Run": lambda _: (mlboot.Run, {"id": ["r1"], "experiment": ["exp"], "portal_url": [None]}),
    "Run.status": lambda w: (w.run.status, {}),
    "Run.wait": lambda w: (w.run.wait, {}),
    "Run.cancel": lambda w: (w.run.cancel, {}),
    "Run.metrics": lambda w: (w.run.metrics, {}),
    "Run.logs": lambda w: (w.run.logs, {}),
    "Run.download_outputs": lambda w: (w.run.download_outputs, {}),
    "Run.file_names": lambda w: (w.run.file_names, {}),
    "Run.download_files": lambda w: (w.run.download_files, {}),
    "local Run.wait": lambda w: (w.local_run.wait, {}),
    "local Run.download_outputs": lambda w: (w.local_run.download_outputs, {}),
    "local Run.file_names": lambda w: (w.local_run.file_names, {}),
    "local Run.download_files": lambda w: (w.local_run.download_files, {}),
    # The value lookup, not the functional API (RunStatus(value, names=...)) of every Enum.
    "RunStatus": lambda _: (
        lambda value: mlboot.RunStatus(value),  # noqa: PLW0108
        {"value": ["Completed"]},
    ),
    "RunStatus.from_service": lambda _: (mlboot.RunStatus.from_service, {}),
    "Workspace": lambda w: (
        mlboot.Workspace,
        {
            "name": ["ws"],
            "subscription_id": [GUID],
            "resource_group": ["rg"],
            "location": ["westeurope"],
            "cloud": ["AzureCloud"],
            "config_path": [None, w.config],
            "backend": [w.fake],
        },
    ),
    "ComputeTarget": lambda _: (
        mlboot.ComputeTarget,
        {
            "name": ["cpu"],
            "vm_priority": ["dedicated"],
            "provisioning_state": ["Succeeded"],
            "kind": ["AmlCompute"],
        },
    ),
    "Environment": lambda w: (
        mlboot.Environment,
        {
            "pip_requirements": [None, w.requirements],
            "conda_specification": [None],
            "docker_image": [None],
            "pip_packages": [()],
            "conda_packages": [()],
        },
    ),
    "Environment.from_pip_requirements": lambda w: (
        mlboot.Environment.from_pip_requirements,
        {"path": [w.requirements]},
    ),
    "Environment.from_conda_specification": lambda w: (
        mlboot.Environment.from_conda_specification,
        {"path": [w.conda]},
    ),
    "Environment.from_docker_image": lambda w: (
        mlboot.Environment.from_docker_image,
        {"conda_specification": [None, w.conda], "pip_requirements": [None, w.requirements]},
    ),
    "Environment.from_registered": lambda _: (
        mlboot.Environment.from_registered,
        {"name": ["AzureML-sklearn-1.0"]},
    ),
    "PyTorchDistribution": lambda _: (mlboot.PyTorchDistribution, {}),
    "MpiDistribution": lambda _: (mlboot.MpiDistribution, {}),
    "AzureCliAuth": lambda _: (mlboot.AzureCliAuth, {}),
    "InteractiveAuth": lambda _: (mlboot.InteractiveAuth, {}),
    "ManagedIdentityAuth": lambda _: (mlboot.ManagedIdentityAuth, {}),
    "ServicePrincipalAuth": lambda _: (mlboot.ServicePrincipalAuth, {}),
    "ServicePrincipalAuth.from_env": lambda _: (mlboot.ServicePrincipalAuth.from_env, {}),
    "Secret": lambda _: (mlboot.Secret, {"value": ["s3cr3t-value"]}),
    "LocalBackend": lambda _: (mlboot.LocalBackend, {}),
    "LocalBackend.run_folder": lambda w: (mlboot.LocalBackend(w.tmp / "lb").run_folder, {}),
    "Input": lambda _: (
        mlboot.Input,
        {"source": ["azureml://datastores/workspaceblobstore/paths/data"]},
    ),
    "Output": lambda _: (mlboot.Output, {}),
    "LocalBackend.add_datastore": lambda w: (mlboot.LocalBackend(w.tmp / "lb").add_datastore, {}),
    "log_metric": lambda _: (mlboot.log_metric, {}),
    "log_metrics": lambda _: (mlboot.log_metrics, {}),
    "output_dir": lambda _: (mlboot.output_dir, {}),
    "plan_snapshot": lambda _: (mlboot.plan_snapshot, {}),
    "SnapshotPlan": lambda _: (mlboot.SnapshotPlan, {}),
    "testing.FakeBackend": lambda _: (FakeBackend, {}),
    "testing.FakeClock": lambda _: (FakeClock, {}),
    "testing.FakeBackend.fail": lambda _: (FakeBackend().fail, {}),
    "testing.FakeBackend.before": lambda _: (FakeBackend().before, {}),
    "testing.FakeBackend.calls_to": lambda w: (w.fake.calls_to, {}),
    "testing.FakeBackend.add_compute": lambda _: (FakeBackend().add_compute, {}),
    "testing.FakeBackend.program_provisioning": lambda _: (
        FakeBackend().program_provisioning,
        {},
    ),
    "testing.FakeBackend.program_run": lambda _: (FakeBackend().program_run, {}),
    "testing.FakeBackend.add_run": lambda _: (FakeBackend().add_run, {}),
    "testing.FakeBackend.mark_workspace_missing": lambda _: (
        FakeBackend().mark_workspace_missing,
        {},
    ),
    "testing.FakeBackend.add_datastore": lambda _: (FakeBackend().add_datastore, {}),
    "testing.FakeBackend.add_dataset": lambda _: (FakeBackend().add_dataset, {}),
    "testing.Call": lambda _: (Call, {}),
    **{
        f"backend.{name}": functools.partial(_record, getattr(mlboot.backend, name))
        # The records and the clock: the protocols and type aliases take no input.
        for name in mlboot.backend.__all__
        if name not in _PROTOCOLS_AND_ALIASES
    },
}


def test_every_public_name_is_a_target_or_has_no_input_to_check() -> None:
    covered = {name.split(".")[0] for name in TARGETS}
    # Types without a constructor of their own (a Protocol, type aliases, the exceptions
    # module) take no input; every other public name is exercised above.
    no_input = {"Backend", "Distribution", "exceptions"}
    assert set(mlboot.__all__) - covered - no_input == set()


def _arguments(
    data: st.DataObject, signature: inspect.Signature, valid: dict[str, list[object]]
) -> tuple[list[object], dict[str, object]]:
    parameters = [
        p
        for p in signature.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    # Mostly valid calls with one arbitrary argument reach the rules deep in a call; fully
    # arbitrary calls try every combination of bad values.
    arbitrary_one = data.draw(st.booleans(), label="one arbitrary argument")
    chosen = (
        data.draw(st.sampled_from(parameters), label="the arbitrary one").name
        if arbitrary_one and parameters
        else None
    )
    positional: list[object] = []
    keywords: dict[str, object] = {}
    for parameter in parameters:
        good = valid.get(parameter.name)
        use_arbitrary = (parameter.name == chosen) if arbitrary_one else None
        if use_arbitrary is None:
            use_arbitrary = not good or data.draw(st.booleans(), label=f"{parameter.name} bad")
        optional = parameter.default is not inspect.Parameter.empty
        if (
            not use_arbitrary
            and optional
            and data.draw(st.booleans(), label=f"omit {parameter.name}")
        ):
            continue
        # The lone arbitrary argument leans to the values that used to escape as raw errors.
        arbitrary = st.one_of(_nasty_text, _nasty_paths, ANYTHING) if arbitrary_one else ANYTHING
        value = (
            data.draw(arbitrary, label=parameter.name)
            if use_arbitrary or not good
            else data.draw(st.sampled_from(good), label=parameter.name)
        )
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            keywords[parameter.name] = value
    return positional, keywords


def _call_must_succeed_or_raise_an_mlboot_error(
    function: Callable[..., object], positional: list[object], keywords: dict[str, object]
) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MlbootWarning)
            function(*positional, **keywords)
    except MlbootError as error:
        if isinstance(error, InvalidInputError):
            assert error.field in str(error), error  # noqa: PT017  (one call, any outcome)
    except BaseException as error:  # noqa: BLE001  (anything else is the bug this test hunts)
        pytest.fail(
            f"{getattr(function, '__qualname__', function)}(*{positional!r}, **{keywords!r}) "
            f"raised {type(error).__name__}: {error}"
        )


@pytest.mark.parametrize("target", sorted(TARGETS))
@SETTINGS
@given(data=st.data())
def test_any_arguments_give_success_or_an_mlboot_error(
    target: str, world: World, data: st.DataObject
) -> None:
    function, own = TARGETS[target](world)
    valid = {**world.valid(), **own}
    signature = inspect.signature(function)
    positional, keywords = _arguments(data, signature, valid)
    _call_must_succeed_or_raise_an_mlboot_error(function, positional, keywords)
    LEDGER.property_example()


# -- the command line ------------------------------------------------------------------------

_TEMPLATES = [
    ["submit", "train.py", "--compute", "cpu", "--experiment", "exp", "--source-dir", "src"],
    ["submit", "train.py", "--compute", "cpu", "--experiment", "exp", "--source-dir", "src",
     "--env", "requirements.txt", "--wait", "--timeout", "30", "--", "--epochs", "3"],
    ["compute", "ensure", "cpu-a", "--vm-size", "Standard_DS3_v2", "--max-nodes", "2"],
    ["compute", "ensure", "cpu-a", "--vm-size", "Standard_DS3_v2", "--max-nodes", "2",
     "--min-nodes", "0", "--priority", "dedicated", "--idle-seconds", "60",
     "--on-mismatch", "warn", "--timeout", "60", "--no-wait"],
    ["runs", "show", "r1"],
    ["runs", "wait", "r1", "--timeout", "10"],
    ["runs", "logs", "r1"],
    ["runs", "cancel", "r1"],
    ["runs", "download", "r1", "downloads"],
    ["runs", "download", "r1", "downloads", "--prefix", "logs/"],
    ["runs", "files", "r1", "--prefix", "outputs/"],
]  # fmt: skip
_TOKENS = st.one_of(
    st.sampled_from(
        [
            "--config",
            "config.json",
            "--local",
            "--json",
            "-v",
            "--verbose",
            "--",
            "--help",
            "--version",
            "--timeout",
            "--wait",
            "--env",
            "environment.yml",
            "--source-dir",
            "--compute",
            "--max-nodes",
            "--min-nodes",
            "--idle-seconds",
            "--priority",
            "--on-mismatch",
            "submit",
            "compute",
            "ensure",
            "runs",
            "show",
            "wait",
            "download",
            "files",
            "--prefix",
            "0",
            "-5",
            "1e400",
            "nan",
            "inf",
            "missing-run",
            "config.json/x",
        ]
    ),
    _nasty_text.filter(lambda t: t != "\ud800"),
    _text,
)


@st.composite
def _argv(draw: st.DrawFn) -> list[str]:
    argv = list(draw(st.sampled_from(_TEMPLATES)))
    argv += ["--config", draw(st.sampled_from(["config.json", "missing.json", "."]))]
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(argv)))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert":
            argv.insert(where, draw(_TOKENS))
        elif argv and where < len(argv):
            if action == "replace":
                argv[where] = draw(_TOKENS)
            else:
                del argv[where]
    # A local submit would start a real run; everything else may use the local backend.
    if "submit" in argv:
        argv = [a for a in argv if a != "--local"]
    return argv


@SETTINGS
@given(argv=_argv())
def test_any_command_line_ends_with_a_documented_exit_code(
    world: World, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in set(ExitCode), (argv, code, err)
    assert "internal error" not in err, (argv, err)
    assert "Traceback" not in err + out, (argv, err)
    assert Path.cwd() == world.tmp
    LEDGER.property_example()


def test_a_string_backend_is_a_name_or_a_typed_error(world: World) -> None:
    local = mlboot.workspace_from_config(world.config, backend="local")
    assert isinstance(local.backend, mlboot.LocalBackend)
    assert local.backend.root == world.tmp / ".mlboot"
    with pytest.raises(InvalidInputError) as caught:
        mlboot.workspace_from_config(world.config, backend="k8s")  # type: ignore[arg-type]
    assert caught.value.field == "backend"


def test_an_environment_changed_after_it_was_built_is_refused_at_submit(world: World) -> None:
    with pytest.raises(InvalidInputError) as caught:
        mlboot.submit_script(
            world.fake_ws,
            "train.py",
            compute="cpu",
            experiment="exp",
            source_directory=world.source,
            environment=world.broken_environment,
        )
    assert caught.value.field == "python_version"
    assert world.fake.calls_to("submit_run") == []
    with pytest.raises(InvalidInputError) as evolved:
        attrs.evolve(world.environment, variables={"A": 1})  # type: ignore[dict-item]
    assert evolved.value.field == "variables['A']"
