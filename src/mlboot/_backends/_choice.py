"""Which backend ``workspace_from_config`` uses when nothing else chooses one.

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

if TYPE_CHECKING:
    from mlboot._backends._seam import Backend

_lock = threading.Lock()
_chosen: list[Backend] = []


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
