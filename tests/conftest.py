"""Shared fixtures: every test starts from a clean, private environment."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlboot
from fake_workspaces import make_workspace
from mlboot.testing import FakeBackend


@pytest.fixture
def fake() -> FakeBackend:
    """A fresh FakeBackend (its clock is fake: nothing sleeps for real)."""
    return FakeBackend()


@pytest.fixture
def workspace(fake: FakeBackend) -> mlboot.Workspace:
    """Workspace ``ws`` on :func:`fake`."""
    return make_workspace(fake)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A valid config.json in a fresh folder."""
    path = tmp_path / "config.json"
    path.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-000000000000",'
        ' "resource_group": "rg", "workspace_name": "ws-test"}',
        encoding="utf-8",
    )
    return path
