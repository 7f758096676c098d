"""Domain errors and their one rendering: RFC 9457 `application/problem+json`.

Services raise the classes below and know nothing of HTTP; this module is the single place
that gives each a status, a stable `code` and a title, and renders every error a client can
see (domain errors, validation errors, 401/403/404/405/413, unexpected failures) in one
shape: `{"type", "title", "status", "detail", "code"}` plus `errors` for validation.
"""

import logging
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:wijkbudget:problem:"

log = logging.getLogger("wijkbudget")


class DomainError(Exception):
    """A failure a client can act on. Subclasses fix `status`, `code` and `title`."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        keep_changes: bool = False,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.errors = errors
        # True when what the request wrote must be committed although it fails, e.g. the
        # record of a wrong voting code that the throttle counts.
        self.keep_changes = keep_changes


def _error(status: int, code: str, title: str) -> type[DomainError]:
    return type(
        "".join(part.capitalize() for part in code.split("_")),
        (DomainError,),
        {"status": status, "code": code, "title": title},
    )


# One line per error: the whole catalogue a client may meet, in one place.
NotAuthenticated = _error(401, "not_authenticated", "Not authenticated")
InvalidCredentials = _error(401, "invalid_credentials", "Invalid credentials")
Forbidden = _error(403, "forbidden", "Forbidden")
NotEligible = _error(403, "not_eligible", "Not eligible")
NotFound = _error(404, "not_found", "Not found")
MethodNotAllowed = _error(405, "method_not_allowed", "Method not allowed")
EmailTaken = _error(409, "email_taken", "Email already registered")
LastAdmin = _error(409, "last_admin", "The last admin cannot be demoted")
InvalidPhase = _error(409, "invalid_phase", "Not possible in this phase")
InvalidTransition = _error(409, "invalid_transition", "Invalid phase transition")
ProcessLocked = _error(409, "process_locked", "Process is locked")
InvalidStatus = _error(409, "invalid_status", "Not possible in this status")
PayloadTooLarge = _error(413, "payload_too_large", "Payload too large")
ValidationFailed = _error(422, "validation_error", "Invalid input")
TooManyAttempts = _error(429, "too_many_attempts", "Too many attempts")
# Voting
VotingClosed = _error(409, "voting_closed", "Voting is closed")
NoBallot = _error(404, "no_ballot", "No ballot")
UnknownReceipt = _error(404, "unknown_receipt", "Unknown receipt")
CodeUsed = _error(409, "code_used", "Voting code already used")
CodeAlreadyClaimed = _error(409, "code_already_claimed", "A voting code is already claimed")
InvalidCode = _error(422, "invalid_code", "Unknown voting code")
UnknownProposal = _error(422, "unknown_proposal", "Not a proposal on this ballot")
DuplicateProposal = _error(422, "duplicate_proposal", "Proposal chosen twice")
InvalidPoints = _error(422, "invalid_points", "Points must be whole numbers of at least 1")
TooFewProjects = _error(422, "too_few_projects", "Too few proposals chosen")
TooManyProjects = _error(422, "too_many_projects", "Too many proposals chosen")
BudgetExceeded = _error(422, "budget_exceeded", "Over the budget")
BelowMinBudgetShare = _error(422, "below_min_budget_share", "Too little of the budget used")
PointsExceeded = _error(422, "points_exceeded", "Too many points")
# Results
ResultsAlreadyPublished = _error(409, "results_already_published", "Results already published")
ResultsNotPublished = _error(404, "results_not_published", "Results not published")


class ProblemItem(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code`."""

    type: str = Field(examples=[PROBLEM_TYPE_PREFIX + "voting_closed"])
    title: str = Field(examples=["Voting is closed"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["Voting for this process closed on 2019-10-20T22:00:00Z."])
    code: str = Field(examples=["voting_closed"])
    errors: list[ProblemItem] | None = None


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[dict[str, Any]] | None = None,
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
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, errors),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


_GENERIC_BY_STATUS: dict[int, type[DomainError]] = {
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: TooManyAttempts,
}


def _loc(loc: Iterable[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(
        exc.status, exc.code, exc.title, exc.detail, errors=exc.errors, headers=headers
    )


def validation_failed(errors: Iterable[Any], prefix: Sequence[str | int] = ()) -> DomainError:
    """A `validation_error` naming each field, from pydantic-style error dicts."""
    items = [
        {"loc": [*prefix, *_loc(err.get("loc", ()))], "msg": str(err.get("msg", ""))}
        for err in errors
    ]
    first = items[0] if items else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"]) or "request"
    detail = f"{where}: {first['msg']}"
    if len(items) > 1:
        detail += f" (and {len(items) - 1} more)"
    return ValidationFailed(detail, errors=items)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _on_domain_error(request, validation_failed(exc.errors()))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own 400 means a body it could not parse at all (nested too deep, not
        # UTF-8): for a client that is invalid input like any other, so 422.
        detail = exc.detail if isinstance(exc.detail, str) else "The body could not be parsed."
        error = validation_failed([{"loc": ["body"], "msg": detail}])
        return await _on_domain_error(request, error)
    known = _GENERIC_BY_STATUS.get(exc.status_code)
    code = known.code if known else "http_error"
    title = known.title if known else "HTTP error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else title
    return problem_response(exc.status_code, code, title, detail, headers=dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "internal_error", "Internal server error", "An unexpected error occurred."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: every error it can return, with an example per code."""
    by_status: dict[int, list[type[DomainError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
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
