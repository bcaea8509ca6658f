"""The one mapping from refusals to HTTP status codes and the JSON error envelope.

Every refusal answers ``{"error": code, "detail": sentence}``: the services' errors
(``api/exceptions.py``), the framework's own (unreadable body, unknown route, wrong method, body
too large, request validation) and, for a bug, a last-resort 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import exceptions as exc
from api.validation_summary import PROBLEMS_SHOWN_MAX, FieldProblem, safe_text, summarize

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[exc.DomainError], int], ...] = (
    (exc.UnauthenticatedError, 401),
    (exc.ForbiddenError, 403),
    (exc.NotFoundError, 404),
    (exc.ConflictError, 409),
    (exc.RateLimitedError, 429),
    (exc.InvalidRequestError, 422),
    (exc.DomainError, 400),
)
# The framework's refusals (raised as HTTPException by Starlette and FastAPI) by status.
CODE_BY_HTTP_STATUS = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}
MALFORMED_BODY = 400
VALIDATION_FAILED = 422
BODY_TOO_LARGE = 413
INTERNAL_ERROR = 500
DATABASE_UNAVAILABLE = 503
# Lost or refused connections, a server shutting down, a pool with no connection to give, and
# a write that reached a standby: what a failover of the database looks like to a request.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.ReadOnlySqlTransaction,
)
# A detail longer than this is cut: services may quote an input back.
DETAIL_CHARS_MAX = 1_000
PATH_CHARS_MAX = 200

# Why FastAPI could not read a body (the cause of its 400), most specific first.
_PARSE_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (RecursionError, "the JSON body is nested too deeply to read"),
    (UnicodeDecodeError, "the body is not valid UTF-8"),
    (ClientDisconnect, "the body ended early: the client disconnected"),
)


class ErrorBody(BaseModel):
    """Why a request was refused: a stable machine-readable code and a sentence for people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "insufficient_funds", "detail": "available 50.00 < 100.30"},
                {
                    "error": "validation_failed",
                    "detail": "body field quantity: Input should be a finite number",
                    "fields": [
                        {
                            "location": "body",
                            "field": "quantity",
                            "reason": "Input should be a finite number",
                            "type": "finite_number",
                        }
                    ],
                },
            ]
        }
    )

    error: str
    detail: str
    fields: list[FieldProblem] | None = Field(
        default=None,
        description=f"validation_failed only: the failed fields (at most {PROBLEMS_SHOWN_MAX})",
    )


def documented(description: str, example: tuple[str, str] | None = None) -> dict[str, Any]:
    """A refusal for a route's ``responses``: the envelope's schema, and an (error, detail)."""
    answer: dict[str, Any] = {"model": ErrorBody, "description": description}
    if example is not None:
        code, detail = example
        answer["content"] = {"application/json": {"example": {"error": code, "detail": detail}}}
    return answer


# Answers every route of the routers can give, documented once for the OpenAPI schema (FastAPI
# would otherwise document its own 422 body, which this app never sends).
ROUTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: documented("Missing, expired or invalid credentials"),
    403: documented("Authenticated, but 2FA or KYC is not complete"),
    422: documented("validation_failed (fields says which), or a business rule refused it"),
    429: documented("Rate limit reached; see the Retry-After header"),
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


def envelope(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    fields: Sequence[FieldProblem] | None = None,
) -> Response:
    """The envelope as a response; every string in it is cut and made encodable as UTF-8."""
    if status < 200 or status in (204, 304):  # answers that may carry no body
        return Response(status_code=status, headers=headers)
    content: dict[str, Any] = {"error": code, "detail": safe_text(detail, DETAIL_CHARS_MAX)}
    if fields is not None:
        content["fields"] = [asdict(problem) for problem in fields]
    return JSONResponse(content, status_code=status, headers=headers)


def body_too_large(bytes_max: int) -> HTTPException:
    """The refusal of a body over ``bytes_max`` (FastAPI lets an HTTPException out of a read)."""
    return HTTPException(BODY_TOO_LARGE, f"the request body is larger than {bytes_max} bytes")


