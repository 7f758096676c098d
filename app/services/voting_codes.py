"""Voting codes: the single-use code in each household's letter (like Amsterdam's "stemcode").

Rules enforced here:
- codes are 16 characters from an alphabet without look-alikes (no 0/O, 1/I/L), printed as
  XXXX-XXXX-XXXX-XXXX, shown once as CSV and stored only as HMAC-SHA-256 under a key derived
  from SECRET_KEY, so a claim is one indexed lookup and a database copy reveals no code;
- codes are compared ignoring case, spaces and dashes;
- a claim is checked in the contract's order: `too_many_attempts` (the account's wrong codes
  for this process within the window), `code_already_claimed` (it holds another code; the
  same code again is a success), `invalid_code` (unknown; counted as a wrong attempt, and
  the count is kept although the request fails), `code_used` (claimed by someone else);
- claiming is possible until voting closes (`voting_closed` after); one code per account
  per process is a database constraint;
- claims are also throttled per client address (every attempt counts), so one machine
  cannot guess codes through many accounts.
"""

import csv
import hashlib
import hmac
import io
import secrets
from datetime import datetime

from sqlalchemy import func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core.errors import (
    CodeAlreadyClaimed,
    CodeUsed,
    InvalidCode,
    InvalidPhase,
    VotingClosed,
)
from app.models.ballot import CodeClaimed, CodeClaimFailure, VotingCode
from app.models.base import utcnow
from app.models.process import Phase
from app.models.user import Role, User
from app.services import audit, processes, throttle
from app.services.permissions import require_role

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16


def normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def code_key(signing_key: str) -> bytes:
    """A key of its own for codes, derived from SECRET_KEY (domain-separated from tokens)."""
    return hmac.new(signing_key.encode(), b"wijkbudget voting codes v1", hashlib.sha256).digest()


def code_hash(key: bytes, process_id: int, code: str) -> str:
    message = f"{process_id}:{normalise(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def generate(session: Session, *, actor: User, process_id: int, count: int, key: bytes) -> str:
    """Make `count` new codes for the process; returns them once, as CSV with a `code` column."""
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    require_role(actor, Role.admin)
    if process.phase == Phase.closed:
        raise InvalidPhase("Voting codes cannot be made for a closed process.")
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_code())
    session.execute(
        insert(VotingCode),
        [
            {"process_id": process_id, "code_hash": code_hash(key, process_id, code)}
            for code in codes
        ],
    )
    audit.record(
        session,
        actor=actor,
        action="voting_codes.generated",
        target_type="process",
        target_id=process_id,
        process_id=process_id,
        after={"count": count},
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code"])
    writer.writerows([code] for code in sorted(codes))
    return out.getvalue()


def _refuse_after_wrong_codes(
    session: Session, *, process_id: int, user_id: int, now: datetime, rule: throttle.Limit
) -> None:
    count, oldest = session.exec(
        select(func.count(), func.min(CodeClaimFailure.at)).where(
            CodeClaimFailure.process_id == process_id,
            CodeClaimFailure.user_id == user_id,
            col(CodeClaimFailure.at) > now - rule.window,
        )
    ).one()
    throttle.refuse_beyond(rule, count=count, oldest=oldest, now=now, what="wrong codes")


def claim(
    session: Session,
    *,
    actor: User,
    process_id: int,
    code: str,
    key: bytes,
    address: str,
    limits: throttle.AbuseLimits,
    now: datetime | None = None,
) -> CodeClaimed:
    now = now or utcnow()
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    if processes.voting_state(process, now) == processes.Voting.closed:
        raise VotingClosed("Voting has closed for this process.")
    assert actor.id is not None
    _refuse_after_wrong_codes(
        session, process_id=process_id, user_id=actor.id, now=now, rule=limits.claim_account
    )
    origin = f"claim-address:{address}"
    throttle.check(session, origin, limits.claim_address, now=now, what="voting-code claims")
    throttle.record(session, origin, limits.claim_address, now=now)
    wanted = code_hash(key, process_id, code)
    held = session.exec(
        select(VotingCode).where(
            VotingCode.process_id == process_id, VotingCode.claimed_by == actor.id
        )
    ).first()
    if held is not None:
        if held.code_hash == wanted:
            return CodeClaimed(process_id=process_id, claimed=True)
        raise CodeAlreadyClaimed(
            "You already hold a voting code for this process.", keep_changes=True
        )
    row = session.exec(
        select(VotingCode)
        .where(VotingCode.process_id == process_id, VotingCode.code_hash == wanted)
        .with_for_update()
    ).first()
    if row is None:
        session.add(CodeClaimFailure(process_id=process_id, user_id=actor.id, at=now))
        session.flush()
        raise InvalidCode("That is not a voting code of this process.", keep_changes=True)
    if row.claimed_at is not None:
        raise CodeUsed("This voting code has already been used.", keep_changes=True)
    row.claimed_by, row.claimed_at = actor.id, now
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # The same account claimed another code at the same moment; that one won.
        raise CodeAlreadyClaimed("You already hold a voting code for this process.") from None
    return CodeClaimed(process_id=process_id, claimed=True)
