"""The shared event stream end to end: service replicas append, consumer processes log and
push; a consumer killed mid-batch loses and duplicates nothing that ``event_id`` does not
absorb; an event posted to the service reaches the next recommendation through the stream."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
import redis

from orchestration.defs.assets.ingestion import raw_events, validated_events
from orchestration.defs.resources import PlatformStorage
from recsys.events.event_log import EventLog
from recsys.events.impressions import ImpressionLog, attribute, impression_record
from recsys.events.schema import Event
from recsys.events.stream import RedisEventStream, open_event_stream
from recsys.experiments.analysis import analyse
from recsys.experiments.looks import read_logs
from recsys.experiments.model import ExperimentSpec, Variant
from recsys.experiments.store import ExperimentStore
from recsys.features.names import RECENT_COUNT, RECENT_ITEMS, feature_ref
from recsys.features.online_events import OnlineEventWriter
from recsys.features.reads import online_entity_features
from recsys.features.store import get_feature_store
from recsys.features.stream_consumer import StreamConsumer
from recsys.platform.redis_server import connect, resolve_redis
from recsys.platform.settings import Settings
from serving.breaker import Breaker
from serving.cache import ResponseCache
from serving.intake import EventIntake
from tests.conftest import free_port, running_server
from tests.integration.conftest import Platform, start_services, wait_logged

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stream_env(platform: Platform, tmp_path: Path) -> dict[str, str]:
    """The environment of a process in the stream profile: a fresh stream, and its own data
    folder (event log) beside the platform's Feast repo and Redis."""
    return {**os.environ, "RECSYS_EVENT_STREAM": "redis",
            "RECSYS_EVENT_STREAM_KEY": f"test:events:{uuid.uuid4().hex}",
            "RECSYS_EVENT_STREAM_CLAIM_IDLE_MS": "300",
            "RECSYS_DATA_DIR": str(tmp_path / "data")}


def stream_of(env: dict[str, str]) -> RedisEventStream:
    settings = Settings(data_dir=Path(env["RECSYS_DATA_DIR"]), event_stream="redis",
                        event_stream_key=env["RECSYS_EVENT_STREAM_KEY"])
    stream = open_event_stream(settings)
    assert isinstance(stream, RedisEventStream)
    stream.ensure_group()
    return stream


