"""Voting codes: the single-use code in each household's letter (like Amsterdam's "stemcode").

Rules enforced here:
- codes are 16 characters from an alphabet without look-alikes (no 0/O, 1/I/L), printed as
  XXXX-XXXX-XXXX-XXXX, shown once as CSV and stored only as HMAC-SHA-256 under a key derived
  from SECRET_KEY, so a claim is one indexed lookup and a database copy reveals no code;
- codes are compared ignoring case, spaces and dashes;
- a claim is checked in the contract's order: `too_many_attempts` (the account's wrong codes
  for this process within the window), `code_already_claimed` (it holds another code; the
  same code again is a success), `invalid_code` (unknown; counted as a wrong attempt, and
  the count is kept although the request fails: it is written in a transaction of its
  own), `code_used` (claimed by someone else);
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

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.errors import (
    CodeAlreadyClaimed,
    CodeUsed,
    DomainError,
    InvalidCode,
    InvalidPhase,
)
from app.core.i18n import _t
from app.models.ballot import CodeClaimed, VotingCode
from app.models.base import utcnow
from app.models.process import Phase
from app.models.user import Role, User
from app.services import audit, ballots, processes, throttle
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
        raise InvalidPhase(_t("Voting codes cannot be made for a closed process."))
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


def _open_for_claims(session: Session, *, process_id: int, actor: User, now: datetime) -> None:
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    state = processes.voting_state(process, now)
    if state == processes.Voting.closed:
        raise ballots.voting_closed(process, state)


def claim(
    session: Session,
    *,
    actor: User,
    process_id: int,
    code: str,
    key: bytes,
    address: str,
    guard: throttle.Guard,
    now: datetime | None = None,
) -> CodeClaimed:
    """Bind a code to the account, throttled per account and process (wrong codes) and per
    address (every claim).

    The attempt is counted up front in both buckets, atomically and in a transaction of
    its own (see app/services/throttle.py), so parallel guesses cannot pass the check
    together and a wrong code stays counted although the request fails. Any outcome but
    `invalid_code` gives the wrong-code count back."""
    now = now or utcnow()
    assert actor.id is not None
    _open_for_claims(session, process_id=process_id, actor=actor, now=now)
    limits = guard.limits
    wrong_codes = guard.bucket("claim-account", str(actor.id), str(process_id))
    wrong_code, _ = throttle.reserve(
        session,
        guard,
        [
            (wrong_codes, limits.claim_account),
            (guard.bucket("claim-address", address), limits.claim_address),
        ],
        now=now,
        what=_t("voting-code claims"),
    )
    try:
        # Again, in the claim's own transaction: voting may have closed meanwhile.
        _open_for_claims(session, process_id=process_id, actor=actor, now=now)
        _bind(
            session,
            actor_id=actor.id,
            process_id=process_id,
            wanted=code_hash(key, process_id, code),
            now=now,
        )
    except InvalidCode:
        raise
    except DomainError:
        throttle.refund_failed(session, guard, [wrong_code])
        raise
    throttle.refund(session, [wrong_code])
    return CodeClaimed(process_id=process_id, claimed=True)


def _bind(session: Session, *, actor_id: int, process_id: int, wanted: str, now: datetime) -> None:
    """Checks in the contract's order after the throttle; returns when the account holds
    the code."""
    held = session.exec(
        select(VotingCode).where(
            VotingCode.process_id == process_id, VotingCode.claimed_by == actor_id
        )
    ).first()
    if held is not None:
        if held.code_hash == wanted:
            return
        raise CodeAlreadyClaimed(_t("You already hold a voting code for this process."))
    row = session.exec(
        select(VotingCode)
        .where(VotingCode.process_id == process_id, VotingCode.code_hash == wanted)
        .with_for_update()
    ).first()
    if row is None:
        raise InvalidCode(_t("That is not a voting code of this process."))
    if row.claimed_at is not None:
        raise CodeUsed(_t("This voting code has already been used."))
    row.claimed_by, row.claimed_at = actor_id, now
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # The same account claimed another code at the same moment; that one won.
        raise CodeAlreadyClaimed(_t("You already hold a voting code for this process.")) from None
