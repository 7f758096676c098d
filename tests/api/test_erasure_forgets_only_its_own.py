"""Erasing an account forgets the throttle buckets that name it, and no one else's."""

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from app.core.config import Settings
from app.models.base import utcnow
from app.models.throttle import ThrottleEvent
from app.services import throttle


def test_forget_matches_the_subject_not_the_same_pseudonym_elsewhere(
    session: Session, settings: Settings, engine: Engine
) -> None:
    guard = throttle.make_guard(engine, settings, settings.signing_key())
    now = utcnow()
    mine = [
        guard.bucket("claim-account", "7", "3"),  # account 7's wrong codes in process 3
        guard.bucket("password", "7"),
    ]
    # Account 8's wrong codes in process 7: the same pseudonym, in the process's place.
    theirs = [guard.bucket("claim-account", "8", "7"), guard.bucket("login-address", "10.0.0.7")]
    for bucket in mine + theirs:
        session.add(ThrottleEvent(bucket=bucket, at=now, expires_at=now + timedelta(hours=1)))
    session.commit()

    throttle.forget(session, guard, ["7"])
    session.commit()

    left = set(session.exec(select(ThrottleEvent.bucket)).all())
    assert left == set(theirs)
