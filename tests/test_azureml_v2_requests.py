"""The azure-ai-ml backend's requests, through the real SDK's HTTP pipeline, answered in-process.

An azure-core transport (the layer under every azure-ai-ml client) answers each request from a
small table, so what is pinned down here is what goes on the wire and what comes back: the
conditional compute PUT, the whole spec on a rescale, no poller thread left behind, the cancel,
the workspace's MLflow URI bound to the credential.  The whole flow against the emulator is in
``tests/integration``.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("azure.ai.ml", reason="the v2 extra (mlboot[v2]) is not installed")

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from typing_extensions import Self

from mlboot._backends.azureml_v2 import _azureml_v2 as v2
from mlboot._deadline import bounded
from mlboot.backend import ComputeSpec, WorkspaceRef
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    WaitTimeoutError,
    WorkspaceNotFoundError,
)
from mlboot.testing import FakeClock

REF = WorkspaceRef("00000000-0000-4000-8000-000000000001", "rg-ml", "ws-main")
WS = (
    f"/subscriptions/{REF.subscription_id}/resourceGroups/{REF.resource_group}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{REF.name}"
)
TRACKING = f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{WS}"
SPEC = ComputeSpec("STANDARD_NC6", "lowpriority", 0, 4, 1800)

Answer = tuple[int, Any]


class Token:
    """A caller's azure-core TokenCredential."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        assert scopes, kwargs
        return AccessToken("not-a-real-token", 2**31)


