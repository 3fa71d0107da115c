"""A real worker node joined to the local control plane: its pods run for real on this machine.

What runs: containerd (CRI, overlayfs snapshots) starting containers with runc through its runc shim,
the CNI bridge, host-local, loopback and portmap plugins wiring each pod into a bridge of its own,
the kubelet (cgroupfs driver, cgroup v1 or v2), and kube-proxy (iptables mode), which routes the
``kubernetes`` Service to the API server, and CoreDNS as the cluster DNS (``kubernetes.default.svc``, which
kopf's in-cluster login uses, and every Service name). All built from the modules pinned in ``cluster/`` (see
``localcluster.BUILDS``); images come from buildah's storage (``nodeimages.py``). CoreDNS and kube-proxy
run as host processes rather than as pods, as the kubelet does.

The node's address is the bridge's gateway (``NODE_IP``), created before anything starts: the API
server is advertised there, so pods reach it through the ``kubernetes`` Service, and the host reaches
every pod IP over the bridge. The node advertises ``gpus`` fake ``nvidia.com/gpu`` (an extended
resource in its status) and the H100 product label, so that pools schedule onto it.

Needs root, iptables and conntrack (``make node-deps``). State, logs and sockets live in the cluster's
folder; ``stop`` deletes the node's pods, stops everything and removes what the node left on the host
(its cgroups, mounts, bridge and iptables rules).

    with running_with_node(folder, images={...}) as node:
        node.cluster.kubectl("get", "nodes")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nodeimages
import yaml
from localcluster import BIN, SERVICE_CIDR, Cluster, ClusterError, certificate, free_port, kubeconfig

NAME = "inferencefleet-node"
BRIDGE = "inferencefleet0"
POD_CIDR = "10.88.0.0/16"
NODE_IP = "10.88.0.1"
"""The bridge's gateway address: the node's InternalIP and the API server's advertised address."""
CLUSTER_DOMAIN = "cluster.local"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CAP_SYS_RESOURCE = 24
OWN_CHAINS = (":KUBE-", " KUBE-", ":CNI-", " CNI-")
"""How the iptables-save lines of the node's chains and rules start their chain names."""
HOST_TOOLS = {"iptables": "iptables", "ip": "iproute2", "mount": "mount", "conntrack": "conntrack"}
"""Commands the kubelet, kube-proxy and the CNI plugins run -> the Debian package that has them."""


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def preflight() -> None:
    """Fail with what to do when this machine cannot host the node."""
    if os.geteuid() != 0:
        raise ClusterError("the real node runs containers, mounts and iptables rules: run it as root")
    missing = [f"{tool} (apt-get install {package})" for tool, package in HOST_TOOLS.items() if not shutil.which(tool)]
    if missing:
        raise ClusterError(f"the real node needs {', '.join(missing)}; `make node-deps` installs them")


