"""A real Kubernetes control plane on 127.0.0.1, built from pinned Go modules: ``make cluster``.

What runs: etcd, kube-apiserver (TLS, Node and RBAC authorization, service-account tokens,
OwnerReferencesPermissionEnforcement and NodeRestriction), kube-controller-manager (Deployment,
ReplicaSet, garbage collector, service-account token and root-CA publishers), kube-scheduler, and kwok,
which plays the kubelet for pods on fake GPU nodes so that they become Running and Ready. Our CRDs and
the LeaderWorkerSet and PodMonitor CRDs are installed. A real worker node that runs pods for real
(kubelet, containerd, runc, CNI, kube-proxy, CoreDNS) can join it: ``node.py``.

Binaries are built into ``.cluster/bin`` from the modules under ``cluster/`` and rebuilt only when a
pin (go.mod / go.sum) or this file's build list changes; the Go build cache makes a rebuild fast.

    python cluster/localcluster.py build        # build (or reuse) the binaries
    python cluster/localcluster.py up [--dir D] # start a control plane; kubeconfig at D/kubeconfig
    python cluster/localcluster.py down [--dir D]

The test suite starts its own control plane per session in a temporary folder (``start``/``stop``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "cluster"
CACHE = Path(os.environ.get("INFERENCEFLEET_CLUSTER_CACHE", ROOT / ".cluster"))
BIN = CACHE / "bin"
BUILDS: dict[str, list[str]] = {
    "controlplane": ["k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
                     "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl", "./etcd",
                     "k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy"],
    "kwok": ["sigs.k8s.io/kwok/cmd/kwok"],
    "helm": ["helm.sh/helm/v4/cmd/helm"],
    "node": ["github.com/containerd/containerd/v2/cmd/containerd",
             "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
             "github.com/containerd/containerd/v2/cmd/ctr", "github.com/opencontainers/runc",
             "github.com/containernetworking/plugins/plugins/main/bridge",
             "github.com/containernetworking/plugins/plugins/ipam/host-local",
             "github.com/containernetworking/plugins/plugins/main/loopback",
             "github.com/containernetworking/plugins/plugins/meta/portmap", "./pause"],
    "coredns": ["."],
    "prometheus": ["github.com/prometheus/prometheus/cmd/prometheus"],
}
"""Go module folder under cluster/ -> the commands built from it."""
BUILD_TAGS = {"node": "seccomp", "prometheus": "remove_all_sd,enable_kubernetes_sd"}
"""runc applies seccomp filters (the RuntimeDefault profile the chart asks for) only when built with cgo
and libseccomp. The e2e suite's Prometheus discovers pods through the Kubernetes API and needs no other
service discovery (each one links a cloud SDK)."""
STATIC = {"prometheus"}
"""Modules built without cgo: their binaries are the whole of a scratch image."""
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "helm",
            "kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "bridge", "host-local",
            "loopback", "portmap", "pause", "coredns", "prometheus")
KWOK_STAGES = ("node/fast", "node/heartbeat-with-lease", "pod/fast")
"""kwok's own stage sets (in its module's kustomize/stage): nodes Ready with leases, pods Ready at once,
deleted pods gone; written to .cluster/bin/kwok-stages.yaml, kwok's --config."""
THIRD_PARTY_CRDS = {
    "leaderworkerset.x-k8s.io_leaderworkersets.v1.yaml": dict(
        group="leaderworkerset.x-k8s.io", kind="LeaderWorkerSet", plural="leaderworkersets",
        short=["lws"], scale={"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                              "labelSelectorPath": ".status.hpaPodSelector"}),
    "monitoring.coreos.com_podmonitors.v1.yaml": dict(
        group="monitoring.coreos.com", kind="PodMonitor", plural="podmonitors", short=["pmon"], scale=None),
}
"""CRDs of kinds we render but do not own, wrapped around the schemas vendored for the render tests."""
SCHEMAS = ROOT / "tests/unit/render/schemas"
SERVICE_CIDR = "10.96.0.0/16"
GPU_NODES = 4
GPUS_PER_NODE = 8
READY_TIMEOUT = 90.0


class ClusterError(RuntimeError):
    """The control plane could not be built or started; the message says what to do."""


# --- build ------------------------------------------------------------------------------------------------


def _pins() -> str:
    digest = hashlib.sha256(json.dumps(BUILDS, sort_keys=True).encode())
    for module in sorted(BUILDS):
        for path in (HERE / module / "go.mod", HERE / module / "go.sum", *sorted((HERE / module).rglob("*.go"))):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build(quiet: bool = False) -> Path:
    """Build every binary into ``.cluster/bin`` unless the pins are unchanged since the last build."""
    stamp = BIN / ".pins"
    if stamp.exists() and stamp.read_text() == _pins() and all((BIN / b).exists() for b in (*BINARIES, STAGES)):
        return BIN
    if shutil.which("go") is None:
        raise ClusterError("the Go toolchain is needed to build the control plane: install Go 1.26 (golang.org/dl)")
    if shutil.which("pkg-config") is None or subprocess.run(["pkg-config", "--exists", "libseccomp"]).returncode:
        raise ClusterError("runc is built with seccomp support, which needs cgo and libseccomp: "
                           "apt-get install pkg-config gcc libseccomp-dev")
    BIN.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for module, packages in BUILDS.items():
        started = time.monotonic()
        if not quiet:
            print(f"building {', '.join(Path(p).name or module for p in packages)} (cluster/{module}) ...", flush=True)
        tags = [f"-tags={BUILD_TAGS[module]}"] if module in BUILD_TAGS else []
        ldflags = f"-s -w -X github.com/prometheus/common/version.Version={prometheus_version()}" \
            if module == "prometheus" else "-s -w"
        done = subprocess.run(["go", "build", *tags, f"-ldflags={ldflags}", "-o", str(BIN) + "/", *packages],
                              cwd=HERE / module, env={**env, "CGO_ENABLED": "0"} if module in STATIC else env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"go build in cluster/{module} failed:\n{done.stderr[-4000:]}")
        if not quiet:
            print(f"  {time.monotonic() - started:.0f}s", flush=True)
    _write_kwok_stages(env)
    stamp.write_text(_pins())
    return BIN


def prometheus_version() -> str:
    """The Prometheus release cluster/prometheus pins: module version v0.316.0 is Prometheus 3.16.0."""
    found = re.search(r"^\s*(?:require\s+)?github.com/prometheus/prometheus v0\.(\d+)\.(\d+)\s*$",
                      (HERE / "prometheus/go.mod").read_text(), re.MULTILINE)
    if found is None:
        raise ClusterError("cluster/prometheus/go.mod does not require github.com/prometheus/prometheus v0.X.Y")
    major_minor, patch = found.groups()
    return f"{int(major_minor) // 100}.{int(major_minor) % 100}.{patch}"


STAGES = "kwok-stages.yaml"


def _write_kwok_stages(env: dict[str, str]) -> None:
    """Collect kwok's stage files from its module (the version pinned in cluster/kwok) into one config."""
    found = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"], cwd=HERE / "kwok", env=env,
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise ClusterError(f"go list sigs.k8s.io/kwok failed: {found.stderr.strip()}")
    root = Path(found.stdout.strip()) / "kustomize/stage"
    docs = [path.read_text() for stage in KWOK_STAGES for path in sorted((root / stage).glob("*.yaml"))
            if path.name != "kustomization.yaml"]
    (BIN / STAGES).write_text("\n---\n".join(docs))


# --- certificates -----------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, client certificates and the service-account key pair."""
    if (pki / "admin.crt").exists():
        return
    if shutil.which("openssl") is None:
        raise ClusterError("openssl is needed for the control plane's certificates: apt-get install openssl")
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=inferencefleet-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)
    sans = "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," \
           "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    certs = {"apiserver": ("/CN=kube-apiserver", sans), "admin": ("/O=system:masters/CN=admin", None),
             "controller-manager": ("/CN=system:kube-controller-manager", None),
             "scheduler": ("/CN=system:kube-scheduler", None)}
    for name, (subject, ext) in certs.items():
        certificate(pki, name, subject, ext)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def certificate(pki: Path, name: str, subject: str, ext: str | None = None) -> None:
    """``pki/name.crt`` and ``.key`` for ``subject`` (with the ``ext`` extensions), signed by the cluster's CA."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=pki)
    extra = ["-extfile", "/dev/stdin"] if ext else []
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "3650", "-out", f"{name}.crt", *extra]
    done = subprocess.run(["openssl", *args], cwd=pki, input=ext or "", capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"openssl x509 for {name} failed: {done.stderr.strip()}")


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kubeconfig(server: str, ca: Path, user: dict[str, str], name: str = "inferencefleet-local") -> str:
    """A kubeconfig for ``server`` trusting ``ca`` with the given user entry (client cert or token)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    })


