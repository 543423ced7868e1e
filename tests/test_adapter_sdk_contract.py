"""The azureml-core adapter against the real installed SDK: objects it builds, errors it reads."""

from __future__ import annotations

import pytest

from mlboot import AzureCliAuth, InteractiveAuth, ManagedIdentityAuth, ServicePrincipalAuth
from mlboot._backends.azureml._azureml import sdk_authentication, translate_sdk_error
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
)

pytestmark = pytest.mark.sdk


def test_service_principal_becomes_the_sdk_class_with_an_explicit_cloud() -> None:
    from azureml.core.authentication import ServicePrincipalAuthentication  # noqa: PLC0415

    auth = sdk_authentication(
        ServicePrincipalAuth("tenant-1", "client-1", "pw-secret"),
        cloud="AzureChinaCloud",
        tenant_id=None,
    )
    assert isinstance(auth, ServicePrincipalAuthentication)
    assert auth._tenant_id == "tenant-1"
    assert auth._service_principal_id == "client-1"
    assert auth._service_principal_password == "pw-secret"  # noqa: S105  (a test value)
    assert auth._cloud_type.name == "AzureChinaCloud"


def test_managed_identity_with_a_client_id_becomes_msi_authentication() -> None:
    from azureml.core.authentication import MsiAuthentication  # noqa: PLC0415

    auth = sdk_authentication(ManagedIdentityAuth("uami-1"), cloud="AzureCloud", tenant_id=None)
    assert isinstance(auth, MsiAuthentication)
    assert auth._cloud_type.name == "AzureCloud"


def test_interactive_is_refused_where_nobody_can_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from azureml.core import authentication  # noqa: PLC0415

    built: list[object] = []
    monkeypatch.setattr(authentication, "InteractiveLoginAuthentication", built.append)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(AuthenticationError, match="nobody can answer"):
        sdk_authentication(InteractiveAuth(), cloud="AzureCloud", tenant_id=None)
    assert built == []


def test_interactive_takes_the_config_tenant_and_explicit_cloud(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azureml.core import authentication  # noqa: PLC0415

    # Building the real class starts a login at once; record the arguments instead.
    built: list[dict[str, object]] = []
    monkeypatch.setattr(
        authentication, "InteractiveLoginAuthentication", lambda **kw: built.append(kw) or kw
    )
    monkeypatch.setattr("mlboot._backends.azureml._azureml.person_can_answer", lambda _env: True)
    sdk_authentication(InteractiveAuth(), cloud="AzureCloud", tenant_id="tid-from-config")
    assert built == [{"tenant_id": "tid-from-config", "cloud": "AzureCloud"}]


def test_azure_cli_without_the_cli_package_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError) as info:
        sdk_authentication(AzureCliAuth(), cloud="AzureCloud", tenant_id=None)
    assert isinstance(info.value.__cause__, Exception)
    assert "az login" in str(info.value)


def test_an_sdk_authentication_object_passes_through_unchanged() -> None:
    from azureml.core.authentication import ServicePrincipalAuthentication  # noqa: PLC0415

    original = ServicePrincipalAuthentication("t", "c", "p", cloud="AzureCloud")
    assert sdk_authentication(original, cloud="AzureUSGovernment", tenant_id=None) is original


def test_anything_else_as_auth_is_refused_before_anything_remote() -> None:
    with pytest.raises(InvalidInputError, match="auth="):
        sdk_authentication("my-token", cloud="AzureCloud", tenant_id=None)


def test_default_chain_without_credentials_never_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(AuthenticationError) as info:
        sdk_authentication(None, cloud="AzureCloud", tenant_id=None)
    assert len(info.value.tried) == 4


def _compute_error(code: int) -> Exception:
    from azureml.exceptions import ComputeTargetException  # noqa: PLC0415

    return ComputeTargetException(
        "Received bad response from Resource Provider:\n"
        f"Response Code: {code}\n"
        "Headers: {'Retry-After': '12'}\n"
        'Content: b\'{"error": {"code": "X"}}\''
    )


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, ThrottledError),
        (500, ServiceError),
        (503, ServiceError),
        (400, ServiceError),
    ],
)
def test_one_sdk_exception_class_is_told_apart_by_status(code: int, error: type[Exception]) -> None:
    translated = translate_sdk_error(_compute_error(code), "looking up compute target 'cpu'")
    assert type(translated) is error
    assert "looking up compute target 'cpu'" in str(translated)
    if isinstance(translated, ServiceError):
        assert translated.transient == (code in {429, 500, 503})


def test_retry_after_is_read_from_the_sdk_message() -> None:
    translated = translate_sdk_error(_compute_error(429), "x")
    assert isinstance(translated, ThrottledError)
    assert translated.retry_after == 12.0


