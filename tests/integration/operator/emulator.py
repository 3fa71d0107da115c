"""EnrichingEmulator: kmock 0.8's KubernetesEmulator plus what kopf and client-go rely on.

kmock stores objects exactly as sent. A real API server also stamps uid, creationTimestamp,
generation and a global resourceVersion, resumes watches from a resourceVersion, answers 201 on
create, names errors with standard reasons, creates objects on server-side apply and filters lists
by label. This subclass adds exactly that (see shared/reference/test-infrastructure.md), through
kmock's protected hooks, so it is pinned to kmock==0.8.

Still NOT emulated (only a real cluster covers them): schema validation and defaulting, status
subresource isolation, SSA field ownership (an apply is a merge patch), garbage collection,
controllers (Deployments never get pods: tests write workload status themselves), admission, RBAC.
"""

from __future__ import annotations

import collections
import copy
import datetime
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import dicts, enums, k8s_dicts, parsing, references, rendering

MUTATING = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
WATCH_LOG_SIZE = 2000
"""Events kept per resource for watch resumption (a tiny watch cache); older resumes get 410 Gone."""

_stock_parse_path = parsing.parse_path
_NAMESPACES = re.compile(r"^/api/v1/namespaces(?:/([^/]+)(?:/(status|finalize))?)?/?$")


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock parses /api/v1/namespaces[/NAME] as a broken namespaced path (HTTP 500): fix it."""
    match = _NAMESPACES.match(path)
    if match:
        return parsing.ParsedPath("", "v1", "namespaces", None, match.group(1), match.group(2))
    return _stock_parse_path(path)


parsing.parse_path = _parse_path


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k`` (comma = and)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class EnrichingEmulator(kmock.KubernetesEmulator):
    """A kmock Kubernetes emulator that behaves enough like an API server for kopf and client-go."""

    _resource_version: int = attrs.field(default=0, init=False)
    _watch_log: dict[references.resource, collections.deque[tuple[int, dict[str, Any]]]] = attrs.field(
        factory=lambda: collections.defaultdict(lambda: collections.deque(maxlen=WATCH_LOG_SIZE)), init=False)

    # ------------------------------------------------------------------ registration
    def register_crd(self, crd: dict[str, Any]) -> None:
        """Serve the resource a CustomResourceDefinition declares (every served version)."""
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            info = self.resources[f"{spec['group']}/{version['name']}/{names['plural']}"]
            info.kind = names["kind"]
            info.singular = names.get("singular", names["kind"].lower())
            info.shortnames = set(names.get("shortNames", []))
            info.categories = set(names.get("categories", []))
            info.namespaced = spec.get("scope", "Namespaced") == "Namespaced"
            info.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
            info.subresources = set(version.get("subresources", {}))

    def register_crd_files(self, paths: Iterable[str]) -> None:
        """register_crd for every CRD document in the YAML files."""
        for path in paths:
            with open(path, encoding="utf-8") as file:
                for document in yaml.safe_load_all(file):
                    if document and document.get("kind") == "CustomResourceDefinition":
                        self.register_crd(document)

    # ------------------------------------------------------------------ mutations
    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is None or request.action not in MUTATING:
            return await super()._handle(request)
        async with self._lock:
            release = await self._mutate(request)
        try:
            # Skip KubernetesEmulator._handle (its mutations are replaced by _mutate): render only.
            return await kmock.KubernetesScaffold._handle(self, request)
        finally:
            if release is not None:
                async with self._lock:
                    await self._release(release)

    async def _mutate(self, request: rendering.Request) -> kmock.ObjectKey | None:
        """Apply a create/patch/delete to the store; return the key of an object to release afterwards."""
        assert request.resource is not None
        if request.action == enums.action.CREATE:
            body = self._body(request)
            meta = body.get("metadata") or {}
            key = (request.resource, request.namespace or meta.get("namespace"), meta.get("name"))
            if key in self._objects and not self._objects[key].deleted:
                raise _error(409, "AlreadyExists", f"{request.resource.plural} {meta.get('name')!r} already exists")
            await self._create(key, body, request)
            return None
        key = (request.resource, request.namespace, request.name)
        exists = key in self._objects and not self._objects[key].deleted
        if request.action == enums.action.DELETE:
            if not exists:
                raise _error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
            return await self._delete(key)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if not exists:
            if content_type == APPLY_PATCH and request.subresource is None:
                await self._create(key, self._body(request), request)
                return None
            raise _error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")
        old = self._objects[key].raw
        new = self._patched(old, request, content_type)
        if request.subresource is None and new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        await self._store(key, new, "MODIFIED")
        meta = new["metadata"]
        return key if meta.get("deletionTimestamp") and not meta.get("finalizers") else None

    def _body(self, request: rendering.Request) -> dict[str, Any]:
        body = request.data if isinstance(request.data, dict) else yaml.safe_load(request.text or "{}")
        if not isinstance(body, dict):
            raise _error(400, "BadRequest", "the request body must be an object")
        return copy.deepcopy(body)

    def _patched(self, old: dict[str, Any], request: rendering.Request, content_type: str) -> dict[str, Any]:
        """The object after the patch: JSON patch, merge/strategic-merge patch or server-side apply."""
        if content_type == JSON_PATCH or isinstance(request.data, list):
            try:
                return jsonpatch.apply_patch(old, request.data or [])
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise _error(422, "Invalid", f"JSON patch failed: {error}") from None
        patch = self._body(request)
        sent_version = (patch.get("metadata") or {}).get("resourceVersion")
        if sent_version is not None and str(sent_version) != old["metadata"].get("resourceVersion"):
            raise _error(409, "Conflict", "the object has been modified; please apply your changes to the "
                                          "latest version and try again")
        new = dicts.patch_dict(copy.deepcopy(old), patch)
        if content_type == APPLY_PATCH:
            self._stamp_manager(new, request)
        return new

    async def _create(self, key: kmock.ObjectKey, body: dict[str, Any], request: rendering.Request) -> None:
        meta = body.setdefault("metadata", {})
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if key[1] is not None:
            meta["namespace"] = key[1]
        if request.headers.get("Content-Type", "").startswith(APPLY_PATCH):
            self._stamp_manager(body, request)
        await self._store(key, body, "ADDED")
        if body.get("kind") == "CustomResourceDefinition":
            self.register_crd(body)

    async def _delete(self, key: kmock.ObjectKey) -> kmock.ObjectKey | None:
        old = self._objects[key].raw
        if old["metadata"].get("deletionTimestamp"):
            return None
        if old["metadata"].get("finalizers"):
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = _now()
            await self._store(key, new, "MODIFIED")
            return None
        return key

    async def _release(self, key: kmock.ObjectKey) -> None:
        """Delete for real (no finalizers left): a DELETED event newer than anything listed before."""
        if key not in self._objects or self._objects[key].deleted:
            return
        await self._store(key, copy.deepcopy(self._objects[key].raw), "DELETED")
        self._objects[key].delete()

    async def _store(self, key: kmock.ObjectKey, body: dict[str, Any], event_type: str) -> None:
        """Save a new version with the next resourceVersion and publish the watch event."""
        self._resource_version += 1
        body["metadata"]["resourceVersion"] = str(self._resource_version)
        if key in self._objects:
            self._objects[key].create(body)
        else:
            self._objects[key] = body
        event = {"type": event_type, "object": copy.deepcopy(body)}
        self._watch_log[key[0]].append((self._resource_version, event))
        await self._buses[key[0]].put(event)

    @staticmethod
    def _stamp_manager(body: dict[str, Any], request: rendering.Request) -> None:
        manager = request.params.get("fieldManager", "")
        fields = [f for f in body["metadata"].get("managedFields", []) if f.get("manager") != manager]
        fields.append({"manager": manager, "operation": "Apply", "time": _now(), "fieldsType": "FieldsV1"})
        body["metadata"]["managedFields"] = fields

    # ------------------------------------------------------------------ reads
    async def _serve_create(self, request: rendering.Request) -> kmock.Response:
        payload = await super()._serve_create(request)
        return kmock.Response(status=201, payload=payload)

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        listing: dict[str, Any] = await super()._serve_list(request)  # type: ignore[assignment]
        selector = request.params.get("labelSelector")
        items = [i for i in listing["items"]
                 if not selector or _selector_matches(selector, i.get("metadata", {}).get("labels") or {})]
        assert request.resource is not None
        info = self.resources[request.resource]
        group, version = request.resource.group, request.resource.version
        return {
            "apiVersion": f"{group}/{version}" if group else version,
            "kind": f"{info.kind or 'Object'}List",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        """Replay from ?resourceVersion= (or the current state), then stream without a gap."""
        yield b""
        resource = request.resource
        assert resource is not None
        bus = self._buses[resource]
        since = request.params.get("resourceVersion")
        async with self._lock:
            mark = await bus.mark()
            if since in (None, "", "0"):
                replay = [{"type": "ADDED", "object": obj.raw} for (res, ns, _), obj in self._objects.items()
                          if res == resource and not obj.deleted and self._in_scope(request, ns)]
            else:
                log = self._watch_log[resource]
                if len(log) == log.maxlen and log[0][0] > int(since) + 1:
                    replay = [{"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410,
                                                           "reason": "Expired", "message": "too old"}}]
                else:
                    replay = [e for rv, e in log if rv > int(since)
                              and self._in_scope(request, e["object"]["metadata"].get("namespace"))]
        try:
            for event in replay:
                yield event
            async for event in mark:
                if self._in_scope(request, event["object"]["metadata"].get("namespace")):
                    yield event
        finally:
            await bus.unmark(mark)

    @staticmethod
    def _in_scope(request: rendering.Request, namespace: str | None) -> bool:
        return request.namespace is None or request.namespace == namespace

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        """Core discovery says groupVersion 'v1' (kmock: '/v1'); subresources carry no shortNames."""
        payload: dict[str, Any] = await super()._serve_version(request)  # type: ignore[assignment]
        payload["groupVersion"] = payload["groupVersion"].lstrip("/")
        for entry in payload["resources"]:
            if "/" in entry["name"]:
                entry["shortNames"] = []
        return payload

    async def _render_error(self, exc: Exception) -> Any:
        """Standard Status reasons (client-go and kopf test them); kmock sends prose."""
        if isinstance(exc, kmock.KubernetesNotFoundError) and exc.reason != "NotFound":
            exc = _error(404, "NotFound", exc.message or "not found")
        elif isinstance(exc, (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException)):
            exc = _error(422, "Invalid", str(exc))
        return await super()._render_error(exc)


__all__ = ["EnrichingEmulator", "k8s_dicts"]
