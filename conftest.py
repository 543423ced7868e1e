"""Runs every code example in the docs and in the package's docstrings as a test (Sybil)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers import myst, rest

from mlboot.testing import FakeBackend, use_backend

_VARIABLE_PREFIXES = ("MLBOOT_", "AZURE_", "AZUREML_", "MSI_", "IDENTITY_")


@pytest.fixture(autouse=True)
def _private_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test sees the developer's Azure settings or writes to their home folder."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_VARIABLE_PREFIXES):
                patch.delenv(name)
        patch.setenv("HOME", str(home))
        patch.setenv("AZURE_CONFIG_DIR", str(home / ".azure"))
        yield


@pytest.fixture(scope="module")
def in_tmp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each document's examples run, in order, inside one empty temporary folder of their own."""
    tmp_path = tmp_path_factory.mktemp("doc")
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def offline_fake() -> Iterator[FakeBackend]:
    """A document's fake Azure ML: ``workspace_from_config()`` without ``backend=`` uses it.

    So each how-to can start with the plain launcher a reader copies, and still run here, with
    no Azure account.  A config file that chooses the local backend keeps it.
    """
    with use_backend(FakeBackend()) as fake:
        yield fake


_markdown = Sybil(
    parsers=[
        myst.PythonCodeBlockParser(),
        myst.DocTestDirectiveParser(),
        myst.SkipParser(),
    ],
    patterns=["*.md"],
    path="docs",
    fixtures=["in_tmp_folder", "offline_fake"],
    excludes=["_build/*"],
)
_docstrings = Sybil(
    parsers=[rest.DocTestParser(), rest.SkipParser()],
    patterns=["*.py"],
    path="src/mlboot",
)

pytest_collect_file = (_markdown + _docstrings).pytest()
