"""mlboot's pytest plugin, from the outside (sample projects run by pytester) and the inside."""

from __future__ import annotations

import os
import shutil
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import mlboot
import mlboot.pytest_plugin
from mlboot._config import load_config
from mlboot.testing import FakeBackend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
TRAINING_REPO = Path(__file__).parent / "plugin_project" / "training_repo"
FIXTURES = ("mlboot_config_file", "mlboot_fake", "mlboot_offline", "mlboot_workspace")

CONFIG_JSON = (
    '{"subscription_id": "00000000-0000-0000-0000-000000000000",'
    ' "resource_group": "rg", "workspace_name": "ws-own"}'
)


# -- how pytest finds the plugin ---------------------------------------------------------------


def test_pyproject_declares_the_plugin_as_a_pytest11_entry_point() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert pyproject["project"]["entry-points"]["pytest11"] == {"mlboot": "mlboot.pytest_plugin"}


def test_the_installed_entry_point_loads_the_plugin_module() -> None:
    ours = [ep for ep in entry_points(group="pytest11") if ep.value.startswith("mlboot")]

    assert [(ep.name, ep.value) for ep in ours] == [("mlboot", "mlboot.pytest_plugin")]
    assert ours[0].load() is mlboot.pytest_plugin


def test_a_fresh_pytest_run_loads_the_plugin_without_azureml_and_changes_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import sys

        import mlboot.pytest_plugin
        from mlboot import _workspace
        from mlboot.testing import FakeBackend

        def test_plugin_is_loaded_by_its_entry_point_name(request):
            assert request.config.pluginmanager.get_plugin("mlboot") is mlboot.pytest_plugin

        def test_no_sdk_was_imported():
            assert [m for m in sys.modules if m.split(".")[0] == "azureml"] == []

        def test_no_mlboot_fixture_runs_unasked(request):
            assert [n for n in request.fixturenames if n.startswith("mlboot")] == []

        def test_the_default_backend_is_still_azure():
            assert type(_workspace._default_backend()).__name__ == "AzureMLBackend"
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=4)


def test_p_no_mlboot_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_asks_for_the_fake(mlboot_fake): pass")

    result = pytester.runpytest("-p", "no:mlboot", "-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mlboot_fake' not found*"])


def test_pytest_fixtures_lists_every_fixture_with_its_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.OK
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "from mlboot.pytest_plugin" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("---"))
    section = lines[start + 1 : end]
    listed = {line.split(" ")[0]: i for i, line in enumerate(section) if line.startswith("mlboot")}
    assert sorted(listed) == sorted(FIXTURES)
    for i in listed.values():
        assert "mlboot/pytest_plugin.py" in section[i]
        assert section[i + 1].strip() not in {"", "no docstring available"}


# -- the sample training repository ----------------------------------------------------------


def test_a_training_repository_tests_offline_with_the_fixtures(pytester: pytest.Pytester) -> None:
    shutil.copytree(TRAINING_REPO, pytester.path, dirs_exist_ok=True)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=7)


def test_mlboot_offline_lasts_for_its_own_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import mlboot
        from mlboot import _workspace

        def test_offline(mlboot_offline, mlboot_config_file):
            workspace = mlboot.workspace_from_config(mlboot_config_file)
            assert workspace.backend is mlboot_offline
            assert [call.operation for call in mlboot_offline.calls] == ["get_workspace"]

        def test_next_test_is_back_on_azure():
            assert type(_workspace._default_backend()).__name__ == "AzureMLBackend"
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("ini_line", "offline"),
    [("mlboot_offline = true", True), ("mlboot_offline = false", False), ("", False)],
    ids=["true", "false", "unset"],
)
def test_the_mlboot_offline_ini_option_applies_to_every_test_when_true(
    pytester: pytest.Pytester, ini_line: str, offline: bool
) -> None:
    pytester.makepyprojecttoml(
        f"""
        [tool.pytest.ini_options]
        addopts = ["--strict-config"]
        {ini_line}
        """
    )
    pytester.makepyfile(
        f"""
        import mlboot
        from mlboot import _workspace
        from mlboot.testing import FakeBackend

        def test_a_test_that_asks_for_nothing(request, tmp_path):
            assert ("mlboot_offline" in request.fixturenames) is {offline}
            assert isinstance(_workspace._default_backend(), FakeBackend) is {offline}
            if {offline}:
                (tmp_path / "config.json").write_text({CONFIG_JSON!r})
                workspace = mlboot.workspace_from_config(tmp_path)
                assert workspace.backend is request.getfixturevalue("mlboot_fake")
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


def test_the_ini_option_can_be_set_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_offline_without_asking(request):
            assert "mlboot_offline" in request.fixturenames
        """
    )

    result = pytester.runpytest("-o", "mlboot_offline=true", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)


# -- the fixtures themselves (the plugin is loaded in mlboot's own test run too) ----------------


def test_mlboot_workspace_is_the_generated_workspace_on_the_fake(
    mlboot_workspace: mlboot.Workspace, mlboot_fake: FakeBackend, mlboot_config_file: Path
) -> None:
    assert mlboot_workspace == mlboot.Workspace(
        name="ws-mlboot-test",
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg-mlboot-test",
        location="westeurope",
        backend=mlboot_fake,
    )
    assert mlboot_workspace.backend is mlboot_fake
    assert mlboot_workspace.config_path == mlboot_config_file
    assert [call.operation for call in mlboot_fake.calls] == ["get_workspace"]


def test_mlboot_config_file_is_valid_and_kept_out_of_tmp_path(
    mlboot_config_file: Path, tmp_path: Path
) -> None:
    config = load_config(mlboot_config_file, environ={})

    assert (config.subscription_id, config.resource_group, config.workspace_name) == (
        "00000000-0000-0000-0000-000000000000",
        "rg-mlboot-test",
        "ws-mlboot-test",
    )
    assert not mlboot_config_file.is_relative_to(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_mlboot_workspace_ignores_mlboot_environment_variables_and_leaves_them_set(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLBOOT_WORKSPACE_NAME", "ws-from-the-environment")
    monkeypatch.setenv("MLBOOT_SUBSCRIPTION_ID", "not-a-guid")

    workspace = request.getfixturevalue("mlboot_workspace")

    assert workspace.name == "ws-mlboot-test"
    assert os.environ["MLBOOT_WORKSPACE_NAME"] == "ws-from-the-environment"
    assert os.environ["MLBOOT_SUBSCRIPTION_ID"] == "not-a-guid"


def test_the_fixtures_of_one_test_share_one_fake(
    mlboot_offline: FakeBackend,
    mlboot_workspace: mlboot.Workspace,
    mlboot_fake: FakeBackend,
    mlboot_config_file: Path,
) -> None:
    found = mlboot.workspace_from_config(mlboot_config_file)

    assert mlboot_offline is mlboot_fake
    assert found.backend is mlboot_workspace.backend is mlboot_fake
    assert len(mlboot_fake.calls_to("get_workspace")) == 2


def test_mlboot_offline_still_validates_the_config(
    mlboot_offline: FakeBackend, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text('{"workspace_name": "ws"}', encoding="utf-8")

    with pytest.raises(mlboot.exceptions.ConfigError, match="subscription_id"):
        mlboot.workspace_from_config(tmp_path)
    assert mlboot_offline.calls == []