def body_too_large_response(bytes_max: int) -> Response:
    """The answer to a body declared larger than ``bytes_max``, given before the app runs."""
    error = body_too_large(bytes_max)
    return envelope(error.status_code, CODE_BY_HTTP_STATUS[BODY_TOO_LARGE], str(error.detail))


async def _handle_domain(_: Request, error: Exception) -> Response:
    assert isinstance(error, exc.DomainError)
    headers = {}
    if isinstance(error, exc.RateLimitedError):
        headers["Retry-After"] = str(error.retry_after_s)
    elif isinstance(error, exc.UnauthenticatedError):
        headers["WWW-Authenticate"] = "Bearer"
    body = error_body(error)
    return envelope(status_for(error), body["error"], body["detail"], headers=headers)


async def _handle_http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = CODE_BY_HTTP_STATUS.get(error.status_code, "refused")
    return envelope(error.status_code, code, _http_detail(request, error), headers=error.headers)


def _http_detail(request: Request, error: HTTPException) -> str:
    path = safe_text(request.url.path, PATH_CHARS_MAX)
    if error.status_code == MALFORMED_BODY and error.__cause__ is not None:
        return _parse_failure(error.__cause__)
    if error.detail != _phrase(error.status_code):
        return str(error.detail)  # a sentence its raiser chose
    if error.status_code == 404:
        return f"nothing at {request.method} {path}"
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {path}; allowed: {allowed}"
    return str(error.detail)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _parse_failure(cause: BaseException) -> str:
    for cls, sentence in _PARSE_FAILURES:
        if isinstance(cause, cls):
            return sentence
    return "the body could not be read as JSON"


async def _handle_validation(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    for problem in errors:
        if problem.get("type") == "json_invalid":
            # Not JSON at all: a malformed body, like one FastAPI could not decode.
            reason = problem.get("ctx", {}).get("error", "invalid")
            where = problem.get("loc", ("body", 0))[-1]
            detail = f"the body is not valid JSON: {reason} at character {where}"
            return envelope(MALFORMED_BODY, CODE_BY_HTTP_STATUS[MALFORMED_BODY], detail)
    summary = summarize(errors)
    return envelope(VALIDATION_FAILED, "validation_failed", summary.detail, fields=summary.problems)


def _internal_error() -> Response:
    return envelope(
        INTERNAL_ERROR, "internal_error", "the server failed to answer; the error is logged"
    )


async def _handle_unexpected(_: Request, __: Exception) -> Response:
    # Starlette logs the error and re-raises it after this answer (the server then closes the
    # connection); only errors outside LastResort, in the outer middleware, come here.
    return _internal_error()


class LastResort:
    """Pure ASGI middleware: a bug answers 500 in the envelope and the connection stays open.

    Innermost of the middleware, so the metrics count the 500 and a handed-off stream
    (api/stream_handoff.py) runs outside it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            if started:
                raise  # half an answer went out: only closing the connection can tell the client
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            await _internal_error()(scope, receive, send)


def _database_unavailable(retry_after_s: int) -> Any:
    async def handle(_: Request, error: Exception) -> Response:
        log.warning("database unavailable: %s", error)
        return envelope(
            DATABASE_UNAVAILABLE,
            "database_unavailable",
            "the database is not reachable for a moment (a failover?); nothing was changed"
            " unless a retry with the same Idempotency-Key says so; retry later",
            headers={"Retry-After": str(retry_after_s)},
        )

    return handle


def install(app: FastAPI, *, db_retry_after_s: int) -> None:
    """Answer every refusal in the envelope: services' errors, the framework's, and bugs.

    A database that cannot be reached answers 503 with Retry-After ``db_retry_after_s``.
    """
    app.add_exception_handler(exc.DomainError, _handle_domain)
    for error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable(db_retry_after_s))
    app.add_exception_handler(HTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(Exception, _handle_unexpected)
    app.add_middleware(LastResort)
