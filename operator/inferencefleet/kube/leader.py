"""Leader election on a ``coordination.k8s.io`` Lease: of several operator replicas only the leader runs.

Built on the ``kubernetes`` client's ``leaderelection`` (its Lease lock and acquire / renew loops). The
process acquires the Lease before it starts kopf, so a standby replica neither ticks, applies, writes
status nor posts Events. A leader that cannot renew within the renew deadline stops (the pod restarts
as a standby); one that shuts down cleanly releases the Lease so a standby takes over at its next retry.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from ..errors import UserError

LEASE_DURATION = 10
"""Seconds a standby waits after the last renewal before it takes over (failover well within 15 s)."""
RENEW_DEADLINE = 8
RETRY_PERIOD = 2

logger = logging.getLogger(__name__)


def identity() -> str:
    """This replica's holder identity: the pod name (HOSTNAME) plus a random suffix per process."""
    return f"{os.environ.get('HOSTNAME', 'inferencefleet')}-{uuid.uuid4().hex[:6]}"


class Leadership:
    """One candidate for the Lease ``namespace/name``."""

    def __init__(self, api: client.ApiClient, name: str, namespace: str, holder: str | None = None) -> None:
        self.lock = LeaseLock(name, namespace, holder or identity())  # type: ignore[no-untyped-call]
        self.lock.api_instance = client.CoordinationV1Api(api)
        self.election = leaderelection.LeaderElection(electionconfig.Config(  # type: ignore[no-untyped-call]
            self.lock, lease_duration=LEASE_DURATION, renew_deadline=RENEW_DEADLINE, retry_period=RETRY_PERIOD,
            onstarted_leading=lambda: None, onstopped_leading=lambda: None))
        self.leading = threading.Event()
        self._stopping = threading.Event()
        self._renewal: threading.Thread | None = None

    @property
    def holder(self) -> str:
        return self.lock.identity

    def acquire(self) -> None:
        """Block until this candidate holds the Lease; UserError at once when RBAC forbids reading it."""
        try:
            self.lock.api_instance.read_namespaced_lease(self.lock.name, self.lock.namespace)
        except client.ApiException as error:
            if error.status in (401, 403):
                raise UserError(f"leader election: cannot read the Lease {self.lock.namespace}/{self.lock.name}: "
                                f"HTTP {error.status} {error.reason} (the operator needs get, create and update on "
                                "coordination.k8s.io leases there: the chart's leader-election Role; or set "
                                "--lease-namespace, or --no-leader-elect for a single replica)") from None
        logger.info("Waiting to lead (Lease %s/%s, identity %s)", self.lock.namespace, self.lock.name, self.holder)
        self.election.acquire()  # type: ignore[no-untyped-call]
        self.leading.set()
        logger.info("Leading as %s", self.holder)

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew the Lease in a daemon thread; call ``on_lost`` once if a renewal misses its deadline."""
        def renew() -> None:
            self.election.renew_loop(self._stopping)  # type: ignore[no-untyped-call]
            if self.leading.is_set() and not self._stopping.is_set():
                self.leading.clear()
                logger.error("Lost the Lease %s/%s: stopping", self.lock.namespace, self.lock.name)
                on_lost()

        self._renewal = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        self._renewal.start()
        return self._renewal

    def release(self) -> None:
        """Give the Lease up (holder cleared) so a standby takes over without waiting for it to expire."""
        if not self.leading.is_set():
            return
        self._stopping.set()
        if self._renewal is not None:
            self._renewal.join(RETRY_PERIOD + RENEW_DEADLINE)
        self.leading.clear()
        try:
            lease = self.lock.api_instance.read_namespaced_lease(self.lock.name, self.lock.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.holder:
                lease.spec.holder_identity = None
                self.lock.api_instance.replace_namespaced_lease(self.lock.name, self.lock.namespace, lease)
                logger.info("Released the Lease %s/%s", self.lock.namespace, self.lock.name)
        except client.ApiException as error:
            logger.warning("Could not release the Lease %s/%s: %s", self.lock.namespace, self.lock.name, error.reason)
