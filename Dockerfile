# inferencefleet images, two targets of one build:
#   operator (default)  `inferencefleet run`: the operator only, no simulator or plotting dependencies
#   enginesim           the engine simulator behind vLLM's command line, for CPU-only test clusters
#
#   docker build -t inferencefleet/operator:dev .
#   docker build --target enginesim -t inferencefleet/engine-sim:dev .
#
# Both run as a numeric non-root user with a read-only root filesystem: HOME and every write go to
# /tmp, which the chart mounts as an emptyDir. Where no registry is reachable, pass a local image
# that has Debian's python3, venv and pip as BASE (`make image` does).
ARG BASE=python:3.11-slim

# Wheels of the package and of every dependency; build tools stay in this stage.
FROM ${BASE} AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# pip's download cache outlives the build, so a source change does not download every dependency again.
# Behind a TLS-intercepting proxy, hand pip its CA bundle as a build secret (never stored in a layer):
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=pip-ca,required=false \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/build/bin/pip wheel --quiet --wheel-dir /wheels '.[enginesim]'

# Each image's virtualenv, installed from the wheels alone (no index, no compiler), without pip.
FROM ${BASE} AS operator-venv
COPY --from=wheels /wheels /wheels
RUN python3 -m venv /opt/inferencefleet \
 && /opt/inferencefleet/bin/pip install --quiet --no-cache-dir --no-index --find-links=/wheels inferencefleet \
 && /opt/inferencefleet/bin/pip uninstall --quiet --yes pip

FROM ${BASE} AS enginesim-venv
COPY --from=wheels /wheels /wheels
RUN python3 -m venv /opt/inferencefleet \
 && /opt/inferencefleet/bin/pip install --quiet --no-cache-dir --no-index --find-links=/wheels 'inferencefleet[enginesim]' \
 && /opt/inferencefleet/bin/pip uninstall --quiet --yes pip

# What both runtime images share: the environment of a read-only, non-root process.
FROM ${BASE} AS runtime
ENV PATH=/opt/inferencefleet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
# A passwd entry for the numeric user: Python's getpass (kopf's identity) fails on a uid it cannot name.
RUN groupadd --gid 65532 inferencefleet \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin inferencefleet
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/inferencefleet/inferencefleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="inferencefleet" \
      org.opencontainers.image.version="${VERSION}"

FROM runtime AS enginesim
COPY --from=enginesim-venv /opt/inferencefleet /opt/inferencefleet
COPY --chmod=0755 images/enginesim/vllm /opt/inferencefleet/bin/vllm
LABEL org.opencontainers.image.title="inferencefleet-engine-sim" \
      org.opencontainers.image.description="Fake vLLM server timed by the inferencefleet capacity model (no GPU)"
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["vllm"]

FROM runtime AS operator
COPY --from=operator-venv /opt/inferencefleet /opt/inferencefleet
LABEL org.opencontainers.image.title="inferencefleet-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs and autoscales LLM inference fleets"
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["inferencefleet", "run"]
