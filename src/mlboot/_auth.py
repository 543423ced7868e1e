"""Authentication choices, and the default chain that never waits for a login nobody can give."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, SupportsIndex, TypeAlias, final

import attrs

from mlboot.exceptions import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    SecretExposureError,
)

__all__ = [
    "AuthMethod",
    "AzureCliAuth",
    "Credential",
    "InteractiveAuth",
    "ManagedIdentityAuth",
    "Secret",
    "ServicePrincipalAuth",
    "resolve_default_auth",
]


_MASK = "********"
"""What a displayed secret reads as."""


def _check_text(field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInputError(
            field,
            "<hidden>" if field in {"value", "client_secret"} else value,
            "it must be a non-empty str without NUL characters" + (", or None" if optional else ""),
            "pass the value shown in the Azure portal (Microsoft Entra ID, App registrations)",
        )


def _text(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    _check_text(attribute.alias or attribute.name, value)


def _optional_text(
    _instance: object, attribute: attrs.Attribute[str | None], value: object
) -> None:
    _check_text(attribute.name, value, optional=True)


# Words of an environment variable's name (split at "_") that say its value is a secret; a word
# counts when it is one of these or ends with one ("PGPASSWORD", "APIKEY", "OAUTH").
_SECRET_WORDS = (
    "TOKEN",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PASSPHRASE",
    "KEY",
    "KEYS",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
    "SAS",
)
_SECRET_PHRASES = ("CONNECTION_STRING", "CONNECTIONSTRING")


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says that its value is a secret.

    Case-insensitive.  The name is split at ``_`` into words; it looks secret when a word is, or
    ends with, TOKEN, SECRET(S), PASSWORD, PASSWD, PASS, PASSPHRASE, KEY(S), CREDENTIAL(S),
    AUTH or SAS, or when it contains CONNECTION_STRING.  So ``HF_TOKEN``, ``WANDB_API_KEY``,
    ``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``, ``AZURE_STORAGE_CONNECTION_STRING`` and
    ``SAS_URL`` do; ``TOKENIZERS_PARALLELISM``, ``KEYBOARD`` and ``AZURE_AUTHORITY_HOST`` do not.
    """
    upper = name.upper()
    if any(phrase in upper for phrase in _SECRET_PHRASES):
        return True
    return any(word.endswith(_SECRET_WORDS) for word in upper.split("_"))


class Undisclosed:
    """Stands in for a value an error message must not show; its ``repr`` describes it."""

    __slots__ = ("_description",)

    def __init__(self, value: object) -> None:
        self._description = f"<{type(value).__name__}, not shown>"

    def __repr__(self) -> str:
        return self._description


@final
class Secret:
    """A string that never shows itself: not in ``repr``, ``str``, f-strings, logs or messages.

    Call :meth:`reveal` at the single place the real value is needed.  The generic ways of
    looking into an object never reach the value either: a ``Secret`` is not an attrs class, so
    ``attrs.asdict`` of an object holding one keeps it as it is (masked); it has no
    ``__dict__`` for ``vars()``; ``json.dumps`` refuses it like any unknown type (with
    ``default=str``, it is masked); ``copy.copy`` and ``copy.deepcopy`` give the same object
    back (it is immutable).  Pickling one, or anything holding one, raises
    :class:`~mlboot.exceptions.SecretExposureError` (a ``TypeError``): a pickle is a file, and
    files are where secrets leak from.  Two secrets are equal when their values are (compared
    in constant time).

    >>> from mlboot import Secret
    >>> token = Secret("hf_not-a-real-token")
    >>> token, f"{token}"
    (Secret('********'), "Secret('********')")
    >>> token.reveal()
    'hf_not-a-real-token'
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise InvalidInputError(
                "value",
                Undisclosed(value),
                "a Secret holds a str",
                "pass the secret as a str, e.g. mlboot.Secret(os.environ['HF_TOKEN'])",
            )
        _check_text("value", value)  # never shows the value (NUL characters, empty)
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # noqa: PLC0415  (it imports hashlib, which import mlboot must not)

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise SecretExposureError(
            "a Secret cannot be pickled: the pickle would hold its value. Fix: pass the value to "
            "the other process through its environment, or pickle the object without the "
            "secret and build the Secret again where it is needed."
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(0)

    def __getstate__(self) -> NoReturn:
        self.__reduce_ex__(0)


def revealed(values: Mapping[str, str | Secret]) -> dict[str, str]:
    """``values`` with every :class:`Secret` replaced by its value: for the script's process."""
    return {
        name: value.reveal() if isinstance(value, Secret) else value
        for name, value in values.items()
    }


def _to_secret(value: str | Secret) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise InvalidInputError(
            "client_secret",
            Undisclosed(value),
            "it must be a str or an mlboot.Secret",
            "pass the app registration's client secret, e.g. os.environ['AZURE_CLIENT_SECRET']",
        )
    _check_text("client_secret", value)
    return Secret(value)


@attrs.frozen
class AzureCliAuth:
    """The credentials of ``az login`` (needs the ``azure-cli`` package importable)."""


@attrs.frozen
class InteractiveAuth:
    """A browser or device-code login; only chosen by default where a person can answer."""

    tenant_id: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen
class ManagedIdentityAuth:
    """The managed identity of the Azure machine this runs on.

    ``client_id`` selects a user-assigned identity.
    """

    client_id: str | None = attrs.field(default=None, validator=_optional_text)


