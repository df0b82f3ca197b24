"""Stage timings: always into the request's timings, into the histogram for a sample."""

from serving import metrics


def observed(name: str) -> float:
    return sum(sample.value for family in metrics.STAGE_SECONDS.collect()
               for sample in family.samples
               if sample.name.endswith("_count") and sample.labels.get("stage") == name)


def test_every_stage_is_timed_and_a_sample_observed(monkeypatch) -> None:
    timings: dict[str, float] = {}
    for rate, name in ((1.0, "test-all"), (0.0, "test-none")):
        monkeypatch.setattr(metrics, "STAGE_SAMPLE", rate)
        before = observed(name)
        for _ in range(5):
            with metrics.stage(name, timings):
                pass
        assert name in timings and timings[name] >= 0
        assert observed(name) - before == (5 if rate else 0)
