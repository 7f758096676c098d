"""The outbox: nothing is lost while the SMTP server is down or refusing, failures are
kept with their error, senders never send a mail twice, and operators see the queue."""

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.core.config import ConfigError
from app.main import create_app
from app.models.mail import MailKind, MailStatus, OutgoingMail
from app.services import mail
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import make_user
from tests.helpers import API, assert_problem, wait_until
from tests.mail.conftest import (
    FRONTEND,
    MailWorld,
    SmtpServer,
    mail_settings,
    text_of,
    token_in,
)


def register(client: TestClient, n: int) -> str:
    email = f"resident{n}@example.org"
    response = client.post(
        f"{API}/auth/register",
        json={"email": email, "password": "correct horse battery", "display_name": f"R{n}"},
    )
    assert response.status_code == 201, response.text
    return email


def rows(session: Session) -> list[OutgoingMail]:
    session.commit()
    found = list(session.exec(select(OutgoingMail).order_by(OutgoingMail.id)).all())  # type: ignore[arg-type]
    session.commit()
    return found


@pytest.fixture
def down() -> SmtpServer:
    """An SMTP server that is not running yet: connections to its port are refused."""
    return SmtpServer()


def test_nothing_is_lost_while_smtp_is_down_then_refusing(
    down: SmtpServer, settings: Any, engine: Engine, session: Session
) -> None:
    app = create_app(mail_settings(settings.database_url, down.url))
    try:
        with TestClient(app) as client:
            addresses = [register(client, n) for n in range(5)]
            client.post(f"{API}/auth/password-reset/request", json={"email": addresses[0]})
        world = MailWorld(app=app, client=client, smtp=down)
        # Down: every attempt fails, every mail stays pending with the error.
        for attempt in (1, 2):
            result = world.deliver()
            assert (result.sent, result.retrying, result.failed) == (0, 6, 0)
            assert {(r.status, r.attempts) for r in rows(session)} == {("pending", attempt)}
        assert all("ConnectionRefusedError" in (r.last_error or "") for r in rows(session))
        # Up again, but refusing the first three deliveries with 451.
        down.start()
        down.inbox.refuse_next = 3
        passes = 0
        while any(r.status == "pending" for r in rows(session)):
            world.deliver()
            passes += 1
            assert passes <= 5
        assert down.inbox.refused == 3
        assert {r.status for r in rows(session)} == {"sent"}
        assert sum(r.attempts for r in rows(session)) == 6 * 2 + 6 + 3
        # Exactly one of each, nothing lost, nothing twice; every link works.
        for address in addresses:
            received = down.inbox.to(address)
            kinds = sorted(m["Subject"] for m in received)
            expected = 2 if address == addresses[0] else 1
            assert len(received) == expected, (address, kinds)
            for message in received:
                page = "reset-password" if "password" in message["Subject"] else "verify-email"
                assert token_in(message, page)
        refused_then_sent = [r for r in rows(session) if r.attempts == 4]
        assert len(refused_then_sent) == 3
        assert all(r.last_error is None and r.sent_at is not None for r in rows(session))
    finally:
        down.stop()
        app.state.engine.dispose()


def test_while_smtp_is_down_a_pass_tries_one_batch_and_stops(
    down: SmtpServer, settings: Any, engine: Engine, session: Session
) -> None:
    users = [make_user(session) for _ in range(mail.BATCH + 10)]
    with Session(engine) as db:
        for user in users:
            mail.enqueue(db, kind=MailKind.verify_email, to=user.email, user_id=user.id)
        db.commit()
    app = create_app(mail_settings(settings.database_url, down.url))
    try:
        world = MailWorld(app=app, client=TestClient(app), smtp=down)
        result = world.deliver()
        assert (result.sent, result.retrying) == (0, mail.BATCH)
        attempts = sorted(r.attempts for r in rows(session))
        assert attempts == [0] * 10 + [1] * mail.BATCH
        down.start()
        assert world.deliver().sent == len(users)  # one pass, batch after batch
        assert len(down.inbox.messages) == len(users)
    finally:
        down.stop()
        app.state.engine.dispose()


