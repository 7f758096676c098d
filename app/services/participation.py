"""One account's standing in one process: what it may do now and, if not, why.

Rules enforced here:
- the answer comes from the same function (`eligibility.reasons`) that decides a submission's
  or a ballot's `not_eligible`, so the page and the error can never disagree;
- `reasons` is empty when the account may submit or vote now; otherwise it holds every reason
  for the action of the process's phase (submitting in `submission`, voting in any other
  phase, so a resident learns before voting opens that a code or a profile field is missing),
  `phase` included when the process is not in that action's phase or window;
- drafts stay invisible (404) to everyone but admins, as everywhere.
"""

from datetime import datetime

from sqlmodel import Session, select

from app.models.ballot import BallotVoter
from app.models.base import utcnow
from app.models.participation import Participation
from app.models.process import Phase
from app.models.user import User
from app.services import ballots, eligibility, processes


def standing(
    session: Session, *, user: User, process_id: int, now: datetime | None = None
) -> Participation:
    now = now or utcnow()
    process = processes.get_visible(session, process_id=process_id, viewer=user)
    assert process.id is not None
    assert user.id is not None
    claimed = ballots.holds_code(session, process_id=process.id, user_id=user.id)
    to_submit = eligibility.reasons(user, process, now=now, action="submit", holds_code=claimed)
    to_vote = eligibility.reasons(user, process, now=now, action="vote", holds_code=claimed)
    has_ballot = (
        session.exec(
            select(BallotVoter.ballot_id).where(
                BallotVoter.process_id == process.id, BallotVoter.voter_id == user.id
            )
        ).first()
        is not None
    )
    can_submit, can_vote = not to_submit, not to_vote
    if can_submit or can_vote:
        reasons = []
    else:
        reasons = to_submit if process.phase == Phase.submission else to_vote
    return Participation(
        can_submit=can_submit,
        can_vote=can_vote,
        reasons=reasons,
        has_ballot=has_ballot,
        voting_code_required=process.require_voting_code,
        voting_code_claimed=claimed,
    )
