"""Simulated users against the real service: recommendations over HTTP, events posted back
with their ``rec_id`` through ``POST /events``, the experiment created through the API and
decided by Dagster's ``experiment_decisions`` asset (run with the ``dagster`` CLI, as the
sensor would) until it is no longer running.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from recsys.events.synthetic import World
from simulation.users import Behaviour, react

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    """What a run served: lists per variant, and users per variant."""

    lists: dict[str, int] = field(default_factory=dict)
    users: dict[str, set[str]] = field(default_factory=dict)


def session(client: httpx.Client, world: World, user: str, surface: str | None,
            rng: np.random.Generator, behaviour: Behaviour, served: Served,
            k: int = 10) -> None:
    """One session of ``user``: lists until they leave, each answered with events."""
    price = world.items.set_index("item_id")["price"]
    for _ in range(behaviour.lists_per_session):
        params: dict[str, object] = {"limit": k}
        if surface:
            params["experiment_id"] = surface
        answer = client.get(f"/api/v1/recs/{user}", params=params)
        answer.raise_for_status()
        body = answer.json()
        variant = body.get("variant") or "none"
        served.lists[variant] = served.lists.get(variant, 0) + 1
        served.users.setdefault(variant, set()).add(user)
        items = [item["item_id"] for item in body["items"]]
        if not items:
            return
        pref = world.preference(np.array([user] * len(items)), np.array(items))
        clicked, bought = react(pref[None, :], rng, behaviour)
        now = datetime.now(UTC).isoformat()
        events = []
        for position in np.flatnonzero(clicked[0]).tolist():
            events.append(_event(body["rec_id"], user, items[position], position, "click", now))
            if bought[0, position]:
                events.append(_event(body["rec_id"], user, items[position], position,
                                     "purchase", now, float(price[items[position]])))
        if events:
            client.post("/events", json={"events": events}).raise_for_status()
        elif rng.random() < behaviour.leave_after_poor:
            return


def _event(rec_id: str, user: str, item: str, position: int, kind: str, at: str,
           value: float | None = None) -> dict:
    return {"event_id": f"sim-{rec_id}-{position}-{kind}", "user_id": user, "item_id": item,
            "event_type": kind, "timestamp": at, "rec_id": rec_id, "position": position,
            **({"value": value} if value is not None else {})}


def look_with_dagster(env: dict[str, str] | None = None) -> None:
    """Materialize ``experiment_decisions`` once (a real Dagster run)."""
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
               "--select", "experiment_decisions", "-m", "orchestration.definitions"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"experiment_decisions failed:\n{done.stderr[-3000:]}")


def run_until_decided(client: httpx.Client, world: World, users: list[str], experiment_id: str,
                      surface: str | None, rng: np.random.Generator, behaviour: Behaviour,
                      rounds: int, looker: Callable[[], None] = look_with_dagster) -> dict:
    """Rounds of one session per user, a Dagster look after each, until the experiment
    stops; returns what was served and the experiment with its audit log."""
    served = Served()
    state: dict = {}
    for round_number in range(1, rounds + 1):
        for user in rng.permutation(users).tolist():
            session(client, world, user, surface, rng, behaviour, served)
        looker()
        state = client.get(f"/api/v1/recs/experiments/{experiment_id}").json()
        logger.info("round %d: %s, served %s", round_number, state["experiment"]["status"],
                    served.lists)
        if state["experiment"]["status"] != "running":
            break
    else:  # undecided after every round: stop it, and say so in its audit log
        state = client.post(f"/api/v1/recs/experiments/{experiment_id}/stop", json={
            "reason": f"simulation over after {rounds} rounds, undecided"}).json()
    return {"served_lists": served.lists,
            "served_users": {k: len(v) for k, v in served.users.items()},
            "experiment": state.get("experiment"), "audit": state.get("audit", [])}
