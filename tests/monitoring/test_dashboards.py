"""The Grafana dashboards: valid dashboard models whose every query reads a real series.

The live check starts ``bentoml serve`` on the trained champion (the process Prometheus
scrapes), makes it answer recommendations and events (one of them twice, and a body over the
size limit) and swap in a new champion, and compares the metric names of every panel query
and alert rule with its ``/metrics``. Series that only a fault creates are listed in
:data:`FAULT_ONLY` and must be declared in ``serving/metrics.py``; the label values the
panels and rules select on the service's own series are checked against the code that sets
them.
"""

import ast
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from recsys.models.registry import CHAMPION, alias_version
from recsys.platform.settings import PROJECT_ROOT, Settings
from serving.config import AuthSettings
from tests.conftest import free_port, running_server
from tests.monitoring.promtool import needs_promtool, promtool

GRAFANA = PROJECT_ROOT / "monitoring" / "grafana"
DASHBOARDS = {path.name: path for path in (GRAFANA / "dashboards").glob("*.json")}
#: Every query goes through the dashboards' ``datasource`` variable.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Panels that show text or group others, without queries.
LAYOUT_PANELS = {"row", "text"}
#: Series Prometheus writes itself for each scrape target rather than reading /metrics.
PROMETHEUS_OWN = {"up"}
#: Series the service creates only under a fault the live check does not cause (a labelled
#: counter appears on /metrics at its first increment), with the fault. They must still be
#: declared in serving/metrics.py and be read by a panel or rule. The fault-only label values
#: of series that do appear (recsys_events_total{outcome="queued"|"replayed"}) are checked by
#: test_selected_label_values_are_set_by_the_service instead.
FAULT_ONLY = {
    # a new champion failing its smoke test, an experiment arm failing to load
    "recsys_model_rejections_total",
}
SERVING = PROJECT_ROOT / "serving"

