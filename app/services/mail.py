"""Outgoing mail: the transactional outbox, rendering, and the sender.

Rules enforced here:
- a mail is a row written in the transaction of the action that causes it (`enqueue`): it
  exists exactly when the action committed, and an outage of the mail server loses nothing;
- rows hold no body and no token. The sender renders each mail just before sending it and
  makes the link's token then (only its hash is stored, see app/services/links.py), so
  neither the outbox nor the logs ever hold a live link. Logs name a mail by id and kind;
- a mail goes only to the account's current address: one whose account changed its address
  or was erased since is dropped. A password-reset request is a row whether or not the
  address has an account (so the request does the same work either way); the sender drops
  the rows naming no account and mails the others a fresh link;
- the sender claims due rows in a short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL;
  SQLite's write lock serialises) by moving `next_attempt_at` a lease ahead, sends outside
  any transaction, then marks each `sent`, or `pending` again after an exponential backoff,
  or `failed` for good (a 5xx answer, or `max_attempts` used) with its error. While the
  server is unreachable a pass makes one connection attempt and ends, so an outage costs
  nothing per queued mail. A sender that dies mid-send leaves its claims to expire and be
  retried: at least once, never lost;
- on PostgreSQL one sender sends at a time across workers and machines (an advisory lock);
- without an SMTP server (outside production) each mail is an `.eml` file in the outbox
  directory.
"""

import asyncio
import html
import logging
import os
import smtplib
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import anyio.to_thread
from sqlalchemy import Engine, Table, delete, or_, text
from sqlmodel import Session, col, func, select

from app.core.config import Settings
from app.core.db import open_session
from app.core.metrics import OutboxFigures
from app.models.base import utcnow
from app.models.common import Page
from app.models.mail import (
    MailKind,
    MailPublic,
    MailStatus,
    OutgoingMail,
    TokenPurpose,
    mail_public,
)
from app.models.user import DEFAULT_LANGUAGE, Language, Role, User
from app.services import links
from app.services.permissions import require_role

log = logging.getLogger("wijkbudget.mail")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
_MAIL_TABLE: Table = OutgoingMail.__table__  # type: ignore[attr-defined]
# How long a claimed mail stays out of other senders' reach while it is being sent.
LEASE = timedelta(minutes=10)
BATCH = 20
_SENDER_LOCK_KEY = 0x57424D41494C  # "WBMAIL": the one advisory lock of the sender
# A pass holds the sender lock on one connection and claims and records on a second: the
# server gives its sender an engine of exactly this many (app/main.py).
MAIL_SENDER_CONNECTIONS = 2
_TOKEN_KINDS = {
    MailKind.verify_email: (TokenPurpose.verify_email, "verify-email"),
    MailKind.password_reset: (TokenPurpose.password_reset, "reset-password"),
}


# --- Rendering -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=32)
def _template(language: str, kind: str, part: str) -> Template:
    return Template((TEMPLATES / language / f"{kind}.{part}").read_text(encoding="utf-8"))


def render(kind: MailKind, language: str, values: Mapping[str, object]) -> Rendered:
    """The mail from app/templates/mail/<language>/<kind>.{txt,html}; the first line of the
    text part is `Subject: ...`. Values are HTML-escaped in the HTML part."""
    language = language if language in Language.__members__ else DEFAULT_LANGUAGE
    plain = {key: str(value) for key, value in values.items()}
    text_part = _template(language, kind, "txt").substitute(plain)
    first, _, body = text_part.partition("\n")
    subject = first.removeprefix("Subject:").strip()
    escaped = {key: html.escape(value) for key, value in plain.items()}
    html_body = _template(language, kind, "html").substitute(escaped)
    page = (
        f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>\n<body>\n{html_body}</body></html>\n"
    )
    return Rendered(subject=subject, text=body.lstrip("\n"), html=page)


def build_message(rendered: Rendered, *, sender: str, to: str, mail_id: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=f"wijkbudget-{mail_id}")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


# --- Transports ------------------------------------------------------------------------


