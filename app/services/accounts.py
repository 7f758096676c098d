"""Accounts: registration, sign-in, tokens, roles and passwords.

Rules enforced here:
- emails are unique after normalisation (trimmed, lower-cased); a duplicate is `email_taken`,
  also when two registrations race (the unique constraint decides);
- sign-in with an unknown email costs the same Argon2 work as a wrong password;
- a token is valid only while its `ver` equals the account's token version: changing the
  password or demoting the account retires earlier tokens;
- the last admin cannot be demoted or erased, so a municipality can never lock itself out;
- only admins list accounts;
- sign-in and password changes are throttled without letting others lock the owner out
  (see `issue_token`);
- registration queues a verification mail in its own transaction (the outbox); the rest of
  what a resident does with the account's mail is in app/services/my_account.py.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.core import security
from app.core.db import separate_transaction
from app.core.errors import (
    EmailTaken,
    InvalidCredentials,
    LastAdmin,
    NotAuthenticated,
    NotFound,
)
from app.core.i18n import Message, _t
from app.core.limits import INT32_MAX
from app.models.base import utcnow
from app.models.common import Page
from app.models.mail import MailKind
from app.models.user import (
    DEFAULT_LANGUAGE,
    ROLE_RANK,
    Language,
    Role,
    Token,
    User,
    UserCreate,
    UserPublic,
    normalise_email,
)
from app.services import audit, mail, throttle
from app.services.permissions import require_role
from app.services.throttle import Guard


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalise_email(email))).first()


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 1 <= user_id <= INT32_MAX else None
    if user is None:
        raise NotFound(_t("No user with id {user_id}.", user_id=user_id))
    return user


def register_from(
    session: Session,
    *,
    data: UserCreate,
    address: str,
    guard: Guard,
    language: Language = DEFAULT_LANGUAGE,
    now: datetime | None = None,
) -> User:
    """Self-registration, throttled per client address: every attempt counts, also one that
    fails (a taken email), so the count is kept in a transaction of its own. The account's
    language is the body's, else `language` (from Accept-Language); a verification mail is
    queued with the account."""
    now = now or utcnow()
    throttle.reserve(
        session,
        guard,
        [(guard.bucket("register-address", address), guard.limits.register_address)],
        now=now,
        what=_t("registrations"),
    )
    user = register(session, data=data, language=language)
    mail.enqueue(session, kind=MailKind.verify_email, to=user.email, user_id=user.id, now=now)
    return user


def register(
    session: Session,
    *,
    data: UserCreate,
    role: Role = Role.resident,
    language: Language = DEFAULT_LANGUAGE,
) -> User:
    # Hash before the first statement: on SQLite that statement takes the write lock, and
    # every other writer would wait for Argon2.
    password_hash = security.hash_password(data.password)
    if find_by_email(session, data.email) is not None:
        raise EmailTaken(_t("An account with email {email} already exists.", email=data.email))
    user = User(
        email=data.email,
        password_hash=password_hash,
        display_name=data.display_name,
        role=role,
        postcode=data.postcode,
        birth_year=data.birth_year,
        language=data.language or language,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        # A registration with the same email committed first; the request rolls back.
        raise EmailTaken(
            _t("An account with email {email} already exists.", email=data.email)
        ) from exc
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = find_by_email(session, email)
    if user is None:
        security.burn_password_check(password)
        raise InvalidCredentials(_t("Email or password is wrong."))
    if not security.verify_password(password, user.password_hash):
        raise InvalidCredentials(_t("Email or password is wrong."))
    return user


def issue_token(
    session: Session,
    *,
    email: str,
    password: str,
    key: str,
    expires_minutes: int,
    address: str,
    guard: Guard,
    now: datetime | None = None,
) -> Token:
    """Sign in, throttled so that guessing is limited but nobody can lock the owner out.

    Each attempt is counted up front (see app/services/throttle.py) in the bucket of the
    pair (account, address): few guesses per account from one place. Unless the account
    has signed in successfully from this address lately (a "known" address), it is also
    counted per address (one machine guessing many accounts) and per account from all
    addresses (distributed guessing), with higher caps. So an attacker elsewhere can fill
    only their own pair and the account's global bucket, and the owner at a known address
    still gets in; a NAT full of guessers delays only accounts new to it. A success gives
    its attempt back, clears the pair's failures and marks the address known.

    `session` must only read (the route's session takes no write lock): the password is
    checked outside any write transaction, and every write is a short one of its own.
    """
    now = now or utcnow()
    limits = guard.limits
    email = normalise_email(email)
    pair = guard.bucket("login-pair", email, address)
    known = guard.bucket("login-known", email, address)
    counts = [(pair, limits.login_pair)]
    if not throttle.seen(session, known, now=now):
        counts += [
            (guard.bucket("login-account", email), limits.login_account),
            (guard.bucket("login-address", address), limits.login_address),
        ]
    attempt = throttle.reserve(session, guard, counts, now=now, what=_t("failed sign-ins"))
    user = authenticate(session, email=email, password=password)
    with separate_transaction(session, request="ends") as own:
        throttle.refund(own, attempt)
        throttle.clear(own, pair)
        throttle.mark(own, known, now=now, lasts=limits.login_known)
    assert user.id is not None
    token, lifetime = security.create_access_token(
        user_id=user.id, version=user.token_version, key=key, expires_minutes=expires_minutes
    )
    return Token(access_token=token, expires_in=lifetime)


def user_from_token(session: Session, *, token: str, key: str) -> User:
    try:
        claims = security.decode_access_token(token, key=key)
    except security.AccessTokenRejected as exc:
        raise NotAuthenticated(_t("The access token is invalid or expired.")) from exc
    user = session.get(User, claims.user_id) if claims.user_id <= INT32_MAX else None
    if user is None or user.token_version != claims.version:
        raise NotAuthenticated(_t("The access token is no longer valid; sign in again."))
    return user


def keep_an_admin(session: Session, *, user: User, why: Message) -> None:
    """Refuse (`last_admin`) to take away the admin role of `user` if it is the last admin.

    The admin rows are locked: two admins demoting or erasing each other at once queue
    here, and the second then sees that the first is no longer an admin."""
    if user.role != Role.admin:
        return
    admins = session.exec(select(User.id).where(User.role == Role.admin).with_for_update())
    if len(admins.all()) <= 1:
        raise LastAdmin(_t("This is the only admin; make another admin before {why}.", why=why))


def change_role(session: Session, *, actor: User, user_id: int, role: Role) -> User:
    user = get_user(session, user_id)
    require_role(actor, Role.admin)
    before = Role(user.role)
    if role != Role.admin:
        keep_an_admin(session, user=user, why=_t("demoting it"))
    if ROLE_RANK[role] < ROLE_RANK[before]:
        user.token_version += 1
    user.role = role
    session.add(user)
    session.flush()
    if role != before:
        audit.record(
            session,
            actor=actor,
            action="user.role_changed",
            target_type="user",
            target_id=user.id,
            before={"role": before.value},
            after={"role": role.value},
        )
    return user


def list_users(
    session: Session, *, actor: User, q: str | None, role: Role | None, limit: int, offset: int
) -> Page[UserPublic]:
    """Accounts for an admin to find (e.g. the id `change_role` needs), by id; `q` matches
    a substring of the e-mail or the display name, ignoring case. Erased accounts hold
    nothing to find and are left out."""
    require_role(actor, Role.admin)
    where: list[ColumnElement[bool]] = [col(User.erased_at).is_(None)]
    if role is not None:
        where.append(col(User.role) == role)
    if q and q.strip():
        needle = q.strip().lower()
        where.append(
            func.lower(User.email).contains(needle, autoescape=True)
            | func.lower(User.display_name).contains(needle, autoescape=True)
        )
    total = session.exec(select(func.count()).select_from(User).where(*where)).one()
    users = session.exec(
        select(User).where(*where).order_by(col(User.id)).limit(limit).offset(offset)
    ).all()
    return Page(
        items=[UserPublic.model_validate(user) for user in users],
        total=total,
        limit=limit,
        offset=offset,
    )


def change_password(
    session: Session,
    *,
    user: User,
    current: str,
    new: str,
    guard: Guard,
    now: datetime | None = None,
) -> None:
    """Change the password, throttled like sign-in (wrong current passwords per account).

    Both Argon2 runs (checking the current password, hashing the new one) happen before
    the write transaction starts, so SQLite's write lock is not held meanwhile. The write
    then checks that the hash it verified against is still the stored one: a password
    changed in between makes this attempt wrong."""
    now = now or utcnow()
    assert user.id is not None
    bucket = guard.bucket("password", str(user.id))
    attempt = throttle.reserve(
        session,
        guard,
        [(bucket, guard.limits.password_change)],
        now=now,
        what=_t("wrong passwords"),
    )
    verified = user.password_hash
    if not security.verify_password(current, verified):
        raise InvalidCredentials(_t("The current password is wrong."))
    new_hash = security.hash_password(new)
    stored = session.get(User, user.id, with_for_update=True, populate_existing=True)
    if stored is None or stored.password_hash != verified:
        raise InvalidCredentials(_t("The current password is wrong."))
    stored.password_hash = new_hash
    stored.token_version += 1
    session.add(stored)
    throttle.refund(session, attempt)
    throttle.clear(session, bucket)
    session.flush()


def ensure_admin(session: Session, *, email: str, password: str) -> tuple[User, bool]:
    """Make `email` an admin with `password`; returns the user and whether it was created."""
    user = find_by_email(session, email)
    if user is None:
        data = UserCreate(email=email, password=password, display_name="Administrator")
        user = register(session, data=data, role=Role.admin)
        created, before = True, None
    else:
        UserCreate(email=email, password=password, display_name=user.display_name)
        created, before = False, {"role": user.role}
        user.password_hash = security.hash_password(password)
        user.role = Role.admin
        user.token_version += 1
        session.add(user)
        session.flush()
    # The command line has no actor: the entry says so with a null actor.
    audit.record(
        session,
        actor=None,
        action="user.made_admin",
        target_type="user",
        target_id=user.id,
        before=before,
        after={"role": Role.admin.value},
    )
    return user, created
