"""The exceptions framework_sdk raises; every one derives from :class:`SchedulerSDKError`.

::

    SchedulerSDKError
    ├── DriverStateError      a driver method called in a state where it cannot run
    ├── NotSubscribedError    a call needs a live subscription and there is none right now
    ├── SubscriptionError     the subscription ended for good (ERROR event, refused SUBSCRIBE)
    └── CallError             the master did not take a call
        ├── CallRefusedError  ... it answered with an error status (bad input, wrong state)
        └── CallFailedError   ... the call did not get through (master gone, timeout)

Bad arguments to a call (wrong types, missing ids) raise the builtin ``TypeError`` and
``ValueError`` before anything is sent. gRPC errors are translated into these classes once, in
the client; callers never see ``grpc.RpcError``.
"""

from __future__ import annotations

__all__ = [
    "CallError",
    "CallFailedError",
    "CallRefusedError",
    "DriverStateError",
    "NotSubscribedError",
    "SchedulerSDKError",
    "SubscriptionError",
]


class SchedulerSDKError(Exception):
    """SchedulerSDKError is the base class of every error framework_sdk raises."""


class DriverStateError(SchedulerSDKError, RuntimeError):
    """DriverStateError: a driver method was called in a state where it cannot run.

    For example ``launchTasks`` before ``start()``, or ``acknowledgeStatusUpdate`` on a driver
    with implicit acknowledgements.
    """


class NotSubscribedError(SchedulerSDKError):
    """NotSubscribedError: the call needs a live subscription and there is none, so it was not sent.

    Raised while the client is connecting, reconnecting after a broken stream, or closed.
    """


class SubscriptionError(SchedulerSDKError):
    """SubscriptionError: the subscription ended for good; ``message`` says why.

    Raised when the master sent an ERROR event (e.g. the framework was removed or another
    scheduler took over) or refused SUBSCRIBE for a reason retrying cannot fix.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CallError(SchedulerSDKError):
    """CallError: the master did not take a call.

    ``call_type`` is the call's name (``"ACCEPT"``), ``code`` the gRPC status code's name
    (``"INVALID_ARGUMENT"``) and ``message`` the master's own message.
    """

    def __init__(self, call_type: str, code: str, message: str) -> None:
        super().__init__(f"{call_type} {self._verb} ({code}): {message}")
        self.call_type = call_type
        self.code = code
        self.message = message

    _verb = "failed"


class CallRefusedError(CallError):
    """CallRefusedError: the master answered the call with an error status.

    Bad input (``INVALID_ARGUMENT``, with a message naming the field), a call from a superseded
    subscription (``PERMISSION_DENIED``), a call before SUBSCRIBED (``FAILED_PRECONDITION``).
    """

    _verb = "refused by the master"


class CallFailedError(CallError):
    """CallFailedError: the call did not get through (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``...).

    Whether the master acted on it is unknown; reconcile after the next subscription. It is
    never retried for you: sent again, a call the master did take would be applied twice.

    ``leader``: the leading master's ``host:port`` when the call reached a master that does not
    lead, which refused it with ``UNAVAILABLE`` naming the leader (trailing metadata
    ``emporion-leader``); None otherwise. The client has then already left that master and
    subscribes to the leader at once: retry what matters once subscribed again.
    """

    _verb = "did not reach the master"

    def __init__(
        self, call_type: str, code: str, message: str, *, leader: str | None = None
    ) -> None:
        super().__init__(call_type, code, message)
        self.leader = leader
