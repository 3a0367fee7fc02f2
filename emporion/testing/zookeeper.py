"""Real ZooKeeper servers for tests and benchmarks: one server or an ensemble, on loopback.

Each server is Debian's ZooKeeper (``/usr/share/java/zookeeper.jar``, whose manifest names its
dependencies) started directly as ``java ... QuorumPeerMain <cfg>`` with a temporary data
directory, free loopback ports and the admin server off. :func:`find_zookeeper` says why it
cannot run (no Java, no jar) so fixtures can skip with that reason. Servers die with the test
process (``setpriv --pdeathsig KILL``: start them from a thread that outlives them, such as the
main thread) and are killed at interpreter exit, so nothing is left behind even when a test run
is interrupted.

:class:`ZooKeeperCluster` can stop (SIGTERM), kill (SIGKILL), pause (SIGSTOP), resume and restart
each node, for failure tests.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ZooKeeperCluster",
    "ZooKeeperNode",
    "ZooKeeperUnavailableError",
    "find_zookeeper",
    "free_ports",
]

JAR_DIRS = (Path("/usr/share/java"), Path("/usr/share/zookeeper"), Path("/usr/share/zookeeper/lib"))
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
TICK_MS = 200
START_TIMEOUT = 60.0

_LIVE: weakref.WeakSet[ZooKeeperCluster] = weakref.WeakSet()


class ZooKeeperUnavailableError(RuntimeError):
    """ZooKeeperUnavailableError: ZooKeeper cannot be run here; the message says why."""


def find_zookeeper() -> list[str]:
    """The command line prefix running ZooKeeper's server.

    Raises ZooKeeperUnavailableError (saying why) where Java or ZooKeeper is missing.
    """
    java = shutil.which("java")
    if java is None:
        raise ZooKeeperUnavailableError(
            "no java on PATH (install a JRE and Debian's zookeeper package)"
        )
    jar = next((d / "zookeeper.jar" for d in JAR_DIRS if (d / "zookeeper.jar").is_file()), None)
    if jar is None:
        raise ZooKeeperUnavailableError(
            "ZooKeeper's server jar is not installed (apt-get install zookeeper; "
            "`make test` does it through .ci/system-deps.sh)"
        )
    classpath = [str(jar)]
    # The jar's manifest lists its dependencies but no slf4j binding; a simple one keeps
    # warnings in the server's log file instead of slf4j's "no binding" notice.
    binding = jar.parent / "slf4j-simple.jar"
    if binding.is_file():
        classpath.append(str(binding))
    command = [
        java,
        "-Xms16m",
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dzookeeper.admin.enableServer=false",
        "-cp",
        ":".join(classpath),
        MAIN_CLASS,
    ]
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        # The server dies with the thread that started it, even if the test process is killed.
        command = [setpriv, "--pdeathsig", "KILL", *command]
    return command


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """The answer of the server on ``port`` to a four-letter command ("" if none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                chunks.append(data)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


@dataclass
class ZooKeeperNode:
    """ZooKeeperNode is one server of a cluster: its id, ports, files and process."""

    myid: int
    client_port: int
    quorum_port: int
    election_port: int
    data_dir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def address(self) -> str:
        """``127.0.0.1:<client port>``."""
        return f"127.0.0.1:{self.client_port}"

    def mode(self) -> str:
        """``standalone``, ``leader`` or ``follower`` once serving; "" otherwise."""
        for line in four_letter_word(self.client_port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.partition(":")[2].strip()
        return ""

    def session_ids(self) -> set[int]:
        """Ids of the client sessions connected to this server right now."""
        return {
            int(match, 16)
            for match in re.findall(
                r"sid=0x([0-9a-f]+)", four_letter_word(self.client_port, "cons")
            )
        }

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ZooKeeperCluster:
    """ZooKeeperCluster runs ``size`` ZooKeeper servers on loopback (1: standalone).

    ``start()`` returns once every server is serving. ``hosts`` is the connect string,
    ``url(path)`` a ``zk://`` URL. ``close()`` kills every server and removes the files.
    """

    def __init__(self, size: int = 1, base_dir: Path | None = None) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one server")
        self.command = find_zookeeper()
        self._own_dir = base_dir is None
        self.base_dir = (
            Path(tempfile.mkdtemp(prefix="emporion-zk-")) if base_dir is None else base_dir
        )
        ports = free_ports(3 * size)
        self.nodes = [
            ZooKeeperNode(
                myid=i + 1,
                client_port=ports[3 * i],
                quorum_port=ports[3 * i + 1],
                election_port=ports[3 * i + 2],
                data_dir=self.base_dir / f"node{i + 1}" / "data",
                config_path=self.base_dir / f"node{i + 1}" / "zoo.cfg",
                log_path=self.base_dir / f"node{i + 1}" / "server.log",
            )
            for i in range(size)
        ]
        for node in self.nodes:
            self._write_config(node)
        _LIVE.add(self)

    @property
    def hosts(self) -> str:
        """The connect string of every server: ``127.0.0.1:p1,127.0.0.1:p2,...``."""
        return ",".join(node.address for node in self.nodes)

    def url(self, path: str) -> str:
        """``zk://<hosts><path>``."""
        return f"zk://{self.hosts}{path}"

    def _write_config(self, node: ZooKeeperNode) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={TICK_MS}",
            "initLimit=50",
            "syncLimit=10",
            f"dataDir={node.data_dir}",
            f"clientPort={node.client_port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,mntr,stat,cons",
            f"minSessionTimeout={2 * TICK_MS}",
            "maxSessionTimeout=60000",
            "maxClientCnxns=0",
            # Tests write registries over 1 MB in chunks; keep the server's default limit so
            # the chunking is what makes them fit.
            "snapCount=100000",
            "autopurge.purgeInterval=0",
        ]
        if len(self.nodes) > 1:
            (node.data_dir / "myid").write_text(f"{node.myid}\n")
            lines.extend(
                f"server.{n.myid}=127.0.0.1:{n.quorum_port}:{n.election_port}" for n in self.nodes
            )
        node.config_path.write_text("\n".join(lines) + "\n")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ZooKeeperCluster:
        """Start every server not running and wait until all serve.

        Raises ZooKeeperUnavailableError if one does not come up.
        """
        for node in self.nodes:
            if node.process is None:
                self._spawn(node)
        for node in self.nodes:
            self.wait_serving(node.myid)
        return self

    def _spawn(self, node: ZooKeeperNode) -> None:
        with open(node.log_path, "ab") as log:
            node.process = subprocess.Popen(
                [*self.command, str(node.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=node.data_dir,
                start_new_session=True,
            )
        node.paused = False

    def node(self, myid: int) -> ZooKeeperNode:
        """The server with this id (1-based)."""
        return self.nodes[myid - 1]

    def wait_serving(self, myid: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until server ``myid`` serves clients (ZooKeeperUnavailableError if it dies)."""
        node = self.node(myid)
        deadline = time.monotonic() + timeout
        while not node.mode():
            if node.process is None or node.process.poll() is not None:
                raise ZooKeeperUnavailableError(
                    f"ZooKeeper server {myid} exited at start:\n{node.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ZooKeeperUnavailableError(
                    f"ZooKeeper server {myid} not serving after {timeout:g}s:\n{node.log_tail()}"
                )
            time.sleep(0.05)

    def leader_id(self) -> int | None:
        """The id of the ensemble's leader (or of the standalone server), if any serves."""
        for node in self.nodes:
            running = node.process is not None and not node.paused
            if running and node.mode() in ("leader", "standalone"):
                return node.myid
        return None

    def stop(self, myid: int) -> None:
        """Stop server ``myid`` gracefully (SIGTERM) and wait for it."""
        self._signal_and_reap(self.node(myid), signal.SIGTERM)

    def kill(self, myid: int) -> None:
        """Kill server ``myid`` (SIGKILL) and wait for it."""
        self._signal_and_reap(self.node(myid), signal.SIGKILL)

    def pause(self, myid: int) -> None:
        """Freeze server ``myid`` (SIGSTOP): its connections stay open but nothing answers."""
        node = self.node(myid)
        assert node.process is not None, f"server {myid} is not running"
        node.process.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, myid: int) -> None:
        """Thaw a paused server (SIGCONT)."""
        node = self.node(myid)
        assert node.process is not None, f"server {myid} is not running"
        node.process.send_signal(signal.SIGCONT)
        node.paused = False

    def restart(self, myid: int) -> None:
        """Start a stopped or killed server again (same ports and data) and wait until it serves."""
        node = self.node(myid)
        if node.process is not None:
            self._signal_and_reap(node, signal.SIGKILL)
        self._spawn(node)
        self.wait_serving(myid)

    def _signal_and_reap(self, node: ZooKeeperNode, sig: signal.Signals) -> None:
        process = node.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if node.paused and sig != signal.SIGKILL:
                process.send_signal(signal.SIGCONT)
            process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        node.process = None
        node.paused = False

    def close(self) -> None:
        """Kill every server and remove the cluster's files. Idempotent."""
        for node in self.nodes:
            self._signal_and_reap(node, signal.SIGKILL)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self) -> ZooKeeperCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@atexit.register
def _kill_leftovers() -> None:
    for cluster in list(_LIVE):
        cluster.close()