# --- The metric names of a PromQL expression -------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers, once their strings are gone
_RANGES = re.compile(r"\[[^\]]*\]")  # [5m], [1h:1m], [$__rate_interval]
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSETS = re.compile(r"\boffset\s+-?[\w$]+")
_VARIABLES = re.compile(r"\$\{?\w+\}?")  # Grafana variables
# a name not inside a number or another name, and not a function call
_NAME = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads: not its functions, keywords, labels or values."""
    for pattern in (_STRINGS, _MATCHERS, _RANGES, _LABEL_LISTS, _OFFSETS, _VARIABLES):
        expr = pattern.sub(" ", expr)
    return {name for name in _NAME.findall(expr) if name.lower() not in _KEYWORDS}


@pytest.mark.parametrize(("expr", "names"), [
    ("histogram_quantile(0.95, sum by (le, endpoint) "
     '(rate(bentoml_service_request_duration_seconds_bucket{endpoint=~"/recommend|/x"}'
     "[$__rate_interval])))", {"bentoml_service_request_duration_seconds_bucket"}),
    ('sum(rate(recsys_cache_requests_total{result="hit"}[5m])) / '
     "sum(rate(recsys_cache_requests_total[5m])) < 0.8", {"recsys_cache_requests_total"}),
    ("sum by (experiment, variant) (rate(a_total[1m])) / ignoring (variant) group_left "
     "sum by (experiment) (rate(b_total[1m]))", {"a_total", "b_total"}),
    ('up{job="recsys-service"} == 1 and on (job, instance) (up offset 26h) unless on (job) '
     "(increase(c_total[26h]) > 0 or max_over_time(c_total[26h]))", {"up", "c_total"}),
    ("time() - max(last_seen_seconds) or vector(1e3)", {"last_seen_seconds"}),
    ('label_replace(m, "dst", "$1", "src", "(.*)") > bool 2', {"m"}),
])
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# --- What the service code declares and sets ---------------------------------------------

_SUFFIXES = {"Counter": ["_total"], "Gauge": [""], "Histogram": ["_bucket", "_sum", "_count"],
             "Summary": ["_sum", "_count"]}


def declared_metrics() -> dict[str, list[str]]:
    """Variable name -> exported series names of each metric serving/metrics.py declares."""
    declared = {}
    for node in ast.walk(ast.parse((SERVING / "metrics.py").read_text())):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(kind := node.value.func, ast.Attribute)
                and kind.attr in _SUFFIXES):
            [name] = [k.value.value for k in node.value.keywords if k.arg == "name"]
            [variable] = node.targets
            declared[variable.id] = [name + suffix for suffix in _SUFFIXES[kind.attr]]
    return declared


def set_label_values() -> dict[tuple[str, str], set[str]]:
    """(series, label) -> the values serving/*.py passes to ``METRIC.labels(label=...)``,
    for the labels only ever given literal strings (not ``reason=why``)."""
    declared = declared_metrics()
    values: dict[tuple[str, str], set[str]] = {}
    dynamic = set()
    for path in SERVING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "labels" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in declared):
                continue
            for series in declared[node.func.value.id]:
                for keyword in node.keywords:
                    value = keyword.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        values.setdefault((series, keyword.arg), set()).add(value.value)
                    else:
                        dynamic.add((series, keyword.arg))
    return {key: found for key, found in values.items() if key not in dynamic}


_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^{}]*)\}")
_EQUALS = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')  # label="value", not =~ != !~


def selected_label_values(expr: str) -> set[tuple[str, str, str]]:
    """(series, label, value) of each ``series{label="value"}`` matcher of ``expr``."""
    return {(name, label, value) for name, matchers in _SELECTOR.findall(expr)
            for label, value in _EQUALS.findall(matchers)}


def test_selected_label_values_of_promql() -> None:
    expr = ('sum(rate(a_total{outcome="queued", job=~"x|y"}[5m])) - '
            'b{reason!="arm", reason="smoke test"} offset 1h')
    assert selected_label_values(expr) == {("a_total", "outcome", "queued"),
                                           ("b", "reason", "smoke test")}


def test_the_service_code_is_read_as_it_is() -> None:
    declared = declared_metrics()
    assert declared["EVENTS"] == ["recsys_events_total"]
    assert declared["STAGE_SECONDS"] == ["recsys_stage_seconds_bucket", "recsys_stage_seconds_sum",
                                         "recsys_stage_seconds_count"]
    values = set_label_values()
    assert {"pushed", "duplicate", "queued", "replayed"} <= values[
        ("recsys_events_total", "outcome")]
    assert {"smoke test", "arm"} <= values[("recsys_model_rejections_total", "reason")]
    assert ("recsys_fallbacks_total", "reason") not in values  # set from a variable


# --- The dashboard models -----------------------------------------------------------------


def load(name: str) -> dict:
    return json.loads(DASHBOARDS[name].read_text())


def query_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel with queries, including those inside collapsed rows."""
    for panel in dashboard["panels"]:
        for one in [panel, *panel.get("panels", [])]:
            if one["type"] not in LAYOUT_PANELS:
                yield one


def queries(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query of ``dashboard``."""
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def alert_exprs() -> Iterator[tuple[str, str]]:
    """(alert name, PromQL) of every alert rule."""
    rules = yaml.safe_load((PROJECT_ROOT / "monitoring/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def every_expr() -> Iterator[tuple[str, str]]:
    """(panel title or alert name, PromQL) of both dashboards and the alert rules."""
    for name in sorted(DASHBOARDS):
        yield from queries(load(name))
    yield from alert_exprs()


def provisioned_datasource() -> dict:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    [datasource] = config["datasources"]
    return datasource


def test_both_dashboards_exist_with_their_own_uids() -> None:
    assert set(DASHBOARDS) == {"service.json", "platform.json"}
    uids = [load(name)["uid"] for name in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("name", ["service.json", "platform.json"])
def test_dashboard_is_a_grafana_dashboard_model(name: str) -> None:
    board = load(name)
    assert re.fullmatch(r"[\w-]{1,40}", board["uid"]) and board["title"]
    assert isinstance(board["schemaVersion"], int) and board["time"]["from"]
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    assert variable["current"]["value"] == provisioned_datasource()["uid"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    panels = list(query_panels(board))
    assert panels
    for panel in panels:
        assert panel["title"] and panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]
            assert metric_names(target["expr"]), (panel["title"], target["expr"])


def test_service_dashboard_shows_what_operators_ask_for() -> None:
    board = load("service.json")
    exprs = [expr for _, expr in queries(board)]
    used = set().union(*map(metric_names, exprs))
    assert {"bentoml_service_request_total", "bentoml_service_request_duration_seconds_bucket",
            "recsys_stage_seconds_bucket", "recsys_cache_requests_total",
            "recsys_fallbacks_total", "recsys_model_version", "recsys_model_reloads_total",
            "recsys_experiment_requests_total", "recsys_model_rejections_total",
            "recsys_cache_writes_dropped_total"} <= used
    assert any('http_response_code="429"' in e and "bentoml_service_request_total" in e
               for e in exprs)
    by_route = [e for e in exprs if "bentoml_service_request_duration_seconds_bucket" in e
                and "endpoint)" in e]
    assert {q for e in by_route for q in re.findall(r"histogram_quantile\((0\.\d+)", e)} == {
        "0.5", "0.95", "0.99"}


def test_platform_dashboard_shows_events_online() -> None:
    board = load("platform.json")
    panels = {title: expr for title, expr in queries(board)}
    assert "sum by (event_type)" in panels["Events accepted by type"]
    assert "recsys_events_accepted_total" in panels["Events accepted by type"]
    assert "sum by (outcome)" in panels["Online push outcomes"]
    assert "recsys_events_total" in panels["Online push outcomes"]
    backlog = selected_label_values(panels["Outbox backlog (6 h)"])
    assert {value for _, label, value in backlog if label == "outcome"} == {"queued", "replayed"}
    [note] = [panel for panel in board["panels"] if panel["type"] == "text"]
    assert "event type" not in note["options"]["content"]  # exported now


def test_provisioning_points_grafana_at_the_dashboards_and_prometheus() -> None:
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus" and datasource["url"].endswith(":9090")
    config = yaml.safe_load((GRAFANA / "provisioning/dashboards/recsys.yaml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


@needs_promtool
def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query, as a recording rule (Grafana's interval variable set)."""
    rules = [{"record": f"panel:{number}", "expr": expr.replace("$__rate_interval", "1m")}
             for number, (_, expr) in enumerate(
                 query for name in sorted(DASHBOARDS) for query in queries(load(name)))]
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    code, output = promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert code == 0, output
    assert f"SUCCESS: {len(rules)} rules found" in output


def test_fault_only_series_are_declared_and_read() -> None:
    """An allow-listed name is a series serving/metrics.py declares (a typo fails here) that a
    panel or rule reads (the list does not outlive its use)."""
    declared = {series for names in declared_metrics().values() for series in names}
    assert FAULT_ONLY <= declared
    read = set().union(*(metric_names(expr) for _, expr in every_expr()))
    assert FAULT_ONLY <= read


def test_selected_label_values_are_set_by_the_service() -> None:
    """A panel or rule selecting ``recsys_events_total{outcome="queued"}`` selects a value the
    service sets, including those only a fault sets (queued, replayed, smoke test, arm)."""
    known = set_label_values()
    unknown = {(where, series, label, value) for where, expr in every_expr()
               for series, label, value in selected_label_values(expr)
               if (series, label) in known and value not in known[series, label]}
    assert not unknown, f"label values the service never sets: {sorted(unknown)}"


# --- Every query reads a series the running service exports -----------------------------------


def active_user(settings: Settings) -> str:
    valid = pd.read_parquet(settings.warehouse_dir / "validated_events")
    return str(valid["user_id"].value_counts().index[0])


@pytest.fixture(scope="module")
def exported_samples(trained_platform: Settings, tmp_path_factory: pytest.TempPathFactory
                     ) -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of the series ``bentoml serve`` exports once it has served
    recommendations (ranked, cached, fallback, in an experiment), accepted an event (pushed,
    then again: a duplicate), refused an oversized body and swapped models."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    env = {**os.environ,
           # bentoml serve empties its metrics folder at start: not the session's
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prometheus")),
           "RECSYS_SERVING_EXPERIMENTS": json.dumps({"monitoring": {CHAMPION: 1}}),
           "RECSYS_SERVING_MODEL_POLL_SECONDS": "0.5",
           "RECSYS_AUTH": "off"}  # the metrics are the subject here, not authentication
    name = trained_platform.model_name
    mlflow.set_tracking_uri(trained_platform.tracking_uri)
    registry = MlflowClient()
    former = alias_version(registry, name, CHAMPION)
    assert former is not None
    with running_server(
        [bentoml, "serve", "serving.service:RecommendationService", "--port", str(port)],
        f"{base}/health/ready", timeout=180, env=env,
    ), httpx.Client(base_url=base, timeout=30) as http:
        user = active_user(trained_platform)
        for _ in range(2):
            http.get(f"/api/v1/recs/{user}", params={"limit": 5}).raise_for_status()
        http.get("/api/v1/recs/never-seen-monitoring-user").raise_for_status()
        http.post("/recommend", json={"user_id": user, "num_items": 3,
                                      "experiment_id": "monitoring"}).raise_for_status()
        now = pd.Timestamp.now(tz="UTC")
        event = {"event_id": f"monitoring-{now.value}", "user_id": user, "item_id": "i1",
                 "event_type": "view", "timestamp": now.isoformat()}
        assert http.post("/events", json=event).status_code == 202
        # the same event_id again: logged, not pushed twice (recsys_events_total{outcome=
        # "duplicate"}); queued and replayed need Redis down, the static checks cover them
        assert http.post("/events", json=event).status_code == 202
        # refused by the access middleware before any route, as a 429 is (rate limits need
        # RECSYS_AUTH=on): it must still be counted by route and status
        limit = AuthSettings().max_body_bytes
        assert http.post("/events", content=b" " * (limit + 1),
                         headers={"content-type": "application/json"}).status_code == 413
        # a new champion version (a copy of the current one), followed by the service
        copy = registry.copy_model_version(f"models:/{name}/{former.version}", name)
        registry.set_registered_model_alias(name, CHAMPION, copy.version)
        try:
            deadline = time.monotonic() + 120
            while "recsys_model_reloads_total{" not in (text := http.get("/metrics").text):
                assert time.monotonic() < deadline, "the service never reloaded the champion"
                time.sleep(0.5)
        finally:
            registry.set_registered_model_alias(name, CHAMPION, former.version)
    return [(sample.name, sample.labels) for family in text_string_to_metric_families(text)
            for sample in family.samples]


@pytest.fixture(scope="module")
def exported_names(exported_samples: list[tuple[str, dict[str, str]]]) -> set[str]:
    return {name for name, _ in exported_samples}


@pytest.mark.integration
@pytest.mark.parametrize("name", ["service.json", "platform.json"])
def test_every_panel_query_reads_an_exported_series(name: str, exported_names: set[str]) -> None:
    missing = {(title, metric) for title, expr in queries(load(name))
               for metric in metric_names(expr) - exported_names - PROMETHEUS_OWN - FAULT_ONLY}
    assert not missing, f"panels query series /metrics does not export: {sorted(missing)}"


@pytest.mark.integration
def test_every_alert_rule_reads_an_exported_series(exported_names: set[str]) -> None:
    missing = {(alert, metric) for alert, expr in alert_exprs()
               for metric in metric_names(expr) - exported_names - PROMETHEUS_OWN - FAULT_ONLY}
    assert not missing, f"alert rules read series /metrics does not export: {sorted(missing)}"


@pytest.mark.integration
def test_event_outcomes_and_dropped_cache_writes_are_exported(
        exported_samples: list[tuple[str, dict[str, str]]]) -> None:
    exported = {(name, tuple(sorted(labels.items()))) for name, labels in exported_samples}
    assert ("recsys_events_accepted_total", (("event_type", "view"),)) in exported
    for outcome in ("pushed", "duplicate"):
        assert ("recsys_events_total", (("outcome", outcome),)) in exported
    assert ("recsys_cache_writes_dropped_total", ()) in exported  # unlabelled: 0 from the start
    assert not FAULT_ONLY & {name for name, _ in exported}, "no longer fault-only: unlist it"


@pytest.mark.integration
def test_access_refusals_are_counted_by_route_and_status(
        exported_samples: list[tuple[str, dict[str, str]]]) -> None:
    """The 429 share reads bentoml_service_request_total{http_response_code="429"}: refusals
    of the access middleware (the 413 here, by the same path) are counted there."""
    assert any(name == "bentoml_service_request_total"
               and labels.get("endpoint") == "/events"
               and labels.get("http_response_code") == "413"
               for name, labels in exported_samples)
