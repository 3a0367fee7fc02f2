"""The batch executor: one long-lived process per agent and context, running tasks in workers.

Started by the agent as ``python -m examples.batch.executor --workers N --port P`` (the port
comes from the offer's ``ports``; if something outside the cluster holds it, a free one is used,
and TASK_RUNNING tells the driver which). It starts ``N`` worker processes (:mod:`.worker`) at once,
before the first task needs them, and more if more tasks arrive at once; each task runs in a
worker of its own, so tasks run in parallel on separate cores. It serves, on ``P``, the shuffle
blocks its map tasks wrote and results too big for a status update
(``/shuffle/<shuffle>/<map>/<tag>/<reduce>``, ``/result/<task>``). A killed task's worker is
killed and replaced. On SHUTDOWN (or the driver's ``exit`` message) it kills its workers,
deletes its block directory (shuffle files, cached partitions) and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from examples.batch.shuffle import read_local_block
from examples.batch.worker import read_frame, write_frame
from framework_sdk import Status, messages
from framework_sdk.executor import Executor
from framework_sdk.executor_config import ExecutorEnvironmentError
from framework_sdk.executor_driver import ExecutorDriver

log = logging.getLogger("examples.batch.executor")

MAX_INLINE_RESULT = 256 * 1024
"""Answers larger than this wait in the block directory for the driver to fetch them."""


class _Worker:
    def __init__(self, executor_id: str, block_dir: str) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        env = dict(os.environ, PYTHONHASHSEED="0")
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.batch.worker",
                str(to_worker_r),
                str(from_worker_w),
                executor_id,
                block_dir,
            ],
            pass_fds=(to_worker_r, from_worker_w),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self.requests: BinaryIO = os.fdopen(to_worker_w, "wb")
        self.answers: BinaryIO = os.fdopen(from_worker_r, "rb")
        self.task_id: str | None = None
        self.killed = False

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        for stream in (self.requests, self.answers):
            with contextlib.suppress(OSError):
                stream.close()


class WorkerPool:
    """Worker processes, one task each at a time; a killed task's worker is replaced."""

    def __init__(self, executor_id: str, block_dir: str, size: int) -> None:
        self.executor_id, self.block_dir = executor_id, block_dir
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        worker = _Worker(self.executor_id, self.block_dir)
        with self._lock:
            self._all.append(worker)
        return worker

    def run(self, task_id: str, request: bytes) -> bytes | None:
        """The worker's answer; None if the task was killed; a ``W`` answer (``W`` and a pickle
        of the exit status) if its worker died on its own (the OOM killer, a crash)."""
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = self._spawn()
        worker.task_id = task_id
        try:
            write_frame(worker.requests, request)
            answer = read_frame(worker.answers)
        except OSError:
            answer = None
        worker.task_id = None
        if answer is None or worker.killed:
            killed = worker.killed
            self._replace(worker)
            if killed:
                return None
            return b"W" + pickle.dumps(worker.popen.returncode)
        self._idle.put(worker)
        return answer

    def kill(self, task_id: str) -> bool:
        with self._lock:
            found = [w for w in self._all if w.task_id == task_id]
        for worker in found:
            worker.killed = True
            worker.popen.kill()
        return bool(found)

    def _replace(self, worker: _Worker) -> None:
        worker.close()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            if self._closed:
                return
        self._idle.put(self._spawn())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.close()


