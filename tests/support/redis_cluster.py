"""A throwaway Redis Cluster: three master ``redis-server`` processes on free ports, no
replicas, the 16384 slots split evenly, joined by hand (CLUSTER ADDSLOTSRANGE and CLUSTER
MEET: faster than ``redis-cli --cluster create`` and needs nothing but the servers).

Each node is a RedisServer (redis_server.py), so a test can kill, freeze, thaw or restart
one node exactly as it does a single Redis. A restarted node keeps its cluster config
(nodes.conf in its own directory) and so its slots; its data is gone (no persistence).
"""

from __future__ import annotations

from pathlib import Path

from redis.crc import key_slot

from tests.support.poll import NotYet, eventually_sync
from tests.support.redis_server import RedisServer, free_port

SLOTS = 16384
# Long enough that a node killed and restarted by a test is never marked as failed by the
# others (which would take the cluster down for a while), short enough not to matter.
NODE_TIMEOUT_MS = 15_000
READY_WITHIN = 20.0  # seconds: a bound on the cluster forming, not a timing claim


def keys_on(server: RedisServer) -> list[bytes]:
    """Every key one redis-server holds (KEYS *; small test data only)."""
    reply = server.command("KEYS", "*")
    return [line for line in reply.split(b"\r\n") if line and line[:1] not in (b"*", b"$")]


class RedisClusterServers:
    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.workdir = workdir
        self.nodes: list[RedisServer] = []
        # Each node listens on two ports (clients, and the cluster bus): all distinct (a
        # port just handed out by free_port() may be handed out again).
        ports: list[int] = []
        while len(ports) < 2 * masters:
            port = free_port()
            if port not in ports:
                ports.append(port)
        self.bus_ports = ports[masters:]
        for n in range(masters):
            home = workdir / f"node-{n}"
            home.mkdir(parents=True, exist_ok=True)
            options = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(home / "nodes.conf"),
                # The bus port is chosen too: port + 10000 may be taken or out of range.
                "--cluster-port",
                str(self.bus_ports[n]),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
            ]
            self.nodes.append(RedisServer(home, port=ports[n], extra_args=options))
        # Node n serves the slots ranges[n] (inclusive).
        step = SLOTS // masters
        self.ranges = [
            (n * step, SLOTS - 1 if n == masters - 1 else (n + 1) * step - 1)
            for n in range(masters)
        ]

    @property
    def url(self) -> str:
        """The URL of the first node: any node's URL names the whole cluster."""
        return self.nodes[0].url

    def start(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            for node, (first, last) in zip(self.nodes, self.ranges, strict=True):
                self._ok(node.command("CLUSTER", "ADDSLOTSRANGE", str(first), str(last)))
            # Every node meets every other at once: no waiting for gossip to introduce them.
            for node in self.nodes:
                for other, bus in zip(self.nodes, self.bus_ports, strict=True):
                    if other is not node:
                        meet = ("CLUSTER", "MEET", "127.0.0.1", str(other.port), str(bus))
                        self._ok(node.command(*meet))
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _ok(reply: bytes) -> None:
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"cluster set-up refused: {reply!r}")

    def state_ok(self, node: RedisServer) -> bool:
        info = node.command("CLUSTER", "INFO")
        return (
            b"cluster_state:ok" in info
            and f"cluster_known_nodes:{len(self.nodes)}".encode() in info
            and f"cluster_slots_ok:{SLOTS}".encode() in info
        )

    def wait_ok(self, within: float = READY_WITHIN) -> None:
        """Poll (bounded) until every node reports the whole cluster up: all slots served,
        every node known. Gossip between separate processes has no event to wait on."""
        try:
            eventually_sync(
                lambda: all(self.state_ok(node) for node in self.nodes),
                "every cluster node ok",
                within=within,
                step=0.05,
            )
        except NotYet:
            states = [node.command("CLUSTER", "INFO")[:60] for node in self.nodes]
            raise NotYet(f"cluster not ok within {within}s: {states}") from None

    def node_for(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot (hash tags respected)."""
        slot = key_slot(key.encode())
        for node, (first, last) in zip(self.nodes, self.ranges, strict=True):
            if first <= slot <= last:
                return node
        raise AssertionError(slot)

    def other_node(self, key: str) -> RedisServer:
        """A node that does NOT serve ``key``: a client pointed at it must be redirected."""
        owner = self.node_for(key)
        return next(node for node in self.nodes if node is not owner)

    def all_keys(self) -> list[bytes]:
        """Every key on every node (KEYS *; small test data only)."""
        return [key for node in self.nodes for key in keys_on(node)]

    def flush(self) -> None:
        """Empty every node (between tests sharing one cluster); heal a stopped node first."""
        for node in self.nodes:
            if node.running:
                node.thaw()  # harmless if it was not frozen
            else:
                node.start()
        self.wait_ok()
        for node in self.nodes:
            self._ok(node.command("FLUSHALL"))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
