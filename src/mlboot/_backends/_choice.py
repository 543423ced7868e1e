"""The backend factory: which backend ``workspace_from_config`` uses, and what is a backend.

The one module outside a backend's subpackage that names the concrete backends (it builds them
lazily, so ``import mlboot`` loads none).  Everything else above the seam asks it.

The choice is process-wide (a global behind a lock), not a ``contextvars.ContextVar``: code
under test often runs its work on other threads (a thread pool, the CLI), and those must see the
backend the test chose, as they did when tests patched the default.  Nesting restores the
previous choice; two threads that choose different backends at the same time are not isolated
from each other, so tests that run in parallel should do so in separate processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlboot._backends._seam import Backend
from mlboot.exceptions import InvalidInputError

if TYPE_CHECKING:
    from pathlib import Path


_lock = threading.Lock()
_chosen: list[Backend] = []

# What a value needs to be used as a backend: the members of the Backend protocol.
_BACKEND_MEMBERS = tuple(sorted(name for name in vars(Backend) if not name.startswith("_")))
_BACKEND_FIX = (
    "pass 'local', 'azureml' or 'azureml-v2', an mlboot.LocalBackend, an "
    "mlboot.testing.FakeBackend, or None to use the config's mlboot_backend key (else "
    "MLBOOT_BACKEND, else Azure ML)"
)


def check_backend(field: str, backend: object) -> None:
    """Refuse a value that lacks a member of the :class:`~mlboot.backend.Backend` protocol."""
    missing = [name for name in _BACKEND_MEMBERS if not hasattr(backend, name)]
    if isinstance(backend, str | bytes) or missing:
        raise InvalidInputError(
            field,
            backend,
            "it must be a backend (a value with every method of mlboot.backend.Backend)",
            _BACKEND_FIX,
        )


def default_backend() -> Backend:
    """The backend chosen with :func:`mlboot.testing.use_backend`, else azureml-core's."""
    chosen = chosen_backend()
    if chosen is not None:
        return chosen
    from mlboot._backends.azureml._azureml import AzureMLBackend  # noqa: PLC0415  (no azureml on import)

    return AzureMLBackend()


def azureml_v2_backend() -> Backend:
    """The azure-ai-ml (SDK v2) backend; :class:`~mlboot.exceptions.MissingExtraError` naming
    ``mlboot[v2]`` when its SDKs are not installed."""
    from mlboot._backends.azureml_v2._azureml_v2 import AzureMLV2Backend  # noqa: PLC0415  (no SDK on import)

    return AzureMLV2Backend()


def local_backend(config_source: Path | None) -> Backend:
    """A :class:`~mlboot.LocalBackend` in ``.mlboot/`` beside the config file ``config_source``."""
    from mlboot._backends.local._local import LocalBackend, default_root  # noqa: PLC0415

    return LocalBackend(default_root(config_source))


def chosen_backend() -> Backend | None:
    """The backend the innermost active :func:`choose_backend` names, else ``None``."""
    with _lock:
        return _chosen[-1] if _chosen else None


@contextmanager
def choose_backend(backend: Backend) -> Iterator[Backend]:
    """Make ``backend`` the default until the block ends, then restore the previous default."""
    with _lock:
        _chosen.append(backend)
    try:
        yield backend
    finally:
        with _lock:
            # Remove this entry even if blocks were left out of order (e.g. generators).
            for index in range(len(_chosen) - 1, -1, -1):
                if _chosen[index] is backend:
                    del _chosen[index]
                    break
