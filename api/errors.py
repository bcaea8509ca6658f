"""The one mapping from service errors to HTTP status codes and JSON error bodies."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api import exceptions as exc

STATUS_BY_ERROR: tuple[tuple[type[exc.DomainError], int], ...] = (
    (exc.UnauthenticatedError, 401),
    (exc.ForbiddenError, 403),
    (exc.NotFoundError, 404),
    (exc.ConflictError, 409),
    (exc.RateLimitedError, 429),
    (exc.InvalidRequestError, 422),
    (exc.DomainError, 400),
)


class ErrorBody(BaseModel):
    """Why a request was refused: a stable machine-readable code and a sentence for people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": "insufficient_funds", "detail": "available 50.00 < 100.30"}]
        }
    )

    error: str
    detail: str


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Answers any authenticated route can give, documented once for the OpenAPI schema.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("Missing, expired or invalid credentials"),
    403: _documented("Authenticated, but 2FA or KYC is not complete"),
    429: _documented("Rate limit reached; see the Retry-After header"),
}


def status_for(error: exc.DomainError) -> int:
    """The HTTP status of a service error (most specific class first)."""
    for cls, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return code
    return 400


def error_body(error: exc.DomainError) -> dict[str, str]:
    """The JSON body every refused request gets: a stable code and a reason."""
    return {"error": error.code, "detail": error.detail}


async def _handle(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, exc.DomainError)
    headers = {}
    if isinstance(error, exc.RateLimitedError):
        headers["Retry-After"] = str(error.retry_after_s)
    elif isinstance(error, exc.UnauthenticatedError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(error), status_code=status_for(error), headers=headers)


def install(app: FastAPI) -> None:
    """Register the handler that answers every DomainError."""
    app.add_exception_handler(exc.DomainError, _handle)
