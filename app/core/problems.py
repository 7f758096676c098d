"""The HTTP edge of errors: RFC 9457 `application/problem+json`.

Domain errors (`app.core.errors`) know nothing of HTTP. This module is the single place
that gives each kind a status and renders every error a client can see (domain errors,
validation errors, 401/403/404/405/413, unexpected failures) in one shape:
`{"type", "title", "status", "detail", "code"}`, plus `errors` for validation and any
machine-readable members an error carries.

`title`, `detail` and each field's `msg` are in the language `Accept-Language` asks for
(Dutch or English, `app/core/i18n.py`), and `Content-Language` says which.
"""

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import exc as db_errors
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import (
    CATALOGUE,
    DatabaseUnavailable,
    DomainError,
    FieldError,
    Forbidden,
    Kind,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    Reason,
    RequestTimeout,
    TooManyAttempts,
    ValidationFailed,
    VotingClosedReason,
    invalid_input,
)
from app.core.i18n import (
    DEFAULT_LANGUAGE,
    N_,
    Language,
    Message,
    Translatable,
    _t,
    negotiate,
    render_text,
)
from app.core.logtext import log_path, log_safe

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:wijkbudget:problem:"

STATUS: dict[Kind, int] = {
    Kind.unauthenticated: 401,
    Kind.forbidden: 403,
    Kind.not_found: 404,
    Kind.not_allowed: 405,
    Kind.conflict: 409,
    Kind.gone: 410,
    Kind.too_large: 413,
    Kind.timeout: 408,
    Kind.invalid: 422,
    Kind.throttled: 429,
    Kind.unavailable: 503,
}

log = logging.getLogger("wijkbudget")


def status_of(error: type[DomainError] | DomainError) -> int:
    return STATUS[error.kind]


class ProblemItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str = Field(examples=["string_too_short"], description="pydantic's error type.")
    ctx: dict[str, Any] | None = Field(default=None, examples=[{"min_length": 10}])


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code`.

    Members a response may lack are optional in the schema and never null on the wire
    (`SkipJsonSchema[None]`): `errors` on `validation_error`, `reasons` on `not_eligible`,
    `reason` and the window on `voting_closed`."""

    type: str = Field(examples=[PROBLEM_TYPE_PREFIX + "voting_closed"])
    title: str = Field(examples=["Voting is closed"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["Voting for this process closed on 2019-10-20T22:00:00Z."])
    code: str = Field(
        examples=["voting_closed"], description="Stable; the document lists every code."
    )
    errors: list[ProblemItem] | SkipJsonSchema[None] = Field(
        default=None, description="`validation_error`: each invalid field."
    )
    reasons: list[Reason] | SkipJsonSchema[None] = Field(
        default=None,
        description="`not_eligible`: every reason, as in `GET /processes/{process_id}/me`.",
    )
    reason: VotingClosedReason | SkipJsonSchema[None] = Field(
        default=None, description="`voting_closed`: whether voting has not opened or has closed."
    )
    opens_at: datetime | None = Field(
        default=None, description="`voting_closed`: the voting window's start, if set."
    )
    closes_at: datetime | None = Field(
        default=None, description="`voting_closed`: the voting window's end, if set."
    )
    limit: str | SkipJsonSchema[None] = Field(
        default=None,
        description="`election_too_large`: which limit: `projects`, `approvals`, "
        "`distinct_costs` or `cpu_seconds`.",
    )
    maximum: int | SkipJsonSchema[None] = Field(
        default=None, description="`election_too_large`: the limit's value."
    )
    actual: int | SkipJsonSchema[None] = Field(
        default=None, description="`election_too_large`: the file's figure."
    )


def problem_codes() -> list[str]:
    """Every `code` a response can carry: the domain catalogue and the generic ones here."""
    codes = [error.code for error in CATALOGUE]
    return sorted({*codes, "internal_error", "http_error"})


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    title: str | Translatable,
    detail: str | Translatable,
    *,
    errors: Sequence[dict[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    language: Language = DEFAULT_LANGUAGE,
) -> JSONResponse:
    """The response; `title` and `detail` are translated into `language` here."""
    return JSONResponse(
        problem_body(
            status,
            code,
            render_text(title, language),
            render_text(detail, language),
            errors,
            extra,
        ),
        status_code=status,
        headers={**(headers or {}), "Content-Language": language},
        media_type=PROBLEM_MEDIA_TYPE,
    )


def language_of(request: Request) -> Language:
    return negotiate(request.headers.get("accept-language"))


def _plain(value: Any) -> Any:
    # pydantic's `ctx` may hold the exception a validator raised: keep only JSON values.
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _item(error: FieldError, where: Sequence[str | int], language: Language) -> dict[str, Any]:
    item: dict[str, Any] = {
        "loc": [*where, *error.loc],
        "msg": error.text(language),
        "type": error.type,
    }
    if error.ctx:
        item["ctx"] = {key: _plain(value) for key, value in error.ctx.items()}
    return item


def render(
    error: DomainError,
    where: Sequence[str | int] = ("body",),
    language: Language = DEFAULT_LANGUAGE,
) -> JSONResponse:
    """The problem+json response for a domain error in `language`; field paths are placed
    under `where`."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if error.kind == Kind.unauthenticated:
        headers["WWW-Authenticate"] = "Bearer"
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    errors = None if error.fields is None else [_item(f, where, language) for f in error.fields]
    return problem_response(
        status,
        error.code,
        error.title,
        render_text(error.message, language),
        errors=errors,
        extra=error.extra,
        headers=headers,
        language=language,
    )


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return render(exc, language=language_of(request))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's locations already say where (`body`, `query`, `path`).
    return render(invalid_input(exc.errors()), where=(), language=language_of(request))


_GENERIC_BY_STATUS: dict[int, type[DomainError]] = {
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: TooManyAttempts,
}


_UNPARSABLE = N_("The body could not be parsed.")
_HTTP_ERROR = N_("HTTP error")
# Starlette's own details, looked up in the catalog as they are.
_STARLETTE_DETAILS = (N_("Not Found"), N_("Method Not Allowed"))


class TranslatedHTTPException(StarletteHTTPException):
    """An HTTP error raised below the routes (the body limits in app/core/middleware.py)
    whose detail is a translatable `Message`; `detail` is its English."""

    def __init__(
        self, status_code: int, message: Message, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, str(message), headers)
        self.message = message


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own 400 means a body it could not parse at all (nested too deep, not
        # UTF-8): for a client that is invalid input like any other, so 422.
        reason = exc.detail if isinstance(exc.detail, str) else _UNPARSABLE
        field = FieldError(loc=(), msg=reason, type="json_invalid")
        error = ValidationFailed(_t("body: {msg}", msg=field), fields=[field])
        return render(error, language=language_of(request))
    known = _GENERIC_BY_STATUS.get(exc.status_code)
    code = known.code if known else "http_error"
    title = known.title if known else _HTTP_ERROR
    detail: str | Message = exc.detail if isinstance(exc.detail, str) and exc.detail else title
    if isinstance(exc, TranslatedHTTPException):
        detail = exc.message
    return problem_response(
        exc.status_code,
        code,
        title,
        detail,
        headers=dict(exc.headers or {}),
        language=language_of(request),
    )


# The database cannot serve the request now (PostgreSQL restarting or refusing connections,
# a lock or statement timeout, SQLite's write lock held past the busy timeout, the pool
# exhausted): the request changed nothing and may be sent again.
DATABASE_UNAVAILABLE = (
    db_errors.OperationalError,
    db_errors.InterfaceError,
    db_errors.TimeoutError,
)
DATABASE_RETRY_AFTER_SECONDS = 5


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0][:200]
    # One line, no traceback: during a database restart there is one per request.
    log.warning(
        "database unavailable on %s %s: %s: %s request_id=%s",
        log_safe(request.method),
        log_path(request.url.path),
        type(cause).__name__,
        log_safe(first_line),
        request.scope.get("state", {}).get("request_id", "-"),
    )
    error = DatabaseUnavailable(
        _t(
            "The database could not serve this request; nothing was changed. "
            "Try again in {seconds} seconds.",
            seconds=DATABASE_RETRY_AFTER_SECONDS,
        ),
        retry_after=DATABASE_RETRY_AFTER_SECONDS,
    )
    return render(error, language=language_of(request))


def unexpected_response(accept_language: str | None) -> JSONResponse:
    """The 500 answer to an unexpected failure; the caller logs it (once, with its
    traceback) and sends this, so the connection stays open and the middleware's headers
    (request id, CORS) are on it too."""
    return problem_response(
        500,
        "internal_error",
        N_("Internal server error"),
        N_("An unexpected error occurred."),
        language=negotiate(accept_language),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Handlers for errors a route raises. Unexpected failures are answered by
    `app.core.middleware.UnexpectedErrorMiddleware`, inside the middleware that adds
    request ids and CORS headers (Starlette's own last-resort handler sits outside them
    and closes the connection)."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _on_database_unavailable)


def problem_responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: every error it can return, with an example per code."""
    by_status: dict[int, list[type[DomainError]]] = {}
    for error in errors:
        by_status.setdefault(status_of(error), []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        responses[status] = {
            "description": " / ".join(f"`{e.code}`: {e.title}" for e in group),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "examples": {
                        e.code: {
                            "summary": e.title,
                            "value": problem_body(status, e.code, e.title, e.title + "."),
                        }
                        for e in group
                    },
                }
            },
        }
    return responses
