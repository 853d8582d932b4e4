"""Admin API errors as data: each class knows its status and wire code and renders
``{"error": {"code", "message", "details"?}}``.  The handlers installed by
:func:`install_error_handlers` give FastAPI's own errors (validation, 404, 405, bad
JSON, crashes) the same shape, and never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from campusgate.proxy.request import ClientDisconnected

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "MethodNotAllowed",
    "NotFound",
    "Unauthorized",
    "ValidationFailed",
    "format_path",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def headers(self) -> dict[str, str]:
        return {}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers())


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"

    @classmethod
    def from_errors(cls, errors: Iterable[Any], strip: Sequence[str] = ()) -> ValidationFailed:
        """From pydantic error dicts; ``strip`` drops a leading location part (``body``)."""
        details = []
        for err in errors:
            loc = list(err.get("loc", ()))
            if loc and loc[0] in strip:
                loc = loc[1:]
            details.append(
                {"path": format_path(loc), "message": _clean(str(err.get("msg", "invalid")))}
            )
        first = details[0] if details else {"path": "", "message": "invalid"}
        where = f" at {first['path']}" if first["path"] else ""
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        return cls(f"invalid value{where}: {first['message']}{more}", details)

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> ValidationFailed:
        return cls.from_errors(exc.errors())


def format_path(loc: Sequence[Any]) -> str:
    """``("services", 0, "routes", 1, "paths", 0)`` -> ``services[0].routes[1].paths[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean(message: str) -> str:
    for noise in ("Value error, ", "Assertion failed, "):
        if message.startswith(noise):
            return message[len(noise) :]
    return message


# ---------------------------------------------------------------- handlers


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "malformed JSON")
            return BadRequest(f"the request body is not valid JSON: {reason}").response()
    return ValidationFailed.from_errors(errors, strip=("body",)).response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        response = NotFound(f"no such endpoint: {request.method} {request.url.path}").response()
    elif exc.status_code == 405:
        response = MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}"
        ).response()
    else:
        body = {"error": {"code": "http_error", "message": str(exc.detail)}}
        response = JSONResponse(body, status_code=exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ClientDisconnected):  # the client left: nothing to answer or log
        return ApiError("client disconnected").response()
    log.exception("admin API: unexpected error on %s %s", request.method, request.url.path)
    return ApiError("internal error; see the gateway log").response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
