"""mlboot.Input and mlboot.Output: every source, destination and mode, and each refusal."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import mlboot
from mlboot import Input, Output
from mlboot._data import check_input, check_output, parse_dataset, parse_datastore_uri
from mlboot.exceptions import InvalidInputError


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("data/train", "local"),
        (Path("data/train"), "local"),
        ("C:\\data\\train", "local"),  # a drive letter is not a scheme
        (Path("odd:name"), "local"),  # a Path is always a local path
        ("azureml://datastores/workspaceblobstore/paths/images", "datastore"),
        ("azureml://datastores/training_data/paths/", "datastore"),
        ("https://example.com/data/train.csv", "url"),
        ("http://127.0.0.1:8080/d.csv", "url"),
        ("azureml:images:3", "dataset"),
        ("azureml:images@latest", "dataset"),
    ],
)
def test_each_source_is_told_by_its_form(source: str | Path, kind: str) -> None:
    mode = "download" if kind == "url" else "mount"
    assert Input(source, mode=mode).kind == kind  # type: ignore[arg-type]  # mode is one of the two


def test_the_defaults_are_a_mounted_input_and_an_uploaded_output_under_the_run() -> None:
    assert Input("data").mode == "mount"
    assert Output() == Output(destination=None, mode="upload")


def test_the_values_are_frozen_and_compare_by_value() -> None:
    value = Input("azureml://datastores/ws/paths/a")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        value.mode = "download"  # type: ignore[misc]  # the point of the test
    assert value == Input("azureml://datastores/ws/paths/a")
    assert mlboot.Input is Input
    assert mlboot.Output is Output


def test_uri_parts_keep_a_trailing_slash_which_says_folder() -> None:
    # azureml-core downloads a path as a prefix of blob names: 'a/b' would also bring 'a/bc'.
    assert parse_datastore_uri("azureml://datastores/ds/paths/a/b/") == ("ds", "a/b/")
    assert parse_datastore_uri("azureml://datastores/ds/paths/a/b") == ("ds", "a/b")
    assert parse_datastore_uri("azureml://datastores/ds/paths/") == ("ds", "")
    assert parse_dataset("azureml:images:3") == ("images", "3")
    assert parse_dataset("azureml:images@latest") == ("images", None)


def _refused(build: object) -> InvalidInputError:
    assert callable(build)
    with pytest.raises(InvalidInputError) as caught:
        build()
    return caught.value


@pytest.mark.parametrize(
    ("build", "field", "rule_part", "fix_part"),
    [
        (lambda: Input(b"data"), "source", "not bytes", "local path"),  # type: ignore[arg-type]
        (lambda: Input(""), "source", "non-empty", "local path"),
        (lambda: Input("a\x00b"), "source", "NUL", "local path"),
        (lambda: Input(3), "source", "str or pathlib.Path", "local path"),  # type: ignore[arg-type]
        (lambda: Input("s3://bucket/key"), "source", "s3: URIs are not read", "datastore"),
        (lambda: Input("HTTPS://x.org/a", mode="download"), "source", "lower case", "https://"),
        (
            lambda: Input("azureml://datastores/ds/images"),
            "source",
            "azureml://datastores/<name>/paths/<path>",
            "write it as",
        ),
        (
            lambda: Input("azureml://datastores/my-store/paths/a"),
            "source",
            "'my-store' breaks the rule",
            "workspaceblobstore",
        ),
        (
            lambda: Input("azureml://datastores/ds/paths/a/../b"),
            "source",
            "'..'",
            "'/' between folders",
        ),
        (lambda: Input("azureml://datastores/ds/paths//a"), "source", "'//'", "between folders"),
        (lambda: Input("azureml://datastores/ds/paths/a\\b"), "source", "'\\'", "folders"),
        (lambda: Input("azureml://datastores/ds/paths/a\nb"), "source", "control", "folders"),
        (
            lambda: Input("azureml://datastores/ds/paths/m/{run-id}"),
            "source",
            "only an output's can",
            "the run id",
        ),
        (lambda: Input("azureml:images"), "source", "with its version", "azureml:images:3"),
        (lambda: Input("azureml:im ages:1"), "source", "dataset name", "azureml:<dataset>"),
        (lambda: Input("azureml:images:v 1"), "source", "its version", "azureml:<dataset>"),
        (lambda: Input("https://x.org/a.csv"), "mode", "cannot be mounted", "mode='download'"),
        (
            lambda: Input("https://x.org/a b.csv", mode="download"),
            "source",
            "spaces",
            "%20",
        ),
        (lambda: Input("https:///a.csv", mode="download"), "source", "name a host", "https://"),
        (lambda: Input("https://x.org:port/a", mode="download"), "source", "not a valid", "https"),
        (lambda: Input("data", mode="copy"), "mode", "'mount'", "mode='download'"),  # type: ignore[arg-type]
        (lambda: Output(3), "destination", "None for a folder", "azureml://"),  # type: ignore[arg-type]
        (lambda: Output("models/x"), "destination", "must have the form", "write it as"),
        (
            lambda: Output("azureml://datastores/ds/paths/m/{run_id}"),
            "destination",
            "found {run_id}",
            "{run-id}",
        ),
        (
            lambda: Output("azureml://datastores/ds/paths/m/{run-id"),
            "destination",
            "unmatched brace",
            "{run-id}",
        ),
        (lambda: Output("azureml://datastores/ds/paths/"), "destination", "root", "models"),
        (lambda: Output(mode="download"), "mode", "'upload'", "mode='mount'"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_value_names_its_field_value_rule_and_fix(
    build: object, field: str, rule_part: str, fix_part: str
) -> None:
    error = _refused(build)
    assert error.field == field
    assert rule_part in error.rule
    assert fix_part in error.fix
    assert str(error) == f"{field}={error.value!r} is invalid: {error.rule}. {error.fix}"


def test_a_url_with_a_password_is_refused_without_showing_it() -> None:
    error = _refused(lambda: Input("https://me:hunter2@x.org/a.csv", mode="download"))
    assert "credentials" in error.rule
    assert "hunter2" not in str(error)


def test_output_placeholders_are_accepted_as_both_sdks_spell_them_in_v1() -> None:
    path = "azureml://datastores/ds/paths/runs/{run-id}/{output-name}"
    assert Output(path, mode="mount").destination == path


def test_a_value_changed_after_it_was_built_is_refused_when_used() -> None:
    changed = attrs.evolve(Input("data"))
    object.__setattr__(changed, "mode", "copy")  # what a careless caller could do
    error = _refused(lambda: check_input("inputs['x']", changed))
    assert error.field == "inputs['x'].mode"
    broken = Output()
    object.__setattr__(broken, "destination", "nowhere")
    assert _refused(lambda: check_output("outputs['y']", broken)).field == (
        "outputs['y'].destination"
    )


def test_something_else_in_place_of_an_input_says_how_to_wrap_it() -> None:
    error = _refused(lambda: check_input("inputs['x']", "data/train"))
    assert error.rule == "it must be an mlboot.Input"
    assert "mlboot.Input('data/train')" in error.fix
    assert "mlboot.Output()" in _refused(lambda: check_output("outputs['y']", 3)).fix


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:S3cr3t@example.com/a b.csv",
        "https://alice:S3cr3t@example.com:80x/a.csv",
        "https://alice:S3cr3t@[::1/a.csv",
        "https://alice:S3cr3t@example.com\x07/a.csv",
        "HTTPS://alice:S3cr3t@example.com/a.csv",
        "https://alice:S3cr3t@example.com/a.csv",
        "https://example.com/a b.csv?sv=1&sig=S3cr3t",
    ],
)
def test_a_password_or_signature_in_a_refused_url_never_reaches_the_error(url: str) -> None:
    error = _refused(lambda: Input(url, mode="download"))
    assert "S3cr3t" not in str(error)
    assert "S3cr3t" not in repr(error.value)


def test_a_str_subclass_source_is_kept_as_the_text_that_was_checked() -> None:
    class Sneaky(str):
        __slots__ = ()

        def __str__(self) -> str:
            return "azureml://datastores/secret/paths/../other"

    built = Input(Sneaky("azureml://datastores/workspaceblobstore/paths/images"))
    assert type(built.source) is str
    assert str(built.source) == "azureml://datastores/workspaceblobstore/paths/images"


def test_a_path_like_source_is_read_once_into_a_path() -> None:
    class Flaky:
        calls = 0

        def __fspath__(self) -> str:
            Flaky.calls += 1
            return "data" if Flaky.calls == 1 else "/etc"

    built = Input(Flaky())  # type: ignore[arg-type]  # any os.PathLike
    assert built.source == Path("data")


@pytest.mark.parametrize(
    ("source", "rule_part"),
    [
        ("azureml:images:latest", "written @latest"),
        ("azureml://datastores/ds/paths/" + "x" * 256, "no folder or file name over 255 bytes"),
        ("azureml://datastores/ds/paths/" + "a/" * 600, "at most 1,024 characters"),
        ("azureml://datastores/ds/paths/a\udc80", "lone surrogates"),
    ],
)
def test_sources_azure_ml_would_read_otherwise_are_refused_when_built(
    source: str, rule_part: str
) -> None:
    assert rule_part in _refused(lambda: Input(source)).rule


def test_a_path_like_whose_fspath_raises_is_refused_with_its_error() -> None:
    class Broken:
        def __fspath__(self) -> str:
            raise OSError("not today")

    error = _refused(lambda: Input(Broken()))  # type: ignore[arg-type]  # any os.PathLike
    assert "OSError: not today" in error.rule