@dataclass
class RealNode:
    """The node of ``cluster``: its processes are the cluster's (``cluster.stop`` ends them)."""

    cluster: Cluster
    gpus: int = 4

    @property
    def dir(self) -> Path:
        return self.cluster.dir / "node"

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def cgroup(self) -> str:
        """The kubelet's cgroup root, named after the cluster folder: a killed run's leftovers never collide."""
        return f"/inferencefleet-{hashlib.sha256(str(self.dir).encode()).hexdigest()[:8]}"

    def ctr(self, *args: str) -> str:
        """containerd's own client on the node's socket, in the namespace the CRI uses."""
        return _run(str(BIN / "ctr"), "--address", str(self.socket), "--namespace", "k8s.io", *args)

    def prepare(self) -> None:
        """Before the control plane starts: the bridge holding the address the API server is advertised on."""
        preflight()
        for sub in ("cni/net.d", "cni/ipam", "kubelet", "pod-logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._bridge()

    def start(self, images: dict[str, tuple[str, ...]]) -> RealNode:
        """Once the control plane runs: containerd with ``images`` imported (image -> aliases), the kubelet and
        kube-proxy; return when the node is Ready with its fake GPUs and kube-proxy has synced the Services."""
        self._cgroups()
        self._credentials()
        self._containerd()
        nodeimages.load(self.ctr, {nodeimages.pause_image(): (), **images})
        self._coredns()
        self._kubelet()
        self._kube_proxy()
        return self

    def _bridge(self) -> None:
        """The pod bridge with the node's address; the CNI bridge plugin then attaches each pod to it."""
        if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "replace", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # Cluster IPs from the host go to the bridge, where kube-proxy's rules catch them, never to the host's
        # gateway: a Service not programmed yet must not reach whatever answers there (a proxy, in this VM).
        _run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE)
        (self.dir / "cni/net.d/10-inferencefleet.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "inferencefleet",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "hairpinMode": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "dataDir": str(self.dir / "cni/ipam"),
                          "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]], "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ]}, indent=1))

    def _cgroups(self) -> None:
        """The kubelet's cgroup root in every cgroup hierarchy (it must exist); cpusets copied from the root."""
        for hierarchy in _hierarchies():
            path = hierarchy / self.cgroup.lstrip("/")
            path.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (path / name).exists() and not (path / name).read_text().strip():
                    (path / name).write_text((hierarchy / name).read_text())

    def _credentials(self) -> None:
        """Client certificates of the kubelet (a system:nodes member, for the Node authorizer) and kube-proxy."""
        pki = self.cluster.dir / "pki"
        identities = {"kubelet": f"/O=system:nodes/CN=system:node:{NAME}", "kube-proxy": "/CN=system:kube-proxy",
                      "coredns": "/CN=system:coredns"}
        for name, subject in identities.items():
            certificate(pki, name, subject)
            (self.dir / f"{name}.kubeconfig").write_text(kubeconfig(
                self.cluster.server, self.cluster.ca,
                {"client-certificate": str(pki / f"{name}.crt"), "client-key": str(pki / f"{name}.key")}))

    def _containerd(self) -> None:
        runtime = "plugins.'io.containerd.cri.v1.runtime'"
        (self.dir / "containerd.toml").write_text(f"""\
version = 3
root = '{self.dir / "containerd"}'
state = '{self.dir / "containerd-state"}'
imports = []
[grpc]
  address = '{self.socket}'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{nodeimages.PAUSE_IMAGE}'
[{runtime}]
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {str(not _can_lower_oom_score()).lower()}
  [{runtime}.containerd.runtimes.runc.options]
    BinaryName = '{BIN / "runc"}'
    SystemdCgroup = false
  [{runtime}.cni]
    bin_dirs = ['{BIN}']
    conf_dir = '{self.dir / "cni/net.d"}'
[plugins.'io.containerd.internal.v1.opt']
  path = '{self.dir / "opt"}'
[plugins.'io.containerd.nri.v1.nri']
  disable = true
""")
        self.cluster.spawn("containerd", "--config", str(self.dir / "containerd.toml"),
                           env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/sbin:/usr/bin')}"})
        self.cluster.wait("containerd's socket", lambda: self.ctr("version"))

    def _coredns(self) -> None:
        """CoreDNS on the node's address, answering for cluster.local from the API and forwarding the rest."""
        self.cluster.kubectl("create", "clusterrole", "system:coredns", "--verb=list,watch",
                             "--resource=services,endpoints,endpointslices.discovery.k8s.io,pods,namespaces")
        self.cluster.kubectl("create", "clusterrolebinding", "system:coredns", "--clusterrole=system:coredns",
                             "--user=system:coredns")
        ready = free_port()
        (self.dir / "Corefile").write_text(f"""\
.:53 {{
    bind {NODE_IP}
    ready 127.0.0.1:{ready}
    errors
    cache 5
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.dir / "coredns.kubeconfig"}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    forward . /etc/resolv.conf
}}
""")
        self.cluster.spawn("coredns", "-conf", str(self.dir / "Corefile"))
        self.cluster.wait("CoreDNS ready", lambda: _http_ok(f"http://127.0.0.1:{ready}/ready"))

    def _kubelet(self) -> None:
        port, healthz = free_port(), free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": NODE_IP, "port": port, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.cluster.ca)}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs", "cgroupRoot": self.cgroup,
            "failCgroupV1": False,  # this machine mounts cgroup v1 controllers; v1.36 refuses them by default
            "failSwapOn": False, "podLogsDir": str(self.dir / "pod-logs"), "resolvConf": "/etc/resolv.conf",
            "clusterDNS": [NODE_IP], "clusterDomain": CLUSTER_DOMAIN,
            # Never garbage-collect images (no registry could restore them) nor evict for a busy disk.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "serializeImagePulls": False, "nodeStatusUpdateFrequency": "4s",
        }
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(config))
        self.cluster.spawn("kubelet", "--config", str(self.dir / "kubelet.yaml"),
                           "--kubeconfig", str(self.dir / "kubelet.kubeconfig"), "--hostname-override", NAME,
                           "--node-ip", NODE_IP, "--root-dir", str(self.dir / "kubelet"),
                           "--cert-dir", str(self.dir / "kubelet/pki"), "--v", "1")
        self.cluster.wait("the real node Ready", lambda: self.cluster.kubectl(
            "get", "node", NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout == "True", timeout=120)
        self.cluster.kubectl("label", "node", NAME, f"nvidia.com/gpu.product={GPU_PRODUCT}", "--overwrite")
        self.cluster.kubectl("patch", "node", NAME, "--subresource", "status", "--type", "json", "-p", json.dumps(
            [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": str(self.gpus)}]))
        self.cluster.wait("the fake GPUs allocatable", lambda: self.cluster.kubectl(
            "get", "node", NAME, "-o", r"jsonpath={.status.allocatable.nvidia\.com/gpu}").stdout == str(self.gpus))

    def _kube_proxy(self) -> None:
        healthz = free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy.kubeconfig")},
            "hostnameOverride": NAME, "mode": "iptables", "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{healthz}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # Leave the host's conntrack sysctls and route_localnet alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
        }
        (self.dir / "kube-proxy.yaml").write_text(yaml.safe_dump(config))
        self.cluster.spawn("kube-proxy", "--config", str(self.dir / "kube-proxy.yaml"), "--v", "1")
        self.cluster.wait("kube-proxy's first sync", lambda: _http_ok(f"http://127.0.0.1:{healthz}/healthz"))

    def drain(self, timeout: float = 60) -> None:
        """Cordon the node and delete its pods, so that the kubelet stops them and CNI releases their network."""
        self.cluster.kubectl("cordon", NAME)
        self.cluster.kubectl("delete", "pods", "--all-namespaces", "--field-selector", f"spec.nodeName={NAME}",
                             "--grace-period", "1", "--wait=true", f"--timeout={timeout:g}s", check=False)

    def clean(self) -> None:
        """Once the processes are stopped: kill what is left of containers and shims, unmount, remove the
        cgroups, the bridge and kube-proxy's iptables rules."""
        for pid in _pids_of_shims(self.socket) | self._pids_in_cgroups():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in _mounts_under(self.dir):
            subprocess.run(["umount", "--lazy", mount], capture_output=True)
        for hierarchy in _hierarchies():
            root = hierarchy / self.cgroup.lstrip("/")
            if root.exists():
                for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    _rmdir_when_empty(path)
                _rmdir_when_empty(root)
        _remove_iptables_chains()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)

    def _pids_in_cgroups(self) -> set[int]:
        pids: set[int] = set()
        for hierarchy in _hierarchies():
            root = hierarchy / self.cgroup.lstrip("/")
            if root.exists():
                for procs in root.rglob("cgroup.procs"):
                    pids.update(int(line) for line in procs.read_text().split())
        return pids


def _hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies: the v2 root alone, or every v1 one (and a hybrid's v2 part)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and (p / "cgroup.procs").exists())


def _remove_iptables_chains() -> None:
    """Drop the rules and chains of the kubelet and kube-proxy (KUBE-*) and of the CNI plugins (CNI-*): there is
    one real node per machine (its bridge and address are fixed), so every such chain is the node's."""
    for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
        if shutil.which(save) is None:
            continue
        saved = subprocess.run([save], capture_output=True, text=True).stdout
        kept = [line for line in saved.splitlines() if not any(chain in line for chain in OWN_CHAINS)]
        if len(kept) < len(saved.splitlines()):
            subprocess.run([restore], input="\n".join(kept) + "\n", capture_output=True, text=True, check=True)


def _can_lower_oom_score() -> bool:
    """Whether we hold CAP_SYS_RESOURCE, which lowering an oom_score_adj takes. Some VMs drop it even for
    root: containerd then keeps containers' scores at its own, as for rootless nodes."""
    effective = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff"))
    return bool(int(effective.split()[1], 16) >> CAP_SYS_RESOURCE & 1)


def _rmdir_when_empty(path: Path) -> None:
    deadline = time.monotonic() + 5  # a killed process leaves its cgroup a moment later
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _pids_of_shims(socket: Path) -> set[int]:
    """containerd-shim-runc-v2 processes of our containerd: they leave their parent's process group."""
    pids = set()
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and str(socket).encode() in (proc / "cmdline").read_bytes():
                pids.add(int(proc.name))
    return pids


def _mounts_under(folder: Path) -> list[str]:
    """Mount points inside ``folder``, deepest first (container root filesystems, volumes, network namespaces)."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(f"{folder}/")), key=len, reverse=True)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@contextlib.contextmanager
def running_with_node(folder: Path, images: dict[str, tuple[str, ...]], gpus: int = 4) -> Iterator[RealNode]:
    """A control plane (without kwok's fake nodes) and the real node for a ``with`` block; ``images``: image ->
    aliases to import into the node."""
    cluster = Cluster(folder, nodes=0, address=NODE_IP)
    node = RealNode(cluster, gpus)
    try:
        node.prepare()
        cluster.start()
        yield node.start(images)
    finally:
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            node.drain()
        cluster.stop()
        node.clean()