def _handler(block_dir: str) -> type[BaseHTTPRequestHandler]:
    class BlockHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            try:
                if parts[0] == "shuffle" and len(parts) == 5:
                    body = read_local_block(
                        block_dir, int(parts[1]), int(parts[2]), parts[3], int(parts[4])
                    )
                elif parts[0] == "result" and len(parts) == 2 and "/" not in parts[1]:
                    path = os.path.join(block_dir, f"result_{parts[1]}")
                    with open(path, "rb") as f:
                        body = f.read()
                    os.unlink(path)
                else:
                    self.send_error(404, f"no such block path: {self.path}")
                    return
            except (OSError, ValueError) as error:
                self.send_error(404, f"{self.path}: {error}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return BlockHandler


def _status(
    task_id: messages.TaskID, state: Any, message: str = "", data: bytes = b""
) -> messages.TaskStatus:
    status = messages.TaskStatus(state=state, message=message, data=data)
    status.task_id.CopyFrom(task_id)
    return status


class BatchExecutor(Executor):
    """Runs each launched task in a worker process; answers with its result."""

    def __init__(self, workers: int, port: int, sandbox: str) -> None:
        self.block_dir = os.path.join(sandbox, "batch-blocks")
        os.makedirs(self.block_dir, exist_ok=True)
        self.executor_id = os.environ.get("MESOS_EXECUTOR_ID", "batch-executor")
        self.pool = WorkerPool(self.executor_id, self.block_dir, workers)
        try:
            self.server = ThreadingHTTPServer(("", port), _handler(self.block_dir))
        except OSError as error:  # Offered, yet taken by a process outside the cluster's books.
            log.warning("port %d: %s; serving blocks on a free port instead", port, error)
            self.server = ThreadingHTTPServer(("", 0), _handler(self.block_dir))
        self.port_note = b"P%d" % self.server.server_address[1]
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._closed = False
        self._close_lock = threading.Lock()

    def launchTask(self, driver: ExecutorDriver, task: messages.TaskInfo) -> None:
        if task.data == b"warmup":
            note = self.port_note
            driver.sendStatusUpdate(_status(task.task_id, messages.TASK_FINISHED, "warm", note))
            return
        # The block server's port rides on TASK_RUNNING, which reaches the driver before the
        # task's result: the offered port may have been taken by someone else.
        driver.sendStatusUpdate(_status(task.task_id, messages.TASK_RUNNING, data=self.port_note))
        threading.Thread(target=self._run, args=(driver, task), daemon=True).start()

    def _run(self, driver: ExecutorDriver, task: messages.TaskInfo) -> None:
        task_id = task.task_id.value
        answer = self.pool.run(task_id, task.data)
        if answer is None:
            driver.sendStatusUpdate(_status(task.task_id, messages.TASK_KILLED, "killed"))
            return
        state = messages.TASK_FINISHED if answer[:1] == b"O" else messages.TASK_FAILED
        if len(answer) > MAX_INLINE_RESULT:
            path = os.path.join(self.block_dir, f"result_{task_id}")
            with open(path + ".tmp", "wb") as out:
                out.write(answer)
            os.replace(path + ".tmp", path)
            answer = b"R" + str(len(answer)).encode()
        driver.sendStatusUpdate(_status(task.task_id, state, data=answer))

    def killTask(self, driver: ExecutorDriver, taskId: messages.TaskID) -> None:
        if not self.pool.kill(taskId.value):
            driver.sendStatusUpdate(_status(taskId, messages.TASK_KILLED, "not running"))

    def frameworkMessage(self, driver: ExecutorDriver, message: bytes) -> None:
        if message.startswith(b"unpersist:"):
            prefix = f"rdd_{int(message.split(b':')[1])}_"
            for name in os.listdir(self.block_dir):
                if name.startswith(prefix):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.block_dir, name))
        elif message == b"exit":
            self.close()
            driver.stop()

    def shutdown(self, driver: ExecutorDriver) -> None:
        self.close()

    def close(self) -> None:
        """Kill the workers, stop serving, delete the block directory."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.pool.close()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.block_dir, ignore_errors=True)

    def error(self, driver: ExecutorDriver, message: str) -> None:
        log.error("executor error: %s", message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.batch.executor")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    sandbox = os.environ.get("MESOS_SANDBOX", os.getcwd())
    executor = BatchExecutor(max(1, args.workers), args.port, sandbox)
    try:
        driver = ExecutorDriver(executor)
    except ExecutorEnvironmentError as error:
        executor.close()
        print(f"examples.batch.executor: {error}", file=sys.stderr)
        return 2
    try:
        status = driver.run()
    finally:
        executor.close()
    return 0 if status is Status.DRIVER_STOPPED else 1


if __name__ == "__main__":
    sys.exit(main())
