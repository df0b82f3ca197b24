"""Great Expectations suites for the event tables, run directly through GX 1.x.

The Dagster asset checks call :func:`validate_events_frame`; a notebook or CLI can too.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import pandas as pd

from recsys.events.schema import MAX_POSITION, RATING_MAX, RATING_MIN, EventType
from recsys.platform.settings import get_settings

logger = logging.getLogger(__name__)

#: The event columns the ``validated_events`` suite reads.
_SUITE_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "value", "timestamp",
                  "position")

# GX phones home unless told otherwise; this platform runs without internet.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class SuiteOutcome:
    """Result of one suite run: overall success and each expectation's outcome."""

    success: bool
    results: list[dict[str, object]] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [str(r["expectation"]) for r in self.results if not r["success"]]


def _events_suite(max_future_seconds: float) -> object:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="validated_events")
    for column in ("event_id", "user_id", "item_id", "event_type", "timestamp"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="event_type", value_set=[t.value for t in EventType]
    ))
    # The value rules of the Event model, type by type (the other types take any number).
    for event_type, low, high in ((EventType.RATE, RATING_MIN, RATING_MAX),
                                  (EventType.WATCH, 0.0, 1.0), (EventType.PURCHASE, 0.0, None)):
        condition = f'event_type=="{event_type.value}"'
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column="value", min_value=low, max_value=high,
            row_condition=condition, condition_parser="pandas",
        ))
        if event_type != EventType.PURCHASE:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(
                column="value", row_condition=condition, condition_parser="pandas",
            ))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="timestamp_lag_s", min_value=-max_future_seconds
    ))
    # An outcome's place in the list that showed it (missing when not from a list).
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="position", min_value=0, max_value=MAX_POSITION))
    return suite


def validate_events_frame(events: pd.DataFrame,
                          max_future_seconds: float | None = None) -> SuiteOutcome:
    """Run the ``validated_events`` suite over a frame of validated events.

    Expectations: ids, type and timestamp present; ``event_id`` unique; ``event_type`` in the
    schema's set; ``value`` as the ``Event`` model requires it per type (a rating in [0.5, 5],
    a watched fraction in [0, 1], a non-negative price); ``position`` in [0, 1000] where set;
    no timestamp more than
    ``max_future_seconds`` ahead of now (default: the platform's allowed clock skew).
    """
    if max_future_seconds is None:
        max_future_seconds = get_settings().event_max_future_seconds
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # Only the columns the suite reads: GX copies its batch for every row condition and
    # metric, and the free-text ones (context, rec_id) were most of those bytes.
    frame = events[[c for c in _SUITE_COLUMNS if c in events]].copy()
    now = pd.Timestamp.now(tz="UTC")
    frame["timestamp_lag_s"] = (now - frame["timestamp"]).dt.total_seconds()
    if "position" not in frame:
        frame["position"] = None
    frame["position"] = frame["position"].astype("float64")  # GX compares plain numbers
    batch = (
        context.data_sources.add_pandas("events")
        .add_dataframe_asset("validated_events")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(_events_suite(max_future_seconds))
    results = [
        {
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column"),
            "success": bool(r.success),
            "unexpected_count": r.result.get("unexpected_count"),
        }
        for r in result.results
    ]
    return SuiteOutcome(success=bool(result.success), results=results)
