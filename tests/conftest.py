"""Shared fixtures: every test starts from a clean, private environment."""

from __future__ import annotations

from pathlib import Path

import pytest


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
