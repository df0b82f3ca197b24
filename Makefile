# Two commands for a new user: `make demo` and `make test`. Needs Python 3.11+ and PyPI only.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.data/dagster

.PHONY: setup demo pipeline serve stop test test-fast lint ui mlflow-ui clean bench-serving \
	bench-faults bench-stream consume screenshots simulate bento bench-capacity \
	bench-serving-scale eval-scale

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode compiled once here (about 35 s of CPU): every process of the platform (each
# service worker, each Dagster step, each test session) otherwise compiles what it imports,
# where .pyc files are not written (PYTHONDONTWRITEBYTECODE, a read-only venv). Measured at
# load 10: `import serving.service` 11.8 -> 6.6 s of CPU, a worker's model load 4.3 -> 2.6 s.
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced ## Create .venv from uv.lock (no root, no Docker, no Redis needed)

pipeline: setup ## Import the synthetic world and run the whole Dagster pipeline
	$(VENV)/bin/python -m orchestration.run --source synthetic

demo: setup ## Set up, run the pipeline, start the service, print a sample request/response
	PORT=$(PORT) scripts/demo.sh

serve: setup ## Serve the champion in the foreground
	$(VENV)/bin/bentoml serve serving.service:RecommendationService --port $(PORT)

stop: ## Stop the demo service and the embedded Valkey server
	-scripts/demo.sh stop

MULTINODE := cluster or replica or stream or balancer

# Five pytest sessions, so that the unit tests, the integration tests (those marked so
# outside tests/integration too, such as the dashboards' live check, which reuses the
# champion the integration session trains instead of training its own), the tests that kill
# servers (cluster primaries, replicas, stream consumers), the simulated experiments and the
# browser tests each start from fresh state (MLflow and the service keep process-wide state).
test: setup ## All tests (unit and integration against real Redis/Feast/MLflow/Dagster/HTTP)
	$(VENV)/bin/python -m pytest tests -q --ignore=tests/browser --ignore=tests/integration \
		-m "not integration" -k "not ($(MULTINODE))"
	$(VENV)/bin/python -m pytest tests -q -m integration --ignore=tests/browser \
		--ignore=tests/integration/test_simulation.py -k "not ($(MULTINODE))"
	$(VENV)/bin/python -m pytest tests -q -k "$(MULTINODE)"
	$(VENV)/bin/python -m pytest tests/integration/test_simulation.py -q
	$(VENV)/bin/python -m pytest tests/browser -q

test-fast: setup ## Unit tests only
	$(VENV)/bin/python -m pytest tests -q -m "not integration"

screenshots: setup ## Browser tests (needs chromium, chromium-driver); their screenshots to docs/screenshots/
	RECSYS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(VENV)/bin/python -m pytest tests -q -k browser

lint: setup
	$(VENV)/bin/ruff check recsys orchestration feature_repo training serving simulation tests benchmarks

ui: setup ## Dagster UI on :3001
	$(VENV)/bin/python -m orchestration.instance
	$(VENV)/bin/dagster dev -w workspace.yaml -p 3001

mlflow-ui: setup ## MLflow UI on :5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.data/mlflow/mlflow.db -p 5000

bench-serving: setup ## Load benchmark of the service vs an empty BentoML endpoint (needs wrk)
	$(VENV)/bin/python -m benchmarks.serving

bench-serving-scale: setup ## The uncached service on a scale world (1,000,000 users, 100,000 items, Zipf-drawn users) in .data-scale (needs wrk; long: builds the world first)
	$(VENV)/bin/python -m benchmarks.serving_scale $(SCALE_ARGS)

SCALE_WORLD ?= .data/scale-world
eval-scale: setup ## Offline evaluation (temporal, one seed) on a generated world of 100,000 users, 50,000 items and 1,000,000 events (written to $(SCALE_WORLD) once)
	test -f $(SCALE_WORLD)/events.csv || $(VENV)/bin/python -m recsys.events.sample_files \
		--users 100000 --items 50000 --events 1000000 --days 60 --event-types many --out $(SCALE_WORLD)
	$(VENV)/bin/python -m training.evaluate --data $(SCALE_WORLD)/events.csv --protocol temporal \
		--k 10 --seeds 1 --json

consume: setup ## A consumer of the shared event stream (RECSYS_EVENT_STREAM=redis): log, push online, ack
	$(VENV)/bin/python -m recsys.features.stream_consumer

bench-stream: setup ## Events a second one stream consumer sustains (own Valkey, throw-away Feast repo)
	$(VENV)/bin/python -m benchmarks.stream

bench-faults: setup ## Faults and abuse against the service: fuzzing, auth, limits, Redis down/slow, bad model, soak (needs wrk)
	$(VENV)/bin/python -m benchmarks.faults

bench-capacity: setup ## Capacity model: requests/s per core cached and uncached, p99 at 50/70/90 % of saturation, Redis commands per request and bytes per user and item (needs wrk)
	$(VENV)/bin/python -m benchmarks.capacity

bento: setup ## Build the service's Bento (bentofile.yaml) with the requirements pinned by uv.lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --format requirements-txt \
		--quiet -o deploy/bento/requirements.txt
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/bin/bentoml build . --output tag

simulate: setup ## Simulated users: A/A, A/B, SRM replications and a broken challenger and an A/B through the real service (after make pipeline)
	$(VENV)/bin/python -m simulation all

clean: stop
	rm -rf .data feature_repo/data
