"""TcpProxy: a loopback TCP relay that tests can cut, to make a ZooKeeper client lose its link.

Cutting closes every relayed connection and refuses new ones (accepted and closed at once) until
``restore()``: the client sees its connection drop and cannot reconnect, which is exactly what a
network partition between one master and ZooKeeper looks like to kazoo (SUSPENDED, then LOST if
the partition outlasts the session). One thread relays everything with a selector.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    """TcpProxy relays ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>`` (see the module doc)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._closing = False
        self._settled = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: connect the client here."""
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every connection and refuse new ones; returns once they are closed."""
        self._command(cut=True)

    def restore(self) -> None:
        """Relay new connections again."""
        self._command(cut=False)

    def close(self) -> None:
        """Stop relaying and release the sockets. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._command(cut=True)
        self._thread.join(timeout=10)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _command(self, *, cut: bool) -> None:
        with self._lock:
            self._cut = cut
            self._settled.clear()
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._settled.wait(timeout=10)

    def _close_pair(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for each in (sock, other):
            if each is None:
                continue
            self._peers.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(each)
            each.close()

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=1.0):
                if key.data == "wake":
                    self._wake_r.recv(64)
                    if self._cut:
                        for sock in list(self._peers):
                            self._close_pair(sock)
                    self._settled.set()
                    if self._closing:
                        return
                elif key.data == "accept":
                    self._accept()
                elif key.fileobj in self._peers:
                    self._relay(key.fileobj)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.settimeout(5)
        self._peers[client] = upstream
        self._peers[upstream] = client
        self._selector.register(client, selectors.EVENT_READ)
        self._selector.register(upstream, selectors.EVENT_READ)

    def _relay(self, sock: socket.socket) -> None:
        other = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(sock)
