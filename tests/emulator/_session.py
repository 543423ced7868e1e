"""One emulator for one test: started, azureml-core pointed at it, checked and stopped after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._emulator import Emulator
from ._isolation import isolate_sdk, stop_sdk_daemons

if TYPE_CHECKING:
    import pytest

__all__ = ["EMULATOR_TIME_LIMIT_SECONDS", "emulator_for_test"]

# Longest a single test may keep the emulator busy; after that it answers 410 to everything,
# so any SDK wait still polling ends with an error instead of hanging the session.
EMULATOR_TIME_LIMIT_SECONDS = 90.0


@contextlib.contextmanager
def emulator_for_test(
    directory: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> Iterator[Emulator]:
    """A started emulator with one workspace, and azureml-core pointed at it (``isolate_sdk``).

    The server is stopped (and joined, with a time limit) afterwards; a bug inside an emulator
    handler, or a route the SDK asked for that the emulator does not know, fails the test.
    """
    emu = Emulator(directory, time_limit=EMULATOR_TIME_LIMIT_SECONDS)
    emu.start()
    try:
        isolate_sdk(monkeypatch, emu, home)
        emu.add_workspace()
        yield emu
    finally:
        # The SDK's re-arming timers (started e.g. by Run.cancel) must not outlive the test.
        stop_sdk_daemons()
        emu.stop()
    assert not emu.handler_errors, "the emulator failed while answering:\n" + "\n".join(
        emu.handler_errors
    )
    if not emu.unknown_requests_expected:
        unknown = [f"{r.method} {r.host}{r.path}" for r in emu.unknown_requests]
        assert not unknown, f"the SDK asked for routes the emulator does not know: {unknown}"
