"""``python -m simulation [all|aa|ab|srm|broken|ab-http]``: run scenarios, print one JSON.

Against the service at ``--url`` (with ``--key``), or, without ``--url``, against a
``bentoml serve`` this command starts on the platform in ``RECSYS_DATA_DIR`` (run the
pipeline first: ``make pipeline``) and stops at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import httpx
import mlflow
import numpy as np
from mlflow import MlflowClient

from recsys.events.synthetic import WorldConfig, generate_world
from recsys.platform.settings import get_settings
from simulation import scenarios
from simulation.serve import challenger_version, started_service
from simulation.users import Behaviour

OFFLINE, ONLINE = ("aa", "ab", "srm"), ("broken", "ab-http")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    parser.add_argument("scenario", choices=["all", *OFFLINE, *ONLINE], nargs="?", default="all")
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--key", help="its admin key")
    parser.add_argument("--reps", type=int, default=200, help="A/A replications")
    parser.add_argument("--ab-reps", type=int, default=100, help="A/B replications")
    parser.add_argument("--days", type=int, default=7, help="daily looks per replication")
    parser.add_argument("--planned", type=int, help="users per variant (default: planned "
                        "from a pilot: MDE 5 %% relative, alpha 0.05, power 0.8, >= 10,000)")
    parser.add_argument("--rounds", type=int, default=8, help="HTTP rounds (one session per "
                        "user, then a Dagster look)")
    parser.add_argument("--http-users", type=int, default=600,
                        help="world users who browse through HTTP in broken and ab-http")
    parser.add_argument("--min-users", type=int, default=100,
                        help="planned users per variant of the HTTP experiments")
    parser.add_argument("--world-users", type=int, default=2000)
    parser.add_argument("--world-items", type=int, default=1000)
    parser.add_argument("--world-days", type=int, default=60)
    parser.add_argument("--world-seed", type=int, default=42)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    args = parse(argv)
    wanted = set(OFFLINE + ONLINE) if args.scenario == "all" else {args.scenario}
    world = generate_world(WorldConfig(n_users=args.world_users, n_items=args.world_items,
                                       days=args.world_days, seed=args.world_seed))
    users = world.users["user_id"].tolist()
    rng, behaviour, started = np.random.default_rng(args.seed), Behaviour(), time.monotonic()
    settings = get_settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    tracking = MlflowClient()
    out: dict[str, object] = {}
    with started_service(args.url, args.key) as (url, key):
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                              timeout=30)
        if wanted & set(OFFLINE):
            champion = scenarios.arm(world, scenarios.fetch_lists(client, users,
                                                                  "personalized"), users)
            popular = scenarios.arm(world, scenarios.fetch_lists(client, users, "popular"),
                                    users)
            planning = scenarios.plan(champion, args.days, rng, behaviour)
            planned = args.planned or planning["planned_users_per_variant"]
            out["planning"] = planning | {"used_users_per_variant": planned}
            if "aa" in wanted:
                out |= scenarios.aa(champion, planned, args.reps, args.days, rng, behaviour)
            if "ab" in wanted:
                out |= scenarios.ab(champion, popular, planned, args.ab_reps, args.days, rng,
                                    behaviour)
            if "srm" in wanted:
                out |= scenarios.srm(champion, planned, args.days, rng, behaviour)
        browsing = users[:args.http_users]
        if "broken" in wanted:
            out |= scenarios.broken(client, world, browsing, rng, behaviour, tracking,
                                    settings.model_name, args.rounds, args.min_users)
        if "ab-http" in wanted:
            alias = challenger_version(tracking, settings.model_name)
            out |= scenarios.ab_http(client, world, browsing, rng, behaviour, tracking,
                                     settings.model_name, args.rounds, args.min_users, alias)
    out["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
