"""An Azure ML (SDK v1) service emulator for tests: see README.md."""

from ._auth import EmulatorAuth, make_unsigned_jwt
from ._emulator import Emulator
from ._isolation import FAST_SDK_KNOBS, isolate_sdk, sdk_run_warnings, stop_sdk_daemons
from ._payloads import quota_error
from ._server import RecordedRequest
from ._session import EMULATOR_TIME_LIMIT_SECONDS, emulator_for_test
from ._state import (
    ComputeState,
    DatasetState,
    DatastoreState,
    RunData,
    RunInput,
    RunOutput,
    RunProgram,
    RunState,
    SnapshotState,
    WorkspaceState,
)

__all__ = [
    "EMULATOR_TIME_LIMIT_SECONDS",
    "FAST_SDK_KNOBS",
    "ComputeState",
    "DatasetState",
    "DatastoreState",
    "Emulator",
    "EmulatorAuth",
    "RecordedRequest",
    "RunData",
    "RunInput",
    "RunOutput",
    "RunProgram",
    "RunState",
    "SnapshotState",
    "WorkspaceState",
    "emulator_for_test",
    "isolate_sdk",
    "make_unsigned_jwt",
    "quota_error",
    "sdk_run_warnings",
    "stop_sdk_daemons",
]
