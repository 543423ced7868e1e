"""workspace_from_config through the fake: validation first, then one remote lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mlboot
from mlboot import AzureCliAuth, Workspace, workspace_from_config
from mlboot.backend import WorkspaceRef
from mlboot.exceptions import (
    AuthenticationError,
    ConfigError,
    ConfigNotFoundError,
    NetworkError,
    SdkObjectUnavailableError,
    WorkspaceNotFoundError,
)
from mlboot.testing import FakeBackend


def test_a_plain_fake_answers_for_any_valid_config(config_file: Path) -> None:
    fake = FakeBackend(location="northeurope")
    workspace = workspace_from_config(config_file, backend=fake)
    assert workspace.name == "ws-test"
    assert workspace.location == "northeurope"
    assert workspace.config_path == config_file
    assert workspace.backend is fake
    assert [call.operation for call in fake.calls] == ["get_workspace"]


def test_the_cloud_is_always_passed_explicitly(config_file: Path) -> None:
    fake = FakeBackend()
    workspace_from_config(config_file, backend=fake, auth=AzureCliAuth())
    (call,) = fake.calls
    assert call.arguments["cloud"] == "AzureCloud"
    assert call.arguments["credential"] == AzureCliAuth()
    assert call.arguments["ref"] == WorkspaceRef(
        "00000000-0000-0000-0000-000000000000", "rg", "ws-test"
    )


def test_tenant_from_config_reaches_the_backend(tmp_path: Path) -> None:
    tenant = "99999999-2222-3333-4444-555555555555"
    file = tmp_path / "config.json"
    file.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg",
                "workspace_name": "ws-t",
                "tenant_id": tenant,
                "cloud": "AzureUSGovernment",
            }
        ),
        encoding="utf-8",
    )
    fake = FakeBackend()
    workspace = workspace_from_config(file, backend=fake)
    assert fake.calls[0].arguments["tenant_id"] == tenant
    assert workspace.cloud == "AzureUSGovernment"


def test_missing_workspace_is_reported_at_once_naming_it(config_file: Path) -> None:
    fake = FakeBackend()
    fake.mark_workspace_missing("ws-test")
    with pytest.raises(WorkspaceNotFoundError, match="ws-test"):
        workspace_from_config(config_file, backend=fake)
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("kind", "error"), [("auth", AuthenticationError), ("network", NetworkError)]
)
def test_backend_failures_surface_typed(
    config_file: Path, kind: str, error: type[Exception]
) -> None:
    fake = FakeBackend()
    fake.fail("get_workspace", kind)  # type: ignore[arg-type]
    with pytest.raises(error):
        workspace_from_config(config_file, backend=fake)


def test_bad_config_fails_before_anything_remote(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text('{"subscription_id": "nope", "resource_group": "rg", "workspace_name": "w-1"}')
    fake = FakeBackend()
    with pytest.raises(ConfigError, match="subscription_id"):
        workspace_from_config(file, backend=fake)
    assert fake.calls == []


def test_no_config_anywhere_fails_before_anything_remote(tmp_path: Path) -> None:
    fake = FakeBackend()
    with pytest.raises(ConfigNotFoundError):
        workspace_from_config(tmp_path / "empty", backend=fake)
    assert fake.calls == []


def test_environment_variables_alone_are_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLBOOT_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("MLBOOT_RESOURCE_GROUP", "rg")
    monkeypatch.setenv("MLBOOT_WORKSPACE_NAME", "from-env")
    workspace = workspace_from_config(backend=FakeBackend())
    assert workspace.name == "from-env"
    assert workspace.config_path is None


def test_workspace_equality_and_repr_leave_the_backend_out(config_file: Path) -> None:
    one = workspace_from_config(config_file, backend=FakeBackend())
    two = workspace_from_config(config_file, backend=FakeBackend())
    assert one == two
    assert "FakeBackend" not in repr(one)
    assert "ws-test" in repr(one)


def test_to_azureml_on_the_fake_says_there_is_no_sdk_object(config_file: Path) -> None:
    fake = FakeBackend()
    workspace = workspace_from_config(config_file, backend=fake)
    with pytest.raises(NotImplementedError, match="no azureml-core objects") as caught:
        workspace.to_azureml()
    assert isinstance(caught.value, SdkObjectUnavailableError)
    assert "Fix: run the code that needs the SDK object against Azure ML" in str(caught.value)
    assert [call.operation for call in fake.calls] == ["get_workspace"]


def test_workspace_is_frozen(config_file: Path) -> None:
    import attrs  # noqa: PLC0415

    workspace = workspace_from_config(config_file, backend=FakeBackend())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        workspace.name = "other"  # type: ignore[misc]
    assert isinstance(workspace, Workspace)


def test_public_names_are_sorted_and_exist() -> None:
    assert mlboot.__all__ == sorted(mlboot.__all__)
    for name in mlboot.__all__:
        assert hasattr(mlboot, name), name
