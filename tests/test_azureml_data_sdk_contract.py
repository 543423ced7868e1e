"""The azureml-core backend's data translation builds the real SDK objects (no service).

``sdk_data`` turns mlboot's DataInput/DataOutput records into azureml-core's data references,
dataset consumptions and output datasets; these tests build them with the installed SDK and
read back what the SDK itself would send.  The wire is pinned in
tests/integration/test_data_azureml_backend.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlboot._backends._seam import InputKindCheck
from mlboot._backends.azureml._azureml import AzureMLBackend
from mlboot._backends.azureml._data import check_data_support, sdk_data
from mlboot.backend import DataInput, DataOutput
from mlboot.exceptions import InvalidInputError, MissingExtraError

pytestmark = [
    pytest.mark.sdk,
    pytest.mark.filterwarnings(
        "ignore:datetime.datetime.utcnow\\(\\) is deprecated:DeprecationWarning"
    ),
]


def _datastore(name: str) -> Any:
    from azureml.data.azure_storage_datastore import AzureBlobDatastore  # noqa: PLC0415

    return AzureBlobDatastore(None, name, "container", "account", account_key="a2V5")


def _no_dataset(name: str, version: str | None) -> Any:
    raise AssertionError(f"no dataset lookup expected ({name}, {version})")


def _translate(
    arguments: tuple[str, ...],
    inputs: tuple[DataInput, ...] = (),
    outputs: tuple[DataOutput, ...] = (),
) -> Any:
    seen: list[str | None] = []

    def datastore(name: str | None) -> Any:
        seen.append(name)
        return _datastore(name or "workspaceblobstore")

    data = sdk_data(inputs, outputs, arguments, datastore=datastore, dataset=_no_dataset)
    return data, seen


def test_a_placeholder_anywhere_in_an_argument_becomes_the_data_reference_text() -> None:
    images = DataInput("images", "mount", "datastore", datastore="training_data", path="img")

    data, seen = _translate(("--images=${{inputs.images}}", "${{ inputs.images }}"), (images,))

    assert data.arguments == [
        "--images=$AZUREML_DATAREFERENCE_MLBOOT_INPUT_images",
        "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_images",
    ]
    config = data.data_references["MLBOOT_INPUT_images"]
    assert (config.data_store_name, config.path_on_data_store, config.mode) == (
        "training_data",
        "img",
        "mount",
    )
    assert seen == ["training_data"]


def test_the_datastore_root_is_sent_as_null_and_download_is_kept() -> None:
    root = DataInput("root", "download", "datastore", datastore="training_data", path="")

    data, _ = _translate((), (root,))

    config = data.data_references["MLBOOT_INPUT_root"]
    assert (config.path_on_data_store, config.mode) == (None, "download")
    assert data.environment_variables == {
        "MLBOOT_INPUT_root": "$AZUREML_DATAREFERENCE_MLBOOT_INPUT_root"
    }


def test_outputs_are_output_datasets_named_for_their_variable() -> None:
    outputs = (
        DataOutput("model", "upload", datastore="models", path="runs/{run-id}"),
        DataOutput("scratch", "mount"),
    )

    data, seen = _translate(("${{outputs.model}}", "-s", "${{outputs.scratch}}"), (), outputs)

    assert data.arguments == [
        "DatasetOutputConfig:MLBOOT_OUTPUT_model",
        "-s",
        "DatasetOutputConfig:MLBOOT_OUTPUT_scratch",
    ]
    model = data.output_data["MLBOOT_OUTPUT_model"]._to_output_data()
    assert model.mechanism == "upload"
    assert model.additional_options.upload_options.overwrite is True
    assert model.output_location.data_path.datastore_name == "models"
    assert model.output_location.data_path.relative_path == "runs/{run-id}"
    scratch = data.output_data["MLBOOT_OUTPUT_scratch"]._to_output_data()
    assert scratch.mechanism == "mount"
    # Under the run: where the service would put it, but under mlboot's name of the output.
    assert scratch.output_location.data_path.datastore_name == "workspaceblobstore"
    assert scratch.output_location.data_path.relative_path == "dataset/{run-id}/scratch"
    assert seen == ["models", None]  # None: the default datastore
    assert data.environment_variables == {}


def test_output_name_in_a_destination_is_mlboots_name_of_the_output() -> None:
    model = DataOutput("model", "upload", datastore="models", path="m/{output-name}/{run-id}")

    data, _ = _translate((), (), (model,))

    sent = data.output_data["MLBOOT_OUTPUT_model"]._to_output_data()
    assert sent.output_location.data_path.relative_path == "m/model/{run-id}"


def test_a_placeholder_naming_no_output_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInputError, match=r"\$\{\{outputs\.model\}\} names no output"):
        _translate(("--out", "${{outputs.model}}"))


def test_a_url_input_needs_the_dataset_runtime_and_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match="input 'web' is an http") as caught:
        check_data_support({"data": "local", "web": "url"}, runtime_installed=lambda: False)

    assert caught.value.extra == "datasets"
    assert "mlboot[datasets]" in str(caught.value)
    assert isinstance(caught.value, ImportError)


@pytest.mark.parametrize(
    "kinds", [{"data": "local", "images": "datastore", "ds": "dataset"}, {"web": "url"}]
)
def test_inputs_that_need_no_runtime_or_have_it_pass(kinds: dict[str, str]) -> None:
    check_data_support(kinds, runtime_installed=lambda: "url" in kinds.values())


def test_the_azureml_backend_asks_about_input_kinds_before_anything_remote() -> None:
    assert isinstance(AzureMLBackend(), InputKindCheck)


def test_an_output_inside_a_longer_argument_becomes_the_variable_the_service_sets() -> None:
    # The SDK's markers ("DatasetOutputConfig:<n>") are only ever whole arguments; inside a
    # longer one the run reads the variable named after the output, as "$<n>".
    model = DataOutput("model", "upload", datastore="models", path="m/{run-id}")

    data, _ = _translate(
        ("${{outputs.model}}", "--model=${{outputs.model}}", "--m=${{outputs.model}}_best"),
        outputs=(model,),
    )

    assert data.arguments == [
        "DatasetOutputConfig:MLBOOT_OUTPUT_model",
        "--model=$MLBOOT_OUTPUT_model",
        "--m=${MLBOOT_OUTPUT_model}_best",
    ]


@pytest.mark.parametrize("version", ["01", "1.0", "v2", "0"])
def test_a_dataset_version_azureml_core_would_read_otherwise_is_refused_before_any_call(
    version: str,
) -> None:
    from mlboot._backends._seam import WorkspaceRef  # noqa: PLC0415

    ref = WorkspaceRef("00000000-0000-0000-0000-000000000000", "rg", "ws")
    # No SDK workspace was ever made: the refusal comes before the lookup.
    with pytest.raises(InvalidInputError) as caught:
        AzureMLBackend().check_registered_dataset(ref, "images", version)
    assert caught.value.value == f"azureml:images:{version}"
    assert "reads the version as an int" in caught.value.rule
