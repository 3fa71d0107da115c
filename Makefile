# inferencefleet: every target sets itself up on a fresh machine (local .venv, pip, Debian packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test e2e e2e-kind lint crds venv prometheus chromium node-deps cluster-bin cluster cluster-down golden clean buildah base-image image rules

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[sim,enginesim,test,lint]'
	# Helm v4's Go library for `helm lint` in the tests; the wheel claims Python >= 3.12 but works on 3.11.
	$(BIN)/pip install -q --ignore-requires-python helm-sdkpy==0.1.32
	touch $(STAMP)

venv: $(STAMP)

# Real Prometheus 2.42 (and promtool) from Debian for the signals tests; openssl makes their TLS certificates.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus openssl; }

# From Debian for the real node (cluster/node.py): runc's seccomp support is built with cgo against
# libseccomp; the kubelet, kube-proxy and the CNI plugins run iptables, ip and conntrack.
node-deps:
	@command -v iptables >/dev/null && command -v conntrack >/dev/null && command -v ip >/dev/null \
	  && command -v gcc >/dev/null && pkg-config --exists libseccomp 2>/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends \
	    iptables conntrack iproute2 gcc libc6-dev pkg-config libseccomp-dev; }

# The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
# helm) and the real node (kubelet, kube-proxy, containerd, runc, CNI plugins, CoreDNS) built from the
# Go modules pinned in cluster/ into .cluster/bin; rebuilt only when a pin changes.
cluster-bin: $(STAMP) prometheus node-deps
	$(BIN)/python cluster/localcluster.py build

# Start it on 127.0.0.1; the kubeconfig goes to .cluster/kubeconfig.
cluster: cluster-bin
	$(BIN)/python cluster/localcluster.py up

cluster-down:
	$(BIN)/python cluster/localcluster.py down

# Images, built for real with buildah (no Docker engine needed). With no registry reachable, the base
# is a local Debian bookworm with its python3 (images/base-image.sh, built once and cached) instead of
# the Dockerfile's default python:3.11-slim.
IMAGE ?= localhost/inferencefleet/operator:dev
ENGINESIM_IMAGE ?= localhost/inferencefleet/engine-sim:dev
BASE_IMAGE ?= localhost/inferencefleet-base:bookworm
# pip's CA bundle (a TLS-intercepting proxy's: $PIP_CERT or pip's global.cert), handed to the build as a secret.
PIP_CA ?= $(or $(PIP_CERT),$(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^global.cert='\(.*\)'$$/\1/p"))
comma := ,
BUILD := buildah --storage-driver vfs build --isolation chroot --layers --build-arg BASE=$(BASE_IMAGE) \
  $(if $(PIP_CA),--secret id=pip-ca$(comma)src=$(PIP_CA))

buildah:
	@command -v buildah >/dev/null && command -v debootstrap >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends buildah debootstrap; }

base-image: buildah
	BASE_IMAGE=$(BASE_IMAGE) images/base-image.sh

# Rebuilt when an input changed or an image is gone: even fully cached, buildah on vfs copies every
# stage's filesystem, minutes for nothing.
IMAGE_INPUTS := Dockerfile .dockerignore pyproject.toml README.md \
  $(shell find operator images/enginesim -type f -not -path '*/__pycache__/*' -not -path '*.egg-info/*' 2>/dev/null)
IMAGE_STAMP := build/images.stamp

$(IMAGE_STAMP): $(IMAGE_INPUTS)
	$(BUILD) --target operator -t $(IMAGE) .
	$(BUILD) --target enginesim -t $(ENGINESIM_IMAGE) .
	# vfs keeps a full copy of every layer, GBs per build: drop the images earlier builds left untagged
	# (this build's cached stages stay, as parents of the tagged images).
	buildah --storage-driver vfs rmi --prune >/dev/null 2>&1 || echo "buildah rmi --prune: an untagged" \
	  "image is held by a leftover container; list them with buildah containers, remove with buildah rm"
	mkdir -p $(@D) && echo "$(IMAGE) $(ENGINESIM_IMAGE)" > $@

image: base-image
	@for i in $(IMAGE) $(ENGINESIM_IMAGE); do \
	  buildah --storage-driver vfs inspect --type image $$i >/dev/null 2>&1 || rm -f $(IMAGE_STAMP); done
	@grep -qxF "$(IMAGE) $(ENGINESIM_IMAGE)" $(IMAGE_STAMP) 2>/dev/null || rm -f $(IMAGE_STAMP)
	$(MAKE) --no-print-directory $(IMAGE_STAMP)

# The chart's Prometheus rules are the ones in policies/rules (recording rules generated, alerts written).
rules: $(STAMP)
	$(BIN)/python -m inferencefleet.signals.rules policies/rules
	cp policies/rules/inferencefleet.rules.yaml policies/rules/inferencefleet.alerts.yaml charts/inferencefleet/files/

# Headless Chromium from Debian: the report test loads demo-out/report.html in a real browser.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

demo: $(STAMP)
	$(BIN)/inferencefleet demo

test: $(STAMP) prometheus chromium cluster-bin image
	$(BIN)/inferencefleet crds --check
	$(BIN)/python -m pytest -q

# The e2e scenarios alone (also part of `make test`), on the local real control plane and on a real node
# running the chart with the built images: scripted assertions and timeouts, no manual watches.
# E2E_KUBECONFIG=FILE runs the in-cluster suite on that cluster instead; its nodes must have or pull the
# images ($$INFERENCEFLEET_IMAGE, inferencefleet/engine-sim:dev, $$E2E_PROMETHEUS_IMAGE) and GPUs (see e2e/README.md).
E2E_KUBECONFIG ?=
e2e: $(STAMP) prometheus cluster-bin $(if $(E2E_KUBECONFIG),,image)
	E2E_KUBECONFIG=$(E2E_KUBECONFIG) $(BIN)/python -m pytest -q $(if $(E2E_KUBECONFIG),tests/e2e/test_on_cluster.py,tests/e2e)

# The in-cluster suite on a kind cluster it creates (needs kind and a Docker engine; e2e/kind.sh).
e2e-kind: $(STAMP) cluster-bin
	e2e/kind.sh

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks cluster
	$(BIN)/mypy
	$(BIN)/lint-imports

crds: $(STAMP)
	$(BIN)/inferencefleet crds

golden: $(STAMP)
	INFERENCEFLEET_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/unit/render

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
