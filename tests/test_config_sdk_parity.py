"""Over generated trees of config files, mlboot picks the same file as the SDK's from_config."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlboot._config import find_config_file
from mlboot.exceptions import ConfigNotFoundError

pytestmark = pytest.mark.sdk

PLACES = (
    ".azureml/config.json",
    ".azureml/project.json",
    "aml_config/config.json",
    "aml_config/project.json",
    "config.json",
    "project.json",
)
CONTENT = json.dumps(
    {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "rg",
        "workspace_name": "ws-x",
    }
)

levels = st.integers(min_value=0, max_value=3)
trees = st.lists(st.tuples(levels, st.sampled_from(PLACES)), max_size=8, unique=True)


def sdk_choice(start: Path) -> Path | None:
    """The file azureml-core's Workspace.from_config settles on (its lookup is stubbed)."""
    from azureml._project import project_info  # noqa: PLC0415  (the SDK is the reference here)
    from azureml.core import Workspace  # noqa: PLC0415
    from azureml.exceptions import UserErrorException  # noqa: PLC0415

    chosen: list[str] = []

    def record(found_path: str) -> tuple[str, str, str]:
        chosen.append(found_path)
        return ("s", "r", "w")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(project_info, "get_workspace_info", record)
        patch.setattr(Workspace, "get", staticmethod(lambda *_a, **_k: None))
        try:
            Workspace.from_config(str(start))
        except UserErrorException:
            return None
    return Path(chosen[0])


def mlboot_choice(start: Path) -> Path | None:
    try:
        return find_config_file(start)
    except ConfigNotFoundError:
        return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, start_level=levels, start_is_file=st.booleans())
def test_mlboot_finds_the_same_config_file_as_the_sdk(
    tree: list[tuple[int, str]], start_level: int, start_is_file: bool
) -> None:
    root = Path(tempfile.mkdtemp(prefix="mlboot-parity-"))
    try:
        folders = [root, root / "a", root / "a" / "b", root / "a" / "b" / "c"]
        folders[-1].mkdir(parents=True)
        for level, place in tree:
            file = folders[level] / place
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(CONTENT, encoding="utf-8")
        start = folders[start_level]
        if start_is_file and tree:
            level, place = tree[0]
            start = folders[level] / place
        expected = sdk_choice(start)
        found = mlboot_choice(start)
        assert found == expected
        # The case is not vacuous: with a file in the start folder or above, both find one.
        if any(level <= start_level for level, _ in tree):
            assert found is not None
    finally:
        shutil.rmtree(root)
