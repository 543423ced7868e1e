"""submit_script: every check before anything remote, and the request that reaches the backend."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlboot
from fake_workspaces import make_workspace
from mlboot import Environment, MpiDistribution, PyTorchDistribution, plan_snapshot, submit_script
from mlboot._retry import DEFAULT_POLICY
from mlboot._submit import check_experiment_name, stringify_arguments
from mlboot.exceptions import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    SnapshotTooLargeError,
)
from mlboot.testing import FakeBackend, FaultKind


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A source folder with a training script at its top and one in a sub-folder."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "train.py").write_text("print('training')\n", encoding="utf-8")
    (root / "src" / "finetune.py").write_text("print('fine-tuning')\n", encoding="utf-8")
    return root


def submit(workspace: mlboot.Workspace, project: Path, **overrides: Any) -> mlboot.Run:
    options: dict[str, Any] = {
        "compute": "cpu-cluster",
        "experiment": "exp",
        "source_directory": project,
    }
    options.update(overrides)
    script = options.pop("script", "train.py")
    return submit_script(workspace, script, **options)


# -- the request -----------------------------------------------------------------------------------


def test_the_request_carries_every_validated_field(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    requirements = project / "requirements.txt"
    requirements.write_text("numpy>=1.26\n", encoding="utf-8")
    environment = Environment.from_pip_requirements(requirements, python_version="3.11")
    distribution = PyTorchDistribution(process_count_per_node=4)

    submit(
        workspace,
        project,
        script="src/finetune.py",
        compute="gpu-cluster",
        experiment="finetune-bert",
        arguments=["--epochs", 3, "--lr", 0.001, Path("data/train.csv")],
        environment=environment,
        distribution=distribution,
        node_count=2,
        tags={"team": "nlp"},
        max_run_duration=dt.timedelta(hours=2),
    )

    assert [call.operation for call in fake.calls] == ["submit_run"]
    assert fake.calls[0].arguments["ref"] == workspace.ref
    (request,) = fake.submitted
    assert request.experiment == "finetune-bert"
    assert request.source_directory == project
    assert request.source_directory.is_absolute()
    assert request.script == "src/finetune.py"
    assert request.compute == "gpu-cluster"
    assert request.arguments == ("--epochs", "3", "--lr", "0.001", "data/train.csv")
    assert request.environment is environment
    assert request.distribution is distribution
    assert request.node_count == 2
    assert dict(request.tags) == {"team": "nlp"}
    assert request.max_run_duration_seconds == 7200
    # The snapshot was planned and checked once, above the seam: the backend gets the plan.
    assert request.snapshot == plan_snapshot(project)
    assert request.snapshot_plan() is request.snapshot
    assert "src/finetune.py" in request.snapshot.files


def test_the_defaults_reach_the_backend_as_such(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)

    submit_script(workspace, "train.py", compute="cpu", experiment="exp")

    (request,) = fake.submitted
    assert request.source_directory == project  # "." resolved against the current folder
    assert request.arguments == ()
    assert request.environment is None
    assert request.distribution is None
    assert request.node_count == 1
    assert dict(request.tags) == {}
    assert request.max_run_duration_seconds is None


def test_the_run_handle_describes_the_submitted_run(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    run = submit(workspace, project, experiment="exp-1")

    details = fake.get_run_details(workspace.ref, run.id)
    assert run.id == details.run_id
    assert run.experiment == "exp-1"
    assert run.portal_url == details.portal_url
    assert run.workspace is workspace


def test_a_compute_target_value_is_accepted_by_its_name(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    fake.add_compute("gpu-cluster")
    cluster = mlboot.get_or_create_compute_target(
        workspace, "gpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
    )
    calls_before = len(fake.calls)

    submit(workspace, project, compute=cluster)

    assert fake.submitted[0].compute == "gpu-cluster"
    assert [c.operation for c in fake.calls[calls_before:]] == ["submit_run"]


def test_a_compute_target_of_another_workspace_is_refused(fake: FakeBackend, project: Path) -> None:
    fake.add_compute("gpu-cluster")
    other = make_workspace(fake, name="other-ws")
    cluster = mlboot.get_or_create_compute_target(
        other, "gpu-cluster", vm_size="Standard_DS3_v2", max_nodes=4
    )
    fake.calls.clear()

    with pytest.raises(InvalidInputError, match="belongs to") as caught:
        submit(make_workspace(fake), project, compute=cluster)

    assert caught.value.field == "compute"
    assert fake.calls == []


def test_any_object_with_a_name_is_a_compute(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    class Named:
        name = "cpu-d4"

    submit(workspace, project, compute=Named())

    assert fake.submitted[0].compute == "cpu-d4"


def test_an_absolute_script_path_inside_the_folder_becomes_relative(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    submit(workspace, project, script=project / "src" / "finetune.py")

    assert fake.submitted[0].script == "src/finetune.py"


def test_dot_dot_that_stays_inside_the_folder_is_folded(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    submit(workspace, project, script="src/../train.py")

    assert fake.submitted[0].script == "train.py"


@pytest.mark.parametrize(
    ("given_duration", "seconds"),
    [
        (dt.timedelta(minutes=90), 5400),
        (3600, 3600),
        (1.2, 2),  # rounded up: a limit is never cut short
        (dt.timedelta(milliseconds=1), 1),
        (None, None),
    ],
)
def test_max_run_duration_becomes_whole_seconds(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    given_duration: object,
    seconds: int | None,
) -> None:
    submit(workspace, project, max_run_duration=given_duration)

    assert fake.submitted[0].max_run_duration_seconds == seconds


@pytest.mark.parametrize(
    "distribution", [PyTorchDistribution(process_count_per_node=2), MpiDistribution()]
)
def test_a_distribution_may_run_on_one_node(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, distribution: object
) -> None:
    submit(workspace, project, distribution=distribution, node_count=1)

    assert fake.submitted[0].distribution == distribution
    assert fake.submitted[0].node_count == 1


def test_with_an_environment_the_default_is_not_mentioned(
    workspace: mlboot.Workspace, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environment = Environment.from_registered("AzureML-sklearn-1.5", version="1")

    with caplog.at_level(logging.INFO, logger="mlboot"):
        submit(workspace, project, environment=environment)

    assert not [r for r in caplog.records if "default environment" in r.getMessage()]
    assert any("Submitted train.py" in r.getMessage() for r in caplog.records)


def test_a_registered_environment_is_checked_before_the_submit_with_retries(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    environment = Environment.from_registered("AzureML-sklearn-1.5", version="1")
    fake.fail("check_registered_environment", "transient", times=2)

    submit(workspace, project, environment=environment)

    # azureml-core sends the lookup once: mlboot's one policy retries it, above the seam.
    checks = fake.calls_to("check_registered_environment")
    assert len(checks) == 3
    assert checks[-1].arguments == {
        "ref": workspace.ref,
        "name": "AzureML-sklearn-1.5",
        "version": "1",
    }
    assert [call.operation for call in fake.calls][-1] == "submit_run"
    assert len(fake.clock.sleeps) == 2
    assert 0 <= fake.clock.sleeps[0] <= DEFAULT_POLICY.base_delay


@pytest.mark.parametrize(("kind", "attempts"), [("not_found", 1), ("transient", 4)])
def test_a_registered_environment_that_cannot_be_found_submits_nothing(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, kind: FaultKind, attempts: int
) -> None:
    fake.fail("check_registered_environment", kind, times=10)

    with pytest.raises(ServiceError if kind == "transient" else NotFoundError):
        submit(workspace, project, environment=Environment.from_registered("nope", "1"))

    assert len(fake.calls_to("check_registered_environment")) == attempts
    assert attempts == (DEFAULT_POLICY.attempts if kind == "transient" else 1)
    assert fake.submitted == []


def test_a_backend_failure_is_raised_as_it_is(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    fake.fail("submit_run", "permission")

    with pytest.raises(PermissionDeniedError):
        submit(workspace, project)

    assert fake.submitted == []


def test_submitting_prints_nothing(
    workspace: mlboot.Workspace, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submit(workspace, project)

    assert capsys.readouterr() == ("", "")


# -- validation: nothing remote happens ------------------------------------------------------------


def refused(fake: FakeBackend, field: str, call: Any) -> InvalidInputError:
    """Run ``call``, expect InvalidInputError naming ``field``, and no backend call at all."""
    with pytest.raises(InvalidInputError) as caught:
        call()
    assert caught.value.field == field
    assert caught.value.rule
    assert caught.value.fix
    assert fake.calls == []
    return caught.value


@pytest.mark.parametrize(
    "name",
    [
        "",
        "has space",
        "ünïcode",
        "name\n",  # the SDK's $ would accept this trailing newline
        "-starts-with-dash",
        "_starts_with_underscore",
        "dot.inside",
        "x" * 256,
        42,
        None,
    ],
)
def test_bad_experiment_names_are_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, name: object
) -> None:
    refused(fake, "experiment", lambda: submit(workspace, project, experiment=name))


@pytest.mark.parametrize("name", ["a", "A1", "exp_1-b", "9lives", "x" * 255])
def test_good_experiment_names_pass(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, name: str
) -> None:
    submit(workspace, project, experiment=name)

    assert fake.submitted[0].experiment == name


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (["--fp16", True], "arguments[1]"),
        ([False], "arguments[0]"),
        (["--x", None], "arguments[1]"),
        ([b"bytes"], "arguments[0]"),
        (["a\x00b"], "arguments[0]"),
        ([{"nested": 1}], "arguments[0]"),
        ("--epochs 3", "arguments"),  # a single string, not a list
        ({"--lr": 0.1}, "arguments"),
        (42, "arguments"),
    ],
)
def test_bad_arguments_are_refused(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    arguments: object,
    field: str,
) -> None:
    refused(fake, field, lambda: submit(workspace, project, arguments=arguments))


def test_a_bool_argument_says_why_it_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    error = refused(fake, "arguments[0]", lambda: submit(workspace, project, arguments=[True]))

    assert "argparse" in error.rule
    assert "'--fp16'" in error.fix


def test_a_bytes_path_argument_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    class BytesPath:
        def __fspath__(self) -> bytes:
            return b"data"

    refused(fake, "arguments[0]", lambda: submit(workspace, project, arguments=[BytesPath()]))


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        ({"team": 1}, "tags['team']"),
        ({1: "x"}, "tags"),
        ({"": "x"}, "tags"),
        (["team"], "tags"),
    ],
)
def test_bad_tags_are_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, tags: object, field: str
) -> None:
    refused(fake, field, lambda: submit(workspace, project, tags=tags))


@pytest.mark.parametrize("node_count", [0, -1, True, 1.0, "2"])
def test_bad_node_counts_are_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, node_count: object
) -> None:
    refused(fake, "node_count", lambda: submit(workspace, project, node_count=node_count))


def test_several_nodes_need_a_distribution(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    error = refused(fake, "node_count", lambda: submit(workspace, project, node_count=2))

    assert "PyTorchDistribution" in error.fix


@pytest.mark.parametrize("distribution", ["pytorch", object(), 4])
def test_a_distribution_must_be_an_mlboot_distribution(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, distribution: object
) -> None:
    refused(fake, "distribution", lambda: submit(workspace, project, distribution=distribution))


@pytest.mark.parametrize("processes", [0, -2, True, 1.5, "4"])
@pytest.mark.parametrize("kind", [PyTorchDistribution, MpiDistribution])
def test_processes_per_node_must_be_a_positive_int(
    kind: type[PyTorchDistribution | MpiDistribution], processes: object
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        kind(process_count_per_node=processes)  # type: ignore[arg-type]

    assert caught.value.field == "process_count_per_node"


def test_the_pytorch_backend_is_nccl_or_gloo() -> None:
    assert PyTorchDistribution().communication_backend == "nccl"
    assert PyTorchDistribution(communication_backend="gloo").communication_backend == "gloo"
    with pytest.raises(InvalidInputError) as caught:
        PyTorchDistribution(communication_backend="mpi")  # type: ignore[arg-type]
    assert caught.value.field == "communication_backend"


def test_total_processes_multiply_nodes_and_processes_per_node() -> None:
    assert PyTorchDistribution(process_count_per_node=4).process_count(3) == 12
    assert MpiDistribution(process_count_per_node=2).process_count(5) == 10


@pytest.mark.parametrize("environment", ["AzureML-sklearn", {"name": "env"}, object()])
def test_an_environment_must_be_an_mlboot_environment(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, environment: object
) -> None:
    refused(fake, "environment", lambda: submit(workspace, project, environment=environment))


@pytest.mark.parametrize(
    "duration",
    [0, -5, math.nan, math.inf, True, "1h", dt.timedelta(0), dt.timedelta(seconds=-1)],
)
def test_bad_max_run_durations_are_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, duration: object
) -> None:
    refused(fake, "max_run_duration", lambda: submit(workspace, project, max_run_duration=duration))


@pytest.mark.parametrize(
    "compute", ["", " gpu", "gpu ", 42, None, object(), "gpu/x", "gpü", "cpu cluster", "gpu\x00"]
)
def test_bad_computes_are_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, compute: object
) -> None:
    refused(fake, "compute", lambda: submit(workspace, project, compute=compute))


def test_the_workspace_must_be_an_mlboot_workspace(fake: FakeBackend, project: Path) -> None:
    refused(
        fake,
        "workspace",
        lambda: submit_script(
            "ws",  # type: ignore[arg-type]
            "train.py",
            compute="cpu",
            experiment="exp",
            source_directory=project,
        ),
    )


# -- validation: paths -----------------------------------------------------------------------------


def test_a_script_outside_the_folder_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    (project.parent / "outside.py").write_text("", encoding="utf-8")

    error = refused(fake, "script", lambda: submit(workspace, project, script="../outside.py"))

    assert "inside source_directory" in error.rule


def test_an_absolute_script_elsewhere_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    elsewhere = project.parent / "elsewhere.py"
    elsewhere.write_text("", encoding="utf-8")

    refused(fake, "script", lambda: submit(workspace, project, script=elsewhere))


def test_a_script_linking_out_of_the_folder_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    target = project.parent / "real_train.py"
    target.write_text("", encoding="utf-8")
    (project / "linked.py").symlink_to(target)

    error = refused(fake, "script", lambda: submit(workspace, project, script="linked.py"))

    assert "symbolic link" in error.rule


def test_a_script_below_a_folder_linking_out_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    shared = project.parent / "shared"
    shared.mkdir()
    (shared / "train.py").write_text("", encoding="utf-8")
    (project / "shared").symlink_to(shared, target_is_directory=True)

    refused(fake, "script", lambda: submit(workspace, project, script="shared/train.py"))


def test_a_link_that_stays_inside_the_folder_is_accepted(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    (project / "entry.py").symlink_to(project / "train.py")

    submit(workspace, project, script="entry.py")

    assert fake.submitted[0].script == "entry.py"


@pytest.mark.parametrize("script", ["missing.py", "src", "", "   "])
def test_a_script_that_is_not_a_file_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, script: str
) -> None:
    refused(fake, "script", lambda: submit(workspace, project, script=script))


def test_a_script_of_the_wrong_type_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    refused(fake, "script", lambda: submit(workspace, project, script=42))


@pytest.mark.parametrize(
    ("name", "rule"),
    [("nope", "does not exist"), ("train.py", "not a folder")],
    ids=["missing", "a-file"],
)
def test_a_source_folder_that_is_missing_or_a_file_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, name: str, rule: str
) -> None:
    error = refused(
        fake,
        "source_directory",
        lambda: submit(workspace, project, source_directory=project / name),
    )

    assert rule in error.rule


def test_a_script_left_out_by_the_ignore_file_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    (project / ".amlignore").write_text("src/\n", encoding="utf-8")

    error = refused(fake, "script", lambda: submit(workspace, project, script="src/finetune.py"))

    assert ".amlignore" in error.rule


def test_a_snapshot_over_the_file_limit_is_refused_before_anything_remote(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    data = project / "data"
    data.mkdir()
    for index in range(2001):
        (data / f"{index}.txt").write_bytes(b"")

    with pytest.raises(SnapshotTooLargeError, match="2,003 files"):
        submit(workspace, project)

    assert fake.calls == []


def test_the_first_bad_argument_wins_before_the_snapshot_is_planned(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    # A bad experiment name is reported even though the script does not exist either.
    refused(fake, "experiment", lambda: submit(workspace, project, experiment="", script="x.py"))


# -- properties ------------------------------------------------------------------------------------

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_-")


def _is_valid_experiment_name(name: str) -> bool:
    """The experiment-name rule, written without regular expressions."""
    return (
        1 <= len(name) <= 255
        and name[0] in string.ascii_letters + string.digits
        and all(char in _NAME_CHARS for char in name)
    )


def _accepts(name: object) -> bool:
    try:
        check_experiment_name(name)
    except InvalidInputError:
        return False
    return True


@given(st.text(max_size=300))
def test_experiment_names_are_accepted_exactly_by_the_rule(name: str) -> None:
    assert _accepts(name) == _is_valid_experiment_name(name)


@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,254}\Z"))
def test_every_name_of_the_documented_shape_is_accepted(name: str) -> None:
    assert check_experiment_name(name) == name


@given(
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,200}\Z"),
    st.sampled_from(["\n", "\r", " ", "é", "\u0661", ".", "/", "\x00"]),
)
def test_one_foreign_character_anywhere_is_refused(name: str, foreign: str) -> None:
    for position in (0, len(name) // 2, len(name)):
        assert not _accepts(name[:position] + foreign + name[position:])


_ARGUMENT = st.one_of(
    st.text().filter(lambda text: "\x00" not in text),
    st.integers(),
    st.floats(),
    st.builds(Path, st.text(alphabet=string.ascii_letters + "/._-", min_size=1)),
)


def _expected(value: object) -> str:
    if isinstance(value, Path):
        return os.fspath(value)
    return str(value)


@given(st.lists(_ARGUMENT, max_size=12))
def test_arguments_become_their_strings_in_order(arguments: list[object]) -> None:
    result = stringify_arguments(arguments)

    assert result == tuple(_expected(value) for value in arguments)
    assert stringify_arguments(tuple(arguments)) == result


@given(st.lists(_ARGUMENT, max_size=8), st.data())
def test_a_bool_anywhere_in_the_arguments_is_refused(arguments: list[object], data: Any) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(arguments)))
    flag = data.draw(st.booleans())
    arguments.insert(position, flag)

    with pytest.raises(InvalidInputError) as caught:
        stringify_arguments(arguments)

    assert caught.value.field == f"arguments[{position}]"


@given(st.floats(allow_nan=False))
def test_a_float_argument_reads_back_as_the_same_float(value: float) -> None:
    (text,) = stringify_arguments([value])

    assert float(text) == value


def test_the_missing_script_hint_names_the_path_that_works_when_given_from_the_current_folder(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)  # `src/finetune.py` exists from here, but not inside `src`

    error = refused(
        fake,
        "script",
        lambda: submit(workspace, project, source_directory="src", script="src/finetune.py"),
    )

    assert "script='finetune.py'" in error.fix
    assert "src/finetune.py'" not in error.fix  # never a path that would itself be wrong


def test_the_missing_script_hint_finds_a_script_of_that_name_deeper_in_the_folder(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    error = refused(fake, "script", lambda: submit(workspace, project, script="finetune.py"))

    assert "script='src/finetune.py'" in error.fix
    assert (project / "src" / "finetune.py").is_file()


def test_the_missing_script_hint_suggests_no_path_when_none_exists(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    error = refused(fake, "script", lambda: submit(workspace, project, script="nothing.py"))

    assert "script=" not in error.fix  # no invented path
    assert str(project) in error.fix
