"""A test authentication object that sends the real SDK to the emulator and nowhere else."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

from azureml.core.authentication import AbstractAuthentication, _SubscriptionInfo

__all__ = ["EmulatorAuth", "make_unsigned_jwt"]


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_unsigned_jwt(*, tenant_id: str, object_id: str, lifetime_seconds: int = 3600) -> str:
    """A well-formed JWT (``alg: none``, empty signature) with the claims the SDK decodes.

    azureml-core decodes tokens without checking signatures, only to read ``exp`` and ``tid``.
    """
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "aud": "https://management.core.windows.net/",
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "tid": tenant_id,
        "oid": object_id,
        "name": "Emulator User",
        "upn": "emulator.user@example.invalid",
    }
    return f"{_b64url(header)}.{_b64url(claims)}."


class EmulatorAuth(AbstractAuthentication):  # type: ignore[misc]  # azureml is untyped
    """An :class:`AbstractAuthentication` whose cloud's ARM endpoint is the emulator.

    It is built with ``cloud="AzureCloud"`` (so the SDK never fetches cloud metadata from the
    internet) and then holds a *copy* of that cloud with ``resource_manager`` pointing at the
    emulator: the SDK's shared cloud objects stay untouched.
    """

    def __init__(
        self,
        *,
        resource_manager_url: str,
        tenant_id: str,
        object_id: str,
        subscriptions: dict[str, str],
    ) -> None:
        super().__init__(cloud="AzureCloud")
        # A copy: the SDK's AzureCloud object is shared by the whole process.
        cloud: Any = copy.deepcopy(getattr(self, "_cloud_type"))  # noqa: B009 - set by the untyped base
        # The SDK formats ARM URLs as '{resource_manager}{resource_id}': keep the trailing slash
        # that the real AzureCloud value has, so the wire shows the same double slashes.
        cloud.endpoints.resource_manager = resource_manager_url.rstrip("/") + "/"
        self._cloud_type: Any = cloud
        self._tenant_id = tenant_id
        self._object_id = object_id
        # subscription id -> display name
        self._subscriptions = subscriptions

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    def _token(self) -> str:
        return make_unsigned_jwt(tenant_id=self._tenant_id, object_id=self._object_id)

    def _get_arm_token(self) -> str:
        return self._token()

    def _get_graph_token(self) -> str:
        return self._token()

    def _get_azureml_client_token(self) -> str:
        return self._token()

    def _get_all_subscription_ids(self) -> tuple[list[Any], str]:
        infos = [_SubscriptionInfo(name, sub_id) for sub_id, name in self._subscriptions.items()]
        return infos, self._tenant_id

    def _get_workspace(  # the SDK's abstract signature
        self,
        subscription_id: str,  # noqa: ARG002
        resource_group: str,  # noqa: ARG002
        name: str,  # noqa: ARG002
    ) -> None:
        # None: let the SDK ask ARM (the emulator) for the workspace.
        return None
