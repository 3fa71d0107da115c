"""kopf entry point: ``kopf run -m inferencefleet.handlers.main`` (``inferencefleet run`` wraps it).

Handlers stay thin: indices cache pools, quotas and workloads; the spec handler applies a pool's
children; one background task started at startup runs the fleet tick for all pools.

Index handlers are async (kopf runs them in the event loop, not one thread hop per watch event) and
copy only what they keep: a thousand pools' writes echo back as thousands of watch events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from ..api.v1alpha1 import API_VERSION
from ..kube.client import API_THREADS, Kube, KubeError, load_api_client
from ..redaction import redact_url
from ..settings import OperatorSettings
from ..signals.prometheus import PrometheusSource
from . import fleet, spec
from .children import CHILD_RESOURCES, Child, child_entry
from .runtime import Runtime, parse_quota, pool_key
from .workloads import Workload, newest, pool_key_of

GROUP, VERSION = API_VERSION.split("/")
POOLS = (GROUP, VERSION, "inferencepools")
QUOTAS = (GROUP, VERSION, "fleetquotas")
MANAGED = {"app.kubernetes.io/managed-by": "inferencefleet"}
RETRY_DELAY = 10.0
CONFLICT_RETRY_DELAY = 60.0
"""A name taken by a foreign object is checked again this often (it may be deleted or renamed)."""


ANNOTATION_PREFIX = "inferencefleet.io"
DIFFBASE_KEY = "last-handled-configuration"
LAST_HANDLED = f"{ANNOTATION_PREFIX}/{DIFFBASE_KEY}"
"""kopf's copy of the last spec the spec handler saw (its diff base)."""


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Service account in a cluster, else $KUBECONFIG read at login time (not at import)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **indices: Any) -> None:
    """Read OperatorSettings, open the clients, start the fleet tick (indices: kopf passes each by name)."""
    config = OperatorSettings.from_env()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX,
                                                                            key=DIFFBASE_KEY)
    settings.posting.level = logging.WARNING
    source = None
    if config.prometheus_url:
        source = PrometheusSource(config.prometheus_url, bearer_token_file=config.prometheus_bearer_token_file,
                                  basic_auth=config.prometheus_basic_auth(), ca_file=config.prometheus_ca_file,
                                  verify=not config.prometheus_insecure_skip_tls_verify,
                                  timeout=config.prometheus_timeout,
                                  namespace=config.namespace, window=config.signals_window,
                                  stale_after=config.stale_after)
        await source.__aenter__()
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(API_THREADS, thread_name_prefix="kube"))
    runtime = Runtime(config, Kube(load_api_client()), source)
    memo.runtime = runtime
    workloads = _Merged(indices["deployment_index"], indices["lws_index"])
    memo.fleet_task = asyncio.create_task(
        fleet.run_forever(runtime, indices["pool_index"], indices["quota_index"], workloads, _children(indices)))
    logger.info("Fleet tick every %gs; Prometheus: %s", config.tick_interval, redact_url(config.prometheus_url or "none"))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop the fleet tick and close the Prometheus client."""
    task = memo.get("fleet_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    runtime = memo.get("runtime")
    if runtime is not None and runtime.source is not None:
        await runtime.source.__aexit__(None, None, None)
    stop = memo.get("stop_flag")
    if stop is not None:  # kopf waits for a threading stop flag in an executor thread: release it, or exit hangs
        stop.set()


@kopf.index(*POOLS)
async def pool_index(body: kopf.Body, **_: Any) -> dict[Any, dict[str, Any]]:
    """Every InferencePool by (namespace, name), without what the tick never reads (managed fields, the spec
    handler's last-handled copy of the spec): a thousand pools' bodies are most of the operator's memory."""
    plain = {k: _detach(v) for k, v in body.items() if k != "metadata"}
    meta = plain["metadata"] = {k: _detach(v) for k, v in body.metadata.items() if k != "managedFields"}
    (meta.get("annotations") or {}).pop(LAST_HANDLED, None)
    return {pool_key(plain): plain}


@kopf.index(*QUOTAS)
async def quota_index(body: kopf.Body, **_: Any) -> dict[Any, dict[str, Any]]:
    """Every FleetQuota by name."""
    return {body.metadata.name: _plain(body)}


@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def deployment_index(body: kopf.Body, **_: Any) -> dict[Any, Workload] | None:
    """Our Deployments by pool."""
    return _workload(body)


@kopf.index("leaderworkerset.x-k8s.io", "v1", "leaderworkersets", labels=MANAGED)
async def lws_index(body: kopf.Body, **_: Any) -> dict[Any, Workload] | None:
    """Our LeaderWorkerSets by pool."""
    return _workload(body)


async def child_index(body: kopf.Body, **_: Any) -> dict[Any, Child] | None:
    """Every object we manage, by pool (level-based repair and pruning); the entry keeps no part of the body."""
    return child_entry(body)


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.index(_group, _version, _plural, labels=MANAGED, id=f"{_plural}_children")(child_index)


def _children(indices: dict[str, Any]) -> _Merged:
    return _Merged(*(indices[f"{plural}_children"] for _, _, plural in CHILD_RESOURCES))


@kopf.on.resume(*POOLS)
@kopf.on.create(*POOLS)
@kopf.on.update(*POOLS)
async def reconcile(body: kopf.Body, memo: kopf.Memo, **indices: Any) -> None:
    """Validate, render and apply the pool's children (level-based: the whole object every time)."""
    async with memo.runtime.spec_slots:
        quota_index = indices["quota_index"]
        quotas = {}
        for name in list(quota_index):
            for quota_body in quota_index.get(name, ()):
                quota, _problems = parse_quota(quota_body)
                if quota is not None:
                    quotas[name] = quota
        key = pool_key(dict(body))
        workload = newest(*_Merged(indices["deployment_index"], indices["lws_index"]).get(key))
        try:
            await spec.reconcile_spec(memo.runtime, _plain(body), quotas, workload, _children(indices).get(key))
        except KubeError as error:
            raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from None
        except spec.NameTaken as error:
            raise kopf.TemporaryError(str(error), delay=CONFLICT_RETRY_DELAY) from None


def _plain(body: kopf.Body) -> dict[str, Any]:
    """A detached plain-dict copy of a kopf body."""
    return {k: _detach(v) for k, v in body.items()}


def _detach(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_detach(v) for v in value]
    return value


def _workload(body: kopf.Body) -> dict[Any, Workload] | None:
    """{pool key: Workload} read straight from the body (the Workload keeps no part of it)."""
    key = pool_key_of(body)
    return {key: Workload.from_body(body)} if key is not None else None


class _Merged:
    """Several kopf indices as one read-only {pool key: entries} index (e.g. Deployments and LeaderWorkerSets)."""

    def __init__(self, *indices: Any) -> None:
        self.indices = indices

    def __iter__(self) -> Any:
        return iter({key for index in self.indices for key in list(index)})

    def get(self, key: Any, default: Any = ()) -> list[Any]:
        found = [w for index in self.indices for w in index.get(key, ())]
        return found or list(default)
