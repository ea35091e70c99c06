# MiniMQ: one image for the broker, the simulated producer and the web UI.
#
#   docker build -t minimq .
#   docker run --rm -p 5000:5000 -v minimq-data:/data minimq            # broker
#   docker run --rm -e BROKER_URL=http://host:5000 minimq producer       # producer
#   docker run --rm -p 8080:8080 minimq ui --host 0.0.0.0 --broker-url http://host:5000
#
# Stage 1 builds wheels for MiniMQ and every dependency; stage 2 installs them
# offline, so the final image holds no build tools, no pip cache and no sources.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINIMQ_DATA_DIR=/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/minimq-*.whl \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 minimq \
    && useradd --system --uid 10001 --gid minimq --create-home minimq \
    && mkdir /data \
    && chown minimq:minimq /data
# A new named volume mounted on /data starts with the ownership set above.
VOLUME ["/data"]
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/minimq
EXPOSE 5000 8080
# Checks the broker (the default command); docker-compose.yaml sets its own
# check for the UI and turns it off for producers. urllib, so no curl needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MINIMQ_PORT', '5000') + '/healthz', timeout=2)"]
ENTRYPOINT ["minimq"]
# In a container the broker must listen on every interface to be reachable;
# publish the port only where you mean to, and set MINIMQ_TOKEN (docs/docker.md).
CMD ["broker", "--host", "0.0.0.0"]
