"""Assertions shared by the API tests."""

from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

API = "/api/v1"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["title"]
    assert body["detail"]
    return body


def count_rows(session: Session, table: type[SQLModel]) -> int:
    """Rows in `table` as committed now. Ends the session's transaction before and after,
    so no stale SQLite snapshot outlives the call."""
    session.commit()
    count = session.exec(select(func.count()).select_from(table)).one()
    session.commit()
    return count
