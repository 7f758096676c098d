"""What one account may do in one process now, in codes a UI can act on."""

from enum import StrEnum

from pydantic import BaseModel, Field


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


class Participation(BaseModel):
    """`GET /processes/{process_id}/me`: the signed-in account's standing in one process."""

    can_submit: bool = Field(description="Whether a proposal submitted now would be accepted.")
    can_vote: bool = Field(description="Whether a ballot cast now would be accepted.")
    reasons: list[Reason] = Field(
        description="Every reason the account may not submit or vote now; `phase` when the "
        "process is in neither submission nor open voting.",
        examples=[["voting_code"]],
    )
    has_ballot: bool
    voting_code_required: bool
    voting_code_claimed: bool
