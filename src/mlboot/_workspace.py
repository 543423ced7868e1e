"""The :class:`Workspace` value and :func:`workspace_from_config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from mlboot._backends._choice import (
    azureml_v2_backend,
    check_backend,
    default_backend,
    local_backend,
)
from mlboot._backends._seam import Backend, WorkspaceRef, azureml_objects
from mlboot._config import WorkspaceConfig, load_config
from mlboot._log import logger
from mlboot.exceptions import InvalidInputError

if TYPE_CHECKING:
    from mlboot._auth import Credential

__all__ = ["Workspace", "check_backend", "check_workspace", "workspace_from_config"]

_BACKEND_NAMES = ("azureml", "azureml-v2", "local")


def _check_text(field: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or not value.isprintable():
        raise InvalidInputError(
            field,
            value,
            "it must be a non-empty str of printable characters"
            + (", or None" if optional else ""),
            "build the Workspace with mlboot.workspace_from_config(), or pass the names Azure ML "
            "studio shows",
        )


@attrs.frozen
class Workspace:
    """An Azure ML workspace that was found and answered.

    Equality and ``repr`` leave the backend out: two values naming the same workspace are equal.
    Reach the underlying ``azureml.core.Workspace`` with :meth:`to_azureml`.
    """

    name: str = attrs.field(validator=lambda _, a, v: _check_text(a.name, v))
    subscription_id: str = attrs.field(validator=lambda _, a, v: _check_text(a.name, v))
    resource_group: str = attrs.field(validator=lambda _, a, v: _check_text(a.name, v))
    location: str = attrs.field(validator=lambda _, a, v: _check_text(a.name, v))
    cloud: str = attrs.field(default="AzureCloud", validator=lambda _, a, v: _check_text(a.name, v))
    config_path: Path | None = attrs.field(
        default=None, eq=False, validator=lambda _, a, v: _check_config_path(a.name, v)
    )
    backend: Backend = attrs.field(
        kw_only=True, eq=False, repr=False, validator=lambda _, a, v: check_backend(a.name, v)
    )

    @property
    def ref(self) -> WorkspaceRef:
        """The three names that identify this workspace."""
        return WorkspaceRef(self.subscription_id, self.resource_group, self.name)

    def to_azureml(self) -> object:
        """The ``azureml.core.Workspace`` behind this value, for features mlboot does not wrap.

        Typed ``object`` because azureml-core ships no type information; ``cast`` it, or use it
        untyped.  A backend without SDK objects (:class:`~mlboot.LocalBackend`,
        :class:`~mlboot.testing.FakeBackend`) raises
        :class:`~mlboot.exceptions.SdkObjectUnavailableError` (a :class:`NotImplementedError`).
        """
        return azureml_objects(self.backend, f"{self.ref}").azureml_workspace(self.ref)


def check_workspace(workspace: object) -> None:
    """Refuse a ``workspace`` argument that is not a :class:`Workspace`."""
    if not isinstance(workspace, Workspace):
        raise InvalidInputError(
            "workspace",
            type(workspace).__name__,
            "it must be an mlboot.Workspace",
            "pass the value mlboot.workspace_from_config() returns",
        )


def _check_config_path(field: str, value: object) -> None:
    if value is not None and not isinstance(value, Path):
        raise InvalidInputError(
            field, value, "it must be a pathlib.Path or None", "pass Path(...) or leave it out"
        )


def _default_backend() -> Backend:
    """The backend chosen with :func:`mlboot.testing.use_backend`, else azureml-core's."""
    return default_backend()


def _configured_backend(config: WorkspaceConfig, name: str | None = None) -> Backend:
    """The one place a backend is chosen: ``name``, else ``mlboot_backend`` in the file, else
    MLBOOT_BACKEND; ``"local"`` and ``"azureml-v2"`` build theirs, anything else is the default
    (see :func:`mlboot.testing.use_backend`)."""
    chosen = name or config.backend
    if chosen == "local":
        return local_backend(config.source)
    if chosen == "azureml-v2":
        return azureml_v2_backend()
    return _default_backend()


def workspace_from_config(
    path: str | os.PathLike[str] | None = None,
    *,
    auth: Credential | None = None,
    backend: Backend | Literal["local", "azureml", "azureml-v2"] | None = None,
) -> Workspace:
    """Load the workspace named by ``config.json`` and check that it exists.

    ``path`` is a config file, or a folder to start the search from (default: the current
    folder); the search is the same as ``azureml.core.Workspace.from_config``'s.  Environment
    variables may supply or override each key (see :doc:`/howto/configuration`).

    ``auth`` is one of mlboot's typed choices (:class:`~mlboot.AzureCliAuth`,
    :class:`~mlboot.ServicePrincipalAuth`, ...) or any azureml-core authentication object.  With
    ``None``: a service principal from the environment, then a managed identity, then the Azure
    CLI, then an interactive login only where a person can answer.

    ``backend`` replaces the azureml-core backend, e.g. with :class:`mlboot.testing.FakeBackend`
    or :class:`mlboot.LocalBackend`; the strings ``"local"`` (a :class:`~mlboot.LocalBackend` as
    below), ``"azureml"`` (azureml-core, SDK v1) and ``"azureml-v2"`` (azure-ai-ml, SDK v2,
    installed with ``mlboot[v2]``; without it a :class:`~mlboot.exceptions.MissingExtraError`)
    choose by name, whatever the configuration says.  Without it, the config file's
    ``mlboot_backend`` key, else the ``MLBOOT_BACKEND`` variable, may choose the same names:
    ``"local"`` is a :class:`~mlboot.LocalBackend` whose folder is ``.mlboot/`` beside the
    config file (see :doc:`/howto/local`).

    Raises :class:`~mlboot.exceptions.ConfigNotFoundError` or
    :class:`~mlboot.exceptions.ConfigError` before anything remote, then
    :class:`~mlboot.exceptions.AuthenticationError`,
    :class:`~mlboot.exceptions.WorkspaceNotFoundError`,
    :class:`~mlboot.exceptions.NetworkError` or another
    :class:`~mlboot.exceptions.ServiceError` at once.
    """
    if isinstance(backend, str) and backend in _BACKEND_NAMES:
        named: str | None = backend
    elif backend is not None:
        check_backend("backend", backend)
        named = None
    else:
        named = None
    config = load_config(path)
    chosen = (
        _configured_backend(config, named)
        if backend is None or isinstance(backend, str)
        else backend
    )
    ref = WorkspaceRef(config.subscription_id, config.resource_group, config.workspace_name)
    info = chosen.get_workspace(
        ref, credential=auth, cloud=config.cloud, tenant_id=config.tenant_id
    )
    logger.info("Found %s in %s (config: %s)", ref, info.location, config.source or "environment")
    return Workspace(
        name=info.ref.name,
        subscription_id=info.ref.subscription_id,
        resource_group=info.ref.resource_group,
        location=info.location,
        cloud=config.cloud,
        config_path=config.source,
        backend=chosen,
    )