def test_a_refused_mailbox_fails_for_good_and_is_kept_with_its_error(
    world: MailWorld, session: Session
) -> None:
    register(world.client, 1)
    register(world.client, 2)
    world.inbox.bounce.add("resident1@example.org")
    result = world.deliver()
    assert (result.sent, result.failed) == (1, 1)
    failed = next(r for r in rows(session) if r.to_address == "resident1@example.org")
    assert failed.status == "failed"
    assert failed.attempts == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith("550")
    assert world.deliver().failed == 0  # never tried again


def test_out_of_attempts_is_failed(
    down: SmtpServer, settings: Any, engine: Engine, session: Session
) -> None:
    app = create_app(mail_settings(settings.database_url, down.url, mail_max_attempts=3))
    try:
        with TestClient(app) as client:
            register(client, 1)
        world = MailWorld(app=app, client=client, smtp=down)
        outcomes = [world.deliver() for _ in range(4)]
        assert [(o.retrying, o.failed) for o in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0)]
        [row] = rows(session)
        assert (row.status, row.attempts) == ("failed", 3)
        assert "ConnectionRefusedError" in (row.last_error or "")
    finally:
        app.state.engine.dispose()


def test_backoff_doubles_and_is_capped() -> None:
    mailer = mail.Mailer(
        frontend_url=FRONTEND,
        sender="x@example.org",
        transport=mail.FileTransport(Path("unused")),
        retry=timedelta(seconds=30),
        retry_max=timedelta(minutes=10),
    )
    waits = [mailer.backoff(n).total_seconds() for n in range(1, 8)]
    assert waits == [30, 60, 120, 240, 480, 600, 600]


def test_a_failed_attempt_waits_for_its_backoff(
    down: SmtpServer, settings: Any, engine: Engine, session: Session
) -> None:
    app = create_app(mail_settings(settings.database_url, down.url, mail_retry_seconds=3600))
    try:
        with TestClient(app) as client:
            register(client, 1)
        world = MailWorld(app=app, client=client, smtp=down)
        assert world.deliver().retrying == 1
        down.start()
        assert world.deliver().sent == 0  # not due for an hour
        [row] = rows(session)
        assert row.status == "pending"
        assert timedelta(minutes=59) < row.next_attempt_at - row.created_at < timedelta(minutes=61)
    finally:
        down.stop()
        app.state.engine.dispose()


def test_parallel_senders_send_each_mail_once(
    world: MailWorld, session: Session, engine: Engine
) -> None:
    users = [make_user(session) for _ in range(30)]
    with Session(engine) as db:
        for user in users:
            mail.enqueue(db, kind=MailKind.verify_email, to=user.email, user_id=user.id)
        db.commit()
    start = threading.Barrier(3)
    results: list[mail.PassResult] = []

    def sender() -> None:
        start.wait(timeout=10)
        results.append(world.deliver())

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.sent for r in results) == 30
    assert len(world.inbox.messages) == 30
    assert len({m["To"] for m in world.inbox.messages}) == 30
    assert {r.status for r in rows(session)} == {"sent"}


def test_admins_see_the_queue_without_bodies_or_tokens(world: MailWorld, session: Session) -> None:
    admin = make_user(session, role="admin")  # type: ignore[arg-type]
    resident = make_user(session)
    from tests.factories import auth

    key = world.app.state.signing_key
    register(world.client, 1)
    world.inbox.bounce.add("resident1@example.org")
    world.deliver()
    register(world.client, 2)
    listed = world.client.get(f"{API}/admin/mail", headers=auth(admin, key))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2
    newest, oldest = body["items"]
    assert set(newest) == {
        "id", "to", "kind", "status", "attempts", "last_error", "created_at", "sent_at"
    }  # fmt: skip
    assert (newest["to"], newest["kind"], newest["status"], newest["attempts"]) == (
        "resident2@example.org", "verify_email", "pending", 0,
    )  # fmt: skip
    assert oldest["status"] == "failed"
    assert oldest["last_error"].startswith("550")
    failed = world.client.get(f"{API}/admin/mail?status=failed", headers=auth(admin, key))
    assert [m["to"] for m in failed.json()["items"]] == ["resident1@example.org"]
    assert_problem(
        world.client.get(f"{API}/admin/mail", headers=auth(resident, key)), 403, "forbidden"
    )
    assert_problem(world.client.get(f"{API}/admin/mail"), 401, "not_authenticated")
    assert_problem(
        world.client.get(f"{API}/admin/mail?status=lost", headers=auth(admin, key)),
        422,
        "validation_error",
    )


