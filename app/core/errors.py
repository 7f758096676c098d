"""Domain errors: plain Python, no HTTP.

Services raise these; they say what went wrong (`code`, `title`, a sentence in `detail`)
and of which kind (`Kind`), never which HTTP status. `app/core/problems.py`, at the edge,
renders each kind as a status and every error as RFC 9457 problem+json.

A field error (`InvalidInput.fields`) names the field by its path inside the request body;
the edge adds where the body is.

Titles and details are English, marked for the Dutch catalog (`app/core/i18n.py`): a title
with `N_`, a detail as `_t("... {name} ...", name=value)`; the edge translates them.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from app.core.i18n import N_, Language, Message, _t


class Kind(StrEnum):
    """What sort of failure: the edge maps each to one HTTP status."""

    unauthenticated = "unauthenticated"
    forbidden = "forbidden"
    not_found = "not_found"
    not_allowed = "not_allowed"
    conflict = "conflict"
    gone = "gone"
    too_large = "too_large"
    timeout = "timeout"
    invalid = "invalid"
    throttled = "throttled"
    unavailable = "unavailable"  # try again shortly (`retry_after` says when)


class Reason(StrEnum):
    """Why an account may not submit or vote now: every one that applies, not the first."""

    postcode = "postcode"  # the postcode is missing or outside the process's prefixes
    age = "age"  # the birth year is missing or too recent for `min_age`
    voting_code = "voting_code"  # the process needs a claimed voting code (voting only)
    verified_email = "verified_email"  # the process needs a verified e-mail address
    phase = "phase"  # the process is not in the phase (or window) the action needs


class VotingClosedReason(StrEnum):
    """The `reason` of a `voting_closed` problem."""

    not_open_yet = "not_open_yet"
    closed = "closed"


@dataclass(frozen=True)
class FieldError:
    """One invalid field: its path in the body, a sentence, and pydantic's error type."""

    loc: tuple[str | int, ...]
    msg: str | Message
    type: str = "value_error"
    ctx: Mapping[str, Any] | None = field(default=None)

    def text(self, language: Language) -> str:
        """`msg` in `language` (pydantic's by its `type` and `ctx`)."""
        from app.core.field_messages import field_text

        return field_text(self.msg, self.type, self.ctx, language)


class DomainError(Exception):
    """A failure a client can act on. Subclasses fix `kind`, `code` and `title`."""

    kind: ClassVar[Kind] = Kind.invalid
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | Message | None = None,
        *,
        retry_after: int | None = None,
        fields: Sequence[FieldError] | None = None,
        extra: Mapping[str, Any] | None = None,
    ):
        # `message` is translated for the client; `detail` is its English, for logs.
        self.message: str | Message = detail or self.title
        self.detail = str(self.message)
        super().__init__(self.detail)
        # Seconds until a throttled request may be tried again.
        self.retry_after = retry_after
        self.fields = list(fields) if fields is not None else None
        # Machine-readable members the problem body adds (e.g. `reasons`).
        self.extra = dict(extra or {})


# Every error made by `_error`, in order: the OpenAPI document lists their codes as the
# enum of `Problem.code`, so a client can switch on them exhaustively.
CATALOGUE: list[type[DomainError]] = []


def _error(kind: Kind, code: str, title: str) -> type[DomainError]:
    error = type(
        "".join(part.capitalize() for part in code.split("_")),
        (DomainError,),
        {"kind": kind, "code": code, "title": title},
    )
    CATALOGUE.append(error)
    return error


