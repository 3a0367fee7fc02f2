"""The gRPC side of :class:`~master.auth.MasterSecurity`: who a call is from, refusals as status.

Kept apart from :mod:`master.auth` so that the checks themselves stay free of grpc.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from grpc import aio

from master.auth import MasterSecurity, PermissionDeniedError
from protos.security import AuthenticationError, call_authorization, peer_common_name

__all__ = ["call_principal", "refuse"]


async def refuse(
    context: aio.ServicerContext[object, object],
    error: AuthenticationError | PermissionDeniedError,
) -> NoReturn:
    """End the call with UNAUTHENTICATED or PERMISSION_DENIED and the error's message."""
    if isinstance(error, AuthenticationError):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"authentication failed: {error}")
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
    raise AssertionError("unreachable")  # abort raises


async def call_principal(
    security: MasterSecurity, context: aio.ServicerContext[object, object], required: bool
) -> str | None:
    """The principal of a gRPC call (None: anonymous, and allowed); refuses the call when its
    credentials are wrong, or missing while ``required``."""
    try:
        return security.authenticate(
            call_authorization(context), peer_common_name(context), required
        )
    except AuthenticationError as error:
        await refuse(context, error)
