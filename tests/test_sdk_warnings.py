"""The SDKs' own deprecation warnings do not fail mlboot's calls under warnings-as-errors.

A program run with ``-W error`` (or pytest's ``filterwarnings = ["error"]``) turns every warning
into an exception.  azureml-core and azure-ai-ml raise deprecation warnings of their own inside
calls mlboot makes (``datetime.utcnow()`` on Python 3.12+ when an output is built, ``setDaemon``
when a run is canceled); mlboot ignores those, narrowly, and lets every other warning through
unchanged, never as a :class:`~mlboot.exceptions.ServiceError`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from mlboot._backends import _service_errors
from mlboot._backends._sdk_warnings import SDK_DEPRECATIONS, ignore_sdk_deprecations
from mlboot._backends.azureml._azureml import _translated, translate_sdk_error
from mlboot.exceptions import ServiceError

UTCNOW = "datetime.datetime.utcnow() is deprecated and scheduled for removal in a future version."


def _v1_call() -> AbstractContextManager[None]:
    return _translated("building the run's outputs")


def _v2_call() -> AbstractContextManager[None]:
    return _service_errors.translated(translate_sdk_error, "building the job")


CALLS: dict[str, Callable[[], AbstractContextManager[None]]] = {"v1": _v1_call, "v2": _v2_call}


@pytest.fixture(autouse=True)
def warnings_as_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _warn_from(
    module: str, message: str = UTCNOW, category: type[Warning] = DeprecationWarning
) -> None:
    warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(
    ("module", "message", "category"),
    [
        ("azureml.data._loggerfactory", UTCNOW, DeprecationWarning),
        ("azure.ai.ml._utils.utils", UTCNOW, DeprecationWarning),
        (
            "azureml._restclient.clientbase",
            "setDaemon() is deprecated, set the daemon attribute instead",
            DeprecationWarning,
        ),
        (
            "azureml.data.dataset_type_definitions",
            "FileType Enum is Deprecated in > 1.0.39.",
            DeprecationWarning,
        ),
        (
            "azureml._vendor.ruamel.yaml.main",
            "\nload will be removed, use\n\n  yaml=YAML(typ='unsafe')",
            PendingDeprecationWarning,
        ),
        (
            "marshmallow.fields",
            "The 'default' argument to fields is deprecated.",
            DeprecationWarning,
        ),
    ],
)
def test_an_sdk_deprecation_raised_inside_the_sdk_is_ignored_under_warnings_as_errors(
    call: str, module: str, message: str, category: type[Warning]
) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("error")
        with CALLS[call]():
            _warn_from(module, message, category)

    assert seen == []


@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_same_warning_raised_by_the_program_is_its_error_not_a_service_error(call: str) -> None:
    with pytest.raises(DeprecationWarning, match="utcnow") as raised, CALLS[call]():
        _warn_from("user_launcher")

    assert not isinstance(raised.value, ServiceError)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_another_warning_from_inside_the_sdk_still_follows_the_programs_filters(call: str) -> None:
    with pytest.raises(UserWarning, match="workspace name"), CALLS[call]():
        _warn_from("azureml.core.workspace", "the workspace name is odd", UserWarning)


def test_a_warning_the_program_turned_into_an_error_is_not_translated_by_v1s_own_error_rules() -> (
    None
):
    class LauncherWarning(RuntimeWarning):
        pass

    with pytest.raises(LauncherWarning), _translated("submitting the run"):
        warnings.warn("the launcher's own", LauncherWarning, stacklevel=1)


def test_the_filters_go_first_even_after_the_program_puts_its_own_in_front() -> None:
    ignore_sdk_deprecations()
    warnings.simplefilter("error")  # the program's, now first
    ignore_sdk_deprecations()

    firsts = [(entry[0], entry[2]) for entry in warnings.filters[: len(SDK_DEPRECATIONS)]]
    assert firsts == [("ignore", category) for category, _message, _module in SDK_DEPRECATIONS]
    assert warnings.filters[len(SDK_DEPRECATIONS)][:3] == ("error", None, Warning)


def test_calling_it_before_every_sdk_call_does_not_grow_the_filter_list() -> None:
    ignore_sdk_deprecations()
    before = list(warnings.filters)

    for _ in range(50):
        ignore_sdk_deprecations()
        warnings.simplefilter("error")  # the program's, in front each time: moved, not added
    ignore_sdk_deprecations()

    assert len(warnings.filters) == len(before)


def test_the_filters_are_back_in_place_after_a_catch_warnings_block_restored_the_list() -> None:
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("error")
    with warnings.catch_warnings():
        warnings.resetwarnings()  # e.g. a test framework's own per-test list
        warnings.simplefilter("error")
        with _v1_call():
            _warn_from("azureml.data._loggerfactory")  # no error: the filters came back


def test_inside_pytest_warns_an_sdk_deprecation_is_neither_recorded_nor_raised_again() -> None:
    def an_sdk_call_then_the_launchers_own_warning() -> None:
        with _v2_call():
            _warn_from("azure.ai.ml.entities._job.job")
        warnings.warn("the launcher's own", UserWarning, stacklevel=1)

    with pytest.warns(UserWarning, match="the launcher's own") as recorded:
        an_sdk_call_then_the_launchers_own_warning()

    assert [str(w.message) for w in recorded] == ["the launcher's own"]


RUN_UNDER_W_ERROR = textwrap.dedent(
    """
    import importlib.util

    import mlboot
    from mlboot._backends.azureml._azureml import _translated
    from mlboot._backends.azureml._data import sdk_data
    from mlboot.backend import DataOutput

    with _translated("building the run's outputs"):
        from azureml.data.azure_storage_datastore import AzureBlobDatastore

        store = AzureBlobDatastore(None, "workspaceblobstore", "c", "account", account_key="a2V5")
        data = sdk_data(
            (),
            (DataOutput("model", "upload", datastore="workspaceblobstore", path="m"),),
            ("--model=${{outputs.model}}",),
            datastore=lambda name: store,
            dataset=lambda name, version: None,
        )
    print("v1", sorted(data.output_data))
    if importlib.util.find_spec("azure.ai.ml") is not None:
        from mlboot._backends.azureml_v2._azureml_v2 import check_installed

        check_installed()
        with _translated("building the job"):
            from azure.ai.ml import Input, Output, command

            job = command(
                command="python train.py",
                inputs={"x": Input(path="azureml://datastores/workspaceblobstore/paths/x")},
                outputs={"y": Output(path="azureml://datastores/workspaceblobstore/paths/y")},
                environment="azureml:env:1",
                compute="cpu",
            )
            print("v2", sorted(job._to_rest_object()["outputs"]))
    """
)


@pytest.mark.sdk
def test_the_installed_sdks_load_and_build_their_objects_through_mlboot_under_python_w_error(
    tmp_path: Path,
) -> None:
    # A fresh interpreter: the SDKs' import-time warnings (and, where no bytecode is cached,
    # their compile-time ones) are raised only on first import.
    done = subprocess.run(  # noqa: S603  (our own interpreter, fixed code)
        [sys.executable, "-W", "error", "-c", RUN_UNDER_W_ERROR],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    expected = ["v1 ['MLBOOT_OUTPUT_model']"]
    if importlib.util.find_spec("azure.ai.ml") is not None:
        expected.append("v2 ['y']")
    assert done.stdout.splitlines() == expected
