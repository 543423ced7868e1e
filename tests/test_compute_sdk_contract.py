"""The compute part of the azureml-core adapter against the real installed SDK, without network.

The SDK is imported inside fixtures and tests only, so collecting this module leaves
``import mlboot`` free of azureml for the tests that check that.  Only the SDK's HTTP entry points
(``ComputeTarget._get``, ``ComputeTarget.create``, ``AmlCompute.update``) are replaced; everything
between them and mlboot (configuration objects, payload parsing, SDK exceptions) is the real SDK.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlboot._backends.azureml._azureml import AzureMLBackend, translate_sdk_error
from mlboot.backend import ComputeInfo, ComputeSpec, ServiceErrorDetail, WorkspaceRef
from mlboot.exceptions import (
    AuthenticationError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
)

pytestmark = pytest.mark.sdk

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
REF = WorkspaceRef(SUBSCRIPTION, "rg", "ws")
COMPUTES = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws/computes"
)

# An AmlCompute as the resource provider describes it (GET .../computes/{name}).
CLUSTER_PAYLOAD: dict[str, Any] = {
    "id": f"{COMPUTES}/gpu",
    "name": "gpu",
    "type": "Microsoft.MachineLearningServices/workspaces/computes",
    "location": "westeurope",
    "tags": None,
    "properties": {
        "createdOn": "2024-05-01T10:00:00.0000000+00:00",
        "modifiedOn": "2024-05-01T10:04:12.0000000+00:00",
        "description": None,
        "resourceId": None,
        "computeType": "AmlCompute",
        "computeLocation": "westeurope",
        "provisioningState": "Succeeded",
        "provisioningErrors": None,
        "isAttachedCompute": False,
        "disableLocalAuth": False,
        "properties": {
            "vmSize": "STANDARD_NC6",
            "vmPriority": "Dedicated",
            "scaleSettings": {
                "maxNodeCount": 4,
                "minNodeCount": 0,
                "nodeIdleTimeBeforeScaleDown": "PT30M",
            },
            "subnet": {
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/net-rg/providers/"
                "Microsoft.Network/virtualNetworks/vnet/subnets/training"
            },
            "currentNodeCount": 0,
            "targetNodeCount": 0,
            "nodeStateCounts": {
                "preparingNodeCount": 0,
                "runningNodeCount": 0,
                "idleNodeCount": 0,
                "unusableNodeCount": 0,
                "leavingNodeCount": 0,
                "preemptedNodeCount": 0,
            },
            "allocationState": "Steady",
            "allocationStateTransitionTime": "2024-05-01T10:04:12.000+00:00",
            "errors": None,
            "remoteLoginPortPublicAccess": "Disabled",
            "osType": "Linux",
            "virtualMachineImage": None,
            "isolatedNetwork": False,
            "propertyBag": {},
        },
    },
}

INSTANCE_PAYLOAD: dict[str, Any] = {
    "id": f"{COMPUTES}/alice-ci",
    "name": "alice-ci",
    "type": "Microsoft.MachineLearningServices/workspaces/computes",
    "location": "westeurope",
    "tags": None,
    "properties": {
        "createdOn": "2024-04-01T08:00:00.0000000+00:00",
        "modifiedOn": "2024-04-01T08:06:00.0000000+00:00",
        "description": None,
        "resourceId": None,
        "computeType": "ComputeInstance",
        "computeLocation": "westeurope",
        "provisioningState": "Succeeded",
        "provisioningErrors": None,
        "isAttachedCompute": False,
        "disableLocalAuth": True,
        "properties": {
            "vmSize": "STANDARD_DS3_V2",
            "applications": [],
            "connectivityEndpoints": {"publicIpAddress": None, "privateIpAddress": "10.0.0.4"},
            "sshSettings": {"sshPublicAccess": "Disabled", "adminUserName": "azureuser"},
            "state": "Running",
            "errors": [],
        },
    },
}


def cluster_payload(**changes: Any) -> dict[str, Any]:
    """The cluster payload with ``properties`` keys (dotted for the inner ones) replaced."""
    payload = copy.deepcopy(CLUSTER_PAYLOAD)
    for key, value in changes.items():
        target = payload["properties"]
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return payload


def sdk_error_text(status: int, headers: dict[str, str], content: bytes) -> str:
    """The message azureml-core's compute calls raise for a non-2xx answer, built its own way."""
    from requests.structures import CaseInsensitiveDict  # noqa: PLC0415

    return (
        "Received bad response from Resource Provider:\n"
        f"Response Code: {status}\n"
        f"Headers: {CaseInsensitiveDict(headers)}\n"
        f"Content: {content!r}"
    )


