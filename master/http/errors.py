"""Bad requests: FastAPI's 422 for invalid parameters becomes 400 with one clear sentence.

Operators (and Mesos tooling) expect 400 for a malformed query; the detail names each bad
parameter, what is wrong and what was given:
``{"detail": "query parameter 'limit': input should be a valid integer ..., got 'x'"}``.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["describe_validation_error", "validation_error_response"]


def describe_validation_error(error: RequestValidationError) -> str:
    """One line naming every bad parameter of ``error``, in order."""
    parts = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where = location[0] if location else "request"
        name = ".".join(location[1:])
        subject = f"{where} parameter '{name}'" if name else where
        message = str(item.get("msg", "invalid"))
        message = message[:1].lower() + message[1:]
        text = f"{subject}: {message}"
        if "input" in item and item["input"] is not None:
            text += f", got {item['input']!r}"
        parts.append(text)
    return "; ".join(parts) or "invalid request"


async def validation_error_response(request: Request, error: Exception) -> JSONResponse:
    """The app's handler of RequestValidationError: 400 with :func:`describe_validation_error`."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": describe_validation_error(error)}, status_code=400)
