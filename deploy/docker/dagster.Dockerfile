# syntax=docker/dockerfile:1
# The Dagster code location (gRPC server) from uv.lock; the same image runs the webserver and the
# daemon with another command (deploy/compose.yaml, deploy/k8s/dagster.yaml). Build from the
# repository root:
#   docker build -f deploy/docker/dagster.Dockerfile -t recsys-dagster:0.1.0 .
# The instance is the production template (PostgreSQL storage, queued runs, one training run at
# a time): set RECSYS_DAGSTER_POSTGRES_URL.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY recsys ./recsys
COPY orchestration ./orchestration
COPY training ./training
COPY serving ./serving
COPY feature_repo/__init__.py feature_repo/definitions.py feature_repo/feature_store.yaml ./feature_repo/
RUN uv sync --frozen --no-dev

FROM ${PYTHON_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --gid 0 --home-dir /var/lib/recsys --create-home recsys \
    && mkdir -p /opt/dagster/home \
    && chown 10001:0 /opt/dagster/home
COPY --from=build --chown=10001:0 /app /app
COPY --chown=10001:0 orchestration/instance/dagster-postgres.yaml /opt/dagster/home/dagster.yaml
COPY --chown=10001:0 deploy/dagster/workspace.yaml /opt/dagster/home/workspace.yaml
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    RECSYS_DATA_DIR=/var/lib/recsys \
    RECSYS_FEATURE_REPO_DIR=/app/feature_repo
USER 10001
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "--port", "4000"]
# Webserver: dagster-webserver -h 0.0.0.0 -p 3001 -w /opt/dagster/home/workspace.yaml
# Daemon:    dagster-daemon run -w /opt/dagster/home/workspace.yaml
ENTRYPOINT ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", \
            "--module-name", "orchestration.definitions", "--attribute", "defs", \
            "--location-name", "recsys"]