def compute_target_exception(message: str) -> Exception:
    from azureml.exceptions import ComputeTargetException  # noqa: PLC0415

    error: Exception = ComputeTargetException(message)
    return error


@pytest.fixture
def sdk_workspace() -> Any:
    """A real ``azureml.core.Workspace`` built without asking the service anything."""
    from azureml.core import Workspace  # noqa: PLC0415
    from azureml.core.authentication import AbstractAuthentication  # noqa: PLC0415

    class OfflineAuthentication(AbstractAuthentication):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(cloud="AzureCloud")

        def _get_arm_token(self) -> str:
            return "token"

        def _get_graph_token(self) -> str:
            return "token"

        def _get_azureml_client_token(self) -> str:
            return "token"

        def _get_all_subscription_ids(self) -> tuple[list[str], list[str]]:
            return [SUBSCRIPTION], []

        def _get_workspace(self, subscription_id: str, resource_group: str, name: str) -> Any:
            raise NotImplementedError

    return Workspace(
        SUBSCRIPTION, "rg", "ws", auth=OfflineAuthentication(), _disable_service_check=True
    )


@pytest.fixture
def backend(sdk_workspace: Any) -> AzureMLBackend:
    backend = AzureMLBackend()
    backend._workspaces[REF] = sdk_workspace
    return backend


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, sdk_workspace: Any) -> dict[str, Any]:
    """Replace the SDK's compute GET: ``service["payload"]`` answers, ``service["error"]`` fails.

    ``service["gets"]`` records every (workspace, name) asked for.
    """
    from azureml.core.compute import ComputeTarget  # noqa: PLC0415

    state: dict[str, Any] = {"payload": None, "error": None, "gets": []}

    def get(workspace: Any, name: str) -> Any:
        state["gets"].append((workspace, name))
        if state["error"] is not None:
            raise state["error"]
        return copy.deepcopy(state["payload"])

    monkeypatch.setattr(ComputeTarget, "_get", staticmethod(get))
    return state


# -- get_compute -----------------------------------------------------------------------------------


def test_get_compute_reads_a_cluster_off_the_sdk_object(
    backend: AzureMLBackend, service: dict[str, Any], sdk_workspace: Any
) -> None:
    service["payload"] = CLUSTER_PAYLOAD

    info = backend.get_compute(REF, "gpu")

    assert info == ComputeInfo(
        name="gpu",
        kind="AmlCompute",
        provisioning_state="Succeeded",
        vm_size="STANDARD_NC6",
        vm_priority="dedicated",  # the service's "Dedicated", in mlboot's word
        min_nodes=0,
        max_nodes=4,
        idle_seconds_before_scaledown=1800,
        provisioning_errors=(),
    )
    assert service["gets"] == [(sdk_workspace, "gpu")]


@pytest.mark.parametrize(
    ("sdk", "mlboot_word"),
    [("Dedicated", "dedicated"), ("LowPriority", "lowpriority"), ("Spot", "Spot")],
)
def test_get_compute_maps_the_services_priority_to_mlboots_word(
    backend: AzureMLBackend, service: dict[str, Any], sdk: str, mlboot_word: str
) -> None:
    service["payload"] = cluster_payload(**{"properties.vmPriority": sdk})

    info = backend.get_compute(REF, "gpu")

    assert info is not None
    assert info.vm_priority == mlboot_word  # a word mlboot does not know passes as it is


