"""Config discovery and parsing: where the file is found, what is accepted, what is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mlboot._cli import ExitCode
from mlboot._config import ENV_VARIABLES, KNOWN_KEYS, find_config_file, load_config
from mlboot.exceptions import ConfigError, ConfigNotFoundError, MlbootWarning

SUB = "11111111-2222-3333-4444-555555555555"
GOOD = {"subscription_id": SUB, "resource_group": "rg-ml", "workspace_name": "ws-main"}


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_a_file_path_is_used_as_is(tmp_path: Path) -> None:
    file = write(tmp_path / "elsewhere" / "my-ws.json", GOOD)
    assert find_config_file(file) == file


def test_dot_azureml_in_a_parent_wins_over_plain_config_json_here(tmp_path: Path) -> None:
    winner = write(tmp_path / ".azureml" / "config.json", GOOD)
    write(tmp_path / "a" / "b" / "config.json", GOOD)
    assert find_config_file(tmp_path / "a" / "b") == winner


def test_config_json_beats_project_json_in_the_same_folder(tmp_path: Path) -> None:
    write(tmp_path / "project.json", GOOD)
    winner = write(tmp_path / "config.json", GOOD)
    assert find_config_file(tmp_path) == winner


@pytest.mark.parametrize("mistyped", ["confg.json", "conf/config.json", "not/there"])
def test_a_path_that_does_not_exist_is_not_found_even_with_a_config_above_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mistyped: str
) -> None:
    write(tmp_path / "config.json", GOOD)  # would be found by an upward search
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigNotFoundError) as info:
        find_config_file(mistyped)

    assert f"{mistyped!r} does not exist" in str(info.value)
    assert info.value.searched == (str(tmp_path / mistyped),)


def test_an_existing_folder_is_searched_upwards_from(tmp_path: Path) -> None:
    winner = write(tmp_path / "config.json", GOOD)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_config_file(tmp_path / "a" / "b") == winner


def test_no_path_searches_upwards_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = write(tmp_path / "config.json", GOOD)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_config_file() == winner


def test_not_found_lists_every_place_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = tmp_path / "deep"
    start.mkdir()
    with pytest.raises(ConfigNotFoundError) as info:
        find_config_file(start)
    error = info.value
    assert isinstance(error, FileNotFoundError)
    assert str(start / ".azureml" / "config.json") in error.searched
    assert str(tmp_path / "project.json") in error.searched
    assert error.searched[0] == str(start / ".azureml" / "config.json")
    assert all(place in str(error) for place in error.searched[:3])
    assert ENV_VARIABLES["subscription_id"] in str(error)


def test_keys_are_read_and_defaults_applied(config_file: Path) -> None:
    config = load_config(config_file, environ={})
    assert (config.subscription_id, config.resource_group, config.workspace_name) == (
        "00000000-0000-0000-0000-000000000000",
        "rg",
        "ws-test",
    )
    assert config.cloud == "AzureCloud"
    assert config.tenant_id is None
    assert config.source == config_file


def test_scope_arm_id_is_understood(tmp_path: Path) -> None:
    scope = (
        f"/subscriptions/{SUB}/resourceGroups/rg-x"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws-x"
    )
    config = load_config(write(tmp_path / "config.json", {"Scope": scope}), environ={})
    assert (config.subscription_id, config.resource_group, config.workspace_name) == (
        SUB,
        "rg-x",
        "ws-x",
    )


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    file = write(tmp_path / "config.json", '{\n  "subscription_id": "x",\n  oops\n}')
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    message = str(info.value)
    assert str(file) in message
    assert "line 3, column 3" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subscription_id": "not-a-guid"}, "subscription_id"),
        ({"resource_group": "ends-with-dot."}, "resource_group"),
        ({"workspace_name": "a"}, "workspace_name"),
        ({"workspace_name": "bad name"}, "workspace_name"),
        ({"tenant_id": "tenant"}, "tenant_id"),
        ({"cloud": "Mars"}, "cloud"),
        ({"mlboot_backend": "v3"}, "backend"),
        ({"workspace_name": 42}, "workspace_name"),
    ],
)
def test_malformed_values_are_named(tmp_path: Path, change: dict[str, object], field: str) -> None:
    file = write(tmp_path / "config.json", {**GOOD, **change})
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert field in str(info.value)
    assert "Fix" in str(info.value)


def test_missing_keys_are_all_named_with_their_variables(tmp_path: Path) -> None:
    file = write(tmp_path / "config.json", {"subscription_id": SUB})
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    message = str(info.value)
    assert "resource_group, workspace_name are missing" in message
    assert "MLBOOT_RESOURCE_GROUP" in message


def test_json_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON list, not an object"):
        load_config(write(tmp_path / "config.json", "[1, 2]"), environ={})


def test_environment_overrides_each_key(config_file: Path) -> None:
    config = load_config(
        config_file,
        environ={"MLBOOT_WORKSPACE_NAME": "other-ws", "MLBOOT_CLOUD": "AzureChinaCloud"},
    )
    assert config.workspace_name == "other-ws"
    assert config.cloud == "AzureChinaCloud"
    assert config.resource_group == "rg"


def test_environment_alone_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {
        "MLBOOT_SUBSCRIPTION_ID": SUB,
        "MLBOOT_RESOURCE_GROUP": "rg",
        "MLBOOT_WORKSPACE_NAME": "ws-env",
    }
    config = load_config(environ=environ)
    assert config.source is None
    assert config.workspace_name == "ws-env"


def test_invalid_environment_value_names_the_variable(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="MLBOOT_SUBSCRIPTION_ID"):
        load_config(config_file, environ={"MLBOOT_SUBSCRIPTION_ID": "nope"})


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert load_config(file, environ={}).workspace_name == "ws-main"


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_bytes(b'{"workspace_name": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(file, environ={})


def test_an_unknown_key_warns_naming_it_the_closest_known_key_and_all_known_keys(
    tmp_path: Path,
) -> None:
    file = write(tmp_path / "config.json", {**GOOD, "mlboot-backend": "local"})

    with pytest.warns(MlbootWarning) as caught:
        config = load_config(file, environ={})

    (warning,) = caught.list
    message = str(warning.message)
    assert "unknown key 'mlboot-backend' is ignored" in message
    assert "did you mean 'mlboot_backend'?" in message
    assert all(key in message for key in KNOWN_KEYS)
    assert str(file) in message
    assert warning.filename == __file__  # shown at the caller's line
    assert config.backend is None  # the misspelt key changed nothing


@pytest.mark.parametrize(
    "written",
    [
        # The studio's download, `ws.write_config()`, `az ml folder attach` and SDK v2's
        # fuller file: keys Azure ML's own tools write never warn.
        GOOD,
        {**GOOD, "friendly_name": "Main", "location": "westeurope", "workspace_id": SUB},
        {
            "Id": None,
            "Scope": f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
            "Microsoft.MachineLearningServices/workspaces/ws-main",
        },
        {**GOOD, "tenant_id": SUB, "cloud": "AzureCloud", "mlboot_backend": "local"},
    ],
)
def test_keys_written_by_azure_mls_own_tools_do_not_warn(
    tmp_path: Path, written: dict[str, object]
) -> None:
    file = write(tmp_path / "config.json", written)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_config(file, environ={}).workspace_name == "ws-main"


def test_the_cli_refuses_a_mistyped_config_path_instead_of_using_another_workspace(
    tmp_path: Path,
) -> None:
    # A valid config above the folder: an upward search from sub/confg.json would pick it.
    write(tmp_path / "config.json", {**GOOD, "mlboot_backend": "local"})
    (tmp_path / "sub").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBOOT_", "AZUREML_"))}

    result = subprocess.run(
        [sys.executable, "-m", "mlboot", "--config", "sub/confg.json", "runs", "show", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    assert f"{tmp_path / 'sub' / 'confg.json'} does not exist" in result.stderr
    assert "--config" in result.stderr
    assert not (tmp_path / ".mlboot").exists()  # the other workspace was never touched
