"""Fixtures that run the real azureml-core against the Azure ML emulator (tests/emulator)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azureml.core import Workspace

_TESTS_DIR = Path(__file__).resolve().parents[1]
if str(_TESTS_DIR) not in sys.path:
    # tests/ is not a package: make tests/emulator importable as "emulator".
    sys.path.insert(0, str(_TESTS_DIR))

from emulator import Emulator, emulator_for_test  # noqa: E402


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A started emulator with one workspace, and azureml-core pointed at it for this test.

    ``HOME``/``AZURE_CONFIG_DIR`` are fresh temporary folders, the emulator's CA is trusted
    through ``REQUESTS_CA_BUNDLE``, its blob host resolves to 127.0.0.1, and the SDK's wait knobs
    are short (see ``emulator.isolate_sdk``). The server is stopped (and joined, with a time
    limit) after the test; a bug inside an emulator handler fails the test.
    """
    with emulator_for_test(tmp_path / "emulator", monkeypatch, tmp_path / "home") as emu:
        yield emu


@pytest.fixture
def workspace(emulator: Emulator) -> Any:
    """``azureml.core.Workspace`` for the emulator's default workspace (one ARM GET)."""
    state = emulator.workspace
    return Workspace.get(
        state.name,
        auth=emulator.auth,
        subscription_id=state.subscription_id,
        resource_group=state.resource_group,
    )


@pytest.fixture
def config(emulator: Emulator, tmp_path: Path) -> Path:
    """A ``config.json`` naming the emulator's default workspace."""
    state = emulator.workspace
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "subscription_id": state.subscription_id,
                "resource_group": state.resource_group,
                "workspace_name": state.name,
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A small training project: a script, a package, data to leave out, and an .amlignore."""
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "train.py").write_text("import argparse\nprint('training')\n", encoding="utf-8")
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pkg" / "model.py").write_text("WEIGHTS = [1, 2, 3]\n", encoding="utf-8")
    (root / "data" / "big.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / ".amlignore").write_text("data/\n*.log\n", encoding="utf-8")
    (root / "debug.log").write_text("local noise\n", encoding="utf-8")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything below tests/integration runs in the `integration` nox session."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)
            # Most runs here leave the environment out on purpose; the warning that this issues
            # is pinned once, with pytest.warns, in test_mlboot_against_emulator.py.
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:No environment given:mlboot.exceptions.MlbootWarning"
                )
            )
