"""The JSON shapes the emulator answers with, modelled on the real services' answers."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

from ._state import (
    ComputeState,
    DatasetState,
    DatastoreState,
    ExperimentState,
    RunState,
    WorkspaceState,
    iso_duration,
    utc_now,
)

__all__ = [
    "arm_error",
    "compute_payload",
    "dataset_dto",
    "datastore_dto",
    "experiment_dto",
    "json_response",
    "metric_v2",
    "quota_error",
    "run_details_dto",
    "run_dto",
    "service_error",
    "workspace_payload",
]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["x-ms-request-id"] = str(uuid.uuid4())
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def arm_error(status: int, code: str, message: str) -> Response:
    """The ARM error shape: ``{"error": {"code", "message"}}``."""
    return json_response(status, {"error": {"code": code, "message": message}})


def service_error(status: int, code: str, message: str, *, inner: str | None = None) -> Response:
    """The Azure ML data-plane error shape (an ErrorResponse with a root error)."""
    error: dict[str, Any] = {
        "code": code,
        "severity": None,
        "message": message,
        "messageFormat": None,
        "messageParameters": {},
        "referenceCode": None,
        "detailsUri": None,
        "target": None,
        "details": [],
        "innerError": {"code": inner, "innerError": None} if inner else None,
        "debugInfo": None,
        "additionalInfo": None,
    }
    return json_response(
        status,
        {
            "error": error,
            "correlation": {"operation": uuid.uuid4().hex, "request": uuid.uuid4().hex[:16]},
            "environment": "emulator",
            "location": "local",
            "time": utc_now(),
            "componentName": "emulator",
        },
    )


def datastore_dto(
    datastore: DatastoreState, *, endpoint: str, include_secret: bool
) -> dict[str, Any]:
    """A ``DataStore`` as ``/datastore/v1.0/.../datastores`` answers it (Azure Blob only).

    ``endpoint`` is what the SDK puts after ``{account}.blob.``; a lookup by name (and the
    default) carries the credential, a listing does not (``include_secret``), as the service's.
    """
    section: dict[str, Any] = {
        "accountName": datastore.account_name,
        "containerName": datastore.container_name,
        "endpoint": endpoint,
        "protocol": datastore.protocol,
        "credentialType": datastore.credential_type,
        "credential": None,
        "clientCredentials": None,
        "blobCacheTimeout": 0,
        "isSas": datastore.credential_type == "Sas",
        "accountKey": None,
        "sasToken": None,
        "areWorkspaceManagedIdentitiesAllowed": False,
        "subscriptionId": None,
        "resourceGroup": None,
        "serviceDataAccessAuthIdentity": "None",
    }
    if include_secret:
        secret = datastore.account_key if datastore.credential_type == "AccountKey" else None
        sas = datastore.sas_token if datastore.credential_type == "Sas" else None
        section.update({"credential": secret or sas, "accountKey": secret, "sasToken": sas})
    return {
        "name": datastore.name,
        "dataStoreType": "AzureBlob",
        "hasBeenValidated": True,
        "tags": dict(datastore.tags),
        "azureStorageSection": section,
        "azureDataLakeSection": None,
        "azureSqlDatabaseSection": None,
        "azurePostgreSqlSection": None,
        "azureMySqlSection": None,
        "glusterFsSection": None,
        "createdTime": "2024-01-01T00:00:00.0000000+00:00",
        "modifiedTime": "2024-01-01T00:00:00.0000000+00:00",
    }


def dataset_dto(dataset: DatasetState) -> dict[str, Any]:
    """A registered dataset (``DatasetDto``) as ``datasets/query/name=...`` answers it.

    ``latest.dataflow`` is never empty: azureml-core would otherwise "migrate" the dataset by
    rebuilding it with ``Dataset.File.from_files``, which needs azureml-dataset-runtime.
    """
    dataflow = json.dumps(
        {
            "blocks": [
                {
                    "type": "Microsoft.DPrep.GetDatastoreFilesBlock",
                    "arguments": {
                        "datastores": [{"datastoreName": dataset.datastore, "path": dataset.path}]
                    },
                }
            ]
        }
    )
    stamp = "2024-01-01T00:00:00.0000000+00:00"
    return {
        "datasetId": dataset.registered_id,
        "datasetState": {"state": "active", "deprecatedBy": None, "etag": None},
        "latest": {
            "datasetId": dataset.registered_id,
            "versionId": str(dataset.version),
            "datasetDefinitionState": {"state": "active", "deprecatedBy": None, "etag": None},
            "dataflow": dataflow,
            "dataPath": {
                "datastoreName": dataset.datastore,
                "relativePath": dataset.path,
                "azureFilePath": None,
                "paths": None,
                "sqlDataPath": None,
                "httpUrl": None,
                "additionalProperties": None,
                "partitionFormat": None,
                "partitionFormatIgnoreError": False,
            },
            "partitionFormatInPath": None,
            "profileActionResult": None,
            "notes": None,
            "etag": None,
            "createdTime": stamp,
            "modifiedTime": stamp,
            "fileType": None,
            "properties": {},
            "savedDatasetId": dataset.saved_id,
            "telemetryInfo": None,
            "useDescriptionTagsFromDefinition": False,
            "description": dataset.description,
            "tags": dict(dataset.tags),
        },
        "createdTime": stamp,
        "modifiedTime": stamp,
        "etag": None,
        "name": dataset.name,
        "description": dataset.description,
        "tags": dict(dataset.tags),
        "isVisible": True,
        "defaultCompute": None,
        "datasetType": dataset.dataset_type,
    }


def quota_error(
    vm_family: str = "standardDSv2Family",
    *,
    requested: int = 8,
    limit: int = 4,
    location: str = "westeurope",
) -> dict[str, Any]:
    """A provisioning error as AmlCompute reports an exceeded core quota.

    Pass it to :meth:`Emulator.program_provisioning` (``errors=[quota_error()]``).
    """
    return {
        "error": {
            "code": "QuotaExceeded",
            "message": (
                f"Operation could not be completed as it results in exceeding approved "
                f"{vm_family} Cores quota. Additional details - Deployment Model: Resource "
                f"Manager, Location: {location}, Current Limit: {limit}, Current Usage: 0, "
                f"Additional Required: {requested}, (Minimum) New Limit Required: {requested}."
            ),
            "details": [],
        }
    }


def workspace_payload(
    workspace: WorkspaceState,
    *,
    tenant_id: str,
    storage_account: str,
    discovery_url: str,
    api_host: str,
) -> dict[str, Any]:
    """``GET .../workspaces/{name}?api-version=2022-05-01`` as ARM answers it."""
    sub = workspace.subscription_id
    rg = workspace.resource_group
    suffix = workspace.name.replace("-", "")[:12]
    return {
        "id": workspace.arm_id,
        "name": workspace.name,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": workspace.location,
        "tags": {},
        "etag": None,
        "sku": {"name": "Basic", "tier": "Basic"},
        "kind": "Default",
        "identity": {
            "type": "SystemAssigned",
            "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, workspace.arm_id)),
            "tenantId": tenant_id,
        },
        "properties": {
            "friendlyName": workspace.name,
            "description": "",
            "storageAccount": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.Storage/storageAccounts/{storage_account}",
            "containerRegistry": None,
            "keyVault": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.KeyVault/vaults/kv{suffix}",
            "applicationInsights": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.insights/components/ai{suffix}",
            "hbiWorkspace": False,
            "tenantId": tenant_id,
            "imageBuildCompute": None,
            "provisioningState": "Succeeded",
            "v1LegacyMode": False,
            "creationTime": "2024-01-01T00:00:00.0000000+00:00",
            "notebookInfo": None,
            "storageHnsEnabled": False,
            "workspaceId": workspace.workspace_id,
            "linkedModelInventoryArmId": None,
            "privateLinkCount": 0,
            "publicNetworkAccess": "Enabled",
            "discoveryUrl": discovery_url,
            "mlFlowTrackingUri": f"azureml://{api_host}/mlflow/v1.0{workspace.arm_id}",
            "sdkTelemetryAppInsightsKey": str(
                uuid.uuid5(uuid.NAMESPACE_DNS, workspace.workspace_id)
            ),
            "sasGetterUri": "",
            "enableDataIsolation": False,
        },
    }


def compute_payload(
    workspace: WorkspaceState, compute: ComputeState, *, tenant_id: str, object_id: str
) -> dict[str, Any]:
    """A compute as ``GET /rp/workspaces/.../computes/{name}?api-version=2020-02-02`` answers."""
    subnet = {"id": compute.subnet_id} if compute.subnet_id else None
    if compute.kind == "ComputeInstance":
        inner: dict[str, Any] = {
            "vmSize": compute.vm_size,
            "subnet": subnet,
            "applicationSharingPolicy": "Shared",
            "sshSettings": {
                "sshPublicAccess": "Disabled",
                "adminUserName": "azureuser",
                "sshPort": 4001,
            },
            "connectivityEndpoints": {"publicIpAddress": None, "privateIpAddress": "10.0.0.4"},
            "applications": [],
            # userName given: the SDK then does not ask Microsoft Graph for it
            "createdBy": {"userName": "Emulator User", "userOrgId": tenant_id, "userId": object_id},
            "errors": [],
            "state": compute.instance_state,
            "personalComputeInstanceSettings": None,
        }
    else:
        inner = {
            "vmSize": compute.vm_size,
            "vmPriority": compute.vm_priority,
            "scaleSettings": {
                "minNodeCount": compute.min_nodes,
                "maxNodeCount": compute.max_nodes,
                "nodeIdleTimeBeforeScaleDown": iso_duration(compute.idle_seconds),
            },
            "subnet": subnet,  # present (null) even without a VNet: the SDK indexes it
            "currentNodeCount": compute.current_node_count,
            "targetNodeCount": compute.min_nodes,
            "nodeStateCounts": {
                "preparingNodeCount": 0,
                "runningNodeCount": 0,
                "idleNodeCount": compute.current_node_count,
                "unusableNodeCount": 0,
                "leavingNodeCount": 0,
                "preemptedNodeCount": 0,
            },
            "allocationState": "Steady",
            "allocationStateTransitionTime": compute.modified_on,
            "errors": None,
            "remoteLoginPortPublicAccess": compute.remote_login_port_public_access,
            "osType": "Linux",
            "virtualMachineImage": None,
            "isolatedNetwork": False,
            "propertyBag": {},
            "enableNodePublicIp": True,
        }
    return {
        "id": f"{workspace.arm_id}/computes/{compute.name}",
        "name": compute.name,
        "type": "Microsoft.MachineLearningServices/workspaces/computes",
        "location": compute.location,
        "tags": compute.tags,
        # no "identity" key: the SDK wants it absent or a dict
        "properties": {
            "createdOn": compute.created_on,
            "modifiedOn": compute.modified_on,
            "disableLocalAuth": False,
            "description": compute.description,
            "resourceId": None,
            "computeType": compute.kind,
            "computeLocation": compute.location,
            "provisioningState": compute.provisioning_state,
            "provisioningErrors": copy.deepcopy(compute.provisioning_errors),
            "provisioningWarnings": {},
            "isAttachedCompute": False,
            "properties": inner,
            "status": None,
        },
    }


def experiment_dto(experiment: ExperimentState) -> dict[str, Any]:
    return {
        "experimentId": experiment.experiment_id,
        "name": experiment.name,
        "description": None,
        "createdUtc": experiment.created_utc,
        "tags": {},
        "archivedTime": None,
        "retainForLifetimeOfWorkspace": False,
        "artifactLocation": None,
    }


def _run_error(run: RunState, status: str) -> dict[str, Any] | None:
    if status == "Failed" and run.program.error:
        return {"error": copy.deepcopy(run.program.error)}
    return None


def _uuid_of(run: RunState) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, run.run_id))


def run_dto(
    run: RunState, status: str, *, tenant_id: str, object_id: str, cancel_uri: str
) -> dict[str, Any]:
    """A RunDto (``GET``/``PATCH .../runs/{id}``), with the ``dataContainerId`` the SDK needs."""
    return {
        "runNumber": run.run_number,
        "rootRunId": run.run_id,
        "createdUtc": run.created_utc,
        "createdBy": {
            "userObjectId": object_id,
            "userPuId": "1003BFFD8D3E9A2C",
            "userIdp": None,
            "userAltSecId": None,
            "userIss": f"https://sts.windows.net/{tenant_id}/",
            "userTenantId": tenant_id,
            "userName": "Emulator User",
            "upn": None,
        },
        "userId": object_id,
        "token": None,
        "tokenExpiryTimeUtc": None,
        "error": _run_error(run, status),
        "warnings": copy.deepcopy(run.program.warnings) or None,
        "revision": len(run.served_statuses) + 1,
        "statusRevision": len(run.served_statuses) + 1,
        "runUuid": _uuid_of(run),
        "parentRunUuid": None,
        "rootRunUuid": _uuid_of(run),
        "hasVirtualParent": False,
        "lastStartTimeUtc": run.start_time_utc,
        "currentComputeTime": None,
        "computeDuration": None,
        "effectiveStartTimeUtc": run.start_time_utc,
        "lastModifiedBy": None,
        "lastModifiedUtc": utc_now(),
        "duration": None,
        "cancelationReason": "Canceled by the user"
        if status in ("CancelRequested", "Canceled")
        else None,
        "currentAttemptId": 1,
        "runId": run.run_id,
        "parentRunId": None,
        "experimentId": run.experiment.experiment_id,
        "status": status,
        "startTimeUtc": run.start_time_utc,
        "endTimeUtc": run.end_time_utc,
        "scheduleId": None,
        "displayName": run.run_id,
        "name": None,
        "dataContainerId": run.data_container_id,
        "description": None,
        "hidden": False,
        "runType": "azureml.scriptrun",
        "runTypeV2": {
            "orchestrator": None,
            "traits": [],
            "attribution": None,
            "computeType": "AmlCompute",
        },
        "properties": dict(run.properties),
        "parameters": {},
        "actionUris": {},
        "scriptName": ((run.definition or {}).get("Configuration") or {}).get("script"),
        "target": run.compute_target,
        "uniqueChildRunComputeTargets": [],
        "tags": dict(run.tags),
        "settings": {},
        "services": {},
        "inputDatasets": [],
        "outputDatasets": [],
        "runDefinition": None,
        "jobSpecification": None,
        "primaryMetricName": None,
        "createdFrom": None,
        "cancelUri": cancel_uri,
        "completeUri": None,
        "diagnosticsUri": None,
        "computeRequest": None,
        "compute": None,
        "retainForLifetimeOfWorkspace": False,
        "queueingInfo": None,
        "inputs": None,
        "outputs": None,
    }


def run_details_dto(
    run: RunState, status: str, *, log_files: dict[str, str], object_id: str
) -> dict[str, Any]:
    """A RunDetailsDto (``GET .../runs/{id}/details``)."""
    return {
        "runId": run.run_id,
        "runUuid": _uuid_of(run),
        "parentRunUuid": None,
        "rootRunUuid": _uuid_of(run),
        "target": run.compute_target,
        "status": status,
        "parentRunId": None,
        "dataContainerId": run.data_container_id,
        "createdTimeUtc": run.created_utc,
        "startTimeUtc": run.start_time_utc,
        "endTimeUtc": run.end_time_utc,
        "error": _run_error(run, status),
        "warnings": copy.deepcopy(run.program.warnings) or None,
        "tags": dict(run.tags),
        "properties": dict(run.properties),
        "parameters": {},
        "services": {},
        "inputDatasets": [],
        "outputDatasets": [],
        "runDefinition": (run.definition or {}).get("Configuration"),
        "logFiles": log_files,
        "jobCost": None,
        "revision": len(run.served_statuses) + 1,
        "runTypeV2": {
            "orchestrator": None,
            "traits": [],
            "attribution": None,
            "computeType": "AmlCompute",
        },
        "settings": {},
        "computeRequest": None,
        "compute": None,
        "createdBy": None,
        "computeDuration": None,
        "effectiveStartTimeUtc": run.start_time_utc,
        "runNumber": run.run_number,
        "rootRunId": run.run_id,
        "experimentId": run.experiment.experiment_id,
        "userId": object_id,
        "statusRevision": len(run.served_statuses) + 1,
        "currentComputeTime": None,
        "lastStartTimeUtc": run.start_time_utc,
        "lastModifiedBy": None,
        "lastModifiedUtc": utc_now(),
        "duration": None,
        "inputs": None,
        "outputs": None,
        "currentAttemptId": 1,
    }


def _column_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, float):
        return "Double"
    return "String"


def metric_v2(run: RunState, name: str) -> dict[str, Any] | None:
    """A MetricV2Dto (``POST metric/v2.0/.../runs/{id}/full``) for one programmed metric.

    scalar -> ``azureml.v1.scalar``; list -> ``azureml.v1.list`` (one row per value);
    dict of columns -> ``azureml.v1.table``. ``properties.uxMetricType`` is what the SDK
    dispatches on.
    """
    if name not in run.program.metrics:
        return None
    value = run.program.metrics[name]
    if isinstance(value, Mapping):
        metric_type = "azureml.v1.table"
        columns = {
            column: _column_type(cells[0] if isinstance(cells, list) and cells else cells)
            for column, cells in value.items()
        }
        length = max(
            (len(cells) if isinstance(cells, list) else 1 for cells in value.values()), default=0
        )
        rows = [
            {
                column: (cells[index] if isinstance(cells, list) else cells)
                for column, cells in value.items()
            }
            for index in range(length)
        ]
    elif isinstance(value, (list, tuple)):
        metric_type = "azureml.v1.list" if len(value) != 1 else "azureml.v1.scalar"
        columns = {name: _column_type(value[0]) if value else "Double"}
        rows = [{name: item} for item in value]
    else:
        metric_type = "azureml.v1.scalar"
        columns = {name: _column_type(value)}
        rows = [{name: value}]
    return {
        "dataContainerId": run.data_container_id,
        "name": name,
        "columns": columns,
        "properties": {"uxMetricType": metric_type},
        "namespace": None,
        "standardSchemaId": None,
        "value": [
            {
                "metricId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{run.run_id}/{name}/{step}")),
                "createdUtc": run.created_utc,
                "step": step,
                "data": row,
            }
            for step, row in enumerate(rows)
        ],
        "continuationToken": None,
    }