def test_get_compute_reads_provisioning_errors_with_their_details(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    service["payload"] = cluster_payload(
        provisioningState="Failed",
        provisioningErrors=[
            {
                "error": {
                    "code": "BadRequest",
                    "message": "The request is invalid.",
                    "details": [
                        {
                            "code": "QuotaExceeded",
                            "message": "Operation results in exceeding quota limits of Core. "
                            "Maximum allowed: 0, Current in use: 0, Additional requested: 6.",
                        }
                    ],
                }
            }
        ],
    )

    info = backend.get_compute(REF, "gpu")

    assert info is not None
    assert info.provisioning_state == "Failed"
    assert info.provisioning_errors == (
        ServiceErrorDetail("BadRequest", "The request is invalid."),
        ServiceErrorDetail(
            "QuotaExceeded",
            "Operation results in exceeding quota limits of Core. "
            "Maximum allowed: 0, Current in use: 0, Additional requested: 6.",
        ),
    )


def test_get_compute_adds_the_resize_errors_of_a_ready_cluster(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    resize_error = {
        "error": {
            "code": "ClusterCoreQuotaReached",
            "message": "Cluster is unable to scale up: not enough cores.",
        }
    }
    service["payload"] = cluster_payload(**{"properties.errors": [resize_error]})

    info = backend.get_compute(REF, "gpu")

    assert info is not None
    assert info.provisioning_state == "Succeeded"
    assert info.provisioning_errors == (
        ServiceErrorDetail(
            "ClusterCoreQuotaReached", "Cluster is unable to scale up: not enough cores."
        ),
    )


def test_get_compute_reports_a_compute_instance_with_its_kind(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    service["payload"] = INSTANCE_PAYLOAD

    info = backend.get_compute(REF, "alice-ci")

    assert info == ComputeInfo(
        name="alice-ci", kind="ComputeInstance", provisioning_state="Succeeded"
    )


def test_get_compute_reports_a_kind_the_sdk_does_not_know(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    payload = copy.deepcopy(INSTANCE_PAYLOAD)
    payload["properties"]["computeType"] = "SparkPool2030"
    service["payload"] = payload

    info = backend.get_compute(REF, "alice-ci")

    assert info is not None
    assert info.kind == "SparkPool2030"


def test_get_compute_answers_none_only_when_the_service_says_404(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    service["payload"] = None

    assert backend.get_compute(REF, "gpu") is None


@pytest.mark.parametrize(
    ("status", "error_type", "transient"),
    [
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (429, ThrottledError, True),
        (500, ServiceError, True),
        (503, ServiceError, True),
    ],
)
def test_get_compute_raises_every_other_failure_typed(
    backend: AzureMLBackend,
    service: dict[str, Any],
    status: int,
    error_type: type[Exception],
    transient: bool,
) -> None:
    service["error"] = compute_target_exception(
        sdk_error_text(status, {"x-ms-request-id": "abc"}, b'{"error": {"code": "Whatever"}}')
    )

    with pytest.raises(error_type) as caught:
        backend.get_compute(REF, "gpu")

    assert not isinstance(caught.value, NotFoundError)
    assert getattr(caught.value, "transient", False) is transient
    assert isinstance(caught.value.__cause__, type(service["error"]))


def test_get_compute_raises_a_network_failure_as_network_error(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    import requests  # noqa: PLC0415

    service["error"] = requests.exceptions.ConnectionError("Connection refused")

    with pytest.raises(NetworkError):
        backend.get_compute(REF, "gpu")


# -- create_compute --------------------------------------------------------------------------------


@pytest.fixture
def creations(monkeypatch: pytest.MonkeyPatch, sdk_workspace: Any) -> list[tuple[Any, ...]]:
    """Replace ``ComputeTarget.create`` (the PUT); it answers like the SDK, with an AmlCompute."""
    from azureml.core.compute import AmlCompute, ComputeTarget  # noqa: PLC0415

    calls: list[tuple[Any, ...]] = []

    def create(workspace: Any, name: str, configuration: Any) -> Any:
        calls.append((workspace, name, configuration))
        return AmlCompute.deserialize(workspace, cluster_payload(provisioningState="Creating"))

    def never(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("mlboot must not call the SDK's waits")

    monkeypatch.setattr(ComputeTarget, "create", staticmethod(create))
    monkeypatch.setattr(ComputeTarget, "wait_for_completion", never)
    monkeypatch.setattr(AmlCompute, "wait_for_completion", never)
    return calls


def test_create_compute_builds_the_amlcompute_provisioning_configuration(
    backend: AzureMLBackend, creations: list[tuple[Any, ...]], sdk_workspace: Any
) -> None:
    from azureml.core.compute import AmlCompute  # noqa: PLC0415
    from azureml.core.compute.amlcompute import (  # noqa: PLC0415
        AmlComputeProvisioningConfiguration,
    )

    spec = ComputeSpec(
        vm_size="Standard_NC6",
        vm_priority="lowpriority",
        min_nodes=1,
        max_nodes=3,
        idle_seconds_before_scaledown=600,
    )

    info = backend.create_compute(REF, "gpu", spec)

    ((workspace, name, configuration),) = creations
    assert (workspace, name) == (sdk_workspace, "gpu")
    assert isinstance(configuration, AmlComputeProvisioningConfiguration)
    assert configuration._compute_type is AmlCompute
    assert configuration.vm_size == "Standard_NC6"
    assert configuration.vm_priority == "lowpriority"
    assert configuration.scale_settings.minimum_node_count == 1
    assert configuration.scale_settings.maximum_node_count == 3
    assert configuration.scale_settings.idle_seconds_before_scaledown == 600
    # Nothing else is asked for: no network, no admin user, no identity, the workspace's region.
    assert configuration.vnet_name is None
    assert configuration.subnet_name is None
    assert configuration.admin_username is None
    assert configuration.identity_type is None
    assert configuration.compute_location is None
    assert configuration.tags is None
    # And the SDK turns it into the request body the resource provider expects.
    body = AmlCompute._build_create_payload(configuration, "westeurope", SUBSCRIPTION)
    assert body["properties"]["computeType"] == "AmlCompute"
    assert body["properties"]["properties"]["vmSize"] == "Standard_NC6"
    assert body["properties"]["properties"]["vmPriority"] == "lowpriority"
    assert body["properties"]["properties"]["scaleSettings"] == {
        "minNodeCount": 1,
        "maxNodeCount": 3,
        "nodeIdleTimeBeforeScaleDown": "PT600S",
    }
    assert info.provisioning_state == "Creating"
    assert info.kind == "AmlCompute"


@pytest.mark.parametrize(
    "message",
    [
        sdk_error_text(409, {}, b'{"error": {"code": "Conflict", "message": "Conflict"}}'),
        sdk_error_text(
            400,
            {},
            b'{"error": {"code": "UserError", "message": "Compute with name gpu already exists"}}',
        ),
    ],
    ids=["409", "400-already-exists"],
)
def test_create_compute_turns_a_taken_name_into_a_conflict(
    backend: AzureMLBackend, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    from azureml.core.compute import ComputeTarget  # noqa: PLC0415

    def create(*_args: Any) -> Any:
        raise compute_target_exception(message)

    monkeypatch.setattr(ComputeTarget, "create", staticmethod(create))
    spec = ComputeSpec("Standard_NC6", "dedicated", 0, 2, 1800)

    with pytest.raises(ConflictError):
        backend.create_compute(REF, "gpu", spec)


def test_create_compute_keeps_other_refusals_apart_from_conflicts(
    backend: AzureMLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azureml.core.compute import ComputeTarget  # noqa: PLC0415

    def create(*_args: Any) -> Any:
        raise compute_target_exception(
            sdk_error_text(
                400, {}, b'{"error": {"code": "BadArgument", "message": "vmSize is invalid"}}'
            )
        )

    monkeypatch.setattr(ComputeTarget, "create", staticmethod(create))
    spec = ComputeSpec("Standard_NC6", "dedicated", 0, 2, 1800)

    with pytest.raises(ServiceError) as caught:
        backend.create_compute(REF, "gpu", spec)

    assert not isinstance(caught.value, ConflictError)
    assert caught.value.status == 400
    assert caught.value.transient is False


# -- provisioning state, scale updates, the escape hatch -------------------------------------------


def test_get_compute_reads_a_fresh_provisioning_state(
    backend: AzureMLBackend, service: dict[str, Any]
) -> None:
    # A wait polls get_compute: every call is a new GET, never a cached answer.
    service["payload"] = cluster_payload(provisioningState="Creating")
    creating = backend.get_compute(REF, "gpu")
    assert creating is not None
    assert creating.provisioning_state == "Creating"

    service["payload"] = cluster_payload(provisioningState="Succeeded")
    succeeded = backend.get_compute(REF, "gpu")
    assert succeeded is not None
    assert succeeded.provisioning_state == "Succeeded"

    service["payload"] = None
    assert backend.get_compute(REF, "gpu") is None  # gone: the wait above the seam says so
    assert len(service["gets"]) == 3


def test_update_compute_scale_calls_amlcompute_update_and_reads_the_result(
    backend: AzureMLBackend, service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azureml.core.compute import AmlCompute  # noqa: PLC0415

    service["payload"] = CLUSTER_PAYLOAD
    updates: list[tuple[Any, dict[str, Any]]] = []

    def update(self: Any, **settings: Any) -> None:
        updates.append((self, settings))
        idle = settings["idle_seconds_before_scaledown"]
        scale = {
            "minNodeCount": settings["min_nodes"],
            "maxNodeCount": settings["max_nodes"],
            "nodeIdleTimeBeforeScaleDown": f"PT{idle}S",
        }
        service["payload"] = cluster_payload(
            provisioningState="Updating", **{"properties.scaleSettings": scale}
        )

    monkeypatch.setattr(AmlCompute, "update", update)

    spec = ComputeSpec("STANDARD_NC6", "dedicated", 1, 8, 300)
    info = backend.update_compute_scale(REF, "gpu", spec)

    ((cluster, settings),) = updates
    assert isinstance(cluster, AmlCompute)
    assert cluster.name == "gpu"
    assert settings == {"min_nodes": 1, "max_nodes": 8, "idle_seconds_before_scaledown": 300}
    assert (info.min_nodes, info.max_nodes, info.idle_seconds_before_scaledown) == (1, 8, 300)
    assert info.provisioning_state == "Updating"


def test_azureml_compute_hands_out_a_real_amlcompute(
    backend: AzureMLBackend, service: dict[str, Any], sdk_workspace: Any
) -> None:
    from azureml.core.compute import AmlCompute  # noqa: PLC0415

    service["payload"] = CLUSTER_PAYLOAD

    cluster = backend.azureml_compute(REF, "gpu")

    assert isinstance(cluster, AmlCompute)
    assert cluster.name == "gpu"
    assert cluster.workspace is sdk_workspace
    assert cluster.vnet_name == "vnet"
    assert cluster.subnet_name == "training"


# -- translate_sdk_error on the SDK's own exception texts ------------------------------------------


def test_translate_a_compute_404_to_not_found() -> None:
    # The text ComputeTarget(workspace, name) raises for a missing target.
    exc = compute_target_exception(
        "ComputeTargetNotFound: Compute Target with name gpu not found in provided workspace"
    )

    assert isinstance(translate_sdk_error(exc, "looking up 'gpu'"), NotFoundError)


@pytest.mark.parametrize(
    ("status", "headers", "error_type", "transient", "retry_after"),
    [
        (401, {}, AuthenticationError, False, None),
        (403, {}, PermissionDeniedError, False, None),
        (429, {"Retry-After": "7"}, ThrottledError, True, 7.0),
        (503, {}, ServiceError, True, None),
    ],
)
def test_translate_the_sdks_bad_response_texts(
    status: int,
    headers: dict[str, str],
    error_type: type[Exception],
    transient: bool,
    retry_after: float | None,
) -> None:
    exc = compute_target_exception(
        sdk_error_text(
            status,
            {**headers, "x-ms-request-id": "5f1a"},
            b'{"error": {"code": "Code", "message": "What the service said"}}',
        )
    )

    error = translate_sdk_error(exc, "looking up 'gpu'")

    assert type(error) is error_type
    assert isinstance(error, ServiceError) is (status >= 429)
    assert getattr(error, "transient", False) is transient
    assert getattr(error, "retry_after", None) == retry_after
    assert "looking up 'gpu'" in str(error)
