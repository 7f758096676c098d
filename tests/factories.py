"""Test data made directly through the models, and tokens minted with the app's own function.

Hashing a password with Argon2 costs tens of milliseconds, so every factory user shares one
precomputed hash of `PASSWORD`.
"""

from functools import lru_cache
from itertools import count

from sqlmodel import Session

from app.core import security
from app.models.user import Role, User

PASSWORD = "correct horse battery"
_serial = count(1)


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return security.hash_password(PASSWORD)


def make_user(
    session: Session,
    *,
    role: Role = Role.resident,
    email: str | None = None,
    display_name: str = "Resident",
    postcode: str | None = "9713AB",
    birth_year: int | None = 1990,
) -> User:
    user = User(
        email=email or f"user{next(_serial)}@example.org",
        password_hash=_password_hash(),
        display_name=display_name,
        role=role,
        postcode=postcode,
        birth_year=birth_year,
    )
    session.add(user)
    session.commit()
    return user


def token_for(user: User, key: str, *, expires_minutes: int = 60, now: float | None = None) -> str:
    assert user.id is not None
    token, _ = security.create_access_token(
        user_id=user.id,
        version=user.token_version,
        key=key,
        expires_minutes=expires_minutes,
        now=now,
    )
    return token


def auth(user: User, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user, key)}"}
