# inferencefleet: every target sets itself up on a fresh machine (local .venv, pip, Debian packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint crds venv prometheus cluster-bin cluster cluster-down golden clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint]'
	# Helm v4's Go library for `helm lint` in the tests; the wheel claims Python >= 3.12 but works on 3.11.
	$(BIN)/pip install -q --ignore-requires-python helm-sdkpy==0.1.32
	touch $(STAMP)

venv: $(STAMP)

# Real Prometheus 2.42 (and promtool) from Debian for the signals tests; openssl makes their TLS certificates.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v openssl >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus openssl; }

# The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
# helm) built from the Go modules pinned in cluster/ into .cluster/bin; rebuilt only when a pin changes.
cluster-bin: $(STAMP) prometheus
	$(BIN)/python cluster/localcluster.py build

# Start it on 127.0.0.1; the kubeconfig goes to .cluster/kubeconfig.
cluster: cluster-bin
	$(BIN)/python cluster/localcluster.py up

cluster-down:
	$(BIN)/python cluster/localcluster.py down

demo: $(STAMP)
	$(BIN)/inferencefleet demo

test: $(STAMP) prometheus cluster-bin
	$(BIN)/inferencefleet crds --check
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

crds: $(STAMP)
	$(BIN)/inferencefleet crds

golden: $(STAMP)
	INFERENCEFLEET_UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/unit/render

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