# Environment variable names, as the Azure SDKs and azureml-core read them.
_SP_VARIABLES = (
    ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"),
    (
        "AZUREML_SERVICE_PRINCIPAL_TENANT_ID",
        "AZUREML_SERVICE_PRINCIPAL_ID",
        "AZUREML_SERVICE_PRINCIPAL_PASSWORD",
    ),
)
_MSI_ENDPOINT_VARIABLES = ("MSI_ENDPOINT", "IDENTITY_ENDPOINT")


@attrs.frozen
class ServicePrincipalAuth:
    """A service principal (an app registration) and its client secret.

    The secret is held as a :class:`Secret` (a ``str`` is wrapped in one): it never appears in
    ``repr``, messages or ``attrs.asdict``, and pickling the object raises
    :class:`~mlboot.exceptions.SecretExposureError`.
    """

    tenant_id: str = attrs.field(validator=_text)
    client_id: str = attrs.field(validator=_text)
    client_secret: Secret = attrs.field(converter=_to_secret, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServicePrincipalAuth:
        """Read ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET``.

        The ``AZUREML_SERVICE_PRINCIPAL_TENANT_ID`` / ``_ID`` / ``_PASSWORD`` names that
        azureml-core reads are accepted too.  Raises :class:`~mlboot.exceptions.ConfigError`
        naming the variables that are missing.
        """
        if environ is not None and not isinstance(environ, Mapping):
            raise InvalidInputError(
                "environ",
                type(environ).__name__,
                "it must be a mapping of variable names to values, or None",
                "pass e.g. dict(os.environ), or None for this process's environment",
            )
        found = _service_principal_from_env(os.environ if environ is None else environ)
        if found is None:
            names = ", ".join(_SP_VARIABLES[0])
            raise ConfigError(
                f"no service principal in the environment: {names} are not set. "
                "Set all three (or the AZUREML_SERVICE_PRINCIPAL_* equivalents)."
            )
        return found


def _service_principal_from_env(environ: Mapping[str, str]) -> ServicePrincipalAuth | None:
    for names in _SP_VARIABLES:
        values = [environ.get(name, "") for name in names]
        if all(values):
            return ServicePrincipalAuth(values[0], values[1], values[2])
        if any(values):
            missing = [n for n, v in zip(names, values, strict=True) if not v]
            raise ConfigError(
                f"a service principal is only partly configured in the environment: "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
                f"Set all of {', '.join(names)}, or unset them to use another login method."
            )
    return None


AuthMethod: TypeAlias = AzureCliAuth | InteractiveAuth | ManagedIdentityAuth | ServicePrincipalAuth
"""mlboot's own typed authentication choices."""

Credential: TypeAlias = AuthMethod | object
"""An :data:`AuthMethod`, or any azureml-core authentication object (passed through unchanged)."""


def _azure_cli_usable(environ: Mapping[str, str]) -> bool:
    """The CLI path works only with azure-cli importable and a profile left by ``az login``."""
    if importlib.util.find_spec("azure") is None:
        return False
    try:
        has_cli = importlib.util.find_spec("azure.cli.core") is not None
    except ModuleNotFoundError:
        has_cli = False
    if not has_cli:
        return False
    config_dir = Path(environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    return (config_dir / "azureProfile.json").is_file()


def person_can_answer(environ: Mapping[str, str]) -> bool:
    if environ.get("CI"):
        return False
    stdin = sys.stdin
    return stdin is not None and stdin.isatty()


@attrs.frozen
class _Probes:
    """What the default chain looks at; replaced in tests."""

    cli_usable: Callable[[Mapping[str, str]], bool] = _azure_cli_usable
    person_can_answer: Callable[[Mapping[str, str]], bool] = person_can_answer


def resolve_default_auth(
    environ: Mapping[str, str] | None = None,
    *,
    tenant_id: str | None = None,
    probes: _Probes | None = None,
) -> tuple[AuthMethod, tuple[str, ...]]:
    """Choose the credential ``auth=None`` stands for, and say what was considered.

    Order: a service principal from the environment; the managed identity where its endpoint
    exists; the Azure CLI where it is installed and logged in; an interactive login only where a
    person can answer (a TTY and no ``CI`` variable).  Otherwise an
    :class:`~mlboot.exceptions.AuthenticationError` that lists every method tried.
    """
    env = os.environ if environ is None else environ
    probe = probes or _Probes()
    tried: list[str] = []

    principal = _service_principal_from_env(env)
    if principal is not None:
        return principal, (*tried, "service principal from the environment")
    tried.append("service principal from the environment (AZURE_CLIENT_ID etc. not set)")

    if any(env.get(name) for name in _MSI_ENDPOINT_VARIABLES):
        client_id = env.get("DEFAULT_IDENTITY_CLIENT_ID") or None
        return ManagedIdentityAuth(client_id), (*tried, "managed identity")
    tried.append("managed identity (no MSI_ENDPOINT or IDENTITY_ENDPOINT)")

    if probe.cli_usable(env):
        return AzureCliAuth(), (*tried, "Azure CLI")
    tried.append("Azure CLI (azure-cli not importable, or no 'az login' profile)")

    if probe.person_can_answer(env):
        return InteractiveAuth(tenant_id), (*tried, "interactive login")
    tried.append("interactive login (no terminal, or CI is set: nobody could answer a prompt)")

    listing = "; ".join(tried)
    raise AuthenticationError(
        f"no usable Azure credentials. Tried, in order: {listing}. Fix: run 'az login', set "
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal, or "
        "pass auth= explicitly.",
        tried=tried,
    )
