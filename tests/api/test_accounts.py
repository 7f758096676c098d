"""Accounts through the HTTP API: register, sign in, me, password and role changes."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core import security
from app.core.config import Settings
from app.models.user import Role, User
from tests.factories import PASSWORD, auth, make_user, token_for
from tests.helpers import API, assert_problem, count_rows

NEW_USER: dict[str, Any] = {
    "email": "  Anna.de.Vries@Example.ORG ",
    "password": "correct horse battery",
    "display_name": "Anna",
    "postcode": "9713 ab",
    "birth_year": 1990,
}


def user_count(session: Session) -> int:
    return count_rows(session, User)


def sign_in(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{API}/auth/token", data={"username": email, "password": password})


def test_register_normalises_and_hides_the_hash(client: TestClient, session: Session) -> None:
    response = client.post(f"{API}/auth/register", json=NEW_USER)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "anna.de.vries@example.org"
    assert body["postcode"] == "9713AB"
    assert body["role"] == "resident"
    assert body["created_at"].endswith("Z")
    assert set(body) == {
        "id", "email", "display_name", "role", "postcode", "birth_year", "created_at",
        "email_verified", "language",
    }  # fmt: skip
    stored = session.exec(select(User)).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert security.verify_password(NEW_USER["password"], stored.password_hash)


def test_duplicate_email_is_409_whatever_the_case(client: TestClient, session: Session) -> None:
    assert client.post(f"{API}/auth/register", json=NEW_USER).status_code == 201
    again = dict(NEW_USER, email="ANNA.DE.VRIES@example.org", display_name="Other")
    assert_problem(client.post(f"{API}/auth/register", json=again), 409, "email_taken")
    assert user_count(session) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 257}, "password"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "a" * 101}, "display_name"),
        ({"display_name": "An\x00na"}, "display_name"),
        ({"postcode": "97 13 AB !"}, "postcode"),
        ({"birth_year": "nineteen"}, "birth_year"),
        ({"birth_year": 2**31}, "birth_year"),
        ({"role": "admin"}, "role"),
        ({"email": None}, "email"),
    ],
)
def test_bad_registration_names_the_field_and_stores_nothing(
    client: TestClient, session: Session, change: dict[str, Any], field: str
) -> None:
    body = assert_problem(
        client.post(f"{API}/auth/register", json=dict(NEW_USER, **change)), 422, "validation_error"
    )
    assert any(error["loc"][-1] == field for error in body["errors"]), body
    assert user_count(session) == 0


def test_missing_field_and_malformed_json_are_422(client: TestClient, session: Session) -> None:
    missing = {k: v for k, v in NEW_USER.items() if k != "password"}
    body = assert_problem(
        client.post(f"{API}/auth/register", json=missing), 422, "validation_error"
    )
    assert ["body", "password"] in [error["loc"] for error in body["errors"]]
    malformed = client.post(
        f"{API}/auth/register", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert_problem(malformed, 422, "validation_error")
    assert_problem(client.post(f"{API}/auth/register", json=[1, 2]), 422, "validation_error")
    assert user_count(session) == 0


def test_sign_in_gives_a_working_bearer_token(client: TestClient) -> None:
    client.post(f"{API}/auth/register", json=NEW_USER)
    response = sign_in(client, " ANNA.de.vries@example.org", NEW_USER["password"])
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    me = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "anna.de.vries@example.org"


def test_wrong_password_and_unknown_email_look_the_same(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post(f"{API}/auth/register", json=NEW_USER)
    checks: list[str] = []
    real_verify = security.verify_password

    def counting_verify(password: str, password_hash: str) -> bool:
        checks.append(password)
        return real_verify(password, password_hash)

    monkeypatch.setattr(security, "verify_password", counting_verify)
    wrong = sign_in(client, NEW_USER["email"], "wrong password!")
    unknown = sign_in(client, "nobody@example.org", "wrong password!")
    assert_problem(wrong, 401, "invalid_credentials")
    assert_problem(unknown, 401, "invalid_credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]
    # Both paths run exactly one Argon2 verification, so their timing is the same.
    assert checks == ["wrong password!", "wrong password!"]


def test_sign_in_with_missing_form_fields_is_422(client: TestClient) -> None:
    assert_problem(client.post(f"{API}/auth/token", data={}), 422, "validation_error")


def test_me_requires_a_token(client: TestClient) -> None:
    response = client.get(f"{API}/users/me")
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def _forged(claims: dict[str, Any], key: str, algorithm: str = "HS256") -> str:
    from jose import jwt

    return jwt.encode(claims, key, algorithm=algorithm)


def _unsigned(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_bad_tokens_are_401(client: TestClient, session: Session, settings: Settings) -> None:
    user = make_user(session)
    key = settings.signing_key()
    valid = token_for(user, key)
    header, payload, signature = valid.split(".")
    now = 1_700_000_000
    claims = {"sub": str(user.id), "iat": now, "exp": now + 60, "ver": 0}
    live = {"sub": str(user.id), "iat": 4_000_000_000 - 60, "exp": 4_000_000_000, "ver": 0}
    bad_tokens = {
        "expired": token_for(user, key, now=now),
        "tampered": f"{header}.{payload}.{signature[:-2]}AA",
        "alg none": _unsigned(live),
        "wrong key": _forged(live, "another-secret-key-0123456789-abcdefghijklmnop"),
        "HS512": _forged(live, key, "HS512"),
        "no exp": _forged({k: v for k, v in live.items() if k != "exp"}, key),
        "no sub": _forged({k: v for k, v in live.items() if k != "sub"}, key),
        "old version": _forged(dict(live, ver=-1), key),
        "unknown user": _forged(dict(live, sub="999999"), key),
        "huge sub": _forged(dict(live, sub=str(2**70)), key),
        "garbage": "not.a.token",
        "expired but signed": _forged(claims, key),
    }
    assert client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {valid}"}).is_success
    for name, token in bad_tokens.items():
        response = client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["code"] == "not_authenticated", name


def test_password_change_retires_earlier_tokens(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = make_user(session)
    old = auth(user, settings.signing_key())
    new_password = "a brand new passphrase"
    wrong = client.post(
        f"{API}/users/me/password",
        json={"current_password": "not it at all", "new_password": new_password},
        headers=old,
    )
    assert_problem(wrong, 401, "invalid_credentials")
    weak = client.post(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=old,
    )
    assert_problem(weak, 422, "validation_error")
    done = client.post(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=old,
    )
    assert done.status_code == 204
    assert_problem(client.get(f"{API}/users/me", headers=old), 401, "not_authenticated")
    assert_problem(sign_in(client, user.email, PASSWORD), 401, "invalid_credentials")
    assert sign_in(client, user.email, new_password).status_code == 200


def test_admin_changes_roles(client: TestClient, session: Session, settings: Settings) -> None:
    key = settings.signing_key()
    admin = make_user(session, role=Role.admin)
    resident = make_user(session)
    response = client.patch(
        f"{API}/users/{resident.id}/role", json={"role": "moderator"}, headers=auth(admin, key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "moderator"
    moderator_token = auth(resident, key)
    assert client.get(f"{API}/users/me", headers=moderator_token).json()["role"] == "moderator"
    # Demotion retires the tokens the moderator held.
    client.patch(
        f"{API}/users/{resident.id}/role", json={"role": "resident"}, headers=auth(admin, key)
    )
    assert_problem(client.get(f"{API}/users/me", headers=moderator_token), 401, "not_authenticated")


def test_role_change_rules(client: TestClient, session: Session, settings: Settings) -> None:
    key = settings.signing_key()
    admin = make_user(session, role=Role.admin)
    moderator = make_user(session, role=Role.moderator)
    resident = make_user(session)
    url = f"{API}/users/{resident.id}/role"
    assert_problem(client.patch(url, json={"role": "admin"}), 401, "not_authenticated")
    assert_problem(
        client.patch(url, json={"role": "admin"}, headers=auth(resident, key)), 403, "forbidden"
    )
    assert_problem(
        client.patch(url, json={"role": "admin"}, headers=auth(moderator, key)), 403, "forbidden"
    )
    assert_problem(
        client.patch(url, json={"role": "king"}, headers=auth(admin, key)), 422, "validation_error"
    )
    # 404 comes before 403, and an id too large for a column is simply unknown.
    for missing in (999_999, 2**31, 2**63 + 5):
        resp = client.patch(
            f"{API}/users/{missing}/role", json={"role": "admin"}, headers=auth(resident, key)
        )
        assert_problem(resp, 404, "not_found")
    # The last admin cannot demote itself.
    resp = client.patch(
        f"{API}/users/{admin.id}/role", json={"role": "resident"}, headers=auth(admin, key)
    )
    assert_problem(resp, 409, "last_admin")
    session.expire_all()
    assert session.get(User, resident.id).role == "resident"  # type: ignore[union-attr]
    assert session.get(User, admin.id).role == "admin"  # type: ignore[union-attr]


def test_nul_in_sign_in_fields_is_422(client: TestClient) -> None:
    for data in (
        {"username": "a\x00@b.nl", "password": "x"},
        {"username": "a@b.nl", "password": "x\x00y"},
    ):
        assert_problem(client.post(f"{API}/auth/token", data=data), 422, "validation_error")
