"""The Prometheus config and alert rules: checked and unit-tested with promtool (the tests
that run it skip without it)."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from recsys.platform.settings import PROJECT_ROOT
from tests.monitoring.promtool import needs_promtool, promtool

PROMETHEUS = PROJECT_ROOT / "monitoring" / "prometheus"
#: The alerts of the service objectives (5xx share, p95 latency, cache hit ratio) and the
#: comparison each makes.
SERVICE_OBJECTIVES = {"RecsysHighErrorRate": "> 0.01", "RecsysHighLatency": "> 0.5",
                      "RecsysLowCacheHitRatio": "< 0.8"}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alerts_cover_the_service_objectives_and_stale_features() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name, threshold in SERVICE_OBJECTIVES.items():
        assert threshold in rules[name]["expr"], name
    assert "recsys_model_reloads_total" in rules["RecsysServingFeaturesStale"]["expr"]
    queued = rules["RecsysEventsQueuedForReplay"]["expr"]
    assert 'outcome="queued"} offset 10m' in queued and 'outcome="replayed"' in queued
    assert "offset 15m" in rules["RecsysModelRejected"]["expr"]
    assert all(rule["labels"]["severity"] in {"page", "ticket"} for rule in rules.values())
    assert all({"summary", "description"} <= set(rule["annotations"]) for rule in rules.values())


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"]
              if case["exp_alerts"]}
    assert firing == {rule["alert"] for rule in alert_rules()}


def test_rules_select_the_scrape_job_of_the_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    selected = {job for rule in alert_rules() for job in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert selected and selected <= set(jobs)
    assert jobs["recsys-service"]["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["alerts.yml"]


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    code, output = promtool("check", "rules", "monitoring/prometheus/alerts.yml")
    assert code == 0, output
    assert f"SUCCESS: {len(alert_rules())} rules found" in output


@needs_promtool
def test_promtool_checks_the_config_and_its_rule_files() -> None:
    code, output = promtool("check", "config", "monitoring/prometheus/prometheus.yml")
    assert code == 0, output
    assert "SUCCESS" in output and "alerts.yml" in output


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    code, output = promtool("test", "rules", "monitoring/prometheus/alerts_test.yml")
    assert code == 0, output
    assert "SUCCESS" in output and "FAILED" not in output


@needs_promtool
def test_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    """The unit tests pin the thresholds: the rules with a 5 % error threshold fail them."""
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert rules.count("> 0.01") == 1
    (tmp_path / "alerts.yml").write_text(rules.replace("> 0.01", "> 0.05"))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    code, output = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert code != 0
    assert "FAILED" in output and "RecsysHighErrorRate" in output


#: The new counters' alerts written with increase(), which misses the step that creates a
#: labelled counter's series (a whole outbox replayed in one round, a first rejection) and
#: extrapolates: the unit tests must fail them.
WITH_INCREASE = {
    "RecsysEventsQueuedForReplay":
        'sum by (job, instance) (increase(recsys_events_total{outcome="queued"}[6h] offset 10m))'
        ' - (sum by (job, instance) (increase(recsys_events_total{outcome="replayed"}[6h]))'
        ' or sum by (job, instance) (recsys_events_total{outcome="queued"}) * 0) > 0',
    "RecsysModelRejected":
        "sum by (job, instance, reason) (increase(recsys_model_rejections_total[15m])) > 0",
}


@needs_promtool
@pytest.mark.parametrize("alert", sorted(WITH_INCREASE))
def test_unit_tests_catch_counting_with_increase(alert: str, tmp_path: Path) -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    [rule] = [rule for group in rules["groups"] for rule in group["rules"]
              if rule["alert"] == alert]
    rule["expr"] = WITH_INCREASE[alert]
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    code, output = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert code != 0
    assert "FAILED" in output and f"alertname: {alert}" in output
