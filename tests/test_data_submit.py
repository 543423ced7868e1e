"""submit_script with data, on the fake: names, placeholders, checks first, content addressing."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pytest

import mlboot
from fake_workspaces import make_workspace
from mlboot import Input, Output
from mlboot.backend import DataInput, DataOutput, DatastoreInfo, WorkspaceRef
from mlboot.exceptions import InvalidInputError, MlbootWarning, NotFoundError, ServiceError
from mlboot.testing import Call, FakeBackend

DATA_CALLS = {"get_datastore", "datastore_file_exists", "upload_to_datastore"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n", encoding="utf-8")
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("1,2\n", encoding="utf-8")
    (folder / "sub" / "b.csv").write_text("3,4\n", encoding="utf-8")
    return folder


class _BrokenPath:
    def __fspath__(self) -> str:
        raise TypeError("not a path today")


def submit(workspace: mlboot.Workspace, project: Path, **data: object) -> mlboot.Run:
    return mlboot.submit_script(
        workspace,
        "train.py",
        compute="cpu",
        experiment="exp",
        source_directory=project,
        **data,  # type: ignore[arg-type]  # arguments/inputs/outputs, as each test needs
    )


def remote_calls(fake: FakeBackend) -> list[str]:
    return [c.operation for c in fake.calls if c.operation in DATA_CALLS | {"submit_run"}]


# -- names and placeholders ------------------------------------------------------------------------


def test_inputs_and_outputs_among_arguments_are_named_by_position(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    submit(
        workspace,
        project,
        arguments=[
            "--a",
            Input("azureml://datastores/workspaceblobstore/paths/a", mode="download"),
            "--b",
            Input("azureml://datastores/workspaceblobstore/paths/b/c.csv"),
            "--out",
            Output(),
        ],
    )
    request = fake.submitted[-1]
    assert request.arguments == (
        "--a",
        "${{inputs.input_0}}",
        "--b",
        "${{inputs.input_1}}",
        "--out",
        "${{outputs.output_0}}",
    )
    assert request.inputs == (
        DataInput("input_0", "download", "datastore", datastore="workspaceblobstore", path="a"),
        DataInput("input_1", "mount", "datastore", datastore="workspaceblobstore", path="b/c.csv"),
    )
    assert request.outputs == (DataOutput("output_0", "upload"),)


def test_named_inputs_and_outputs_may_be_placed_in_any_argument(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    fake.add_datastore("training_data")
    submit(
        workspace,
        project,
        arguments=["--data=${{inputs.images}}", "--model=${{outputs.model}}/best"],
        inputs={"images": Input("azureml://datastores/training_data/paths/images/")},
        outputs={
            "model": Output("azureml://datastores/training_data/paths/m/{run-id}", mode="mount")
        },
    )
    request = fake.submitted[-1]
    assert request.arguments == ("--data=${{inputs.images}}", "--model=${{outputs.model}}/best")
    assert request.inputs == (
        DataInput("images", "mount", "datastore", datastore="training_data", path="images/"),
    )
    assert request.outputs == (
        DataOutput("model", "mount", datastore="training_data", path="m/{run-id}"),
    )


def test_url_and_dataset_inputs_reach_the_backend_as_they_are(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    fake.add_dataset("images", versions=["1", "2"])
    submit(
        workspace,
        project,
        inputs={
            "web": Input("https://example.com/d.csv", mode="download"),
            "pinned": Input("azureml:images:1"),
            "latest": Input("azureml:images@latest", mode="download"),
        },
    )
    assert fake.submitted[-1].inputs == (
        DataInput("web", "download", "url", url="https://example.com/d.csv"),
        DataInput("pinned", "mount", "dataset", dataset="images", version="1"),
        DataInput("latest", "download", "dataset", dataset="images", version=None),
    )
    looked_up = [c.arguments for c in fake.calls_to("check_registered_dataset")]
    assert [(a["name"], a["version"]) for a in looked_up] == [("images", "1"), ("images", None)]


def test_a_missing_dataset_version_fails_before_the_submit(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    fake.add_dataset("images", versions=["1"])
    with pytest.raises(NotFoundError, match="'images' \\(version 7\\)"):
        submit(workspace, project, inputs={"x": Input("azureml:images:7")})
    assert fake.submitted == []


@pytest.mark.parametrize(
    ("data", "field", "rule_part"),
    [
        (
            {"arguments": ["${{inputs.nope}}"]},
            "arguments[0]",
            "names no input (the inputs are: none)",
        ),
        (
            {"arguments": ["x", "${{outputs.m}}"], "outputs": {"model": Output()}},
            "arguments[1]",
            "names no output (the outputs are: model)",
        ),
        ({"arguments": ["${{ inputs.a }}"]}, "arguments[0]", "spelled so, without spaces"),
        ({"arguments": ["${{input.a}}"]}, "arguments[0]", "is not ${{inputs.<name>}}"),
        ({"arguments": ["${{inputs.a"]}, "arguments[0]", "does not start a placeholder"),
        ({"inputs": {"1st": Input("d")}}, "inputs", "not starting with a digit"),
        ({"inputs": {"a-b": Input("d")}}, "inputs", "ASCII letters, digits or '_'"),
        ({"inputs": ["d"]}, "inputs", "a mapping of names to mlboot.Input"),
        ({"outputs": {"m": "azureml://x"}}, "outputs['m']", "it must be an mlboot.Output"),
        (
            {"inputs": {"m": Input("d")}, "outputs": {"m": Output()}},
            "outputs['m']",
            "names an input too",
        ),
        (
            {"arguments": [Input("d")], "inputs": {"input_0": Input("e")}},
            "inputs['input_0']",
            "also the one given to the mlboot.Input at arguments[0]",
        ),
        (
            {
                "outputs": {
                    "a": Output("azureml://datastores/ds/paths/m"),
                    "b": Output("azureml://datastores/ds/paths/m/", mode="mount"),
                }
            },
            "outputs['b'].destination",
            "output 'a' has the same folder",
        ),
        (
            {
                "outputs": {
                    "a": Output("azureml://datastores/ds/paths/m/{output-name}"),
                    "b": Output("azureml://datastores/ds/paths/m/a"),
                }
            },
            "outputs['b'].destination",
            "output 'a' has the same folder",
        ),
        (
            {
                "outputs": {
                    "a": Output("azureml://datastores/ds/paths/m"),
                    "b": Output("azureml://datastores/ds/paths/m/{run-id}/b"),
                }
            },
            "outputs['b'].destination",
            "output 'a' has a folder that overlaps it",
        ),
        ({"arguments": [True]}, "arguments[0]", "a bool would reach the script"),
        ({"arguments": [object()]}, "arguments[0]", "mlboot.Input or mlboot.Output"),
        ({"arguments": {"--lr", "0.1"}}, "arguments", "a set has none"),
        ({"arguments": [_BrokenPath()]}, "arguments[0]", "__fspath__() raised TypeError"),
    ],
)
def test_a_bad_name_or_placeholder_is_refused_before_anything_remote(  # noqa: PLR0917  (pytest passes fixtures and parameters by name)
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    data: dict[str, object],
    field: str,
    rule_part: str,
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, **data)
    assert caught.value.field == field
    assert rule_part in caught.value.rule
    assert caught.value.fix
    assert str(caught.value).startswith(f"{field}={caught.value.value!r} is invalid: ")
    assert remote_calls(fake) == []


def test_an_unknown_datastore_fails_before_any_upload_or_submit(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        submit(
            workspace,
            project,
            arguments=[Input(data)],
            outputs={"m": Output("azureml://datastores/nosuch/paths/m")},
        )
    assert caught.value.field == "outputs['m'].destination"
    assert "has no datastore called 'nosuch'" in caught.value.rule
    assert "LocalBackend.add_datastore" in caught.value.fix
    assert remote_calls(fake) == ["get_datastore"]


class _NoDefaultDatastore(FakeBackend):
    """A workspace whose default datastore was removed (Azure ML allows unsetting it)."""

    def get_datastore(self, ref: WorkspaceRef, name: str | None) -> DatastoreInfo | None:
        return None if name is None else super().get_datastore(ref, name)


def test_a_missing_default_datastore_is_a_service_error_naming_the_workspace(
    project: Path, data: Path
) -> None:
    workspace = make_workspace(_NoDefaultDatastore())
    with pytest.raises(ServiceError, match=r"workspace 'ws' .* has no default datastore"):
        submit(workspace, project, inputs={"d": Input(data)})


# -- local inputs: checked first -------------------------------------------------------------------


def test_a_missing_local_input_is_refused_before_anything_remote(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, arguments=["--d", Input(tmp_path / "nothing")])
    assert caught.value.field == "arguments[1].source"
    assert "does not exist" in caught.value.rule
    assert remote_calls(fake) == []


def test_a_link_leading_out_of_an_input_folder_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    (data / "leak").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, inputs={"d": Input(data)})
    assert caught.value.field == "inputs['d'].source"
    assert "'leak', which leads to" in caught.value.rule
    assert remote_calls(fake) == []


def test_a_link_inside_an_input_folder_is_followed_and_uploaded_under_its_name(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    (data / "again.csv").symlink_to(data / "a.csv")
    submit(workspace, project, inputs={"d": Input(data)})
    uploaded = fake.calls_to("upload_to_datastore")[0]
    names = [name for _, name in uploaded.arguments["files"]]  # type: ignore[attr-defined]  # a tuple of pairs
    assert names == ["a.csv", "again.csv", "sub/b.csv"]


@pytest.mark.parametrize("kind", ["fifo", "empty", "loop", "workspace"])
def test_an_input_folder_that_cannot_be_uploaded_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    expected = {
        "fifo": "a named pipe",
        "empty": "holds no file",
        "loop": "a folder that contains it",
        "workspace": "a local workspace folder",
    }[kind]
    if kind == "fifo":
        (folder / "x.csv").write_text("1", encoding="utf-8")
        os.mkfifo(folder / "pipe")
    elif kind == "loop":
        (folder / "x.csv").write_text("1", encoding="utf-8")
        (folder / "self").symlink_to(folder)
    elif kind == "workspace":
        (folder / ".mlboot-workspace").write_text("", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, inputs={"d": Input(folder)})
    assert expected in caught.value.rule
    assert remote_calls(fake) == []


def test_an_input_inside_source_directory_warns_that_it_is_uploaded_twice(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    (project / "data").mkdir()
    (project / "data" / "x.csv").write_text("1", encoding="utf-8")
    with pytest.warns(MlbootWarning, match=r"lies inside source_directory .* uploaded twice"):
        submit(workspace, project, inputs={"d": Input(project / "data")})
    (project / ".amlignore").write_text("data\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MlbootWarning)  # left out of the snapshot: no warning
        submit(workspace, project, inputs={"d": Input(project / "data")})
    assert len(fake.submitted) == 2


# -- content addressing ----------------------------------------------------------------------------


def _digest(files: dict[str, bytes]) -> str:
    lines = "".join(
        f"{hashlib.sha256(content).hexdigest()}  {len(content)}  {name}\n"
        for name, content in sorted(files.items())
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def test_a_local_folder_is_uploaded_under_its_content_digest_with_the_marker_last(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    submit(workspace, project, arguments=[Input(data, mode="download")])
    digest = _digest({"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"})
    base = f"mlboot/inputs/sha256-{digest}"
    assert fake.submitted[-1].inputs == (
        DataInput(
            "input_0", "download", "datastore", datastore="workspaceblobstore", path=base + "/"
        ),
    )
    stored = fake.datastore_files("workspaceblobstore")
    assert stored[f"{base}/a.csv"] == b"1,2\n"
    assert stored[f"{base}/sub/b.csv"] == b"3,4\n"
    uploads = fake.calls_to("upload_to_datastore")
    assert [c.arguments["target_path"] for c in uploads] == [base, "mlboot/inputs"]
    assert [name for _, name in uploads[-1].arguments["files"]] == [  # type: ignore[attr-defined]  # pairs
        f"sha256-{digest}.complete"
    ]
    assert b"a.csv" in stored[f"{base}.complete"]


def test_an_unchanged_folder_costs_one_existence_check_the_second_time(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    submit(workspace, project, inputs={"d": Input(data)})
    os.utime(data / "a.csv", ns=(1, 1))  # touched, not changed: the content decides
    before = len(fake.calls)
    submit(workspace, project, inputs={"d": Input(data)})
    again = [c.operation for c in fake.calls[before:] if c.operation in DATA_CALLS]
    assert again == ["get_datastore", "datastore_file_exists"]
    assert fake.submitted[0].inputs == fake.submitted[1].inputs


@pytest.mark.parametrize("change", ["content", "rename", "add"])
def test_a_changed_folder_gets_a_new_digest_and_is_uploaded(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path, change: str
) -> None:
    submit(workspace, project, inputs={"d": Input(data)})
    if change == "content":
        (data / "a.csv").write_text("1,3\n", encoding="utf-8")
    elif change == "rename":
        (data / "a.csv").rename(data / "c.csv")
    else:
        (data / "new.csv").write_text("", encoding="utf-8")
    submit(workspace, project, inputs={"d": Input(data)})
    first, second = (r.inputs[0].path for r in fake.submitted)
    assert first != second
    assert len(fake.calls_to("upload_to_datastore")) == 4


def test_a_single_file_keeps_its_name_below_its_digest(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    submit(workspace, project, inputs={"f": Input(data / "a.csv")})
    path = fake.submitted[-1].inputs[0].path
    assert path == f"mlboot/inputs/sha256-{_digest({'a.csv': b'1,2' + bytes([10])})}/a.csv"
    assert fake.datastore_files("workspaceblobstore")[str(path)] == b"1,2\n"


def test_uploads_go_to_the_workspace_default_datastore(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    fake.add_datastore("lake", kind="AzureDataLakeGen2", default=True)
    submit(workspace, project, inputs={"d": Input(data)})
    assert fake.submitted[-1].inputs[0].datastore == "lake"
    assert any(k.startswith("mlboot/inputs/") for k in fake.datastore_files("lake"))


def test_a_failed_upload_leaves_no_marker_so_the_next_submit_uploads_again(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    fake.fail("upload_to_datastore", ServiceError("storage says no", status=403))
    with pytest.raises(ServiceError, match="storage says no"):
        submit(workspace, project, inputs={"d": Input(data)})
    assert fake.submitted == []
    assert not any(k.endswith(".complete") for k in fake.datastore_files("workspaceblobstore"))
    submit(workspace, project, inputs={"d": Input(data)})
    assert len(fake.calls_to("upload_to_datastore")) == 3  # the failed one, files, marker


def test_a_file_changed_during_the_upload_is_not_marked_complete(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    def change(call: Call) -> None:
        if call.arguments["target_path"] != "mlboot/inputs":
            (data / "a.csv").write_text("changed meanwhile\n", encoding="utf-8")

    fake.before("upload_to_datastore", change)
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, inputs={"d": Input(data)})
    assert caught.value.field == "inputs['d'].source"
    assert "changed while it was being uploaded" in caught.value.rule
    assert len(fake.calls_to("upload_to_datastore")) == 1
    assert fake.submitted == []


def test_an_explicit_output_where_a_default_one_goes_is_refused_before_the_submit(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        submit(
            workspace,
            project,
            outputs={
                "a": Output(),
                "b": Output("azureml://datastores/workspaceblobstore/paths/dataset/{run-id}/a"),
            },
        )
    assert caught.value.field == "outputs['b'].destination"
    assert "where output 'a' (given no destination) goes" in caught.value.rule
    assert fake.submitted == []


def test_a_file_written_with_a_trailing_slash_is_refused(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path, data: Path
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, arguments=[Input(f"{data / 'a.csv'}/")])
    assert caught.value.field == "arguments[0].source"
    assert "names a folder, but" in caught.value.rule
    assert remote_calls(fake) == []


def test_an_entry_that_cannot_be_read_is_said_so_not_missing(
    fake: FakeBackend,
    workspace: mlboot.Workspace,
    project: Path,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlboot._data_submit as data_submit  # noqa: PLC0415  (the walk's own stat, replaced)

    real = data_submit._mode_and_identity

    def refused(path: Path) -> tuple[int, tuple[int, int]]:
        if path.name == "sub":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(data_submit, "_mode_and_identity", refused)
    with pytest.raises(InvalidInputError) as caught:
        submit(workspace, project, arguments=[Input(data)])
    assert caught.value.rule == "its entry 'sub' cannot be read (Permission denied)"
    assert remote_calls(fake) == []


def test_a_missing_dataset_names_the_field_and_the_fix(
    fake: FakeBackend, workspace: mlboot.Workspace, project: Path
) -> None:
    with pytest.raises(NotFoundError) as caught:
        submit(workspace, project, inputs={"images": Input("azureml:images:3")})
    message = str(caught.value)
    assert message.startswith("inputs['images'].source='azureml:images:3': ")
    assert "Fix: add it first with FakeBackend.add_dataset('images')" in message
    assert fake.submitted == []
