"""A real SMTP server in the test process (aiosmtpd), and an app that mails to it.

The server can be down (nothing listens on its port), refuse the next deliveries with
`451 try again`, or refuse a mailbox for good with `550`. Tests take tokens from the
messages it received, never from the database.
"""

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.core.config import Settings
from app.main import create_app
from app.services import mail
from tests.conftest import make_settings
from tests.helpers import free_port

FRONTEND = "https://stem.example.org"
LINK = re.compile(re.escape(FRONTEND) + r"/(verify-email|reset-password)\?token=([A-Za-z0-9_-]+)")


@dataclass
class Inbox:
    """What the SMTP server received, and how it answers."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse_next: int = 0  # answer `451 try again` to this many deliveries
    refused: int = 0
    bounce: set[str] = field(default_factory=set)  # mailboxes answered `550`
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.bounce:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: SMTPSession, envelope: Envelope
    ) -> str:
        with self.lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                self.refused += 1
                return "451 4.3.0 Try again later"
            content = envelope.content
            assert isinstance(content, bytes)
            message = message_from_bytes(content, policy=default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(cast(EmailMessage, part).get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(cast(EmailMessage, part).get_content())


def token_in(message: EmailMessage, page: str) -> str:
    """The token of the link to `page` in the plain-text part (as a resident would click)."""
    found = [t for p, t in LINK.findall(text_of(message)) if p == page]
    assert len(found) == 1, text_of(message)
    return str(found[0])


class SmtpServer:
    """An aiosmtpd server on a fixed local port that can be started and stopped."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def mail_settings(database_url: str, smtp_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_url": smtp_url,
        "frontend_url": FRONTEND,
        "mail_from": "Wijkbudget <noreply@wijkbudget.example.org>",
        # Retries are due at once: each test pass is a later attempt (backoff is tested
        # on its own).
        "mail_retry_seconds": 0,
        "smtp_timeout_seconds": 5,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@dataclass
class MailWorld:
    app: FastAPI
    client: TestClient
    smtp: SmtpServer

    @property
    def inbox(self) -> Inbox:
        return self.smtp.inbox

    def deliver(self) -> mail.PassResult:
        """One pass of the sender, as the server's background task or `send-mail` runs it."""
        engine: Engine = self.app.state.engine
        return mail.deliver_due(engine, self.app.state.mailer)


@pytest.fixture
def world(smtp: SmtpServer, settings: Settings, engine: Engine) -> Iterator[MailWorld]:
    app = create_app(mail_settings(settings.database_url, smtp.url))
    with TestClient(app, base_url="http://testserver") as client:
        yield MailWorld(app=app, client=client, smtp=smtp)
    app.state.engine.dispose()
