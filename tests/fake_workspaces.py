"""The workspace on a FakeBackend that most unit tests use (``tests/`` is on ``sys.path``)."""

from __future__ import annotations

import mlboot
from mlboot.testing import FakeBackend

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def make_workspace(fake: FakeBackend, name: str = "ws") -> mlboot.Workspace:
    """A workspace named ``name`` in resource group ``rg``, served by ``fake``."""
    return mlboot.Workspace(
        name=name,
        subscription_id=SUBSCRIPTION,
        resource_group="rg",
        location="westeurope",
        backend=fake,
    )
