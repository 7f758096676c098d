"""Single-use tokens for mailed links (e-mail verification, password reset).

Rules enforced here:
- a token is 32 random bytes (URL-safe text); only its SHA-256 hash is stored, so a copy of
  the database holds no usable link;
- issuing a token deletes the account's earlier tokens of the same purpose: only the newest
  link works;
- a token works once, before its expiry (48 hours for verification, 1 hour for a reset),
  and only while the account still has the address it was mailed to; anything else is
  `invalid_token`, without saying which;
- redemption is atomic: of two requests with the same token, exactly one succeeds.
"""

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.core.errors import InvalidToken
from app.core.i18n import _t
from app.models.mail import AccountToken, TokenPurpose
from app.models.user import User

LIFETIMES = {
    TokenPurpose.verify_email: timedelta(hours=48),
    TokenPurpose.password_reset: timedelta(hours=1),
}
_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(session: Session, *, user: User, purpose: TokenPurpose, now: datetime) -> str:
    """A new token for `user`'s current address; returns the raw token (never stored)."""
    assert user.id is not None
    session.execute(
        delete(AccountToken).where(
            col(AccountToken.user_id) == user.id, col(AccountToken.purpose) == purpose
        )
    )
    raw = secrets.token_urlsafe(32)
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=token_hash(raw),
            email=user.email,
            created_at=now,
            expires_at=now + LIFETIMES[purpose],
        )
    )
    session.flush()
    return raw


def redeem(session: Session, *, raw: str, purpose: TokenPurpose, now: datetime) -> User:
    """Use the token up and return its account (row-locked), or raise `invalid_token`."""
    invalid = InvalidToken(_t("This link is unknown, already used or expired; ask for a new one."))
    if not _SHAPE.fullmatch(raw):
        raise invalid
    token = session.exec(
        select(AccountToken).where(
            AccountToken.token_hash == token_hash(raw), AccountToken.purpose == purpose
        )
    ).first()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise invalid
    # The conditional UPDATE is the single-use check: a parallel redemption of the same token
    # waits for this row and then finds it used.
    used = session.execute(
        update(AccountToken)
        .where(col(AccountToken.id) == token.id, col(AccountToken.used_at).is_(None))
        .values(used_at=now)
    )
    if getattr(used, "rowcount", 0) != 1:
        raise invalid
    user = session.get(User, token.user_id, with_for_update=True, populate_existing=True)
    if user is None or user.erased_at is not None or user.email != token.email:
        raise invalid
    return user


def forget(session: Session, *, user_id: int) -> None:
    session.execute(delete(AccountToken).where(col(AccountToken.user_id) == user_id))


def is_live(session: Session, *, raw: str, purpose: TokenPurpose, now: datetime) -> bool:
    """Whether the token could be redeemed now (a cheap check before costly work)."""
    if not _SHAPE.fullmatch(raw):
        return False
    token = session.exec(
        select(AccountToken).where(
            AccountToken.token_hash == token_hash(raw), AccountToken.purpose == purpose
        )
    ).first()
    return token is not None and token.used_at is None and token.expires_at > now
