"""Authentication choices and the default chain that never waits for a login nobody can give."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import attrs
import pytest

from mlboot import AzureCliAuth, InteractiveAuth, ManagedIdentityAuth, Secret, ServicePrincipalAuth
from mlboot._auth import _Probes, looks_secret, resolve_default_auth, revealed
from mlboot.exceptions import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    MlbootError,
    SecretExposureError,
)

VALUE = "hunter2-very-secret"

SP_ENV = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s3cr3t-value"}


def probes(*, cli: bool = False, person: bool = False) -> _Probes:
    return _Probes(cli_usable=lambda _env: cli, person_can_answer=lambda _env: person)


@pytest.mark.reliability("secrets")
def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2-very-secret"


@pytest.mark.reliability("secrets")
def test_service_principal_repr_hides_the_secret() -> None:
    auth = ServicePrincipalAuth("tenant", "client", "hunter2-very-secret")
    assert isinstance(auth.client_secret, Secret)
    assert "hunter2" not in repr(auth)
    assert "client" in repr(auth)


@pytest.mark.reliability("secrets")
def test_a_secret_shows_in_no_repr_str_format_or_f_string() -> None:
    secret = Secret(VALUE)
    sp = ServicePrincipalAuth("tenant", "client", secret)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r} {secret!s} {secret:>40}",
        format(secret),
        format(secret, "^50"),
        "%s %r" % (secret, secret),  # noqa: UP031  (the old formatting is what logging uses)
        "{}".format(secret),  # noqa: UP032
        repr(sp),
        str(sp),
        repr([secret, {"k": secret}, (sp,)]),
    ]
    assert all(VALUE not in text for text in shown)
    assert all("hunter2" not in text for text in shown)
    assert format(secret, "^50").strip() == "Secret('********')"


@pytest.mark.reliability("secrets")
def test_attrs_asdict_and_astuple_of_a_service_principal_keep_the_secret_masked() -> None:
    sp = ServicePrincipalAuth("tenant", "client", VALUE)

    as_dict = attrs.asdict(sp)
    as_tuple = attrs.astuple(sp)

    assert as_dict["client_secret"] is sp.client_secret  # not an attrs class: not recursed into
    assert as_tuple[2] is sp.client_secret
    assert VALUE not in repr(as_dict) + repr(as_tuple)
    assert not attrs.has(Secret)


@pytest.mark.reliability("secrets")
def test_json_refuses_a_secret_and_masks_it_with_default_str() -> None:
    as_dict = attrs.asdict(ServicePrincipalAuth("tenant", "client", VALUE))

    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps(as_dict)
    assert VALUE not in json.dumps(as_dict, default=str)


@pytest.mark.reliability("secrets")
def test_a_secret_has_no_dict_for_vars_and_cannot_be_changed() -> None:
    secret = Secret(VALUE)
    sp = ServicePrincipalAuth("tenant", "client", secret)

    for holder in (secret, sp):
        with pytest.raises(AttributeError):
            holder.__dict__  # noqa: B018  (the lookup is the test)
        with pytest.raises(TypeError):
            vars(holder)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        secret._value = "other"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del secret._value
    assert secret.reveal() == VALUE


@pytest.mark.reliability("secrets")
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_secret_or_what_holds_one_is_refused_without_the_value(protocol: int) -> None:
    secret = Secret(VALUE)
    for holder in (secret, ServicePrincipalAuth("tenant", "client", secret), [secret]):
        with pytest.raises(SecretExposureError) as caught:
            pickle.dumps(holder, protocol=protocol)
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, MlbootError)
        assert VALUE not in str(caught.value)
        assert "environment" in str(caught.value)  # the fix


@pytest.mark.reliability("secrets")
def test_the_state_of_a_secret_is_not_handed_out() -> None:
    secret = Secret(VALUE)
    with pytest.raises(SecretExposureError):
        secret.__reduce__()
    with pytest.raises(SecretExposureError):
        secret.__reduce_ex__(2)
    with pytest.raises(SecretExposureError):
        secret.__getstate__()


@pytest.mark.reliability("secrets")
def test_copies_of_a_secret_are_the_secret_itself() -> None:
    secret = Secret(VALUE)
    sp = ServicePrincipalAuth("tenant", "client", secret)

    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret
    assert copy.deepcopy(sp) == sp
    assert copy.deepcopy(sp).client_secret.reveal() == VALUE
    assert attrs.evolve(sp, tenant_id="other").client_secret is secret


def test_secrets_compare_and_hash_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret("other")
    assert Secret(VALUE) != VALUE  # a Secret is not its str
    assert hash(Secret(VALUE)) == hash(Secret(VALUE))
    assert ServicePrincipalAuth("t", "c", VALUE) == ServicePrincipalAuth("t", "c", Secret(VALUE))
    assert len({ServicePrincipalAuth("t", "c", VALUE), ServicePrincipalAuth("t", "c", VALUE)}) == 1


@pytest.mark.reliability("secrets")
def test_a_secret_holds_only_a_str_and_the_refusal_does_not_show_the_value() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Secret(b"hunter2-bytes")  # type: ignore[arg-type]
    assert caught.value.field == "value"
    assert "hunter2" not in str(caught.value) + repr(caught.value.value)
    assert "bytes" in str(caught.value)

    with pytest.raises(InvalidInputError) as caught:
        ServicePrincipalAuth("t", "c", 12345)  # type: ignore[arg-type]
    assert caught.value.field == "client_secret"
    assert "12345" not in str(caught.value)


@pytest.mark.reliability("secrets")
def test_log_records_show_secrets_masked(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(VALUE)
    sp = ServicePrincipalAuth("tenant", "client", secret)
    log = logging.getLogger("mlboot.tests")
    with caplog.at_level(logging.DEBUG, logger="mlboot.tests"):
        log.info("token %s, again %r, principal %s", secret, secret, sp)
        log.warning("as a mapping: %(token)s", {"token": secret})
    assert len(caplog.records) == 2
    assert all(VALUE not in record.getMessage() for record in caplog.records)
    assert VALUE not in caplog.text
    assert "Secret('********')" in caplog.text


def test_revealed_gives_the_values_themselves() -> None:
    assert revealed({"A": "1", "HF_TOKEN": Secret(VALUE)}) == {"A": "1", "HF_TOKEN": VALUE}


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "GITHUB_TOKEN",
        "hf_token",
        "WANDB_API_KEY",
        "APIKEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AZURE_CLIENT_SECRET",
        "PGPASSWORD",
        "DB_PASSWD",
        "SMTP_PASS",
        "SSH_PASSPHRASE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_CREDENTIAL",
        "OAUTH_CLIENT",
        "BASIC_AUTH",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AzureWebJobsConnectionString",
        "AZURE_STORAGE_SAS_TOKEN",
        "SAS_URL",
        "MY_KEYS",
    ],
)
def test_names_that_look_like_secrets(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "TOKENIZERS_PARALLELISM",
        "MAX_TOKENS",
        "NCCL_DEBUG",
        "KEYBOARD",
        "MONKEYPATCH_MODE",
        "AZURE_AUTHORITY_HOST",
        "AUTHOR",
        "PASSTHROUGH",
        "PWD",
        "PATH",
        "PYTHONUNBUFFERED",
    ],
)
def test_names_that_do_not_look_like_secrets(name: str) -> None:
    assert not looks_secret(name)


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
