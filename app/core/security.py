"""Password hashing (Argon2 via passlib) and access tokens (HS256 JWT via python-jose).

Tokens carry only `sub` (the user id), `iat`, `exp` and `ver`, the account's token version:
bumping the version on the account (password change, demotion) retires every older token.
"""

import time
from dataclasses import dataclass
from functools import lru_cache

from jose import JWTError, jwt
from passlib.context import CryptContext

ALGORITHM = "HS256"

# OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): about 20 ms a hash on these machines.
_passwords = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19 * 1024,
    argon2__time_cost=2,
    argon2__parallelism=1,
)


def hash_password(password: str) -> str:
    return str(_passwords.hash(password))


def verify_password(password: str, password_hash: str) -> bool:
    return bool(_passwords.verify(password, password_hash))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("wijkbudget timing equaliser")


def burn_password_check(password: str) -> None:
    """Spend the time of a real verification, so unknown emails cannot be told by timing."""
    verify_password(password, _dummy_hash())


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int


class AccessTokenRejected(Exception):
    pass


def create_access_token(
    *, user_id: int, version: int, key: str, expires_minutes: int, now: float | None = None
) -> tuple[str, int]:
    """A signed token and its lifetime in seconds."""
    issued = int(now if now is not None else time.time())
    lifetime = expires_minutes * 60
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + lifetime, "ver": version}
    return jwt.encode(claims, key, algorithm=ALGORITHM), lifetime


def decode_access_token(token: str, *, key: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
        user_id = int(claims["sub"])
        version = claims["ver"]
    except (JWTError, KeyError, ValueError, TypeError) as exc:
        raise AccessTokenRejected(str(exc)) from exc
    if not isinstance(version, int) or user_id < 1:
        raise AccessTokenRejected("malformed claims")
    return TokenClaims(user_id=user_id, version=version)