class DeliveryError(Exception):
    """A mail not delivered; `permanent` when trying again cannot help, `unreachable` when
    no mail can go now (the server is down or the connection broke)."""

    def __init__(self, message: str, *, permanent: bool = False, unreachable: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable


Send = Callable[[EmailMessage], None]


class Transport(Protocol):
    def connect(self) -> Any:
        """A context manager yielding a `Send`, for one pass of the sender."""


class SmtpTransport:
    """`smtp://[user:pass@]host[:587]`: STARTTLS when offered; `smtp+starttls://`: STARTTLS
    required; `smtps://host[:465]`: implicit TLS. One connection per pass, opened lazily."""

    def __init__(self, url: str, *, timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587")
        self.implicit_tls = parts.scheme == "smtps"
        self.require_starttls = parts.scheme == "smtp+starttls"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout

    def _open(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif self.require_starttls or self.username:
                # Never send a password, or when asked for TLS, in the clear.
                client.close()
                raise DeliveryError(f"{self.host}:{self.port} offers no STARTTLS")
        if self.username:
            client.login(self.username, self.password or "")
        return client

    @contextmanager
    def connect(self) -> Iterator[Send]:
        client: smtplib.SMTP | None = None

        def send(message: EmailMessage) -> None:
            nonlocal client
            try:
                if client is None:
                    client = self._open()
                client.send_message(message)
            except DeliveryError as exc:
                exc.unreachable = True
                raise
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                answer = "; ".join(f"{code} {_text(msg)}" for code, msg in exc.recipients.values())
                raise DeliveryError(answer, permanent=all(c >= 500 for c in codes)) from exc
            except smtplib.SMTPAuthenticationError as exc:
                client = None
                # The operator's credentials, not this mail: try again once they are fixed.
                raise DeliveryError(
                    f"{exc.smtp_code} {_text(exc.smtp_error)}", unreachable=True
                ) from exc
            except smtplib.SMTPResponseException as exc:
                closing = exc.smtp_code == 421  # the server is closing the connection
                if closing:
                    client = None
                raise DeliveryError(
                    f"{exc.smtp_code} {_text(exc.smtp_error)}",
                    permanent=exc.smtp_code >= 500,
                    unreachable=closing,
                ) from exc
            except (smtplib.SMTPException, OSError) as exc:
                client = None
                raise DeliveryError(f"{type(exc).__name__}: {exc}", unreachable=True) from exc

        try:
            yield send
        finally:
            if client is not None:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class FileTransport:
    """Development without SMTP: each mail is an `.eml` file in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory

    @contextmanager
    def connect(self) -> Iterator[Send]:
        def send(message: EmailMessage) -> None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
                name = f"{stamp}-{message['Message-ID'].strip('<>').split('@')[0]}.eml"
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".mail-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                os.replace(tmp, self.directory / name)
            except OSError as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}", unreachable=True) from exc

        yield send


# --- Configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mailer:
    """What the services and the sender need to know about mail."""

    frontend_url: str
    sender: str
    transport: Transport
    ballot_receipts: bool = True
    max_attempts: int = 12
    retry: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=3)
    description: str = field(default="")

    def link(self, path: str, **query: str) -> str:
        from urllib.parse import urlencode

        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.frontend_url.rstrip('/')}/{path.lstrip('/')}{suffix}"

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: doubling, capped."""
        seconds = self.retry.total_seconds() * 2 ** max(0, min(attempts - 1, 30))
        return timedelta(seconds=min(seconds, self.retry_max.total_seconds()))


def make_mailer(settings: Settings) -> Mailer:
    transport: Transport
    if settings.smtp_url is not None:
        smtp = SmtpTransport(
            settings.smtp_url.get_secret_value(), timeout=settings.smtp_timeout_seconds
        )
        transport, where = smtp, f"SMTP server {smtp.host}:{smtp.port}"
    else:
        directory = Path(settings.mail_outbox_dir).resolve()
        transport, where = FileTransport(directory), f".eml files in {directory}"
    return Mailer(
        frontend_url=settings.frontend_url,
        sender=settings.mail_from,
        transport=transport,
        ballot_receipts=settings.mail_ballot_receipts,
        max_attempts=settings.mail_max_attempts,
        retry=timedelta(seconds=settings.mail_retry_seconds),
        retry_max=timedelta(seconds=settings.mail_retry_max_seconds),
        description=where,
    )


# --- The outbox ------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    kind: MailKind,
    to: str,
    user_id: int | None,
    params: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Write a mail into the outbox, in the caller's transaction (one INSERT, no ORM)."""
    now = now or utcnow()
    session.execute(
        _MAIL_TABLE.insert(),
        {
            "to_address": to,
            "user_id": user_id,
            "kind": kind.value,
            "params": dict(params or {}),
            "status": MailStatus.pending.value,
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": now,
            "created_at": now,
            "sent_at": None,
        },
    )


def queue(
    session: Session, *, actor: User, status: MailStatus | None, limit: int, offset: int
) -> Page[MailPublic]:
    """The outbox for an admin, newest first: metadata, never a body or a token."""
    require_role(actor, Role.admin)
    query = select(OutgoingMail)
    counted = select(func.count()).select_from(OutgoingMail)
    if status is not None:
        query = query.where(OutgoingMail.status == status)
        counted = counted.where(OutgoingMail.status == status)
    rows = session.exec(
        query.order_by(col(OutgoingMail.id).desc()).limit(limit).offset(offset)
    ).all()
    return Page(
        items=[mail_public(row) for row in rows],
        total=session.exec(counted).one(),
        limit=limit,
        offset=offset,
    )


def of_account(session: Session, *, user: User) -> list[OutgoingMail]:
    return list(
        session.exec(
            select(OutgoingMail)
            .where(
                or_(
                    col(OutgoingMail.user_id) == user.id, col(OutgoingMail.to_address) == user.email
                )
            )
            .order_by(col(OutgoingMail.id))
        ).all()
    )


def forget(session: Session, *, user: User) -> None:
    """On erasure: every mail of the account or to its address goes, pending or not."""
    session.execute(
        delete(OutgoingMail).where(
            or_(col(OutgoingMail.user_id) == user.id, col(OutgoingMail.to_address) == user.email)
        )
    )


# --- The sender ------------------------------------------------------------------------


@dataclass
class PassResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    dropped: int = 0

    def __iadd__(self, other: "PassResult") -> "PassResult":
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.dropped += other.dropped
        return self


@dataclass(frozen=True)
class _Claim:
    id: int
    kind: str
    message: EmailMessage


def _recipient(session: Session, mail: OutgoingMail) -> User | None:
    """The live account the mail may go to, or None (then it is dropped)."""
    if mail.user_id is None:
        user = session.exec(select(User).where(User.email == mail.to_address)).first()
    else:
        user = session.get(User, mail.user_id)
    if user is None or user.erased_at is not None or user.email != mail.to_address:
        return None
    return user


# The kinds whose text names nobody, and so may go to an address not verified yet.
_TO_ANY_ADDRESS = frozenset({MailKind.verify_email, MailKind.password_reset})


def _prepare(
    session: Session, mailer: Mailer, mail: OutgoingMail, now: datetime
) -> EmailMessage | None:
    user = _recipient(session, mail)
    if user is None:
        return None
    assert mail.id is not None
    kind = MailKind(mail.kind)
    values: dict[str, object] = dict(mail.params)
    # A display name is the account holder's own text: it goes only to an address they have
    # proved is theirs, never to one that anybody could have typed into a profile.
    if user.email_verified:
        values["name"] = user.display_name
    elif kind not in _TO_ANY_ADDRESS:
        return None
    if kind in _TOKEN_KINDS:
        purpose, page = _TOKEN_KINDS[kind]
        token = links.issue(session, user=user, purpose=purpose, now=now)
        values["link"] = mailer.link(page, token=token)
        lifetime = links.LIFETIMES[purpose]
        values["hours"] = int(lifetime.total_seconds() // 3600)
        values["minutes"] = int(lifetime.total_seconds() // 60)
    if kind == MailKind.ballot_receipt:
        values["link"] = mailer.link(
            f"processes/{mail.params['process_id']}/receipts/{mail.params['receipt']}"
        )
    rendered = render(kind, user.language, values)
    return build_message(rendered, sender=mailer.sender, to=mail.to_address, mail_id=mail.id)


def _claim(
    engine: Engine, mailer: Mailer, now: datetime, batch: int, seen: set[int]
) -> tuple[list[_Claim], int]:
    """Claim up to `batch` mails due at `now` and not in `seen` (rendered, their tokens made
    and committed); returns them and how many were dropped."""
    claims: list[_Claim] = []
    dropped = 0
    with open_session(engine) as session:
        query = (
            select(OutgoingMail)
            .where(OutgoingMail.status == MailStatus.pending, OutgoingMail.next_attempt_at <= now)
            .order_by(col(OutgoingMail.next_attempt_at), col(OutgoingMail.id))
            .limit(batch)
        )
        if seen:
            query = query.where(col(OutgoingMail.id).not_in(seen))
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for mail in session.exec(query).all():
            message = _prepare(session, mailer, mail, now)
            if message is None:
                # No account has this address (any more): nothing to send, nothing to keep.
                session.delete(mail)
                dropped += 1
                log.info("mail %s (%s) dropped: no account has its address", mail.id, mail.kind)
                continue
            mail.attempts += 1
            mail.next_attempt_at = now + LEASE
            session.add(mail)
            assert mail.id is not None
            claims.append(_Claim(id=mail.id, kind=mail.kind, message=message))
        session.commit()
    return claims, dropped


def _record(
    engine: Engine, mailer: Mailer, outcomes: list[tuple[_Claim, DeliveryError | None]]
) -> PassResult:
    result = PassResult()
    now = utcnow()
    with open_session(engine) as session:
        for claim, error in outcomes:
            mail = session.get(OutgoingMail, claim.id, with_for_update=True)
            if mail is None:
                continue  # erased meanwhile
            if error is None:
                mail.status, mail.sent_at, mail.last_error = MailStatus.sent, now, None
                result.sent += 1
                log.info("mail %s (%s) sent", mail.id, mail.kind)
            elif error.permanent or mail.attempts >= mailer.max_attempts:
                mail.status, mail.last_error = MailStatus.failed, str(error)[:500]
                result.failed += 1
                log.warning(
                    "mail %s (%s) failed for good after %s attempts: %s",
                    mail.id,
                    mail.kind,
                    mail.attempts,
                    mail.last_error,
                )
            else:
                mail.last_error = str(error)[:500]
                mail.next_attempt_at = now + mailer.backoff(mail.attempts)
                result.retrying += 1
                log.info(
                    "mail %s (%s) not sent (attempt %s), retrying from %s: %s",
                    mail.id,
                    mail.kind,
                    mail.attempts,
                    mail.next_attempt_at.isoformat(),
                    mail.last_error,
                )
            session.add(mail)
        session.commit()
    return result


@contextmanager
def _one_sender(engine: Engine) -> Iterator[bool]:
    """On PostgreSQL, whether this sender holds the lock that lets one sender send at a
    time (the others skip their pass); elsewhere always (the claim serialises)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        held = bool(
            connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _SENDER_LOCK_KEY}
            ).scalar()
        )
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _SENDER_LOCK_KEY}
                )
                connection.commit()


def deliver_due(engine: Engine, mailer: Mailer, *, batch: int = BATCH) -> PassResult:
    """One pass: try each mail due when the pass starts once, batch by batch (a mail that
    fails waits for a later pass, however short its backoff)."""
    total = PassResult()
    start = utcnow()
    seen: set[int] = set()
    with _one_sender(engine) as mine:
        if not mine:
            return total
        while True:
            claims, dropped = _claim(engine, mailer, start, batch, seen)
            seen.update(claim.id for claim in claims)
            total.dropped += dropped
            if not claims:
                if dropped:
                    continue
                return total
            outcomes: list[tuple[_Claim, DeliveryError | None]] = []
            unreachable: DeliveryError | None = None
            with mailer.transport.connect() as send:
                for claim in claims:
                    if unreachable is not None:
                        # The server is down: the rest of the batch fails the same way,
                        # without a connection attempt each.
                        outcomes.append((claim, unreachable))
                        continue
                    try:
                        send(claim.message)
                        outcomes.append((claim, None))
                    except DeliveryError as error:
                        outcomes.append((claim, error))
                        if error.unreachable:
                            unreachable = error
            total += _record(engine, mailer, outcomes)
            # Down: the pass ends here, leaving the rest for after the backoff.
            if unreachable is not None or len(claims) < batch:
                return total


async def sender_loop(engine: Engine, mailer: Mailer, interval: float) -> None:
    """The server's sender: a pass every `interval` seconds, in a worker thread, until
    cancelled. Every worker runs one; the claims (and on PostgreSQL the sender lock) keep
    them from sending a mail twice."""
    while True:
        try:
            await anyio.to_thread.run_sync(deliver_due, engine, mailer, abandon_on_cancel=True)
        except Exception:
            log.exception("mail sender pass failed; trying again in %s s", interval)
        await asyncio.sleep(interval)


def outbox_figures(engine: Engine) -> OutboxFigures:
    """How many mails wait and have failed for good, and how long the oldest has waited:
    for GET /metrics, read when scraped."""
    with open_session(engine, write=False) as session:
        pending, oldest = session.exec(
            select(func.count(), func.min(OutgoingMail.created_at)).where(
                OutgoingMail.status == MailStatus.pending
            )
        ).one()
        failed = session.exec(
            select(func.count()).where(OutgoingMail.status == MailStatus.failed)
        ).one()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return OutboxFigures(pending=pending, failed=failed, oldest_pending_age_seconds=age)
