"""Authentication choices and the default chain that never waits for a login nobody can give."""

from __future__ import annotations

import pytest

from mlboot import AzureCliAuth, InteractiveAuth, ManagedIdentityAuth, Secret, ServicePrincipalAuth
from mlboot._auth import _Probes, resolve_default_auth
from mlboot.exceptions import AuthenticationError, ConfigError

SP_ENV = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s3cr3t-value"}


def probes(*, cli: bool = False, person: bool = False) -> _Probes:
    return _Probes(cli_usable=lambda _env: cli, person_can_answer=lambda _env: person)


def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-very-secret"


def test_service_principal_repr_hides_the_secret() -> None:
    auth = ServicePrincipalAuth("tenant", "client", "hunter2-very-secret")
    assert isinstance(auth.client_secret, Secret)
    assert "hunter2" not in repr(auth)
    assert "client" in repr(auth)


def test_service_principal_from_env_reads_both_spellings() -> None:
    assert ServicePrincipalAuth.from_env(SP_ENV).client_id == "c"
    legacy = {
        "AZUREML_SERVICE_PRINCIPAL_TENANT_ID": "t2",
        "AZUREML_SERVICE_PRINCIPAL_ID": "c2",
        "AZUREML_SERVICE_PRINCIPAL_PASSWORD": "p2",
    }
    auth = ServicePrincipalAuth.from_env(legacy)
    assert (auth.tenant_id, auth.client_id, auth.client_secret.reveal()) == ("t2", "c2", "p2")


def test_service_principal_from_env_without_variables_names_them() -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        ServicePrincipalAuth.from_env({})


def test_a_partly_configured_service_principal_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_default_auth(
            {"AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "topsecret-value"}, probes=probes()
        )
    assert "AZURE_TENANT_ID is not set" in str(info.value)
    assert "topsecret-value" not in str(info.value)


def test_default_chain_prefers_a_service_principal_from_the_environment() -> None:
    chosen, tried = resolve_default_auth(SP_ENV, probes=probes(cli=True, person=True))
    assert isinstance(chosen, ServicePrincipalAuth)
    assert tried == ("service principal from the environment",)


def test_default_chain_uses_managed_identity_where_its_endpoint_exists() -> None:
    chosen, tried = resolve_default_auth(
        {"MSI_ENDPOINT": "http://169.254.169.254/x", "DEFAULT_IDENTITY_CLIENT_ID": "uami"},
        probes=probes(cli=True),
    )
    assert chosen == ManagedIdentityAuth("uami")
    assert tried[-1] == "managed identity"


def test_default_chain_uses_the_cli_where_usable() -> None:
    chosen, _ = resolve_default_auth({}, probes=probes(cli=True, person=True))
    assert chosen == AzureCliAuth()


def test_default_chain_goes_interactive_only_where_a_person_can_answer() -> None:
    chosen, _ = resolve_default_auth({}, tenant_id="tid", probes=probes(person=True))
    assert chosen == InteractiveAuth("tid")


def test_default_chain_without_credentials_fails_listing_what_was_tried() -> None:
    with pytest.raises(AuthenticationError) as info:
        resolve_default_auth({"CI": "true"}, probes=probes())
    error = info.value
    assert isinstance(error, PermissionError)
    assert len(error.tried) == 4
    assert "interactive login" in error.tried[-1]
    assert "az login" in str(error)


def test_ci_variable_means_nobody_can_answer_even_with_a_terminal() -> None:
    from mlboot._auth import person_can_answer  # noqa: PLC0415

    assert person_can_answer({"CI": "true"}) is False


def test_cli_is_not_usable_without_a_profile(tmp_path: pytest.TempPathFactory) -> None:
    from mlboot._auth import _azure_cli_usable  # noqa: PLC0415

    assert _azure_cli_usable({"AZURE_CONFIG_DIR": str(tmp_path)}) is False
