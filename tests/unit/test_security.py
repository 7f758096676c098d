"""Password hashing and access tokens, without HTTP or a database."""

import time

import pytest
from jose import jwt

from app.core import security

KEY = "unit-test-key-0123456789-abcdefghijklmnopqrstuv"


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    hashed = security.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert hashed != security.hash_password("correct horse battery")  # salted
    assert security.verify_password("correct horse battery", hashed)
    assert not security.verify_password("correct horse batterY", hashed)


def test_token_round_trip_carries_only_what_is_needed() -> None:
    token, lifetime = security.create_access_token(user_id=7, version=3, key=KEY, expires_minutes=5)
    assert lifetime == 300
    claims = jwt.get_unverified_claims(token)
    assert set(claims) == {"sub", "iat", "exp", "ver"}
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert security.decode_access_token(token, key=KEY) == security.TokenClaims(7, 3)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "7", "iat": 1, "exp": 2, "ver": 0},  # expired
        {"sub": "7", "iat": 1, "ver": 0},  # no exp
        {"sub": "7", "exp": 4_000_000_000, "ver": 0},  # no iat
        {"sub": "seven", "iat": 1, "exp": 4_000_000_000, "ver": 0},
        {"sub": "0", "iat": 1, "exp": 4_000_000_000, "ver": 0},
        {"sub": "7", "iat": 1, "exp": 4_000_000_000},  # no version
        {"sub": "7", "iat": 1, "exp": 4_000_000_000, "ver": "0"},
    ],
)
def test_malformed_or_expired_claims_are_rejected(claims: dict[str, object]) -> None:
    with pytest.raises(security.AccessTokenRejected):
        security.decode_access_token(jwt.encode(claims, KEY, algorithm="HS256"), key=KEY)


def test_other_keys_and_algorithms_are_rejected() -> None:
    claims = {"sub": "7", "iat": int(time.time()), "exp": int(time.time()) + 60, "ver": 0}
    for token in (
        jwt.encode(claims, "some-other-key-0123456789-abcdefghijklmnop", algorithm="HS256"),
        jwt.encode(claims, KEY, algorithm="HS384"),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0.",
    ):
        with pytest.raises(security.AccessTokenRejected):
            security.decode_access_token(token, key=KEY)
