"""Run the platform's jobs from the command line, recorded in the Dagster instance.

``python -m orchestration.run --source synthetic`` imports the seeded world and runs
``platform_job`` over every day of the event log as one single-run backfill; the runs appear
in the Dagster UI (``dagster dev``) afterwards. ``--source movielens --path DIR`` and
``--source events --path FILE`` import other data instead.
"""

import argparse
import logging
import os
import sys
import warnings

from orchestration.instance import dagster_home
from recsys.platform.settings import get_settings

logger = logging.getLogger("orchestration.run")

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

#: Step events at INFO (the UI keeps every event); DEBUG floods a terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

#: Step outcomes summarised after each job, one line per step (also when stderr is no TTY).
STEP_OUTCOMES = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")


def log_steps(job: str, result) -> None:
    """One line per step of a finished job: its outcome, so a log file shows every stage."""
    for event in result.all_events:
        if event.event_type_value in STEP_OUTCOMES:
            outcome = event.event_type_value.removeprefix("STEP_").lower()
            logger.info("%s: step %s %s", job, event.step_key, outcome)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=["synthetic", "movielens", "events", "none"],
                        default="synthetic", help="what to import first ('none': nothing)")
    parser.add_argument("--path", help="MovieLens folder or events file")
    parser.add_argument("--users", type=int, default=2000, help="synthetic world size")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sessions", type=float, default=8.0,
                        help="synthetic sessions per user (mean)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    dagster_home()

    import dagster as dg

    from orchestration.definitions import defs
    from recsys.events.event_log import EventLog

    instance = dg.DagsterInstance.get()
    stages = 1 if args.source == "none" else 2
    if args.source != "none":
        logger.info("stage 1/%d: import_job (source %s)", stages, args.source)
        source = {"kind": args.source, "path": args.path, "n_users": args.users,
                  "n_items": args.items, "days": args.days, "seed": args.seed,
                  "sessions_per_user": args.sessions}
        result = defs.resolve_job_def("import_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"event_source": {"config": source}}, **QUIET},
        )
        log_steps("import_job", result)
        logger.info("import_job %s (run %s)", "succeeded" if result.success else "FAILED",
                    result.run_id)
        if not result.success:
            return 1
    days = EventLog(get_settings().event_log_dir).days()
    if not days:
        logger.error("the event log is empty: import a source first")
        return 1
    logger.info("stage %d/%d: platform_job over %s..%s (%d days)", stages, stages, days[0],
                days[-1], len(days))
    result = defs.resolve_job_def("platform_job").execute_in_process(
        instance=instance,
        run_config=QUIET,
        tags={RANGE_START: str(days[0]), RANGE_END: str(days[-1])},
        raise_on_error=False,
    )
    log_steps("platform_job", result)
    logger.info("platform_job %s (run %s)", "succeeded" if result.success else "FAILED",
                result.run_id)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
