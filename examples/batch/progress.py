"""The progress display of a running job (``rich``), and a one-line summary when it ends.

It draws jobs, the active stages with tasks done / running / failed, and the shuffle bytes
written and read, refreshed while the driver's thread waits for the job. On a terminal that is
not interactive it prints only the summaries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from examples.batch.context import BatchContext
    from examples.batch.dag import Job

__all__ = ["Progress"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class Progress:
    """Draws the context's status while jobs run."""

    def __init__(self, ctx: BatchContext) -> None:
        self.ctx = ctx
        self.console = Console(stderr=True)
        self.live: Live | None = None

    def job_started(self) -> None:
        if self.console.is_terminal and self.live is None:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4)
            self.live.start()

    def update(self) -> None:
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Table:
        status: dict[str, Any] = self.ctx._status()
        table = Table(title=f"{status['app']}  ({status['uptime']:.1f} s)", expand=False)
        for column in ("stage", "kind", "tasks", "done", "running", "failed", "shuffle w/r"):
            table.add_column(column)
        for s in status["stages"]:
            if s["state"] == "DONE":
                continue
            table.add_row(
                str(s["id"]), s["kind"], str(s["tasks"]), str(s["done"]), str(s["running"]),
                str(s["failed"]), f"{_size(s['shuffle_write'])} / {_size(s['shuffle_read'])}",
            )  # fmt: skip
        return table

    def job_finished(self, job: Job) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        status = self.ctx._status()
        written = sum(s["shuffle_write"] for s in status["stages"])
        seconds = (job.finished or job.started) - job.started
        state = "failed" if job.error else "done"
        self.console.print(
            f"[batch] job {job.id} {state} in {seconds:.2f} s: {len(job.partitions)} partitions,"
            f" {len(status['stages'])} stages so far, shuffle {_size(written)} written,"
            f" {status['failed_tasks']} failed / {status['speculative_tasks']} speculative tasks",
            highlight=False,
            markup=False,
        )

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
