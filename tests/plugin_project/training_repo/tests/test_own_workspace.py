"""Overriding mlboot's fixtures: this module's tests use its own config file and fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlboot
from mlboot.testing import FakeBackend


@pytest.fixture
def mlboot_config_file(tmp_path: Path) -> Path:
    path = tmp_path / ".azureml" / "config.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "subscription_id": "11111111-1111-1111-1111-111111111111",
                "resource_group": "rg-vision",
                "workspace_name": "ws-vision",
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def mlboot_fake() -> FakeBackend:
    return FakeBackend(location="swedencentral")


def test_the_workspace_is_the_one_this_module_configured(
    mlboot_workspace: mlboot.Workspace,
) -> None:
    assert (mlboot_workspace.name, mlboot_workspace.resource_group) == ("ws-vision", "rg-vision")
    assert mlboot_workspace.location == "swedencentral"


def test_a_missing_workspace_is_reported(
    mlboot_fake: FakeBackend, mlboot_config_file: Path
) -> None:
    mlboot_fake.mark_workspace_missing("ws-vision")

    with pytest.raises(mlboot.exceptions.WorkspaceNotFoundError):
        mlboot.workspace_from_config(mlboot_config_file, backend=mlboot_fake)
