"""A resident's own data: export it all, or erase it.

Erasure empties the account of every personal detail (email, name, postcode, birth year,
password) and retires its tokens; the row stays so that what the resident wrote is still
shown, by a "former resident". Supports are removed. A ballot in a process where voting is
open is withdrawn; a ballot whose vote has closed stays, unlinked from the account, so
published results never change. The last admin cannot erase itself.

Mail: the export lists the account's mails (metadata: address, kind, status, times; the
outbox holds no bodies or tokens). Erasure deletes every mail of the account or to its
address, pending or sent, and its link tokens.
"""

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.core import security
from app.core.i18n import _t
from app.models.ballot import Ballot, BallotVoter, VotingCode
from app.models.base import utcnow
from app.models.mail import mail_public
from app.models.process import Process
from app.models.proposal import Comment, Proposal, Support
from app.models.user import FORMER_RESIDENT, Role, User, UserPublic
from app.services import accounts, links, mail, throttle
from app.services.processes import is_voting_open
from app.services.throttle import Guard


def export(session: Session, *, user: User) -> dict[str, Any]:
    """Everything held about the account, as the resident may ask under the GDPR."""
    proposals = session.exec(select(Proposal).where(Proposal.author_id == user.id)).all()
    comments = session.exec(select(Comment).where(Comment.author_id == user.id)).all()
    supports = session.exec(select(Support.proposal_id).where(Support.user_id == user.id)).all()
    ballots = session.exec(
        select(Ballot)
        .join(BallotVoter, col(BallotVoter.ballot_id) == col(Ballot.id))
        .where(BallotVoter.voter_id == user.id)
        .order_by(col(Ballot.process_id))
    ).all()
    codes = session.exec(
        select(VotingCode.process_id, VotingCode.claimed_at).where(VotingCode.claimed_by == user.id)
    ).all()
    return {
        "account": UserPublic.model_validate(user).model_dump(mode="json"),
        "proposals": [
            {k: v for k, v in p.model_dump(mode="json").items() if k != "author_id"}
            for p in proposals
        ],
        "comments": [
            {
                "id": c.id,
                "proposal_id": c.proposal_id,
                "body": c.body,
                "created_at": c.created_at.isoformat(),
            }
            for c in comments
        ],
        "supported_proposal_ids": sorted(supports),
        "ballots": [
            {
                "process_id": b.process_id,
                "choices": b.items,
                "total_cost": b.total_cost,
                "cast_at": b.cast_at.isoformat(),
                "receipt": b.receipt,
            }
            for b in ballots
        ],
        "voting_codes": [
            {"process_id": pid, "claimed_at": at.isoformat() if at else None} for pid, at in codes
        ],
        "mails": [
            mail_public(row).model_dump(mode="json") for row in mail.of_account(session, user=user)
        ],
    }


def erase(session: Session, *, user: User, guard: Guard, now: datetime | None = None) -> None:
    now = now or utcnow()
    accounts.keep_an_admin(session, user=user, why=_t("erasing it"))
    # Throttle buckets name the account by an HMAC of its email or id: pseudonyms, still
    # personal data, and of no use once the account is gone.
    assert user.id is not None
    throttle.forget(session, guard, [user.email, str(user.id)])
    # Before the address is overwritten: pending mails to it must not go out any more.
    mail.forget(session, user=user)
    links.forget(session, user_id=user.id)
    # The processes' rows are locked as a cast locks them (KEY SHARE), so a close cannot
    # commit between "voting is open" and the withdrawal it decides. Every link goes, the
    # link rows before the ballots (the order a cast takes them); a ballot whose vote has
    # closed stays, linked to no one.
    voted = session.exec(
        select(BallotVoter.ballot_id, Process)
        .join(Process, col(Process.id) == col(BallotVoter.process_id))
        .where(BallotVoter.voter_id == user.id)
        .with_for_update(read=True, key_share=True, of=Process)
    ).all()
    session.execute(delete(BallotVoter).where(col(BallotVoter.voter_id) == user.id))
    withdrawn = [bid for bid, process in voted if bid is not None and is_voting_open(process, now)]
    if withdrawn:
        session.execute(delete(Ballot).where(col(Ballot.id).in_(withdrawn)))
    # Ballots written before revision 0013 still name their voter in the deprecated column.
    session.execute(update(Ballot).where(col(Ballot.voter_id) == user.id).values(voter_id=None))
    session.execute(delete(Support).where(col(Support.user_id) == user.id))
    # A claimed code stays used (claimed_at), but no longer names the account.
    session.execute(
        update(VotingCode).where(col(VotingCode.claimed_by) == user.id).values(claimed_by=None)
    )
    session.execute(
        update(Proposal).where(col(Proposal.author_id) == user.id).values(author_id=None)
    )
    session.execute(update(Comment).where(col(Comment.author_id) == user.id).values(author_id=None))
    user.email = f"erased-{user.id}@erased.invalid"
    user.display_name = FORMER_RESIDENT
    user.postcode = None
    user.birth_year = None
    user.role = Role.resident
    user.password_hash = security.hash_password(secrets.token_urlsafe(32))
    user.token_version += 1
    user.erased_at = now
    session.add(user)
    session.flush()
