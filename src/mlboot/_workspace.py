"""The :class:`Workspace` value and :func:`workspace_from_config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from mlboot._backend import Backend, WorkspaceRef
from mlboot._config import WorkspaceConfig, load_config
from mlboot._log import logger

if TYPE_CHECKING:
    from mlboot._auth import Credential

__all__ = ["Workspace", "workspace_from_config"]


@attrs.frozen
class Workspace:
    """An Azure ML workspace that was found and answered.

    Equality and ``repr`` leave the backend out: two values naming the same workspace are equal.
    Reach the underlying ``azureml.core.Workspace`` with :meth:`to_azureml`.
    """

    name: str
    subscription_id: str
    resource_group: str
    location: str
    cloud: str = "AzureCloud"
    config_path: Path | None = attrs.field(default=None, eq=False)
    backend: Backend = attrs.field(kw_only=True, eq=False, repr=False)

    @property
    def ref(self) -> WorkspaceRef:
        """The three names that identify this workspace."""
        return WorkspaceRef(self.subscription_id, self.resource_group, self.name)

    def to_azureml(self) -> object:
        """The ``azureml.core.Workspace`` behind this value, for features mlboot does not wrap.

        Typed ``object`` because azureml-core ships no type information; ``cast`` it, or use it
        untyped.  A :class:`~mlboot.testing.FakeBackend` has none and raises
        :class:`NotImplementedError`.
        """
        return self.backend.azureml_workspace(self.ref)


def _default_backend() -> Backend:
    from mlboot._azureml import AzureMLBackend  # noqa: PLC0415  (keeps azureml out of import mlboot)

    return AzureMLBackend()


def _configured_backend(config: WorkspaceConfig) -> Backend:
    """The backend the configuration names: ``mlboot_backend`` in the file, else MLBOOT_BACKEND."""
    if config.backend == "local":
        from mlboot._local import LocalBackend, default_root  # noqa: PLC0415

        return LocalBackend(default_root(config.source))
    return _default_backend()


def workspace_from_config(
    path: str | os.PathLike[str] | None = None,
    *,
    auth: Credential | None = None,
    backend: Backend | None = None,
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
    or :class:`mlboot.LocalBackend`.  Without it, the config file's ``mlboot_backend`` key, else
    the ``MLBOOT_BACKEND`` variable, may choose ``"local"``: a :class:`~mlboot.LocalBackend`
    whose folder is ``.mlboot/`` beside the config file (see :doc:`/howto/local`).

    Raises :class:`~mlboot.exceptions.ConfigNotFoundError` or
    :class:`~mlboot.exceptions.ConfigError` before anything remote, then
    :class:`~mlboot.exceptions.AuthenticationError`,
    :class:`~mlboot.exceptions.WorkspaceNotFoundError`,
    :class:`~mlboot.exceptions.NetworkError` or another
    :class:`~mlboot.exceptions.ServiceError` at once.
    """
    config = load_config(path)
    chosen = backend if backend is not None else _configured_backend(config)
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
