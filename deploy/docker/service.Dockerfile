# syntax=docker/dockerfile:1
# The recommendation service (BentoML) from uv.lock. Build from the repository root:
#   docker build -f deploy/docker/service.Dockerfile -t recsys-service:0.1.0 .
# It serves the MLflow champion with features from Redis; the production profile's variables
# (deploy/k8s/config.yaml, deploy/compose.yaml) say where MLflow, Redis and the Feast registry are.
# `make bento` builds the same service as a Bento instead (bentofile.yaml), for `bentoml
# containerize` or BentoCloud.

# One pinned base for both stages (pin the digest too in a registry you control).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# Dependencies first (a layer that changes only with the lock), then the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY recsys ./recsys
COPY serving ./serving
COPY feature_repo/__init__.py feature_repo/definitions.py feature_repo/feature_store.yaml ./feature_repo/
COPY orchestration ./orchestration
COPY training ./training
RUN uv sync --frozen --no-dev

FROM ${PYTHON_IMAGE}
# LightGBM's OpenMP runtime; Debian's security updates come with the base image's release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --gid 0 --home-dir /var/lib/recsys --create-home recsys
COPY --from=build --chown=10001:0 /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RECSYS_DATA_DIR=/var/lib/recsys \
    RECSYS_FEATURE_REPO_DIR=/app/feature_repo \
    BENTOML_HOME=/var/lib/recsys/bentoml \
    RECSYS_SERVING_WORKERS=2
USER 10001
EXPOSE 3000
# Liveness; readiness (model loaded, Redis reachable) is /health/ready, which the orchestrator's
# probes and the load balancer's checks use.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2)"]
ENTRYPOINT ["bentoml", "serve", "serving.service:RecommendationService"]
CMD ["--host", "0.0.0.0", "--port", "3000"]
