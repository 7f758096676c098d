"""What one account may do in one process now, in codes a UI can act on."""

from pydantic import BaseModel, Field

from app.core.errors import Reason


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
