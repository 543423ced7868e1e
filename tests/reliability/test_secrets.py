"""Plant a known service principal secret and a token; scan everything the suite captures."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_ledger import LEDGER, PLANTED_SECRETS

import mlboot
from mlboot._auth import resolve_default_auth
from mlboot._cli import main
from mlboot.exceptions import AuthenticationError, ConfigError
from mlboot.testing import FakeBackend, use_backend

SP_SECRET, TOKEN = PLANTED_SECRETS
TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = "22222222-2222-2222-2222-222222222222"


def _clean(text: str, where: str) -> None:
    assert LEDGER.scan(text, where=where) == []


@pytest.mark.reliability("secrets")
def test_auth_objects_never_show_the_secret() -> None:
    for secret in PLANTED_SECRETS:
        sp = mlboot.ServicePrincipalAuth(TENANT, CLIENT, secret)
        wrapped = mlboot.Secret(secret)
        for text in (
            repr(sp),
            str(sp),
            repr(wrapped),
            str(wrapped),
            f"{sp!r} {wrapped}",
            repr(sp.client_secret),
            repr([sp, wrapped]),
            repr({"auth": sp}),
        ):
            _clean(text, "auth repr")
        assert sp.client_secret.reveal() == secret


@pytest.mark.reliability("secrets")
def test_the_environment_principal_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SP_SECRET)
    chosen, tried = resolve_default_auth()
    _clean(repr(chosen) + str(tried), "default chain")
    monkeypatch.delenv("AZURE_CLIENT_ID")
    with pytest.raises(ConfigError) as info:
        resolve_default_auth()
    _clean(str(info.value) + repr(info.value), "partial principal error")
    assert "AZURE_CLIENT_ID" in str(info.value)


@pytest.mark.reliability("secrets")
def test_workspace_errors_logs_and_calls_never_show_the_secret(
    config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = mlboot.ServicePrincipalAuth(TENANT, CLIENT, SP_SECRET)
    fake = FakeBackend()

    def leaky_adapter(call: object) -> None:
        # An adapter that (wrongly) formats its arguments into an error: the credential's
        # repr must still hide the secret.
        raise AuthenticationError(f"token rejected for {call!r} (bearer {mlboot.Secret(TOKEN)})")

    fake.before("get_workspace", leaky_adapter)
    with pytest.raises(AuthenticationError) as info:
        mlboot.workspace_from_config(config_path, auth=auth, backend=fake)
    _clean(str(info.value) + repr(info.value), "auth error")
    _clean(repr(fake.calls) + repr(fake), "call log")
    workspace = mlboot.workspace_from_config(config_path, auth=auth, backend=FakeBackend())
    _clean(repr(workspace) + str(workspace), "workspace repr")
    _clean(caplog.text, "log")


@pytest.mark.reliability("secrets")
def test_cli_output_never_shows_the_secret(
    config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SP_SECRET)
    fake = FakeBackend()

    def leaky_adapter(call: object) -> None:
        chosen, _ = resolve_default_auth()
        raise AuthenticationError(f"HTTP 401 for {chosen!r}; call {call!r}")

    fake.before("get_workspace", leaky_adapter)
    with use_backend(fake):
        for argv in (
            ["runs", "show", "run-1", "--config", str(config_path)],
            ["runs", "show", "run-1", "--config", str(config_path), "--json", "-v"],
        ):
            assert main(argv) == 3
            out, err = capsys.readouterr()
            assert "HTTP 401" in err
            _clean(out + err, f"cli {' '.join(argv[-2:])}")


def test_no_credentials_in_ci_fails_within_seconds(config_path: Path, tmp_path: Path) -> None:
    """The real azureml backend, no credentials, CI=true: a prompt nobody answers never starts.

    Run in a child process so that nothing of the SDK's import or state stays in this one, and
    measured from the child's start (the SDK's import included) and from the SDK's import on.
    """
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE", "AZUREML", "MLBOOT", "MSI_", "IDENTITY_"))
    }
    env.update(CI="true", HOME=str(home), AZURE_CONFIG_DIR=str(home / ".azure"))
    code = (
        "import json, sys, time\n"
        "started = time.monotonic()\n"
        "import mlboot, azureml.core\n"
        "imported = time.monotonic()\n"
        "try:\n"
        f"    mlboot.workspace_from_config({str(config_path)!r})\n"
        "except mlboot.exceptions.AuthenticationError as exc:\n"
        "    print(json.dumps({'type': type(exc).__name__, 'tried': list(exc.tried),\n"
        "        'message': str(exc), 'after_import': time.monotonic() - imported}))\n"
    )
    started = time.monotonic()
    child = subprocess.run(  # noqa: S603  (our own interpreter, our own code)
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    wall = time.monotonic() - started
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["type"] == "AuthenticationError"
    assert len(result["tried"]) == 4
    assert "interactive login" in result["message"]
    # A hang guard, not a speed claim: a login prompt nobody answers would wait until the
    # child's 60 s time-out. The SDK's import (seconds where nothing is byte-compiled) is left
    # out of the bound and reported beside it.
    assert result["after_import"] < 10.0
    LEDGER.no_credentials_seconds = (wall, result["after_import"])
    _clean(child.stdout + child.stderr, "no-credentials child")