class Recorded:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class Service(HttpTransport):
    """Answers by (method, path): the first handler whose key the request matches."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.retry_after: str | None = None
        self.routes: dict[tuple[str, str], Callable[[Recorded], Answer]] = {}

    def on(self, method: str, path: str, answer: Callable[[Recorded], Answer] | Answer) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda _r, a=answer: a)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **kwargs: Any) -> Any:
        assert kwargs.get("stream") in (None, True, False), kwargs
        path = urllib3.util.parse_url(request.url).path or ""
        content = getattr(request, "content", None)
        body = json.loads(content) if isinstance(content, str | bytes) and content else None
        recorded = Recorded(request.method, path, dict(request.headers), body)
        self.requests.append(recorded)
        handler = self.routes.get((request.method, path))
        status, payload = (
            handler(recorded)
            if handler
            else (404, {"error": {"code": "NotFound", "message": f"no route {path}"}})
        )
        headers = {"Retry-After": self.retry_after} if self.retry_after and status >= 500 else {}
        return _response(request, status, payload, headers)

    def sent(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]


def _response(
    request: Any, status: int, payload: Any, extra_headers: dict[str, str] | None = None
) -> Any:
    content = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    raw = requests.Response()
    raw.status_code = status
    raw.reason = "answer"
    raw.url = request.url
    raw.headers.update(headers)
    raw.raw = urllib3.HTTPResponse(
        body=io.BytesIO(content), headers=headers, status=status, preload_content=False
    )
    return RestRequestsTransportResponse(request=request, internal_response=raw)


def _workspace() -> dict[str, Any]:
    properties = {
        "discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
        "mlFlowTrackingUri": TRACKING,
    }
    return {"id": WS, "name": REF.name, "location": "westeurope", "properties": properties}


def _cluster(state: str = "Succeeded", priority: str = "LowPriority") -> dict[str, Any]:
    return {
        "id": f"{WS}/computes/gpu",
        "name": "gpu",
        "location": "westeurope",
        "properties": {
            "computeType": "AmlCompute",
            "provisioningState": state,
            "properties": {
                "vmSize": "STANDARD_NC6",
                "vmPriority": priority,
                "scaleSettings": {
                    "minNodeCount": 0,
                    "maxNodeCount": 4,
                    "nodeIdleTimeBeforeScaleDown": "PT30M",
                },
            },
        },
    }


def _job(status: str) -> dict[str, Any]:
    return {
        "id": f"{WS}/jobs/exp_1",
        "name": "exp_1",
        "properties": {
            "jobType": "Command",
            "status": status,
            "experimentName": "exp",
            "command": "python train.py",
            "computeId": f"{WS}/computes/gpu",
            "environmentId": f"{WS}/environments/env/versions/1",
            "services": {"Studio": {"endpoint": "https://ml.azure.com/runs/exp_1"}},
        },
    }


@pytest.fixture
def service() -> Service:
    answers = Service()
    answers.on("GET", WS, (200, _workspace()))
    return answers


@pytest.fixture
def backend(service: Service) -> v2.AzureMLV2Backend:
    made = v2.AzureMLV2Backend(client_options={"transport": service})
    made.get_workspace(REF, credential=Token(), cloud="AzureCloud", tenant_id=None)
    return made


def _sdk_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.current_thread()}


def test_a_new_cluster_is_put_conditionally_and_leaves_no_poller_thread(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    service.on("PUT", f"{WS}/computes/gpu", (201, _cluster("Creating")))
    threads = _sdk_threads()

    info = backend.create_compute(REF, "gpu", SPEC)

    assert info.provisioning_state == "Creating"
    (put,) = service.sent("PUT")
    assert put.headers.get("If-None-Match") == "*"
    assert put.body["location"] == "westeurope"
    assert put.body["properties"]["properties"]["vmPriority"] == "LowPriority"
    assert [r.method for r in service.requests if "computes" in r.path] == ["GET", "PUT"]
    assert _sdk_threads() - threads == set()


def test_an_existing_cluster_is_never_overwritten(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    service.on("GET", f"{WS}/computes/gpu", (200, _cluster()))

    with pytest.raises(ConflictError, match="already exists"):
        backend.create_compute(REF, "gpu", SPEC)

    assert service.sent("PUT") == []


@pytest.mark.parametrize("status", [409, 412])
def test_a_cluster_made_between_the_look_up_and_the_put_is_a_conflict(
    service: Service, backend: v2.AzureMLV2Backend, status: int
) -> None:
    service.on(
        "PUT",
        f"{WS}/computes/gpu",
        (status, {"error": {"code": "PreconditionFailed", "message": "exists"}}),
    )

    with pytest.raises(ConflictError):
        backend.create_compute(REF, "gpu", SPEC)


def test_a_rescale_is_a_full_put_that_keeps_the_priority(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    service.on("GET", f"{WS}/computes/gpu", (200, _cluster()))
    service.on("PUT", f"{WS}/computes/gpu", lambda r: (200, {**_cluster("Updating"), **r.body}))
    threads = _sdk_threads()

    info = backend.update_compute_scale(
        REF, "gpu", ComputeSpec("STANDARD_NC6", "lowpriority", 1, 8, 600)
    )

    (put,) = service.sent("PUT")
    assert "If-None-Match" not in put.headers
    cluster = put.body["properties"]["properties"]
    assert cluster["vmPriority"] == "LowPriority"
    assert cluster["scaleSettings"] == {
        "minNodeCount": 1,
        "maxNodeCount": 8,
        "nodeIdleTimeBeforeScaleDown": "PT10M",
    }
    assert (info.min_nodes, info.max_nodes, info.vm_priority) == (1, 8, "lowpriority")
    assert _sdk_threads() - threads == set()


def test_rescaling_a_missing_cluster_is_not_found(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    with pytest.raises(NotFoundError):
        backend.update_compute_scale(REF, "gpu", SPEC)

    assert service.sent("PUT") == []


def test_a_missing_compute_is_none_and_a_refused_lookup_raises(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    assert backend.get_compute(REF, "gpu") is None

    service.on(
        "GET", f"{WS}/computes/gpu", (401, {"error": {"code": "Unauthorized", "message": "no"}})
    )
    with pytest.raises(AuthenticationError):
        backend.get_compute(REF, "gpu")


def test_a_missing_workspace_is_workspace_not_found(service: Service) -> None:
    service.on("GET", WS, (404, {"error": {"code": "ResourceNotFound", "message": "no ws"}}))
    made = v2.AzureMLV2Backend(client_options={"transport": service})

    with pytest.raises(WorkspaceNotFoundError, match="ws-main"):
        made.get_workspace(REF, credential=Token(), cloud="AzureCloud", tenant_id=None)


def test_the_workspaces_mlflow_uri_is_bound_to_this_credential(
    backend: v2.AzureMLV2Backend,
) -> None:
    from azureml.mlflow._internal.service_context_loader import (  # noqa: PLC0415
        _AzureMLServiceContextLoader,
    )

    uri = backend._found(REF).tracking_uri

    assert uri is not None
    assert uri.endswith(WS)
    assert _AzureMLServiceContextLoader.has_service_context(uri)


def test_metrics_refuse_a_tracking_uri_no_credential_is_bound_to(
    service: Service, backend: v2.AzureMLV2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the binding, azureml-mlflow would build its own login: browser, then device code.
    from azureml.mlflow._internal.service_context_loader import (  # noqa: PLC0415
        _AzureMLServiceContextLoader,
    )

    monkeypatch.setattr(_AzureMLServiceContextLoader, "_tracking_uri_to_service_context", {})
    sent = len(service.requests)

    with pytest.raises(AuthenticationError, match="interactive login"):
        backend.get_run_metrics(REF, "exp_1")

    assert len(service.requests) == sent


def test_a_running_job_is_canceled_without_waiting(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    service.on("GET", f"{WS}/jobs/exp_1", (200, _job("Running")))
    service.on("POST", f"{WS}/jobs/exp_1/cancel", (202, {}))
    threads = _sdk_threads()

    backend.cancel_run(REF, "exp_1")

    assert [r.path for r in service.sent("POST")] == [f"{WS}/jobs/exp_1/cancel"]
    assert _sdk_threads() - threads == set()


def test_an_ended_job_is_left_as_it_is(service: Service, backend: v2.AzureMLV2Backend) -> None:
    service.on("GET", f"{WS}/jobs/exp_1", (200, _job("Completed")))

    backend.cancel_run(REF, "exp_1")

    assert service.sent("POST") == []


@pytest.mark.parametrize(
    ("rest", "word"),
    [("Running", "Running"), ("NotResponding", "NotResponding"), ("Paused", "Paused")],
)
def test_a_jobs_status_is_read_in_mlboots_words(
    service: Service, backend: v2.AzureMLV2Backend, rest: str, word: str
) -> None:
    service.on("GET", f"{WS}/jobs/exp_1", (200, _job(rest)))

    assert backend.get_run_status(REF, "exp_1") == word


def test_an_unknown_job_is_not_found(backend: v2.AzureMLV2Backend) -> None:
    with pytest.raises(NotFoundError):
        backend.get_run_status(REF, "nope")


def test_a_retry_due_after_the_deadline_is_not_waited_for(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    # azure-core would sleep the 30 s Retry-After; the call has 5 s on a clock that never sleeps.
    busy = {"error": {"code": "ServiceBusy", "message": "try later"}}
    service.on("GET", f"{WS}/computes/gpu", lambda _r: (503, busy))
    service.retry_after = "30"
    clock = FakeClock()

    with (
        pytest.raises(WaitTimeoutError, match=r"30\.0 s later") as caught,
        bounded(clock, 5.0, what="looking up 'gpu'", limit="5 s", fix="try again"),
    ):
        backend.get_compute(REF, "gpu")

    assert len([r for r in service.requests if r.path.endswith("/computes/gpu")]) == 1
    assert clock.monotonic() < 5.0
    assert "The last answer: HttpResponseError: HTTP 503" in str(caught.value)


def test_a_request_due_after_the_deadline_is_not_sent(
    service: Service, backend: v2.AzureMLV2Backend
) -> None:
    clock = FakeClock()
    sent = len(service.requests)

    with (
        pytest.raises(WaitTimeoutError),
        bounded(clock, 1.0, what="looking up 'gpu'", limit="1 s", fix="try again"),
    ):
        backend.get_compute(REF, "gpu") if clock.sleep(2.0) is None else None

    assert len(service.requests) == sent
