"""Throttling of abuse-prone actions, shared by every worker through the database.

A bucket (e.g. the failed sign-ins of one account from one address) holds at most `limit`
events within `window`; beyond that the action is refused with `too_many_attempts` and a
`Retry-After` of the seconds until the oldest counted event expires.

How an attempt is counted, and why:
- up front: `reserve` counts the attempt in every bucket it touches *before* the work it
  guards (a password check, a code lookup), and refuses if any bucket is full. A caller whose
  attempt turns out not to count (a correct password) gives it back with `refund`. Counting
  afterwards would let parallel attempts all pass the check before any is recorded.
- atomically: the check and the insert run under a lock per bucket, a transaction-scoped
  advisory lock on PostgreSQL; on SQLite the transaction itself takes the database's write
  lock (BEGIN IMMEDIATE), which serialises it against every other writer.
- durably: in a short transaction of its own, committed at once, so the count survives the
  request's rollback (a wrong password fails the request but must still count). The request's
  own transaction is ended first; see `app.core.db.separate_transaction`.
- pseudonymously: bucket names hold an HMAC of each email, address or account id under a key
  derived from SECRET_KEY, never the value itself, so the table holds no raw emails or IPs.
  Each event carries its expiry; `prune` deletes expired events (`wijkbudget prune`, and
  each bucket's own on use), and erasure deletes an account's with `forget`.
"""

import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, or_
from sqlmodel import Session, col, select

from app.core import metrics
from app.core.config import Settings
from app.core.db import lock_names, separate_transaction
from app.core.errors import TooManyAttempts
from app.core.i18n import Message, _t
from app.models.throttle import ThrottleEvent


@dataclass(frozen=True)
class Limit:
    limit: int
    window: timedelta


@dataclass(frozen=True)
class AbuseLimits:
    claim_account: Limit  # wrong voting codes per account and process (the contract's 5)
    claim_address: Limit
    login_pair: Limit  # failed sign-ins per account from one address
    login_account: Limit  # failed sign-ins per account from all addresses
    login_address: Limit  # failed sign-ins from one address, for accounts new to it
    login_known: timedelta  # how long a successful sign-in makes the address known
    password_change: Limit  # wrong current passwords per account
    register_address: Limit
    verify_request: Limit  # new verification links per account
    reset_email: Limit  # password-reset requests per e-mail address
    reset_address: Limit  # password-reset requests per client address
    analysis_address: Limit  # what-if tallies (POST /analysis/tally) per client address
    email_change_account: Limit  # e-mail changes (each mails the new address) per account
    email_change_target: Limit  # e-mail changes to one address, from any account
    image_upload: Limit  # proposal images per account (each is decoded and re-encoded)


def abuse_limits(settings: Settings) -> AbuseLimits:
    login_window = timedelta(minutes=settings.login_window_minutes)
    return AbuseLimits(
        claim_account=Limit(
            settings.code_claim_max_failures, timedelta(minutes=settings.code_claim_window_minutes)
        ),
        claim_address=Limit(
            settings.claim_max_per_address, timedelta(minutes=settings.claim_window_minutes)
        ),
        login_pair=Limit(settings.login_max_failures_per_account_address, login_window),
        login_account=Limit(
            settings.login_max_failures_per_account,
            timedelta(minutes=settings.login_account_window_minutes),
        ),
        login_address=Limit(settings.login_max_failures_per_address, login_window),
        login_known=timedelta(days=settings.login_known_address_days),
        password_change=Limit(settings.password_change_max_failures, login_window),
        register_address=Limit(
            settings.register_max_per_address, timedelta(minutes=settings.register_window_minutes)
        ),
        verify_request=Limit(settings.verify_email_max_per_account, timedelta(hours=1)),
        reset_email=Limit(settings.password_reset_max_per_email, timedelta(hours=1)),
        reset_address=Limit(settings.password_reset_max_per_address, timedelta(hours=1)),
        analysis_address=Limit(
            settings.analysis_max_per_address, timedelta(minutes=settings.analysis_window_minutes)
        ),
        email_change_account=Limit(settings.email_change_max_per_account, timedelta(days=1)),
        email_change_target=Limit(settings.email_change_max_per_address, timedelta(days=1)),
        image_upload=Limit(settings.image_uploads_per_hour, timedelta(hours=1)),
    )