@contextmanager
def consumers(env: dict[str, str], *names: str, batch: int = 20) -> Iterator[list]:
    procs = [subprocess.Popen([sys.executable, "-m", "recsys.features.stream_consumer",
                               "--name", name, "--batch", str(batch), "--block-ms", "100"],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for name in names]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def drained(stream: RedisEventStream, procs: list, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (backlog := stream.backlog())["lag"] or backlog["pending"]:
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"stream not drained: {backlog}"
        time.sleep(0.1)


def registered(stream: RedisEventStream, procs: list, names: set[str],
               timeout: float = 90) -> None:
    """Wait until every consumer of ``names`` has joined the group (made its first read)."""
    deadline = time.monotonic() + timeout
    while {c["name"].decode() for c in stream.client.xinfo_consumers(stream.key, stream.group)
           } != names:
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"consumers {names} did not all start"
        time.sleep(0.1)


def validated_ids(data_dir: Path) -> pd.Series:
    """Event ids of ``validated_events`` after the Dagster assets ran on today's log."""
    storage = PlatformStorage(data_dir=str(data_dir))
    day = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    result = dg.materialize([raw_events, validated_events], partition_key=day,
                            resources={"storage": storage})
    assert result.success
    return pd.read_parquet(storage.table_dir("validated_events"))["event_id"]


def recent(platform: Platform, users: list[str]) -> dict[str, tuple[list[str], int]]:
    found = online_entity_features(get_feature_store(platform.settings),
                                   [feature_ref(RECENT_ITEMS), feature_ref(RECENT_COUNT)],
                                   "user_id", users)
    return {user: (list(found[RECENT_ITEMS][i] or []), int(found[RECENT_COUNT][i] or 0))
            for i, user in enumerate(users)}


def test_stream_consumer_killed_mid_batch_loses_and_duplicates_nothing(
    platform: Platform, stream_env: dict[str, str]
) -> None:
    stream = stream_of(stream_env)
    intake = EventIntake(EventLog(Path(stream_env["RECSYS_DATA_DIR"]) / "unused"),
                         get_feature_store(platform.settings), Breaker(),
                         ResponseCache(resolve_redis(platform.settings).url, 300, Breaker()),
                         Path(stream_env["RECSYS_DATA_DIR"]) / "outbox", replay_seconds=0,
                         stream=stream)
    tag = uuid.uuid4().hex[:6]
    now = pd.Timestamp.now(tz="UTC")
    sent = [Event(event_id=f"k-{tag}-{i}", user_id=f"k-{tag}-u{i % 50}", item_id=f"k-i{i}",
                  event_type="view", timestamp=now) for i in range(1000)]
    for start in range(0, len(sent), 50):  # what the API does before answering 202
        assert intake.accept(sent[start:start + 50]) == 0
    log = EventLog(Path(stream_env["RECSYS_DATA_DIR"]) / "events" / "log")
    with consumers(stream_env, "victim") as (victim,):
        # Freeze the consumer at a moment it holds a batch it has logged (at least in part)
        # but not acknowledged, then kill it there.
        deadline, logged_unacked = time.monotonic() + 60, False
        while time.monotonic() < deadline:
            time.sleep(0.005)
            victim.send_signal(signal.SIGSTOP)
            held = {e.event.event_id for e in stream.pending("victim", 1000) if e.event}
            logged = set(log.read_day(now.date())["event_id"]) if log.days() else set()
            if held and held & logged:
                logged_unacked = True
                break
            victim.send_signal(signal.SIGCONT)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert logged_unacked, "the consumer was never caught between its log write and its ack"
    assert stream.backlog()["pending"] > 0
    with consumers(stream_env, "rescuer") as procs:  # another consumer claims and goes on
        drained(stream, procs)
    raw = pd.concat([log.read_day(day) for day in log.days()])
    assert raw["event_id"].duplicated().any()  # the killed batch was redelivered...
    ids = validated_ids(Path(stream_env["RECSYS_DATA_DIR"]))
    assert sorted(ids) == sorted(e.event_id for e in sent)  # ...and validated exactly once
    users = sorted({e.user_id for e in sent})
    online = recent(platform, users)
    for user in users:  # every item reached the online store
        assert set(online[user][0]) == {e.item_id for e in sent if e.user_id == user}


def test_stream_two_replicas_and_two_consumers_land_every_event_once(
    platform: Platform, stream_env: dict[str, str]
) -> None:
    # No consumer dies here: a claim could only take a batch from a slow, living consumer.
    stream_env = {**stream_env, "RECSYS_EVENT_STREAM_CLAIM_IDLE_MS": "60000"}
    stream = stream_of(stream_env)
    tag = uuid.uuid4().hex[:6]
    with consumers(stream_env, "c1", "c2") as procs:
        registered(stream, procs, {"c1", "c2"})
        replicas = [subprocess.Popen([sys.executable, "-m", "tests.integration.stream_replica",
                                      f"r{n}-{tag}", "300"], env=stream_env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for n in (1, 2)]
        accepted = []
        for replica in replicas:
            out, err = replica.communicate(timeout=120)
            assert replica.returncode == 0, err[-3000:]
            accepted += out.split()
        drained(stream, procs)
    assert len(accepted) == 600
    log = EventLog(Path(stream_env["RECSYS_DATA_DIR"]) / "events" / "log")
    raw = pd.concat([log.read_day(day) for day in log.days()])
    assert sorted(raw["event_id"]) == sorted(accepted)  # each once, no consumer killed
    assert sorted(validated_ids(Path(stream_env["RECSYS_DATA_DIR"]))) == sorted(accepted)
    users = [f"r{n}-{tag}-u{k}" for n in (1, 2) for k in range(10)]
    assert all(count == 30 for _, count in recent(platform, users).values())


def test_stream_post_event_reaches_the_next_recommendation(
    platform: Platform, stream_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**stream_env, "RECSYS_DATA_DIR": str(platform.settings.data_dir),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    stream = stream_of(env)
    port = free_port()
    bentoml = os.path.join(os.path.dirname(sys.executable), "bentoml")
    with running_server([bentoml, "serve", "serving.service:RecommendationService", "--port",
                         str(port)], f"http://127.0.0.1:{port}/health/ready", timeout=360,
                        env=env), consumers(env, "api") as procs:
        registered(stream, procs, {"api"})
        base, headers = f"http://127.0.0.1:{port}", platform.headers
        user = f"s-{uuid.uuid4().hex[:8]}"
        first = httpx.get(f"{base}/api/v1/recs/{user}?limit=5", headers=headers).json()
        item = first["items"][0]["item_id"]
        event = {"event_id": f"s-{uuid.uuid4().hex}", "user_id": user, "item_id": item,
                 "event_type": "click", "timestamp": pd.Timestamp.now(tz="UTC").isoformat()}
        posted = time.monotonic()
        answer = httpx.post(f"{base}/events", json=event, headers=headers)
        assert answer.status_code == 202 and answer.json()["pushed_users"] == 0
        # in the stream when the API answered (beside the impression of the list shown)
        entries = [fields for _, fields in stream.client.xrange(stream.key)]
        assert sum(event["event_id"].encode() in b"".join(f.values()) for f in entries) == 1
        while recent(platform, [user])[user][0] != [item]:
            assert procs[0].poll() is None, procs[0].stderr.read().decode()[-3000:]
            assert time.monotonic() - posted < 30, "the consumer did not push the event"
            time.sleep(0.01)
        print(f"event -> online features through the stream: "
              f"{(time.monotonic() - posted) * 1000:.0f} ms")
        after = httpx.get(f"{base}/api/v1/recs/{user}?limit=5", headers=headers).json()
        assert item not in [entry["item_id"] for entry in after["items"]]
        drained(stream, procs)
    assert event["event_id"] in set(EventLog(platform.settings.event_log_dir)
                                    .read_day(pd.Timestamp.now(tz="UTC").date())["event_id"])


def test_stream_batch_is_acknowledged_only_after_its_push(
    platform: Platform, stream_env: dict[str, str]
) -> None:
    stream = stream_of(stream_env)
    log = EventLog(Path(stream_env["RECSYS_DATA_DIR"]) / "events" / "log")
    impressions = ImpressionLog(Path(stream_env["RECSYS_DATA_DIR"]) / "events" / "impressions")
    store = get_feature_store(platform.settings)
    user = f"a-{uuid.uuid4().hex[:8]}"
    sent = [Event(event_id=f"{user}-{i}", user_id=user, item_id=f"a{i}", event_type="view",
                  timestamp=pd.Timestamp.now(tz="UTC")) for i in range(3)]
    stream.append(sent)
    down = OnlineEventWriter(store, connect(f"redis://127.0.0.1:{free_port()}/0", 0.5))
    with pytest.raises(redis.ConnectionError):  # the online store is unreachable
        StreamConsumer(stream, log, impressions, down, "c", block_ms=10).step()
    assert stream.backlog()["pending"] == 3  # logged, not pushed: not acknowledged
    assert len(log.read_day(sent[0].timestamp.date())) == 3
    up = OnlineEventWriter(store, connect(resolve_redis(platform.settings).url))
    assert StreamConsumer(stream, log, impressions, up, "c", block_ms=10).step() == 3
    assert stream.backlog() == {"length": 3, "pending": 0, "lag": 0}
    assert recent(platform, [user])[user] == (["a2", "a1", "a0"], 3)
    assert sorted(validated_ids(Path(stream_env["RECSYS_DATA_DIR"]))) == sorted(
        e.event_id for e in sent)


def intake_on_dead_stream(platform: Platform, stream: RedisEventStream,
                          root: Path) -> tuple[EventIntake, RedisEventStream]:
    """An intake (log and outbox under ``root``) whose stream is ``stream``'s key on a
    server that does not answer; and that dead stream."""
    dead = RedisEventStream(redis.Redis(port=free_port(), socket_connect_timeout=0.5),
                            stream.key, stream.group, maxlen=1000)
    intake = EventIntake(EventLog(root / "log"), get_feature_store(platform.settings),
                         Breaker(), ResponseCache(resolve_redis(platform.settings).url, 300,
                                                  Breaker()),
                         root / "outbox", replay_seconds=0, stream=dead)
    return intake, dead


def test_stream_unreachable_batches_wait_in_the_outbox_and_reach_the_stream(
    platform: Platform, stream_env: dict[str, str], tmp_path: Path
) -> None:
    stream = stream_of(stream_env)
    intake, dead = intake_on_dead_stream(platform, stream, tmp_path)
    user = f"o-{uuid.uuid4().hex[:8]}"
    batch = [Event(event_id=f"{user}-{i}", user_id=user, item_id=f"o{i}", event_type="view",
                   timestamp=pd.Timestamp.now(tz="UTC")) for i in range(2)]
    assert intake.accept(batch) == 0  # accepted: durably in the stream's outbox
    assert len(list((tmp_path / "outbox" / "stream").glob("*.jsonl"))) == 1
    intake.stream = stream  # the stream answers again
    assert intake.replay() == 2 and intake.replay() == 0
    assert [e.event for e in stream.read("c", 10, 10)] == batch
    intake.stream = dead  # and if the service goes back to the local profile meanwhile,
    intake.accept(batch[:1])
    intake.stream = None  # its outbox is logged and pushed instead
    assert intake.replay() == 1
    assert list(EventLog(tmp_path / "log").read_day(batch[0].timestamp.date())["event_id"]
                ) == [batch[0].event_id]
    assert recent(platform, [user])[user] == (["o0"], 1)


def test_stream_served_list_reaches_the_impression_log_and_its_outcome_is_attributed(
    platform: Platform, stream_env: dict[str, str], tmp_path: Path
) -> None:
    # The service and the consumer each have a data folder of their own, as on hosts of
    # their own: whatever the analysis reads came through the stream.
    service_root, consumed = tmp_path / "service", Path(stream_env["RECSYS_DATA_DIR"])
    (service_root / "prometheus").mkdir(parents=True)
    service_data = Settings(data_dir=service_root / "data")
    tag = uuid.uuid4().hex[:8]
    experiment = ExperimentStore(service_data.experiments_db).create(ExperimentSpec(
        experiment_id=f"st-{tag}", surface=f"st-{tag}",
        variants=[Variant(name="control", percent=50), Variant(name="wide", percent=50,
                                                               diversity=0.9)]))
    stream = stream_of(stream_env)
    service_env = {**stream_env, "RECSYS_DATA_DIR": str(service_data.data_dir),
                   "BENTOML_HOME": str(service_root / "bentoml"),
                   "PROMETHEUS_MULTIPROC_DIR": str(service_root / "prometheus"),
                   "RECSYS_AUTH_KEYS_FILE": str(platform.settings.data_dir / "auth" / "keys.json")}
    ((service, base),) = start_services([service_env], [service_root])
    try:
        with consumers(stream_env, "impressions") as procs:
            registered(stream, procs, {"impressions"})
            user = f"st-u-{tag}"
            shown = httpx.get(f"{base}/api/v1/recs/{user}", headers=platform.headers,
                              params={"limit": 5, "experiment_id": experiment.experiment_id}
                              ).json()
            assert shown["experiment_id"] == experiment.experiment_id
            event = {"event_id": f"st-{tag}", "user_id": user, "event_type": "click",
                     "item_id": shown["items"][1]["item_id"], "rec_id": shown["rec_id"],
                     "timestamp": pd.Timestamp.now(tz="UTC").isoformat()}
            assert httpx.post(f"{base}/events", json=event,
                              headers=platform.headers).status_code == 202
            wait_logged({event["event_id"]}, consumed)
            log, deadline = ImpressionLog(consumed / "events" / "impressions"), time.monotonic()
            while shown["rec_id"] not in set(log.read()["rec_id"]):  # flushed, then consumed
                assert time.monotonic() - deadline < 30, "the impression never reached the log"
                time.sleep(0.1)
            drained(stream, procs)
    finally:
        service.terminate()
        service.wait(timeout=30)
    assert ImpressionLog(service_data.impression_log_dir).read().empty  # not written locally
    impressions, events, _ = read_logs(Settings(data_dir=consumed), experiment)
    listed = impressions[impressions["rec_id"] == shown["rec_id"]]
    assert listed["item_id"].tolist() == [item["item_id"] for item in shown["items"]]
    assert set(listed["variant"]) == {shown["variant"]}
    clicked = attribute(events[events["event_id"] == event["event_id"]], impressions)
    assert clicked[["rec_id", "position", "variant"]].values.tolist() == [
        [shown["rec_id"], 1, shown["variant"]]]
    daily = analyse(experiment, impressions, events).daily.set_index("variant")
    assert daily.loc[shown["variant"], ["users", "impressions", "clicks"]].tolist() == [1, 1, 1]


def test_stream_unreachable_impressions_wait_in_the_outbox_and_are_logged_once(
    platform: Platform, stream_env: dict[str, str], tmp_path: Path
) -> None:
    stream = stream_of(stream_env)
    intake, _ = intake_on_dead_stream(platform, stream, tmp_path)
    shown = [impression_record(f"ob-{uuid.uuid4().hex}", time.time(), {
        "user_id": "ob-user", "items": [{"item_id": f"ob{i}", "score": 1.0}],
        "model_version": "1"}, 2.0) for i in range(2)]
    intake.accept_impressions(shown)  # the stream is down: durably in the outbox
    assert len(list((tmp_path / "outbox" / "impressions").glob("*.jsonl"))) == 1
    intake.stream = stream
    assert intake.replay() == 2 and intake.replay() == 0
    log = ImpressionLog(tmp_path / "impressions")
    consumer = StreamConsumer(stream, EventLog(tmp_path / "consumed"), log,
                              OnlineEventWriter(get_feature_store(platform.settings),
                                                connect(resolve_redis(platform.settings).url)),
                              "c", block_ms=10)
    entries = stream.read("c", 10, 10)
    consumer.process(entries)
    consumer.process(entries)  # redelivered (a consumer died before its ack)
    assert log.read()["rec_id"].tolist() == [record["rec_id"] for record in shown]
    assert stream.backlog() == {"length": 2, "pending": 0, "lag": 0}
