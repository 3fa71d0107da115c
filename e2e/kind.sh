#!/bin/sh
# make e2e-kind: a kind cluster, this checkout's images loaded into it, fake GPUs on its node, then the
# in-cluster e2e suite (tests/e2e/test_on_cluster.py) against it through its kubeconfig; the cluster is
# deleted afterwards (KEEP_CLUSTER=1 keeps it). The suite installs Prometheus (quay.io's image) itself.
# Needs kind and a Docker engine. Never run on this project's CI machines, which have no Docker engine:
# there, `make e2e` runs the same suite on a real node (see e2e/README.md).
set -eu

for tool in kind docker; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make e2e-kind needs $tool (kind and a Docker engine: https://kind.sigs.k8s.io/docs/user/quick-start/)." >&2
    echo "Without them, 'make e2e' runs the same suite on a real node this machine starts." >&2
    exit 2
  }
done

CLUSTER=${KIND_CLUSTER:-inferencefleet-e2e}
KUBECONFIG_FILE=${KIND_KUBECONFIG:-$(pwd)/.cluster/kind-$CLUSTER.kubeconfig}
OPERATOR_IMAGE=docker.io/inferencefleet/operator:dev
ENGINESIM_IMAGE=docker.io/inferencefleet/engine-sim:dev   # the scenario files' inferencefleet/engine-sim:dev
KUBECTL="${KUBECTL:-.cluster/bin/kubectl} --kubeconfig $KUBECONFIG_FILE"

mkdir -p "$(dirname "$KUBECONFIG_FILE")"
kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" --wait 120s
[ "${KEEP_CLUSTER:-0}" = 1 ] || trap 'kind delete cluster --name "$CLUSTER"' EXIT

docker build --target operator -t "$OPERATOR_IMAGE" .
docker build --target enginesim -t "$ENGINESIM_IMAGE" .
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$ENGINESIM_IMAGE"

# The pools' pods request nvidia.com/gpu: advertise 4 fake GPUs on every node (an extended resource).
for node in $($KUBECTL get nodes -o name); do
  $KUBECTL patch "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"4"}]'
done

E2E_KUBECONFIG=$KUBECONFIG_FILE INFERENCEFLEET_IMAGE=$OPERATOR_IMAGE \
  .venv/bin/python -m pytest -q tests/e2e/test_on_cluster.py
