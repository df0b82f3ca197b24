"""Time partitions of the event tables: one per UTC day."""


from datetime import date, datetime, timedelta

import dagster as dg

# Early enough for every MovieLens release (ml-latest starts in January 1995); today's
# partition exists from the start of the day (end_offset=1) so live events land at once.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date="1995-01-01", timezone="UTC", end_offset=1
)


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days a run covers: one partition, or a range in a single-run backfill."""
    window = context.partition_time_window
    start: datetime = window.start
    n_days = (window.end - window.start).days
    return [start.date() + timedelta(days=i) for i in range(n_days)]
