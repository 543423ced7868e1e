"""An Azure ML service emulator for tests (SDK v1 and, in _v2.py, v2): see README.md."""

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
from ._v2 import CodeVersionState, EnvironmentVersionState, JobProgram, JobState
from ._v2_isolation import StaticTokenCredential, emulator_cloud, isolate_v2_sdk, v2_client_kwargs

__all__ = [
    "EMULATOR_TIME_LIMIT_SECONDS",
    "FAST_SDK_KNOBS",
    "CodeVersionState",
    "ComputeState",
    "DatasetState",
    "DatastoreState",
    "Emulator",
    "EmulatorAuth",
    "EnvironmentVersionState",
    "JobProgram",
    "JobState",
    "RecordedRequest",
    "RunData",
    "RunInput",
    "RunOutput",
    "RunProgram",
    "RunState",
    "SnapshotState",
    "StaticTokenCredential",
    "WorkspaceState",
    "emulator_cloud",
    "emulator_for_test",
    "isolate_sdk",
    "isolate_v2_sdk",
    "make_unsigned_jwt",
    "quota_error",
    "sdk_run_warnings",
    "stop_sdk_daemons",
    "v2_client_kwargs",
]