@dataclass(frozen=True)
class Guard:
    """What a throttled action needs: the engine (for transactions of its own), the key that
    pseudonymises bucket names, and the limits."""

    engine: Engine
    key: bytes
    limits: AbuseLimits

    def pseudonym(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def bucket(self, kind: str, *parts: str) -> str:
        """`kind:<hmac>:<hmac>...`; the subject (email or account id) comes first."""
        return ":".join([kind, *(self.pseudonym(part) for part in parts)])


def throttle_key(signing_key: str) -> bytes:
    """A key of its own for bucket names, derived from SECRET_KEY (domain-separated)."""
    return hmac.new(signing_key.encode(), b"wijkbudget throttle v1", hashlib.sha256).digest()


def make_guard(engine: Engine, settings: Settings, signing_key: str) -> Guard:
    return Guard(engine=engine, key=throttle_key(signing_key), limits=abuse_limits(settings))


def reserve(
    session: Session,
    guard: Guard,
    counts: Sequence[tuple[str, Limit]],
    *,
    now: datetime,
    what: Message,
) -> list[int]:
    """Count one attempt in each bucket, or refuse (counting nothing) if any is full.

    Runs in its own transaction (`separate_transaction`); returns the events' ids for
    `refund`."""
    with separate_transaction(session, request="ends") as own:
        lock_names(own, [bucket for bucket, _ in counts])
        buckets = [bucket for bucket, _ in counts]
        own.execute(
            delete(ThrottleEvent).where(
                col(ThrottleEvent.bucket).in_(buckets), col(ThrottleEvent.expires_at) <= now
            )
        )
        for bucket, rule in counts:
            count, first_expiry = own.exec(
                select(func.count(), func.min(ThrottleEvent.expires_at)).where(
                    ThrottleEvent.bucket == bucket, col(ThrottleEvent.expires_at) > now
                )
            ).one()
            if count >= rule.limit:
                metrics.record_throttled(bucket.partition(":")[0])
            refuse_beyond(rule, count=count, first_expiry=first_expiry, now=now, what=what)
        events = [
            ThrottleEvent(bucket=bucket, at=now, expires_at=now + rule.window)
            for bucket, rule in counts
        ]
        own.add_all(events)
        own.flush()
        return [event.id for event in events if event.id is not None]


def refuse_beyond(
    rule: Limit, *, count: int, first_expiry: datetime | None, now: datetime, what: Message
) -> None:
    """`too_many_attempts` once `count` events in the window reach the limit, with a
    Retry-After of the seconds until the first of them expires."""
    if count >= rule.limit:
        retry = max(1, math.ceil(((first_expiry or now + rule.window) - now).total_seconds()))
        raise TooManyAttempts(
            _t("Too many {what}; try again in {retry} seconds.", what=what, retry=retry),
            retry_after=retry,
        )


def refund(session: Session, ids: Sequence[int]) -> None:
    """Give back attempts `reserve` counted that turned out not to count."""
    if ids:
        session.execute(delete(ThrottleEvent).where(col(ThrottleEvent.id).in_(ids)))


def refund_failed(session: Session, guard: Guard, ids: Sequence[int]) -> None:
    """`refund` for a request that fails anyway: its transaction is rolled back here (it
    writes nothing that should stay), and the refund is written in one of its own."""
    with separate_transaction(session, request="fails") as own:
        refund(own, ids)


def clear(session: Session, bucket: str) -> None:
    session.execute(delete(ThrottleEvent).where(col(ThrottleEvent.bucket) == bucket))


def mark(session: Session, bucket: str, *, now: datetime, lasts: timedelta) -> None:
    """Keep one event in `bucket` until `now + lasts` (e.g. "this address is known")."""
    clear(session, bucket)
    session.add(ThrottleEvent(bucket=bucket, at=now, expires_at=now + lasts))
    session.flush()


def seen(session: Session, bucket: str, *, now: datetime) -> bool:
    found = session.exec(
        select(ThrottleEvent.id)
        .where(ThrottleEvent.bucket == bucket, col(ThrottleEvent.expires_at) > now)
        .limit(1)
    ).first()
    return found is not None


def forget(session: Session, guard: Guard, subjects: Sequence[str]) -> None:
    """Delete every bucket naming one of `subjects` (an email, an account id): on erasure."""
    if not subjects:
        return
    names = {guard.pseudonym(subject) for subject in subjects}
    candidates = session.exec(
        select(ThrottleEvent.bucket)
        .where(or_(*(col(ThrottleEvent.bucket).like(f"%:{name}%") for name in names)))
        .distinct()
    ).all()
    # Only buckets whose subject (the first part after the kind) is one of them: the same
    # pseudonym elsewhere in a name (a process id equal to the account id) is another's.
    mine = [bucket for bucket in candidates if bucket.split(":")[1] in names]
    if mine:
        session.execute(delete(ThrottleEvent).where(col(ThrottleEvent.bucket).in_(mine)))


def prune(session: Session, *, now: datetime) -> int:
    """Delete every expired event; returns how many."""
    result = session.execute(delete(ThrottleEvent).where(col(ThrottleEvent.expires_at) <= now))
    return int(getattr(result, "rowcount", 0) or 0)
