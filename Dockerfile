# syntax=docker/dockerfile:1
# zdr-gateway container image.
#
# Two stages: the builder installs the package (exactly as `pip install .` from
# pyproject.toml) into a virtualenv; the runtime stage copies only that virtualenv.
# No compiler, no pip cache, no source tree and no build tools reach the runtime image.
# Runs as an unprivileged numeric user (10001) so that `runAsNonRoot` can be verified
# by the kubelet, and works with a read-only root filesystem: the gateway writes
# nothing to disk (bytecode is compiled at build time, PYTHONDONTWRITEBYTECODE stops
# run-time writes, audit goes to stdout).
# For production, pin the base image by digest (python:3.12-slim-bookworm@sha256:…).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/zdr-gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# The project's own install step (Makefile: `pip install -e '.[test,dev]'`), without
# the editable flag and without the test/dev extras: runtime dependencies only.
RUN /opt/zdr-gateway/bin/pip install --no-cache-dir . \
    && /opt/zdr-gateway/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="zdr-gateway" \
      org.opencontainers.image.description="Zero Data Retention gateway for model APIs" \
      org.opencontainers.image.licenses="Apache-2.0"
# SECURITY: a fixed numeric uid/gid with no login shell and no home directory contents;
# the Kubernetes manifests pin the same ids (runAsUser/runAsGroup 10001).
RUN groupadd --system --gid 10001 zdr \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin zdr \
    && mkdir -p /etc/zdr-gateway/tls /etc/zdr-gateway/keys
COPY --from=build /opt/zdr-gateway /opt/zdr-gateway
ENV PATH=/opt/zdr-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# 8443: client traffic (TLS). 9464: admin (/metrics, /healthz, /readyz).
EXPOSE 8443 9464
# Exec form: the gateway is PID 1 and receives SIGTERM directly to drain in-flight streams.
ENTRYPOINT ["zdr-gateway"]
CMD ["serve", "--config", "/etc/zdr-gateway/gateway.yaml"]
