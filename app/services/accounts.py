"""Accounts: registration, sign-in, tokens, roles and passwords.

Rules enforced here:
- emails are unique after normalisation (trimmed, lower-cased); a duplicate is `email_taken`,
  also when two registrations race (the unique constraint decides);
- sign-in with an unknown email costs the same Argon2 work as a wrong password;
- a token is valid only while its `ver` equals the account's token version: changing the
  password or demoting the account retires earlier tokens;
- the last admin cannot be demoted, so a municipality can never lock itself out.
"""

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core import security
from app.core.errors import (
    EmailTaken,
    InvalidCredentials,
    LastAdmin,
    NotAuthenticated,
    NotFound,
)
from app.models.base import INT32_MAX, utcnow
from app.models.user import ROLE_RANK, Role, Token, User, UserCreate, normalise_email
from app.services import audit, throttle
from app.services.permissions import require_role
from app.services.throttle import AbuseLimits


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == normalise_email(email))).first()


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 1 <= user_id <= INT32_MAX else None
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def register_from(
    session: Session,
    *,
    data: UserCreate,
    address: str,
    limits: AbuseLimits,
    now: datetime | None = None,
) -> User:
    """Self-registration, throttled per client address (every attempt counts)."""
    now = now or utcnow()
    bucket = f"register-address:{address}"
    throttle.check(session, bucket, limits.register_address, now=now, what="registrations")
    throttle.record(session, bucket, limits.register_address, now=now)
    try:
        return register(session, data=data)
    except EmailTaken as exc:
        exc.keep_changes = True
        raise


def register(session: Session, *, data: UserCreate, role: Role = Role.resident) -> User:
    if find_by_email(session, data.email) is not None:
        raise EmailTaken(f"An account with email {data.email} already exists.")
    user = User(
        email=data.email,
        password_hash=security.hash_password(data.password),
        display_name=data.display_name,
        role=role,
        postcode=data.postcode,
        birth_year=data.birth_year,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise EmailTaken(f"An account with email {data.email} already exists.") from exc
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = find_by_email(session, email)
    if user is None:
        security.burn_password_check(password)
        raise InvalidCredentials("Email or password is wrong.")
    if not security.verify_password(password, user.password_hash):
        raise InvalidCredentials("Email or password is wrong.")
    return user


def issue_token(
    session: Session,
    *,
    email: str,
    password: str,
    key: str,
    expires_minutes: int,
    address: str,
    limits: AbuseLimits,
    now: datetime | None = None,
) -> Token:
    """Sign in. Failed attempts are throttled per account and per client address; the
    failures are recorded although the request fails, and a success clears the account's."""
    now = now or utcnow()
    account = f"login-account:{normalise_email(email)}"
    origin = f"login-address:{address}"
    throttle.check(session, account, limits.login_account, now=now, what="failed sign-ins")
    throttle.check(session, origin, limits.login_address, now=now, what="failed sign-ins")
    try:
        user = authenticate(session, email=email, password=password)
    except InvalidCredentials as exc:
        throttle.record(session, account, limits.login_account, now=now)
        throttle.record(session, origin, limits.login_address, now=now)
        exc.keep_changes = True
        raise
    throttle.clear(session, account)
    assert user.id is not None
    token, lifetime = security.create_access_token(
        user_id=user.id, version=user.token_version, key=key, expires_minutes=expires_minutes
    )
    return Token(access_token=token, expires_in=lifetime)


def user_from_token(session: Session, *, token: str, key: str) -> User:
    try:
        claims = security.decode_access_token(token, key=key)
    except security.InvalidToken as exc:
        raise NotAuthenticated("The access token is invalid or expired.") from exc
    user = session.get(User, claims.user_id) if claims.user_id <= INT32_MAX else None
    if user is None or user.token_version != claims.version:
        raise NotAuthenticated("The access token is no longer valid; sign in again.")
    return user


def change_role(session: Session, *, actor: User, user_id: int, role: Role) -> User:
    user = get_user(session, user_id)
    require_role(actor, Role.admin)
    before = Role(user.role)
    if before == Role.admin and role != Role.admin:
        # Lock the admin rows: two admins demoting each other at once must not both succeed.
        admins = session.exec(select(User.id).where(User.role == Role.admin).with_for_update())
        if len(admins.all()) <= 1:
            raise LastAdmin("This is the only admin; make another admin first.")
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


def change_password(session: Session, *, user: User, current: str, new: str) -> None:
    if not security.verify_password(current, user.password_hash):
        raise InvalidCredentials("The current password is wrong.")
    user.password_hash = security.hash_password(new)
    user.token_version += 1
    session.add(user)
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