# One line per error: the whole catalogue a client may meet, in one place.
NotAuthenticated = _error(Kind.unauthenticated, "not_authenticated", N_("Not authenticated"))
InvalidCredentials = _error(Kind.unauthenticated, "invalid_credentials", N_("Invalid credentials"))
Forbidden = _error(Kind.forbidden, "forbidden", N_("Forbidden"))
NotEligible = _error(Kind.forbidden, "not_eligible", N_("Not eligible"))
NotFound = _error(Kind.not_found, "not_found", N_("Not found"))
MethodNotAllowed = _error(Kind.not_allowed, "method_not_allowed", N_("Method not allowed"))
EmailTaken = _error(Kind.conflict, "email_taken", N_("Email already registered"))
LastAdmin = _error(Kind.conflict, "last_admin", N_("The last admin cannot be demoted"))
InvalidPhase = _error(Kind.conflict, "invalid_phase", N_("Not possible in this phase"))
InvalidTransition = _error(Kind.conflict, "invalid_transition", N_("Invalid phase transition"))
ProcessLocked = _error(Kind.conflict, "process_locked", N_("Process is locked"))
InvalidStatus = _error(Kind.conflict, "invalid_status", N_("Not possible in this status"))
PayloadTooLarge = _error(Kind.too_large, "payload_too_large", N_("Payload too large"))
RequestTimeout = _error(Kind.timeout, "request_timeout", N_("Request body too slow"))
ValidationFailed = _error(Kind.invalid, "validation_error", N_("Invalid input"))
TooManyAttempts = _error(Kind.throttled, "too_many_attempts", N_("Too many attempts"))
# Voting
VotingClosed = _error(Kind.conflict, "voting_closed", N_("Voting is closed"))
NoBallot = _error(Kind.not_found, "no_ballot", N_("No ballot"))
UnknownReceipt = _error(Kind.not_found, "unknown_receipt", N_("Unknown receipt"))
CodeUsed = _error(Kind.conflict, "code_used", N_("Voting code already used"))
CodeAlreadyClaimed = _error(
    Kind.conflict, "code_already_claimed", N_("A voting code is already claimed")
)
InvalidCode = _error(Kind.invalid, "invalid_code", N_("Unknown voting code"))
UnknownProposal = _error(Kind.invalid, "unknown_proposal", N_("Not a proposal on this ballot"))
DuplicateProposal = _error(Kind.invalid, "duplicate_proposal", N_("Proposal chosen twice"))
InvalidPoints = _error(
    Kind.invalid, "invalid_points", N_("Points must be whole numbers of at least 1")
)
TooFewProjects = _error(Kind.invalid, "too_few_projects", N_("Too few proposals chosen"))
TooManyProjects = _error(Kind.invalid, "too_many_projects", N_("Too many proposals chosen"))
BudgetExceeded = _error(Kind.invalid, "budget_exceeded", N_("Over the budget"))
BelowMinBudgetShare = _error(
    Kind.invalid, "below_min_budget_share", N_("Too little of the budget used")
)
PointsExceeded = _error(Kind.invalid, "points_exceeded", N_("Too many points"))
# Results
ResultsAlreadyPublished = _error(
    Kind.conflict, "results_already_published", N_("Results already published")
)
ResultsNotPublished = _error(Kind.not_found, "results_not_published", N_("Results not published"))
AlreadySealed = _error(Kind.conflict, "already_sealed", N_("Already sealed"))
PaperBatchesPending = _error(
    Kind.conflict, "paper_batches_pending", N_("Paper ballots are still being entered")
)
BallotSealed = _error(Kind.gone, "ballot_sealed", N_("Ballots of this process are sealed"))
UnverifiedVoters = _error(Kind.conflict, "unverified_voters", N_("Voters would not be verified"))
InvalidPabulib = _error(Kind.invalid, "invalid_pabulib", N_("Not a pabulib file we can read"))
ElectionTooLarge = _error(
    Kind.invalid, "election_too_large", N_("The election is too large to analyse")
)
Busy = _error(Kind.unavailable, "busy", N_("Busy, try again shortly"))
# Accounts and mail
InvalidToken = _error(Kind.invalid, "invalid_token", N_("Invalid or expired link"))
ProfileLocked = _error(
    Kind.conflict, "profile_locked", N_("Postcode and birth year are locked while your vote counts")
)
# Rounds
GroupLimitReached = _error(
    Kind.conflict, "group_limit_reached", N_("Ballots in as many processes of the group as allowed")
)

# Paper ballots
EntryMismatch = _error(Kind.conflict, "entry_mismatch", N_("The two keyings of the batch differ"))

# Proposal images
TooManyImages = _error(Kind.conflict, "too_many_images", N_("Too many images"))
InvalidImage = _error(Kind.invalid, "invalid_image", N_("Not an image we accept"))


def invalid_input(errors: Iterable[Mapping[str, Any]]) -> DomainError:
    """A `validation_error` naming each field, from pydantic-style error dicts whose `loc`
    is a path inside the body."""
    fields = [
        FieldError(
            loc=tuple(part if isinstance(part, int) else str(part) for part in e.get("loc", ())),
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "value_error")),
            ctx=e.get("ctx"),
        )
        for e in errors
    ]
    first = fields[0] if fields else FieldError(loc=(), msg=_t("invalid input"))
    where = ".".join(str(part) for part in first.loc) or "request"
    if len(fields) > 1:
        return ValidationFailed(
            _t("{where}: {msg} (and {more} more)", where=where, msg=first, more=len(fields) - 1),
            fields=fields,
        )
    return ValidationFailed(_t("{where}: {msg}", where=where, msg=first), fields=fields)
