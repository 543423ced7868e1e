"""A run's data inputs and outputs in azureml-core's terms (the azureml-core backend's part).

mlboot's records (:class:`~mlboot.backend.DataInput`, :class:`~mlboot.backend.DataOutput`)
arrive checked and resolved above the seam; this module only says them the way azureml-core
does (see docs/dev/data-on-azureml-core.md for the calls and what each sends):

- a datastore input is a data reference, ``ds.path(p, data_reference_name=n).as_mount()`` or
  ``.as_download()``, in ``run_config.data_references``; its argument text is ``str(ref)``,
  ``$AZUREML_DATAREFERENCE_<n>``, which the service replaces with the path on the compute;
- a registered dataset is ``Dataset.get_by_name(...).as_named_input(n).as_mount()`` or
  ``.as_download()`` in ``run_config.data`` (no dataset runtime needed), argument text
  ``DatasetConsumptionConfig:<n>``;
- a URL is ``Dataset.File.from_files(url).as_named_input(n).as_download()``, which needs
  ``azureml-dataset-runtime`` (mlboot's ``datasets`` extra): :func:`check_data_support` says so
  before anything remote;
- an output is ``OutputFileDatasetConfig(n, destination=(ds, p)).as_upload()`` or
  ``.as_mount()`` in ``run_config.output_data`` (no destination: the default datastore's
  ``dataset/{run-id}/<name>``, where the service would put it), argument text
  ``DatasetOutputConfig:<n>``.

The names ``n`` azureml-core sees are ``MLBOOT_INPUT_<name>`` and ``MLBOOT_OUTPUT_<name>``:
the service makes a dataset input's and an output's name an environment variable holding the
path on the compute (``as_named_input``'s contract; the SDK warns about names that collide with
common variables, which the prefix rules out), so the script finds the same variables as on
every backend.  A data reference has no variable of that name (the service sets
``AZUREML_DATAREFERENCE_<n>``): the run configuration's ``MLBOOT_INPUT_<name>`` holds the text
``$AZUREML_DATAREFERENCE_<n>`` (see :func:`sdk_data`).

Nothing here sends a request but the lookups the caller hands in (``datastore``, ``dataset``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from mlboot._backends._placeholders import PLACEHOLDER, unknown_placeholder
from mlboot._backends._seam import DEFAULT_OUTPUT_PATH
from mlboot.exceptions import InvalidInputError, MissingExtraError

if TYPE_CHECKING:
    from mlboot._backends._seam import DataInput, DataOutput

__all__ = [
    "DATASET_RUNTIME",
    "SdkData",
    "check_data_support",
    "input_binding",
    "output_binding",
    "output_path",
    "sdk_data",
]

DATASET_RUNTIME = "azureml-dataset-runtime"
# The v2 command syntax, which RunRequest.arguments carry (the seam's docstring).
_INPUT_PREFIX = "MLBOOT_INPUT_"
_OUTPUT_PREFIX = "MLBOOT_OUTPUT_"
# azureml-core's own placeholders for what it moves out of arguments (azureml/data/constants.py).
_DATASET_ARGUMENT = "DatasetConsumptionConfig:{}"
_OUTPUT_ARGUMENT = "DatasetOutputConfig:{}"


def input_binding(name: str) -> str:
    """The name azureml-core knows input ``name`` by: also the variable the script reads."""
    return _INPUT_PREFIX + name


def output_binding(name: str) -> str:
    """The name azureml-core knows output ``name`` by: also the variable the script reads."""
    return _OUTPUT_PREFIX + name


def _dataset_runtime_installed() -> bool:
    # azureml-dataset-runtime brings azureml.dataprep, which Dataset.File.from_files imports.
    try:
        return importlib.util.find_spec("azureml.dataprep") is not None
    except (ImportError, ValueError):
        return False


def check_data_support(
    kinds: Mapping[str, str], *, runtime_installed: Callable[[], bool] | None = None
) -> None:
    """Fail before anything remote when an input needs what is not installed.

    ``kinds`` maps each input's name to its kind.  A URL input is a file dataset built on the
    client (``Dataset.File.from_files``), which needs ``azureml-dataset-runtime``: mlboot's
    ``datasets`` extra.  Registered datasets, datastore paths, local inputs (uploaded, then a
    datastore path) and outputs do not need it.
    """
    urls = [name for name, kind in kinds.items() if kind == "url"]
    if not urls:
        return
    installed = _dataset_runtime_installed if runtime_installed is None else runtime_installed
    if installed():
        return
    raise MissingExtraError(
        f"input {urls[0]!r} is an http(s) URL, which azureml-core can only send as a file "
        f"dataset built by {DATASET_RUNTIME}, and that is not installed (azureml.dataprep is "
        "missing). Fix: install mlboot's datasets extra: python -m pip install "
        f"'mlboot[datasets]' (or: python -m pip install {DATASET_RUNTIME}); or upload the file "
        "to a datastore and give its azureml://datastores/<name>/paths/<path> URI.",
        extra="datasets",
    )


@attrs.frozen
class SdkData:
    """What goes into a ``ScriptRunConfig`` for a request's inputs and outputs.

    ``arguments`` are the request's, each ``${{inputs.<name>}}`` / ``${{outputs.<name>}}``
    replaced by azureml-core's text for it; the three sections are ``run_config``'s;
    ``environment_variables`` are to be merged into ``run_config.environment_variables``.
    """

    arguments: list[str]
    data_references: dict[str, Any]
    data: dict[str, Any]
    output_data: dict[str, Any]
    environment_variables: dict[str, str]


def sdk_data(
    inputs: Sequence[DataInput],
    outputs: Sequence[DataOutput],
    arguments: Sequence[str],
    *,
    datastore: Callable[[str | None], Any],
    dataset: Callable[[str, str | None], Any],
) -> SdkData:
    """Translate a request's data; ``datastore(name)`` and ``dataset(name, version)`` give the
    SDK objects (``datastore(None)``: the default datastore).

    A datastore input's variable: the run configuration sets ``MLBOOT_INPUT_<name>`` to
    ``$AZUREML_DATAREFERENCE_MLBOOT_INPUT_<name>``, the variable the service does set.  The
    service replaces that text in the arguments; whether it expands it in another variable's
    value could not be checked without Azure, so the script should read the argument, or
    ``os.path.expandvars(os.environ["MLBOOT_INPUT_<name>"])``, which is the path either way.
    Dataset inputs and outputs need nothing: the service sets their variables itself.
    """
    texts: dict[tuple[str, str], str] = {}  # a whole argument: the SDK's own text
    variables_of: dict[tuple[str, str], str] = {}  # inside a longer one: the variable's name
    references: dict[str, Any] = {}
    consumed: dict[str, Any] = {}
    produced: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for item in inputs:
        binding = input_binding(item.name)
        if item.kind == "datastore":
            reference = _data_reference(datastore(item.datastore), item, binding)
            references[binding] = reference.to_config()
            texts[("inputs", item.name)] = variables[binding] = str(reference)
            variables_of[("inputs", item.name)] = str(reference).removeprefix("$")
        else:
            consumed[binding] = _dataset_input(item, binding, dataset)
            texts[("inputs", item.name)] = _DATASET_ARGUMENT.format(binding)
            variables_of[("inputs", item.name)] = binding
    for output in outputs:
        binding = output_binding(output.name)
        produced[binding] = _output(output, binding, datastore)
        texts[("outputs", output.name)] = _OUTPUT_ARGUMENT.format(binding)
        variables_of[("outputs", output.name)] = binding
    return SdkData(
        arguments=[_substituted(argument, texts, variables_of) for argument in arguments],
        data_references=references,
        data=consumed,
        output_data=produced,
        environment_variables=variables,
    )


def _substituted(
    argument: str, texts: dict[tuple[str, str], str], variables: dict[tuple[str, str], str]
) -> str:
    """``argument`` with its placeholders in azureml-core's words.

    A whole argument becomes the SDK's own text (``DatasetConsumptionConfig:<n>``,
    ``DatasetOutputConfig:<n>``, ``$AZUREML_DATAREFERENCE_<n>``), which the service replaces
    with the path.  Inside a longer argument (``--data=${{inputs.x}}``) the SDK has no form of
    its own; there it becomes ``$<variable>``, the variable the service sets to the path, the
    way ``str(PipelineData)`` (``$AZUREML_DATAREFERENCE_<n>``) is used inside f-strings
    (``${<variable>}`` when a name character follows, so the two do not run together).
    """
    whole = PLACEHOLDER.fullmatch(argument)
    if whole is not None:
        key = (whole.group(1), whole.group(2))
        if key not in texts:
            raise unknown_placeholder(argument, whole)
        return texts[key]

    def replace(match: re.Match[str]) -> str:
        key = (match.group(1), match.group(2))
        if key not in variables:
            raise unknown_placeholder(argument, match)
        following = argument[match.end() : match.end() + 1]
        if following.isascii() and (following.isalnum() or following == "_"):
            return "${" + variables[key] + "}"
        return "$" + variables[key]

    return PLACEHOLDER.sub(replace, argument)


def _data_reference(sdk_datastore: Any, item: DataInput, binding: str) -> Any:
    # "" (the datastore's root) goes as None: the SDK sends null for the root.
    path = sdk_datastore.path(item.path or None, data_reference_name=binding)
    return path.as_download() if item.mode == "download" else path.as_mount()


def _dataset_input(item: DataInput, binding: str, dataset: Callable[[str, str | None], Any]) -> Any:
    if item.kind == "dataset":
        named = dataset(str(item.dataset), item.version).as_named_input(binding)
    elif item.kind == "url":
        from azureml.core import Dataset  # noqa: PLC0415  (the SDK loads only on use)

        # Needs azureml-dataset-runtime: check_data_support ran first.
        named = Dataset.File.from_files(path=str(item.url)).as_named_input(binding)
    else:
        raise InvalidInputError(
            "inputs",
            item.kind,
            "an input's kind must be 'datastore', 'url' or 'dataset'",
            "build the input with mlboot.Input",
        )
    return named.as_download() if item.mode == "download" else named.as_mount()


def output_path(output: DataOutput) -> str:
    """Where output goes in its datastore, ``{run-id}`` left for the service to expand.

    ``{output-name}`` is mlboot's name of the output: the service would put its own (the
    ``MLBOOT_OUTPUT_`` one) there.  An output without a destination goes where the service puts
    one of its own (``dataset/{run-id}/{output-name}`` in the default datastore), under
    mlboot's name, as on every backend.
    """
    if output.datastore is None or output.path is None:
        return DEFAULT_OUTPUT_PATH.replace("{output-name}", output.name)
    return output.path.replace("{output-name}", output.name)


def _output(output: DataOutput, binding: str, datastore: Callable[[str | None], Any]) -> Any:
    from azureml.data import OutputFileDatasetConfig  # noqa: PLC0415  (loads on use)

    destination = (datastore(output.datastore), output_path(output))
    config = OutputFileDatasetConfig(name=binding, destination=destination)
    # An upload replaces what is at the path (mlboot's outputs are copies, as on the local
    # backend); the SDK's default would fail the run's end when a file exists there.
    return config.as_mount() if output.mode == "mount" else config.as_upload(overwrite=True)
