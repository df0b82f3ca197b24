"""The durable experiment store: one SQLite file (WAL) shared by the service, the Dagster
asset and the CLI, holding the experiments and the audit log of every decision.

SQLite commits are durable (fsync) and safe across processes; the service reads the
running experiments every few seconds, so a stop takes effect without a restart.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys.experiments.model import Experiment, ExperimentSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id TEXT PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id TEXT NOT NULL, at TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL, details TEXT NOT NULL);
"""


class ExperimentExistsError(ValueError):
    """An experiment with that id exists already."""


class UnknownExperimentError(KeyError):
    """No experiment with that id."""


class SurfaceTakenError(ValueError):
    """Another running experiment already splits that surface."""


@dataclass(frozen=True)
class AuditEntry:
    experiment_id: str
    at: datetime
    action: str
    reason: str
    details: dict[str, Any]


class ExperimentStore:
    """Create, read, stop and conclude experiments; append and read the audit log."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed (durably: synchronous=FULL) on success, then closed."""
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA synchronous=FULL")
            with db:
                yield db
        finally:
            db.close()

    def create(self, spec: ExperimentSpec, planned_users_per_variant: int | None = None,
               reason: str = "created", salt: str | None = None) -> Experiment:
        """Store a new running experiment; raises when the id or its surface is taken.
        ``salt`` fixes the assignment (default: a random one, new for each experiment)."""
        experiment = Experiment(**spec.model_dump(),
                                planned_users_per_variant=planned_users_per_variant,
                                **({"salt": salt} if salt else {}))
        with self._connect() as db:
            if db.execute("SELECT 1 FROM experiments WHERE experiment_id = ?",
                          (spec.experiment_id,)).fetchone():
                raise ExperimentExistsError(f"experiment {spec.experiment_id!r} exists already")
            for row in db.execute("SELECT body FROM experiments WHERE status = 'running'"):
                other = Experiment.model_validate_json(row[0])
                if other.surface == spec.surface:
                    raise SurfaceTakenError(
                        f"experiment {other.experiment_id!r} already splits surface "
                        f"{spec.surface or '(all traffic)'}")
            db.execute("INSERT INTO experiments VALUES (?, ?, ?)",
                       (experiment.experiment_id, experiment.status,
                        experiment.model_dump_json()))
            self._audit(db, experiment.experiment_id, "create", reason,
                        {"planned_users_per_variant": planned_users_per_variant,
                         "variants": [v.model_dump(exclude_none=True)
                                      for v in experiment.variants]})
        return experiment

    def get(self, experiment_id: str) -> Experiment:
        with self._connect() as db:
            row = db.execute("SELECT body FROM experiments WHERE experiment_id = ?",
                             (experiment_id,)).fetchone()
        if row is None:
            raise UnknownExperimentError(experiment_id)
        return Experiment.model_validate_json(row[0])

    def list(self, status: str | None = None) -> list[Experiment]:
        rows = self._select("SELECT body FROM experiments", "status", status, "experiment_id")
        return [Experiment.model_validate_json(row[0]) for row in rows]

    def update(self, experiment: Experiment) -> None:
        with self._connect() as db:
            self._save(db, experiment)

    def finish(self, experiment_id: str, status: str, action: str, reason: str,
               details: dict[str, Any] | None = None) -> Experiment:
        """Stop or conclude a running experiment and audit why (a finished one is left as
        it is, the call only adds to the audit log)."""
        experiment = self.get(experiment_id)
        with self._connect() as db:
            if experiment.status == "running":
                experiment = experiment.model_copy(update={
                    "status": status, "stopped_at": datetime.now(UTC), "decision": action})
                self._save(db, experiment)
            self._audit(db, experiment_id, action, reason, details or {})
        return experiment

    def record(self, experiment_id: str, action: str, reason: str,
               details: dict[str, Any] | None = None) -> None:
        """Append an audit entry (e.g. a look that changed nothing)."""
        with self._connect() as db:
            self._audit(db, experiment_id, action, reason, details or {})

    def audit(self, experiment_id: str | None = None) -> list[AuditEntry]:
        rows = self._select("SELECT experiment_id, at, action, reason, details FROM audit",
                            "experiment_id", experiment_id, "seq")
        return [AuditEntry(e, datetime.fromisoformat(at), a, r, json.loads(d))
                for e, at, a, r, d in rows]

    def _select(self, query: str, column: str, value: str | None, order: str) -> list[tuple]:
        """The rows of ``query`` (those whose ``column`` is ``value`` unless it is None),
        ordered by ``order``; the column names are this module's, never a caller's."""
        args: tuple = ()
        if value is not None:
            query, args = f"{query} WHERE {column} = ?", (value,)
        with self._connect() as db:
            return db.execute(f"{query} ORDER BY {order}", args).fetchall()

    @staticmethod
    def _save(db: sqlite3.Connection, experiment: Experiment) -> None:
        db.execute("UPDATE experiments SET status = ?, body = ? WHERE experiment_id = ?",
                   (experiment.status, experiment.model_dump_json(), experiment.experiment_id))

    @staticmethod
    def _audit(db: sqlite3.Connection, experiment_id: str, action: str, reason: str,
               details: dict[str, Any]) -> None:
        db.execute("INSERT INTO audit (experiment_id, at, action, reason, details) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (experiment_id, datetime.now(UTC).isoformat(), action, reason,
                    json.dumps(details, default=str)))
