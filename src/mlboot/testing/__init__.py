"""Test against mlboot without Azure: :class:`FakeBackend` and :class:`FakeClock`.

``FakeBackend`` is an in-memory, stateful stand-in for Azure ML.  It records every call, can be
programmed with outcomes (a missing workspace, slow or failing provisioning, run status
sequences, logs, metrics and output files) and faults, and never sleeps for real: waits are
measured on its :class:`FakeClock`, which moves forward when mlboot "sleeps".
:func:`use_backend` makes a backend the default of ``workspace_from_config`` for a block.

>>> import mlboot
>>> from mlboot.testing import FakeBackend
>>> fake = FakeBackend()
>>> fake.fail("get_compute", "transient", times=1)
>>> [call.operation for call in fake.calls]
[]
"""

from __future__ import annotations

from mlboot._backends.fake._fake import Call, FakeBackend, FakeClock, FaultKind, use_backend

__all__ = ["Call", "FakeBackend", "FakeClock", "FaultKind", "use_backend"]
