"""The repository's tests: each asks for an mlboot fixture, and none reaches Azure."""

from __future__ import annotations

from pathlib import Path

import launch
import pytest

import mlboot
from mlboot.testing import FakeBackend


def test_the_workspace_fixture_comes_from_the_fake(
    mlboot_workspace: mlboot.Workspace, mlboot_fake: FakeBackend
) -> None:
    assert mlboot_workspace.name == "ws-mlboot-test"
    assert mlboot_workspace.backend is mlboot_fake
    assert [call.operation for call in mlboot_fake.calls] == ["get_workspace"]


def test_the_cluster_is_created_once_on_the_fake(
    mlboot_workspace: mlboot.Workspace, mlboot_fake: FakeBackend
) -> None:
    cluster = launch.training_cluster(mlboot_workspace)
    again = launch.training_cluster(mlboot_workspace)

    assert (cluster.name, again.name) == (launch.CLUSTER, launch.CLUSTER)
    assert len(mlboot_fake.calls_to("create_compute")) == 1


def test_an_existing_cluster_is_reused(
    mlboot_workspace: mlboot.Workspace, mlboot_fake: FakeBackend
) -> None:
    mlboot_fake.add_compute(launch.CLUSTER, vm_size="STANDARD_DS3_V2", max_nodes=4)

    launch.training_cluster(mlboot_workspace)

    assert mlboot_fake.calls_to("create_compute") == []


def test_code_that_finds_its_own_config_runs_offline(
    mlboot_offline: FakeBackend, mlboot_config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlboot_config_file.parent)

    workspace = launch.connect()

    assert workspace.backend is mlboot_offline
    assert workspace.config_path == mlboot_config_file


def test_each_test_gets_a_fresh_fake(mlboot_fake: FakeBackend) -> None:
    assert mlboot_fake.calls == []
