"""azure-ai-ml's code upload prints a colour reset to stderr; mlboot's v2 backend drops it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from mlboot._backends.azureml_v2._quiet import silence_upload_reset

pytest.importorskip("azure.ai.ml")

HELPERS = (
    "azure.ai.ml._artifacts._blob_storage_helper",
    "azure.ai.ml._artifacts._gen2_storage_helper",
)


@pytest.mark.parametrize("name", HELPERS)
def test_the_helpers_reset_line_is_dropped_and_their_other_prints_pass(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from colorama import Fore  # noqa: PLC0415  (azure-ai-ml's dependency)

    module = importlib.import_module(name)
    silence_upload_reset()
    silence_upload_reset()  # twice is the same as once

    module.print(Fore.RESET + "\n", file=sys.stderr)  # type: ignore[attr-defined]  # the patched print
    module.print("kept", file=sys.stderr)  # type: ignore[attr-defined]
    module.print(Fore.RESET + "\n")  # type: ignore[attr-defined]  # to stdout: not the upload's line

    captured = capsys.readouterr()
    assert captured.err == "kept\n"
    assert captured.out == Fore.RESET + "\n\n"


def test_the_reset_is_in_the_installed_sdk_where_the_helper_prints_it() -> None:
    # If azure-ai-ml stops printing it, this module (and its call) can go.
    source = importlib.import_module(HELPERS[0]).__file__
    assert source is not None
    text = Path(source).read_text(encoding="utf-8")
    assert 'print(Fore.RESET + "\\n", file=sys.stderr)' in text
