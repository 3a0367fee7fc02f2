"""Errors of the batch framework.

::

    BatchJobError        a job failed: a task raised (after its retries), or the job was cancelled
    FetchFailedError     (internal) a reduce task could not fetch a shuffle block: its map
                         output is gone, so the parent stage runs again
"""

from __future__ import annotations


class BatchJobError(RuntimeError):
    """A job failed for good.

    PySpark raises ``Py4JJavaError``/``PythonException`` whose message holds the worker's
    traceback; here the user's exception type, message and the remote traceback are kept as
    attributes, and ``str()`` shows all three, so the cause is readable without digging.
    ``__cause__`` is the user's exception itself when it could be unpickled in the driver.
    """

    def __init__(
        self,
        message: str,
        *,
        exc_type: str = "",
        exc_message: str = "",
        remote_traceback: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback
        self.attempts = attempts

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n\nRemote traceback (the last attempt):\n" + self.remote_traceback
        return text


class FetchFailedError(Exception):
    """A shuffle block could not be fetched from the executor at ``address``."""

    def __init__(self, shuffle_id: int, map_index: int, executor_id: str, address: str, why: str):
        super().__init__(
            f"shuffle {shuffle_id} map {map_index}: fetch from executor {executor_id} at"
            f" {address} failed: {why}"
        )
        self.shuffle_id = shuffle_id
        self.map_index = map_index
        self.executor_id = executor_id
        self.address = address
