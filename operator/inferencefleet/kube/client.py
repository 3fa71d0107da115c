"""Server-side apply, /status merge patches, reads and Events against the API server.

Built on the synchronous ``kubernetes`` ApiClient (its configuration handles every kubeconfig and
in-cluster auth method); each call runs in a worker thread so the operator's event loop never
blocks. Raw REST calls keep one code path for every kind, custom or built-in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .. import observability
from ..errors import UserError
from .resources import ObjectRef

FIELD_MANAGER = "inferencefleet"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
API_THREADS = 16
"""Worker threads (and pooled HTTP connections) for blocking API calls made from the event loop."""
EVENT_NAMESPACE = "default"
"""Events about cluster-scoped objects (FleetQuota) go here."""

logger = logging.getLogger(__name__)


class KubeError(Exception):
    """An API call failed: HTTP status, the Status reason and message."""

    def __init__(self, action: str, ref: ObjectRef, status: int, reason: str, message: str) -> None:
        super().__init__(f"{action} {ref}: HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason


def load_api_client() -> client.ApiClient:
    """An ApiClient for the cluster: in-cluster service account, else $KUBECONFIG / ~/.kube/config.

    $KUBECONFIG is read now, not at import time (the kubernetes package caches it at import).
    """
    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path.split(os.pathsep)[0], client_configuration=configuration)
    except (config.ConfigException, OSError) as error:
        raise UserError(f"Kubernetes credentials: {error} (set KUBECONFIG or run in a cluster)") from None
    configuration.connection_pool_maxsize = API_THREADS
    return client.ApiClient(configuration)


class Kube:
    """The operator's API calls; every method is async and runs the blocking HTTP call in a thread."""

    def __init__(self, api: client.ApiClient, field_manager: str = FIELD_MANAGER, instance: str = "") -> None:
        self.api = api
        self.field_manager = field_manager
        self.instance = instance or os.environ.get("HOSTNAME", "inferencefleet")

    def _call(self, action: str, ref: ObjectRef, method: str, path: str, body: Any = None,
              query: list[tuple[str, str]] | None = None, content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self.api.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"],
        )
        verb = action.split()[0]
        observability.API_REQUESTS.labels(verb).inc()
        try:
            response = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=30)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:  # connection-level failures come back as status 0
            observability.API_ERRORS.labels(verb, str(error.status or 0)).inc()
            raise KubeError(action, ref, error.status or 0, "ConnectionFailed", str(error.reason)) from None
        text = response.data.decode() if response.data else ""
        if not 200 <= response.status < 300:
            observability.API_ERRORS.labels(verb, str(response.status)).inc()
            try:
                status = json.loads(text)
                reason, message = status.get("reason", ""), status.get("message", text)
            except ValueError:
                reason, message = "", text[:300]
            raise KubeError(action, ref, response.status, reason or str(response.reason), message)
        return json.loads(text) if text else None

    async def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``body`` as field manager ``inferencefleet`` (force: we own these fields)."""
        ref = ObjectRef.of(body)
        query = [("fieldManager", self.field_manager), ("force", "true")]
        result: dict[str, Any] = await asyncio.to_thread(
            self._call, "apply", ref, "PATCH", ref.path, body, query, APPLY_PATCH)
        return result

    async def patch_status(self, ref: ObjectRef, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status`` through the /status subresource (never touches spec)."""
        result: dict[str, Any] = await asyncio.to_thread(
            self._call, "patch status of", ref, "PATCH", f"{ref.path}/status", {"status": status},
            [("fieldManager", self.field_manager)], MERGE_PATCH)
        return result

    async def delete(self, ref: ObjectRef) -> None:
        """Delete ``ref`` if it is still the object we saw (uid precondition); its dependents go in the background."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                **({"preconditions": {"uid": ref.uid}} if ref.uid else {})}
        try:
            await asyncio.to_thread(self._call, "delete", ref, "DELETE", ref.path, body)
        except KubeError as error:
            if error.status not in (404, 409):  # gone already, or replaced by another object of that name
                raise

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            result: dict[str, Any] = await asyncio.to_thread(self._call, "get", ref, "GET", ref.path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return result

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods in ``namespace`` matching the label ``selector``."""
        ref = ObjectRef("v1", "Pod", f"({selector})", namespace)
        result = await asyncio.to_thread(self._call, "list", ref, "GET", ref.collection, None,
                                         [("labelSelector", selector)])
        return list((result or {}).get("items") or [])

    async def annotate(self, ref: ObjectRef, annotations: dict[str, str]) -> None:
        """Merge ``annotations`` into the object's metadata (a plain patch: annotations on objects we do not own)."""
        await asyncio.to_thread(self._call, "annotate", ref, "PATCH", ref.path,
                                {"metadata": {"annotations": annotations}}, [("fieldManager", self.field_manager)],
                                MERGE_PATCH)

    async def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """Record an Event on ``ref`` (type Normal or Warning). Failures are logged, never raised."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        namespace = ref.namespace or EVENT_NAMESPACE
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name,
                               "namespace": ref.namespace, "uid": ref.uid},
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.field_manager},
            "reportingComponent": self.field_manager,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        path = ObjectRef("v1", "Event", "", namespace).collection
        try:
            await asyncio.to_thread(self._call, "post event on", ref, "POST", path, event)
        except KubeError as error:
            logger.warning("Could not post event %s on %s: %s", reason, ref, error)