def test_sdk_not_found_message_is_not_found() -> None:
    from azureml.exceptions import ComputeTargetException  # noqa: PLC0415

    exc = ComputeTargetException(
        "ComputeTargetNotFound: Compute Target with name cpu not found in provided workspace"
    )
    assert isinstance(translate_sdk_error(exc, "x"), NotFoundError)


def test_token_problems_are_authentication_errors() -> None:
    from azureml.exceptions import AuthenticationException  # noqa: PLC0415

    assert isinstance(
        translate_sdk_error(AuthenticationException("expired"), "x"), AuthenticationError
    )


def test_requests_connection_errors_are_network_errors() -> None:
    import requests  # noqa: PLC0415

    translated = translate_sdk_error(requests.exceptions.ConnectionError("refused"), "x")
    assert isinstance(translated, NetworkError)
    assert isinstance(translated, ConnectionError)


def test_long_sdk_messages_are_bounded() -> None:
    translated = translate_sdk_error(RuntimeError("x" * 5000), "doing")
    assert len(str(translated)) < 600


def test_an_sdk_exception_whose_str_fails_is_still_translated() -> None:
    from azureml._restclient.exceptions import ServiceException  # noqa: PLC0415

    exc = ServiceException.__new__(ServiceException)
    exc.status_code = 401
    exc.details = None  # its __repr__ (and so str()) then raises TypeError
    exc.message = "Unauthorized"
    with pytest.raises(TypeError):
        str(exc)
    translated = translate_sdk_error(exc, "reading a run's status")
    assert isinstance(translated, AuthenticationError)
    assert "reading a run's status" in str(translated)


def test_msrest_status_phrases_are_read_as_statuses() -> None:
    from azureml.exceptions import UserErrorException  # noqa: PLC0415

    exc = UserErrorException("Operation returned an invalid status code 'Forbidden'.")
    assert isinstance(translate_sdk_error(exc, "x"), PermissionDeniedError)


def _storage_error(status: int, retry_after: str | None = None) -> Exception:
    """What the vendored storage client raises for a blob upload answered ``status``."""
    import requests  # noqa: PLC0415
    from azure.core.exceptions import (  # noqa: PLC0415
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )
    from azure.core.pipeline.transport import (  # noqa: PLC0415
        HttpRequest,
        RequestsTransportResponse,
    )

    answer = requests.Response()
    answer.status_code = status
    answer.reason = "Emulated"
    answer._content = b'<?xml version="1.0"?><Error><Code>Emulated</Code></Error>'
    if retry_after is not None:
        answer.headers["Retry-After"] = retry_after
    request = HttpRequest("PUT", "https://account.blob.core.windows.net/container/train.py")
    response = RequestsTransportResponse(request, answer)
    kind = {401: ClientAuthenticationError, 404: ResourceNotFoundError}.get(
        status, HttpResponseError
    )
    return kind(response=response)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, ServiceError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, ThrottledError),
        (500, ServiceError),
        (503, ServiceError),
    ],
)
def test_blob_upload_errors_are_told_apart_by_status(code: int, error: type[Exception]) -> None:
    translated = translate_sdk_error(_storage_error(code), "submitting 'train.py'")
    assert type(translated) is error
    assert "submitting 'train.py'" in str(translated)
    if isinstance(translated, ServiceError):
        assert translated.transient == (code >= 429)


def test_retry_after_is_read_from_a_throttled_blob_upload() -> None:
    translated = translate_sdk_error(_storage_error(429, retry_after="7"), "x")
    assert isinstance(translated, ThrottledError)
    assert translated.retry_after == 7.0


def test_a_blob_upload_cut_off_is_a_network_error() -> None:
    import requests  # noqa: PLC0415
    from azure.core.exceptions import ServiceResponseError  # noqa: PLC0415

    cut = requests.exceptions.ConnectionError("Connection aborted.")
    translated = translate_sdk_error(ServiceResponseError("Connection aborted.", error=cut), "x")
    assert isinstance(translated, NetworkError)


def test_uploads_not_finished_within_the_sdk_time_limit_are_a_transient_network_error() -> None:
    from azureml._common._core_user_error.user_error import FlushTaskTimeout  # noqa: PLC0415
    from azureml._common._error_definition import AzureMLError  # noqa: PLC0415
    from azureml._common.exceptions import AzureMLException  # noqa: PLC0415

    # What the snapshot upload raises when its files are not all uploaded within 300 s.
    exc = AzureMLException._with_error(AzureMLError.create(FlushTaskTimeout, timeout_seconds=300))
    translated = translate_sdk_error(exc, "submitting 'train.py'")
    assert type(translated) is NetworkError
    assert translated.transient
    assert "did not answer in time while submitting 'train.py'" in str(translated)
    assert "within 300 seconds" in str(translated)
