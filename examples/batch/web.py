"""The driver's small HTTP server: the status page (``FrameworkInfo.webui_url``) and broadcasts.

``/`` is a page of jobs, stages and tasks with timings (it refreshes itself every 2 s);
``/api/status`` the same as JSON; ``/broadcast/<id>`` a broadcast value's pickle, fetched once
by each worker that uses it. The server runs on its own daemon threads and reads the
scheduler's state under the scheduler's lock.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["DriverServer"]


class DriverServer:
    """Serves ``status()`` (a JSON-able dict) and the broadcast values in ``broadcasts``."""

    def __init__(self, host: str, status: Callable[[], dict[str, Any]]) -> None:
        self.broadcasts: dict[int, bytes] = {}
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path.startswith("/broadcast/"):
                    try:
                        body = server.broadcasts[int(path.rsplit("/", 1)[1])]
                    except (KeyError, ValueError):
                        self._send(404, b"no such broadcast", "text/plain")
                        return
                    self._send(200, body, "application/octet-stream")
                elif path == "/api/status":
                    self._send(200, json.dumps(server.status()).encode(), "application/json")
                elif path == "/":
                    self._send(200, render(server.status()).encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(status: dict[str, Any]) -> str:
    """The status page."""
    jobs = [
        [j["id"], j["state"], f"{j['seconds']:.2f}", j["partitions"], j["error"] or ""]
        for j in status["jobs"]
    ]
    stages = [
        [
            s["id"], s["kind"], s["state"], s["tasks"], s["done"], s["running"], s["failed"],
            s["shuffle_write"], s["shuffle_read"], f"{s['seconds']:.2f}",
        ]
        for s in status["stages"]
    ]  # fmt: skip
    tasks = [
        [t["id"], t["stage"], t["partition"], t["executor"], t["host"], t["state"],
         "" if t["seconds"] is None else f"{t['seconds']:.3f}", "yes" if t["speculative"] else ""]
        for t in status["tasks"]
    ]  # fmt: skip
    executors = [[e["id"], e["agent"], e["address"], e["alive"]] for e in status["executors"]]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2"><title>{html.escape(status["app"])} — batch</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style></head><body>
<h1>{html.escape(status["app"])}</h1>
<p>framework {html.escape(status["framework_id"])} · up {status["uptime"]:.1f} s ·
updated {time.strftime("%H:%M:%S")}</p>
<h2>Jobs</h2>{_table(["job", "state", "seconds", "partitions", "error"], jobs)}
<h2>Stages</h2>{
        _table(
            [
                "stage",
                "kind",
                "state",
                "tasks",
                "done",
                "running",
                "failed",
                "shuffle write B",
                "shuffle read B",
                "seconds",
            ],
            stages,
        )
    }
<h2>Executors</h2>{_table(["executor", "agent", "address", "alive"], executors)}
<h2>Tasks (latest {len(tasks)})</h2>{
        _table(
            ["task", "stage", "partition", "executor", "host", "state", "seconds", "speculative"],
            tasks,
        )
    }
</body></html>"""
