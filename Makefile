# inferencefleet: every target sets itself up on a fresh machine (local .venv, pip, Debian packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint crds venv prometheus chromium golden clean

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

# Headless Chromium from Debian: the report test loads demo-out/report.html in a real browser.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

demo: $(STAMP)
	$(BIN)/inferencefleet demo

test: $(STAMP) prometheus chromium
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
