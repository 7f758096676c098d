"""A throttle count is written in a transaction of its own, which ends the request's first:
that must never commit what the request wrote before it, however it was written."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import open_session
from app.core.i18n import _t
from app.models.base import utcnow
from app.models.user import User
from app.services import throttle
from tests.factories import make_user

Write = Callable[[Session, int], None]


def _pending(db: Session, user_id: int) -> None:
    user = db.get(User, user_id)
    assert user is not None
    user.display_name = "Written"
    db.add(user)


def _flushed(db: Session, user_id: int) -> None:
    _pending(db, user_id)
    db.flush()


def _raw(db: Session, user_id: int) -> None:
    db.execute(
        text("UPDATE user_account SET display_name = 'Written' WHERE id = :id"), {"id": user_id}
    )


def _name(engine: Engine, user_id: int) -> str:
    with open_session(engine, write=False) as db:
        user = db.get(User, user_id)
        assert user is not None
        return user.display_name


def _bucket(guard: throttle.Guard, name: str) -> tuple[str, throttle.Limit]:
    return guard.bucket("test", name), throttle.Limit(5, timedelta(minutes=5))


@pytest.mark.parametrize("write", [_pending, _flushed, _raw], ids=["pending", "flushed", "raw"])
def test_a_count_after_a_write_is_refused_and_commits_nothing(
    engine: Engine, settings: Settings, session: Session, write: Write
) -> None:
    user_id = make_user(session, display_name="Before").id
    assert user_id is not None
    guard = throttle.make_guard(engine, settings, settings.signing_key())
    with open_session(engine) as request:
        write(request, user_id)
        with pytest.raises(RuntimeError, match="has written"):
            throttle.reserve(
                request, guard, [_bucket(guard, "w")], now=utcnow(), what=_t("attempts")
            )
        request.rollback()  # the request fails
    assert _name(engine, user_id) == "Before"


def test_a_count_after_reads_only_is_kept_when_the_request_fails(
    engine: Engine, settings: Settings, session: Session
) -> None:
    user_id = make_user(session).id
    guard = throttle.make_guard(engine, settings, settings.signing_key())
    with open_session(engine) as request:
        assert request.get(User, user_id) is not None
        [event] = throttle.reserve(
            request, guard, [_bucket(guard, "r")], now=utcnow(), what=_t("attempts")
        )
        request.rollback()
    with open_session(engine, write=False) as db:
        kept = db.execute(text("SELECT count(*) FROM throttle_event WHERE id = :id"), {"id": event})
        assert kept.scalar() == 1