def test_the_server_sends_in_the_background(
    smtp: SmtpServer, settings: Any, engine: Engine
) -> None:
    app = create_app(
        mail_settings(settings.database_url, smtp.url, mail_sender_interval_seconds=0.05)
    )
    try:
        with TestClient(app) as client:
            register(client, 1)
            [message] = wait_until(
                lambda: smtp.inbox.to("resident1@example.org"),
                timeout=20,
                what="the background sender delivers the verification mail",
            )
            assert token_in(message, "verify-email")
    finally:
        app.state.engine.dispose()


def test_the_sender_has_connections_of_its_own(
    smtp: SmtpServer, settings: Any, engine: Engine
) -> None:
    """With one pooled connection per worker (accepted by the settings) the sender neither
    waits on itself (on PostgreSQL it holds its lock on one connection and claims on
    another) nor takes the requests' only connection: every mail goes out at once."""
    app = create_app(
        mail_settings(
            settings.database_url,
            smtp.url,
            mail_sender_interval_seconds=0.05,
            db_pool_size=1,
            db_max_overflow=0,
        )
    )
    try:
        with TestClient(app) as client:
            for n in range(1, 4):
                register(client, n)
            wait_until(
                lambda: all(smtp.inbox.to(f"resident{n}@example.org") for n in range(1, 4)),
                # The pool's own timeout is 30 s: a sender waiting on itself misses this.
                timeout=10,
                what="the background sender delivers three verification mails",
            )
    finally:
        app.state.engine.dispose()


def test_without_smtp_in_development_mail_is_an_eml_file(
    settings: Any, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = tmp_path / "outbox"
    caplog.set_level("INFO", logger="wijkbudget.mail")
    app = create_app(
        make_settings(
            settings.database_url,
            environment="development",
            mail_outbox_dir=str(outbox),
            frontend_url=FRONTEND,
        )
    )
    try:
        with TestClient(app) as client:
            register(client, 1)
        assert str(outbox) in caplog.text  # the log says where mail goes
        result = mail.deliver_due(app.state.engine, app.state.mailer)
        assert result.sent == 1
        [file] = outbox.glob("*.eml")
        from email import message_from_bytes
        from email.message import EmailMessage
        from email.policy import default

        message = message_from_bytes(file.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        assert message["To"] == "resident1@example.org"
        assert f"{FRONTEND}/verify-email?token=" in text_of(message)
    finally:
        app.state.engine.dispose()


def test_production_refuses_to_start_without_smtp(settings: Any) -> None:
    production = make_settings(settings.database_url, environment="production")
    with pytest.raises(ConfigError, match="SMTP_URL"):
        create_app(production)


def test_send_mail_command_delivers_what_is_due(
    smtp: SmtpServer, settings: Any, engine: Engine, session: Session, tmp_path: Path
) -> None:
    user = make_user(session, email="cli@example.org")
    with Session(engine) as db:
        mail.enqueue(db, kind=MailKind.verify_email, to=user.email, user_id=user.id)
        db.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP", "MAIL", "DATABASE"))}
    env.update(
        DATABASE_URL=settings.database_url,
        SECRET_KEY=TEST_SECRET,
        ENVIRONMENT="test",
        SMTP_URL=smtp.url,
        FRONTEND_URL=FRONTEND,
    )
    done = subprocess.run(
        [sys.executable, "-m", "app", "send-mail"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sent 1" in done.stderr
    [message] = smtp.inbox.to("cli@example.org")
    assert token_in(message, "verify-email")
    assert [r.status for r in rows(session)] == [MailStatus.sent]
