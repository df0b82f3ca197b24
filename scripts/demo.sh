#!/usr/bin/env bash
# The demo: run the pipeline on the synthetic world, start the BentoML service in the
# background, and show real requests and responses. `scripts/demo.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-3000}
BIN=.venv/bin
RUN=.data/run
mkdir -p "$RUN"

stop() {
  if [[ -f $RUN/service.pid ]]; then
    kill "$(cat $RUN/service.pid)" 2>/dev/null || true
    rm -f $RUN/service.pid
  fi
  $BIN/python -c "from recsys.platform.redis_server import stop_embedded; stop_embedded()" || true
}
if [[ ${1:-} == stop ]]; then stop; exit 0; fi

started=$(date +%s)
$BIN/python -m orchestration.run --source synthetic

# Every endpoint but /health needs credentials: an admin key for the demo, kept for reruns.
if [[ ! -s $RUN/demo.key ]] || ! $BIN/python -c "import sys; from serving.keys import store; \
    sys.exit(store().verify(open('$RUN/demo.key').read().strip()) is None)"; then
  $BIN/python -m serving.keys create --role admin --name demo --quiet > $RUN/demo.key
fi
KEY=$(cat $RUN/demo.key)
AUTH="Authorization: Bearer $KEY"

if [[ -f $RUN/service.pid ]] && kill -0 "$(cat $RUN/service.pid)" 2>/dev/null; then
  kill "$(cat $RUN/service.pid)"; sleep 2
fi
nohup $BIN/bentoml serve serving.service:RecommendationService --port "$PORT" \
  > $RUN/service.log 2>&1 &
echo $! > $RUN/service.pid
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null || {
  echo "service did not become ready; see $RUN/service.log"; tail -30 $RUN/service.log; exit 1; }

user=$($BIN/python -c "
import pandas as pd; from recsys.platform.settings import get_settings
e = pd.read_parquet(get_settings().warehouse_dir / 'validated_events')
print(e['user_id'].value_counts().index[0])")
# Each command is printed shell-quoted, so it can be pasted as printed.
show() { echo; printf '$'; printf ' %q' "$@"; echo; "$@"; echo; }
show curl -s -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/recs/$user?limit=5"
show curl -s -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/recs/new-visitor?limit=3"
show curl -s -w '\nHTTP %{http_code}' "http://127.0.0.1:$PORT/api/v1/recs/$user?limit=3"
show curl -s -X POST "http://127.0.0.1:$PORT/recommend" -H "$AUTH" -H 'content-type: application/json' \
  -d "{\"user_id\": \"$user\", \"num_items\": 3}"
show curl -s -w '\nHTTP %{http_code}' -X POST "http://127.0.0.1:$PORT/events" -H "$AUTH" -H 'content-type: application/json' \
  -d "{\"events\": [{\"event_id\": \"demo-$(date +%s)\", \"user_id\": \"$user\", \"item_id\": \"i1\", \"event_type\": \"view\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}]}"
show curl -s -w '\nHTTP %{http_code}' -X POST "http://127.0.0.1:$PORT/events" -H "$AUTH" -H 'content-type: application/json' \
  -d '{"events": [{"event_id": "bad", "user_id": "u1", "event_type": "like"}]}'
cat <<TXT
Demo finished in $(( $(date +%s) - started )) s. The service keeps running on port $PORT:
  Demo page:   http://127.0.0.1:$PORT/demo?user=$user&key=$KEY
  API docs:    http://127.0.0.1:$PORT/docs        (every route, no internet needed)
  Dagster UI:  make ui          MLflow UI: make mlflow-ui
  API key:     $KEY  (admin; in $RUN/demo.key; more with python -m serving.keys)
  Stop:        make stop
TXT