def kubectl(config: Path, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the built kubectl against the cluster the kubeconfig ``config`` names; ClusterError when it fails
    and ``check``."""
    done = subprocess.run([str(BIN / "kubectl"), "--kubeconfig", str(config), *args],
                          input=input, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


@dataclass
class Cluster:
    """A running control plane rooted at ``dir`` (pids, logs, data, PKI and kubeconfigs inside it)."""

    dir: Path
    nodes: int = GPU_NODES
    gpus_per_node: int = GPUS_PER_NODE
    pods_per_node: int = 110
    address: str = "127.0.0.1"
    """Where the API server is advertised. Any address but loopback (a real node's, for its pods) makes it
    listen on every interface and publish that address as the ``kubernetes`` Service's endpoint."""
    server: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.dir / "pki/ca.crt"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster."""
        return kubectl(self.kubeconfig, *args, input=input, check=check)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start ``BIN/name`` in a session of its own, logging to ``logs/name.log``; ``stop`` ends it."""
        log = (self.dir / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen([str(BIN / name), *args], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.processes[name] = process
        with (self.dir / "pids").open("a") as pids:
            pids.write(f"{name} {process.pid}\n")

    def wait(self, what: str, check: Callable[[], object], timeout: float = READY_TIMEOUT) -> None:
        """Poll ``check`` until it is truthy; fail at once if a component exits, and after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"{name} exited with {process.returncode} while waiting for {what}; "
                                       f"log: {self.dir / 'logs' / (name + '.log')}:\n{self.log_tail(name)}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise ClusterError(f"timed out after {timeout:g}s waiting for {what}; logs in {self.dir / 'logs'}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _readyz(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.dir / "pki/admin.crt"), str(self.dir / "pki/admin.key"))
        with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=2) as response:
            return bool(response.status == 200)

    def start(self) -> Cluster:
        """Start every component, install the CRDs and fake GPU nodes; return once all are ready."""
        build()
        for sub in ("logs", "etcd", "kwok"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "pids").write_text("")
        pki = self.dir / "pki"
        _pki(pki)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        etcd = f"http://127.0.0.1:{etcd_port}"
        self.spawn("etcd", "--data-dir", str(self.dir / "etcd"), "--listen-client-urls", etcd,
                    "--advertise-client-urls", etcd, "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync", "--log-level", "warn")
        loopback = self.address == "127.0.0.1"
        self.spawn("kube-apiserver", "--etcd-servers", etcd, "--bind-address", "127.0.0.1" if loopback else "0.0.0.0",
                    "--advertise-address", self.address, "--secure-port", str(api_port),
                    "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
                    "--client-ca-file", str(pki / "ca.crt"), "--authorization-mode", "Node,RBAC",
                    "--kubelet-client-certificate", str(pki / "admin.crt"), "--kubelet-client-key", str(pki / "admin.key"),
                    "--kubelet-preferred-address-types", "InternalIP",
                    "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                    "--service-account-key-file", str(pki / "sa.pub"),
                    "--service-account-signing-key-file", str(pki / "sa.key"),
                    "--enable-admission-plugins", "OwnerReferencesPermissionEnforcement,NodeRestriction",
                    "--service-cluster-ip-range", SERVICE_CIDR,
                    "--endpoint-reconciler-type", "none" if loopback else "lease",
                    "--profiling=false", "--v", "1")
        (self.dir / "kubeconfig").write_text(kubeconfig(
            self.server, pki / "ca.crt",
            {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}))
        self.wait("kube-apiserver /readyz", self._readyz)
        for component in ("controller-manager", "scheduler"):
            (self.dir / f"{component}.kubeconfig").write_text(kubeconfig(
                self.server, pki / "ca.crt",
                {"client-certificate": str(pki / f"{component}.crt"), "client-key": str(pki / f"{component}.key")}))
        cm = str(self.dir / "controller-manager.kubeconfig")
        self.spawn("kube-controller-manager", "--kubeconfig", cm, "--authentication-kubeconfig", cm,
                    "--authorization-kubeconfig", cm, "--bind-address", "127.0.0.1", "--secure-port", "0",
                    "--leader-elect=false", "--use-service-account-credentials",
                    "--service-account-private-key-file", str(pki / "sa.key"),
                    "--root-ca-file", str(pki / "ca.crt"), "--concurrent-gc-syncs", "5", "--v", "1")
        sched = str(self.dir / "scheduler.kubeconfig")
        self.spawn("kube-scheduler", "--kubeconfig", sched, "--authentication-kubeconfig", sched,
                    "--authorization-kubeconfig", sched, "--bind-address", "127.0.0.1", "--secure-port", "0",
                    "--leader-elect=false", "--v", "1")
        self.spawn("kwok", "--kubeconfig", str(self.kubeconfig), "--config", str(BIN / STAGES),
                    "--manage-all-nodes=false",
                    "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
                    "--node-ip", "127.0.0.1", "--cidr", "10.244.0.0/16", "--server-address", "127.0.0.1:0",
                    "--node-lease-duration-seconds", "40")
        self._install()
        return self

    def _install(self) -> None:
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.kubectl("apply", "--server-side", "-f", "-", input=third_party_crds())
        if self.nodes:
            self.kubectl("apply", "--server-side", "-f", "-",
                         input=fake_gpu_nodes(self.nodes, self.gpus_per_node, self.pods_per_node))
        self.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")
        self.wait("fake GPU nodes Ready", lambda: self.kubectl(
            "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ).stdout.split() == ["True"] * self.nodes)
        self.wait("the default ServiceAccount", lambda: self.kubectl(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0)

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and forget the pids."""
        stop_pids(self.dir)


def stop_pids(folder: Path) -> None:
    """Stop the processes recorded in ``folder/pids`` (in reverse start order)."""
    pids_file = folder / "pids"
    if not pids_file.exists():
        return
    pids = [int(line.split()[1]) for line in pids_file.read_text().splitlines() if line.strip()]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid in reversed(pids):
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    pids_file.unlink()


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def third_party_crds() -> str:
    """LeaderWorkerSet and PodMonitor CRDs around the vendored schema excerpts (pod specs left open)."""
    docs = []
    for file, meta in THIRD_PARTY_CRDS.items():
        schema = _open_pod_specs(yaml.safe_load((SCHEMAS / file).read_text()))
        version: dict[str, object] = {"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}
        if meta["scale"]:
            version["subresources"] = {"status": {}, "scale": meta["scale"]}
        docs.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{meta['plural']}.{meta['group']}"},
            "spec": {"group": meta["group"], "scope": "Namespaced", "versions": [version],
                     "names": {"kind": meta["kind"], "plural": meta["plural"], "singular": str(meta["kind"]).lower(),
                               "listKind": f"{meta['kind']}List", "shortNames": meta["short"]}},
        })
    return yaml.safe_dump_all(docs)


def _open_pod_specs(node: object) -> object:
    """Replace the excerpts' ``x-inferencefleet-validate-as`` leaves with open objects the server accepts."""
    if isinstance(node, dict):
        if any(str(k).startswith("x-inferencefleet") for k in node):
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {k: _open_pod_specs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_open_pod_specs(v) for v in node]
    return node


def fake_gpu_nodes(count: int, gpus: int, pods: int) -> str:
    """Nodes that kwok keeps Ready, each advertising ``gpus`` nvidia.com/gpu as an H100-80GB node."""
    resources = {"cpu": "96", "memory": "1Ti", "pods": str(pods), "nvidia.com/gpu": str(gpus)}
    return yaml.safe_dump_all([{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"gpu-node-{i}", "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"kubernetes.io/hostname": f"gpu-node-{i}", "type": "kwok",
                                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
        "spec": {},
        "status": {"capacity": resources, "allocatable": resources},
    } for i in range(count)])


@contextlib.contextmanager
def running(folder: Path, **sizes: int) -> Iterator[Cluster]:
    """A control plane for the duration of a ``with`` block (``sizes``: nodes, gpus_per_node, pods_per_node)."""
    cluster = Cluster(folder, **sizes)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "up", "down"])
    parser.add_argument("--dir", type=Path, default=CACHE / "run", help="where state, logs and kubeconfig go")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
            print(f"binaries in {BIN}")
        elif args.command == "up":
            stop_pids(args.dir)
            started = time.monotonic()
            cluster = Cluster(args.dir).start()
            shutil.copy(cluster.kubeconfig, CACHE / "kubeconfig")
            print(f"control plane ready in {time.monotonic() - started:.0f}s at {cluster.server}\n"
                  f"  export KUBECONFIG={CACHE / 'kubeconfig'}\n"
                  f"  export PATH={BIN}:$PATH      # kubectl and helm built at the pinned release\n"
                  f"  kubectl get nodes; kubectl get crd\n"
                  f"logs in {args.dir / 'logs'}; stop with: make cluster-down")
        else:
            stop_pids(args.dir)
            print("control plane stopped")
    except ClusterError as error:
        print(f"localcluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
