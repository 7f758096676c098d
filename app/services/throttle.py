"""Throttling of abuse-prone actions, shared by every worker through the database.

A bucket (e.g. `login-account:anna@example.org`) may hold at most `limit` events within
`window`; beyond that the action is refused with `too_many_attempts` and a `Retry-After`
of the seconds until the oldest counted event leaves the window. Callers record an event
for each attempt they count; old events are pruned as new ones are recorded.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.core.errors import TooManyAttempts
from app.models.throttle import ThrottleEvent


@dataclass(frozen=True)
class Limit:
    limit: int
    window: timedelta


def check(session: Session, bucket: str, rule: Limit, *, now: datetime, what: str) -> None:
    count, oldest = session.exec(
        select(func.count(), func.min(ThrottleEvent.at)).where(
            ThrottleEvent.bucket == bucket, col(ThrottleEvent.at) > now - rule.window
        )
    ).one()
    refuse_beyond(rule, count=count, oldest=oldest, now=now, what=what)


def refuse_beyond(
    rule: Limit, *, count: int, oldest: datetime | None, now: datetime, what: str
) -> None:
    """`too_many_attempts` once `count` events in the window reach the limit, with a
    Retry-After of the seconds until the oldest of them leaves the window."""
    if count >= rule.limit:
        retry = max(1, math.ceil(((oldest or now) + rule.window - now).total_seconds()))
        raise TooManyAttempts(f"Too many {what}; try again in {retry} seconds.", retry_after=retry)


def record(session: Session, bucket: str, rule: Limit, *, now: datetime) -> None:
    session.execute(
        delete(ThrottleEvent).where(
            col(ThrottleEvent.bucket) == bucket, col(ThrottleEvent.at) <= now - rule.window
        )
    )
    session.add(ThrottleEvent(bucket=bucket, at=now))
    session.flush()


def clear(session: Session, bucket: str) -> None:
    session.execute(delete(ThrottleEvent).where(col(ThrottleEvent.bucket) == bucket))


@dataclass(frozen=True)
class AbuseLimits:
    claim_account: Limit  # wrong voting codes per account and process (the contract's 5)
    login_account: Limit
    login_address: Limit
    register_address: Limit
    claim_address: Limit


def abuse_limits(settings: Settings) -> AbuseLimits:
    return AbuseLimits(
        claim_account=Limit(
            settings.code_claim_max_failures, timedelta(minutes=settings.code_claim_window_minutes)
        ),
        login_account=Limit(
            settings.login_max_failures_per_account,
            timedelta(minutes=settings.login_window_minutes),
        ),
        login_address=Limit(
            settings.login_max_failures_per_address,
            timedelta(minutes=settings.login_window_minutes),
        ),
        register_address=Limit(
            settings.register_max_per_address, timedelta(minutes=settings.register_window_minutes)
        ),
        claim_address=Limit(
            settings.claim_max_per_address, timedelta(minutes=settings.claim_window_minutes)
        ),
    )
