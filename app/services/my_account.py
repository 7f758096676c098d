"""What a resident does with their own account: verify the e-mail address, reset a
forgotten password, edit the profile, sign out everywhere.

Rules enforced here:
- a signed-in account may ask for a new verification link, throttled per account (every
  request counts); an address already verified gets none. Following a link sets
  `email_verified` (app/services/links.py: single use, 48 hours, newest link only);
- a password-reset request answers the same, does the same work and writes the same one
  outbox row whether or not the address has an account (the sender resolves it), and is
  throttled per e-mail and per client address; the reset (1 hour, single use, newest link
  only) sets the password, retires every earlier access token and marks the address
  verified, since the link proved the mailbox;
- signing out retires every token of the account, on every device;
- profile edits: a new e-mail is unverified until its own link is followed (`email_taken`
  when another account has it); postcode and birth year cannot change while the account has
  a ballot in a process in `voting` (`profile_locked`), so eligibility cannot be switched
  after voting, nor the e-mail while that process requires a verified e-mail (the ballot
  counted for that mailbox; one mailbox, one vote).
"""

from datetime import datetime

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core import security
from app.core.db import open_session
from app.core.errors import EmailTaken, InvalidToken, NotAuthenticated, ProfileLocked
from app.core.i18n import _t
from app.models.ballot import BallotVoter
from app.models.base import utcnow
from app.models.mail import MailKind, TokenPurpose
from app.models.process import Phase, Process
from app.models.user import User, UserUpdate, normalise_email
from app.services import links, mail, throttle
from app.services.accounts import find_by_email
from app.services.throttle import Guard

_INVALID_LINK = _t("This link is unknown, already used or expired; ask for a new one.")


def request_verification(
    session: Session, *, user: User, guard: Guard, now: datetime | None = None
) -> None:
    """Queue a new verification link for the account's address."""
    now = now or utcnow()
    assert user.id is not None
    bucket = guard.bucket("verify-request", str(user.id))
    throttle.reserve(
        session, guard, [(bucket, guard.limits.verify_request)], now=now, what=_t("link requests")
    )
    if not user.email_verified:
        mail.enqueue(session, kind=MailKind.verify_email, to=user.email, user_id=user.id, now=now)


def verify_email(session: Session, *, token: str, now: datetime | None = None) -> User:
    user = links.redeem(session, raw=token, purpose=TokenPurpose.verify_email, now=now or utcnow())
    user.email_verified = True
    session.add(user)
    session.flush()
    return user


def request_password_reset(
    session: Session, *, email: str, address: str, guard: Guard, now: datetime | None = None
) -> None:
    """Queue a reset link for `email`.

    Whether an account has this address is not looked up here: every request does the same
    throttle work and the same one INSERT, so neither the answer nor its timing can tell.
    The sender drops rows naming no account (see app/services/mail.py)."""
    now = now or utcnow()
    email = normalise_email(email)
    limits = guard.limits
    throttle.reserve(
        session,
        guard,
        [
            (guard.bucket("reset-email", email), limits.reset_email),
            (guard.bucket("reset-address", address), limits.reset_address),
        ],
        now=now,
        what=_t("password-reset requests"),
    )
    mail.enqueue(session, kind=MailKind.password_reset, to=email, user_id=None, now=now)


def reset_password(
    session: Session, *, engine: Engine, token: str, new_password: str, now: datetime | None = None
) -> None:
    """Set the password from a reset link.

    The link is checked first in a read-only transaction of its own, so a bad token costs no
    Argon2 run; the hash is made before the request's write transaction starts (on SQLite it
    would hold the write lock meanwhile); the redemption then checks the link again,
    atomically."""
    now = now or utcnow()
    with open_session(engine, write=False) as peek:
        if not links.is_live(peek, raw=token, purpose=TokenPurpose.password_reset, now=now):
            raise InvalidToken(_INVALID_LINK)
    new_hash = security.hash_password(new_password)
    user = links.redeem(session, raw=token, purpose=TokenPurpose.password_reset, now=now)
    user.password_hash = new_hash
    user.token_version += 1
    user.email_verified = True
    session.add(user)
    session.flush()


def logout(session: Session, *, user: User) -> None:
    """Retire every token of the account, on every device: tokens carry no id of their own
    to revoke one by one; they are checked against the account's token version."""
    session.execute(
        update(User).where(col(User.id) == user.id).values(token_version=User.token_version + 1)
    )


def _has_ballot_in_voting(session: Session, user_id: int, *, verified_email: bool = False) -> bool:
    """Whether the account has a ballot in a process in `voting` (with `verified_email`:
    in one that requires a verified e-mail address)."""
    query = (
        select(BallotVoter.ballot_id)
        .join(Process, col(Process.id) == col(BallotVoter.process_id))
        .where(BallotVoter.voter_id == user_id, Process.phase == Phase.voting)
    )
    if verified_email:
        query = query.where(col(Process.require_verified_email).is_(True))
    return session.exec(query.limit(1)).first() is not None


def update_profile(
    session: Session, *, user: User, data: UserUpdate, guard: Guard, now: datetime | None = None
) -> User:
    """Change the fields sent.

    A change of e-mail mails the new address, so it is counted first (every attempt, in a
    transaction of its own): per account, and per new address from all accounts together.

    The account row is locked first: on PostgreSQL a cast inserting its link row right now
    holds a key-share lock on it (the link's foreign key), so the check for ballots runs
    after that cast committed. (A cast that checked eligibility just before this change
    commits and inserts just after keeps the ballot it was eligible for; the next change is
    then refused.)"""
    now = now or utcnow()
    assert user.id is not None
    changes = data.model_dump(exclude_unset=True)
    if changes.get("email") not in (None, user.email):
        limits = guard.limits
        throttle.reserve(
            session,
            guard,
            [
                (guard.bucket("email-change", str(user.id)), limits.email_change_account),
                (guard.bucket("email-change-to", changes["email"]), limits.email_change_target),
            ],
            now=now,
            what=_t("e-mail changes"),
        )
    stored = session.get(User, user.id, with_for_update=True, populate_existing=True)
    if stored is None:
        raise NotAuthenticated(_t("The access token is no longer valid; sign in again."))
    locked: list[str] = [
        name
        for name in ("postcode", "birth_year")
        if name in changes and changes[name] != getattr(stored, name)
    ]
    if locked and not _has_ballot_in_voting(session, user.id):
        locked = []
    # The mailbox a verified-e-mail process counted this ballot for: freeing it would let
    # a second account vote from the same inbox.
    email_change = changes.get("email") not in (None, stored.email)
    if email_change and _has_ballot_in_voting(session, user.id, verified_email=True):
        locked.append("email")
    if locked:
        raise ProfileLocked(
            _t(
                "{fields} cannot change while you have a ballot in a process that is voting: your "
                "eligibility was checked with the current values.",
                fields=" and ".join(locked),
            ),
            extra={"fields": locked},
        )
    new_email = changes.pop("email", None)
    for name, value in changes.items():
        setattr(stored, name, value)
    if new_email is not None and new_email != stored.email:
        if find_by_email(session, new_email) is not None:
            raise EmailTaken(_t("An account with email {email} already exists.", email=new_email))
        stored.email = new_email
        stored.email_verified = False
        session.add(stored)
        try:
            session.flush()
        except IntegrityError as exc:
            # Another account took the address meanwhile; the request rolls back.
            raise EmailTaken(
                _t("An account with email {email} already exists.", email=new_email)
            ) from exc
        mail.enqueue(session, kind=MailKind.verify_email, to=new_email, user_id=user.id, now=now)
    session.add(stored)
    session.flush()
    return stored
