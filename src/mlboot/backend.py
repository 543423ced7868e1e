"""The seam under mlboot, for writing or wrapping a backend.

:class:`Backend` is the :class:`typing.Protocol` every backend satisfies; the records are what
crosses it.  :class:`AzureMLObjects` is an optional extra: a backend with SDK objects to hand out
(``to_azureml()``) implements it too.  Most users never need this module: :mod:`mlboot.testing`
has a ready-made fake.
"""

from __future__ import annotations

from mlboot._auth import Credential
from mlboot._backends._seam import (
    AzureMLObjects,
    Backend,
    ComputeInfo,
    ComputeSpec,
    DataInput,
    DataOutput,
    DatastoreInfo,
    Metrics,
    MetricValue,
    RunDetails,
    RunRequest,
    ServiceErrorDetail,
    WorkspaceInfo,
    WorkspaceRef,
)
from mlboot._clock import Clock, SystemClock

__all__ = [
    "AzureMLObjects",
    "Backend",
    "Clock",
    "ComputeInfo",
    "ComputeSpec",
    "Credential",
    "DataInput",
    "DataOutput",
    "DatastoreInfo",
    "MetricValue",
    "Metrics",
    "RunDetails",
    "RunRequest",
    "ServiceErrorDetail",
    "SystemClock",
    "WorkspaceInfo",
    "WorkspaceRef",
]
