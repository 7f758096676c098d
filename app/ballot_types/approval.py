"""`approval`: the voter approves between `min_projects` and `max_projects` accepted
proposals (`max_projects` is required); cost is not limited."""

from typing import Literal, Self

from pydantic import model_validator

from app.ballot_types.base import BallotKind, BallotSettings
from app.core.i18n import N_


class ApprovalSettings(BallotSettings):
    type: Literal["approval"] = "approval"

    @model_validator(mode="after")
    def _needs_a_maximum(self) -> Self:
        if self.max_projects is None:
            raise ValueError(N_("an approval ballot needs max_projects"))
        return self


class Approval(BallotKind[ApprovalSettings]):
    name = "approval"
    settings_model = ApprovalSettings
    body_field = "proposal_ids"
    pabulib_vote_type = "approval"
