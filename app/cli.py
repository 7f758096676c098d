"""The `wijkbudget` command: serve the API, migrate the database, manage admins.

Every command reads `DATABASE_URL` and the other settings like the server does, exits 0 on
success and non-zero with a message on stderr otherwise.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from app.services.tally import RULES

if TYPE_CHECKING:
    from pydantic import ValidationError
    from sqlalchemy import Engine

    from app.services.pabulib import PabulibElection

# The web stack (FastAPI, SQLAlchemy, Alembic) is imported inside the commands that use it,
# so `wijkbudget tally` starts in a fraction of the time.

cli = typer.Typer(
    help="Wijkbudget: a participatory-budgeting backend for municipalities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from app import __version__

        typer.echo(f"wijkbudget {__version__}")
        raise typer.Exit()


@cli.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version (CHANGELOG.md names its commit) and exit.",
        ),
    ] = False,
) -> None:
    """Wijkbudget: a participatory-budgeting backend for municipalities."""


def _field_errors(exc: "ValidationError") -> str:
    """A pydantic error as one line: `field: message; other: message`."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


@contextmanager
def _engine(database_url: str, **options: Any) -> "Iterator[Engine]":
    """An engine for one command, disposed of when it ends."""
    from app.core.db import make_engine

    engine = make_engine(database_url, **options)
    try:
        yield engine
    finally:
        engine.dispose()


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies (comma-separated addresses or networks, or '*') whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed; default FORWARDED_ALLOW_IPS, "
            "else none: the headers are ignored.",
        ),
    ] = None,
) -> None:
    """Apply the database migrations, then serve the API (docs at /docs)."""
    import uvicorn

    from app.core.config import ConfigError, get_settings
    from app.core.db import migrate as apply_migrations
    from app.core.logsetup import configure, log_config

    settings = get_settings()
    log_format = settings.effective_log_format
    # The supervisor's own lines look like the workers' (uvicorn applies the same config).
    configure(settings.log_level, log_format)
    try:
        settings.require_strong_secret()
        settings.require_mail_transport()
        settings.require_media_store()
        _wait_for_database(settings.database_url, settings.db_wait_seconds)
        for line in apply_migrations(settings.database_url):
            logging.getLogger("wijkbudget.db").info("applied migration %s", line)
        # Resolved once here, so a generated development key exists before workers start.
        settings.signing_key()
    except ConfigError as exc:
        fail(str(exc), code=2)
    if settings.environment == "production":
        _warn_about_unverified_voters(settings.database_url)
    from app.services.mail import MAIL_SENDER_CONNECTIONS

    sender = MAIL_SENDER_CONNECTIONS if settings.mail_sender_interval_seconds > 0 else 0
    _warn_about_connections(
        settings.database_url, workers, settings.db_pool_size + settings.db_max_overflow + sender
    )
    typer.echo(f"Wijkbudget on http://{host}:{port} (docs at /docs)", err=True)
    trusted = forwarded_allow_ips or settings.forwarded_allow_ips
    with _metrics_directory(settings.metrics_token is not None):
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            server_header=False,
            # A request stuck past its database timeouts is failed by them; this bounds the
            # rest.
            timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
            access_log=False,
            log_level=settings.log_level.lower(),
            # Every process uvicorn starts (each worker too) applies this: one set-up for all.
            log_config=log_config(settings.log_level, log_format),
            # Uvicorn believes these headers from 127.0.0.1 unless told otherwise; an address
            # a client can forge must not name its throttle bucket, so only a configured
            # proxy counts.
            proxy_headers=trusted is not None,
            forwarded_allow_ips=trusted or "",
        )


@contextmanager
def _metrics_directory(enabled: bool) -> Iterator[None]:
    """With metrics on, an empty PROMETHEUS_MULTIPROC_DIR for the workers to share (the
    operator's, emptied, or a temporary one removed afterwards), set before they start."""
    import os
    import shutil
    import tempfile

    from app.core.metrics import MULTIPROC_ENV, prepare_directory

    if not enabled:
        yield
        return
    given = os.environ.get(MULTIPROC_ENV)
    directory = Path(given or tempfile.mkdtemp(prefix="wijkbudget-metrics-"))
    prepare_directory(directory)
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield
    finally:
        if given is None:
            shutil.rmtree(directory, ignore_errors=True)


def _wait_for_database(database_url: str, seconds: float) -> None:
    """Wait for a database that is not up yet (logged), or fail with one line."""
    from app.core.db import DatabaseUnreachable, wait_for_database

    try:
        wait_for_database(database_url, seconds)
    except DatabaseUnreachable as exc:
        fail(str(exc), code=3)


def _warn_about_connections(database_url: str, workers: int, per_worker: int) -> None:
    """Warn when this machine's workers alone could take every PostgreSQL connection."""
    from app.core.db import connection_budget_warning, server_connection_limits

    with _engine(database_url, pool_size=1, max_overflow=0) as engine:
        limits = server_connection_limits(engine)
    if limits is None:
        return
    warning = connection_budget_warning(
        workers=workers,
        per_worker=per_worker,
        max_connections=limits.max_connections,
        reserved=limits.reserved,
        role_limit=limits.role_limit,
        role=f"the role {limits.role}",
    )
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def _warn_about_unverified_voters(database_url: str) -> None:
    """In production, name every open process whose voters would not be verified."""
    from app.core.db import open_session
    from app.services import processes

    with _engine(database_url) as engine, open_session(engine, write=False) as session:
        names = processes.open_and_unverified(session)
    typer.echo(
        "warning: without voting codes or verified e-mail addresses one person with several "
        "accounts casts several ballots; entering voting is refused (unverified_voters) "
        "unless a process requires codes or verified e-mail, or sets allow_unverified_voters.",
        err=True,
    )
    for name in names:
        typer.echo(f"warning: process {name} allows unverified voters", err=True)


@cli.command()
def migrate() -> None:
    """Apply every pending database migration (safe to run repeatedly).

    Prints each revision it applies, one line each, or that the database was up to date.
    """
    from app.core.config import get_settings
    from app.core.db import migrate as apply_migrations
    from app.core.db import schema_heads

    settings = get_settings()
    _wait_for_database(settings.database_url, settings.db_wait_seconds)
    applied = apply_migrations(settings.database_url)
    for line in applied:
        typer.echo(f"applied {line}", err=True)
    if not applied:
        typer.echo(f"database is up to date at {', '.join(schema_heads())}", err=True)


ADMIN_PASSWORD_ENV = "WIJKBUDGET_ADMIN_PASSWORD"


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty()


def _admin_password(given: str | None, from_stdin: bool) -> str:
    """The password from stdin, the option, the environment or a prompt, in that order.

    The option shows in `ps` and the shell history; stdin and the environment do not, and a
    prompt (on a terminal, hidden and asked twice) leaves no trace at all."""
    import os
    import sys

    if from_stdin:
        if given is not None:
            fail("give the password either with --password or on stdin, not both")
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            fail("--password-stdin: no password on stdin")
        return password
    if given is not None:
        return given
    from_env = os.environ.get(ADMIN_PASSWORD_ENV)
    if from_env:
        return from_env
    if _interactive():
        prompted: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return prompted
    fail(
        f"no password: run it on a terminal to be asked, or give it on stdin "
        f"(--password-stdin) or in {ADMIN_PASSWORD_ENV}"
    )


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="At least 10 characters. Visible to other users in `ps` and kept in the "
            "shell history: prefer the prompt, --password-stdin or "
            f"{ADMIN_PASSWORD_ENV}.",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Create an admin account, or make an existing account admin and set its password.

    The password: asked for (hidden, twice) on a terminal; else the first line of stdin with
    --password-stdin, or the WIJKBUDGET_ADMIN_PASSWORD environment variable. Applies pending
    migrations first, so it works on a new database.
    """
    from pydantic import ValidationError

    from app.core.config import get_settings
    from app.core.db import migrate as apply_migrations
    from app.core.db import open_session
    from app.services import accounts

    secret = _admin_password(password, password_stdin)
    settings = get_settings()
    _wait_for_database(settings.database_url, settings.db_wait_seconds)
    apply_migrations(settings.database_url)
    with _engine(settings.database_url) as engine:
        try:
            with open_session(engine) as session:
                user, created = accounts.ensure_admin(session, email=email, password=secret)
                session.commit()
        except ValidationError as exc:
            fail(_field_errors(exc))
    typer.echo(f"{'created' if created else 'updated'} admin {user.email} (id {user.id})")


@cli.command()
def prune() -> None:
    """Delete expired abuse-limit records (failed sign-ins, registrations, code claims).

    Safe at any time and idempotent; run it on a schedule (e.g. hourly from cron) so that
    pseudonymised emails and addresses are not kept beyond their window.
    """
    from app.core.config import get_settings
    from app.core.db import open_session
    from app.models.base import utcnow
    from app.services import throttle

    settings = get_settings()
    _wait_for_database(settings.database_url, settings.db_wait_seconds)
    with _engine(settings.database_url) as engine, open_session(engine) as session:
        removed = throttle.prune(session, now=utcnow())
        session.commit()
    typer.echo(f"pruned {removed} expired throttle records")


@cli.command("send-mail")
def send_mail(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep sending, a pass every --interval seconds.")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between passes with --loop.", min=0.1)
    ] = 5.0,
) -> None:
    """Send the mail that is due from the outbox: one pass (for cron), or --loop.

    Safe beside the servers' own senders and other send-mail runs: each mail is claimed
    before it is sent. Set MAIL_SENDER_INTERVAL_SECONDS=0 on the servers to leave all
    sending to this command (e.g. in a container of its own).
    """
    import time

    from app.core.config import ConfigError, get_settings
    from app.services import mail

    settings = get_settings()
    try:
        settings.require_mail_transport()
    except ConfigError as exc:
        fail(str(exc), code=2)
    mailer = mail.make_mailer(settings)
    with _engine(settings.database_url) as engine:
        typer.echo(f"mail goes to {mailer.description}", err=True)
        try:
            while True:
                result = mail.deliver_due(engine, mailer)
                typer.echo(
                    f"sent {result.sent}, retrying {result.retrying}, failed {result.failed}, "
                    f"dropped {result.dropped}",
                    err=True,
                )
                if not loop:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return


@cli.command()
def demo(
    city: Annotated[
        bool,
        typer.Option(
            "--city",
            help="A Groningen-wide round instead: a city-wide budget and three districts.",
        ),
    ] = False,
) -> None:
    """Fill an empty database with the Oosterpark demo: accounts, a process, proposals.

    Applies pending migrations first. The process ends in phase `review`, one transition
    from voting. Every demo account has the password printed at the end. With --city, a
    round "Groningen 2026": a city-wide process beside Oosterpark, Paddepoel and
    Schildersbuurt, of which each resident votes in one; all one round transition from voting.
    """
    from app.core.config import get_settings
    from app.core.db import migrate as apply_migrations
    from app.core.db import open_session
    from app.services import demo as demo_data

    settings = get_settings()
    _wait_for_database(settings.database_url, settings.db_wait_seconds)
    apply_migrations(settings.database_url)
    with _engine(settings.database_url) as engine:
        try:
            with open_session(engine) as session:
                created = demo_data.load_city(session) if city else demo_data.load(session)
                session.commit()
        except demo_data.NotEmpty as exc:
            fail(str(exc))
    for email, role in created.items():
        typer.echo(f"{role:<10} {email}")
    typer.echo(f"password for every demo account: {demo_data.DEMO_PASSWORD}")


# The tally rules, named as app.services.tally registers them (a pure, quick import).
Rule = StrEnum("Rule", {name: name for name in RULES})  # type: ignore[misc]


@cli.command()
def tally(
    path: Annotated[Path, typer.Argument(metavar="FILE.pb", help="A pabulib election file.")],
    rule: Annotated[Rule, typer.Option(help="greedy, or mes (Method of Equal Shares).")] = Rule[
        "greedy"
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Say why each project won or lost, and the fairness figures."
        ),
    ] = False,
) -> None:
    """Tally a pabulib election with `greedy` or `mes` (Equal Shares with Add1).

    Progress goes to stderr, the result to stdout. With --json it prints
    {"rule", "budget", "selected", "spent"}, the ids in selection order; with --explain
    also "explanations" (by project id) and "fairness", as the results API gives them.
    """
    import json

    from app.services import pabulib

    def progress(votes: int) -> None:
        typer.echo(f"read {votes:,} votes", err=True)

    try:
        election = pabulib.read(path, progress=progress)
    except pabulib.PabulibError as exc:
        fail(f"{path}: {exc}")
    typer.echo(
        f"{len(election.projects)} projects, {len(election.ballots):,} votes; tallying with {rule}",
        err=True,
    )
    if explain:
        _tally_explained(election, rule.value, as_json=as_json)
        return
    outcome = RULES[rule.value].count(election.election())
    ids = [project.project_id for project in election.projects]
    if as_json:
        result = {
            "rule": rule.value,
            "budget": election.budget,
            "selected": [ids[i] for i in outcome.selected],
            "spent": outcome.spent,
        }
        typer.echo(json.dumps(result))
        return
    chosen = set(outcome.selected)
    typer.echo(f"{'rank':>4}  {'project':<12} {'cost':>12} {'votes':>8}  selected  name")
    for rank, i in enumerate(outcome.ranking, start=1):
        project = election.projects[i]
        name = project.fields.get("name", "")[:60]
        mark = "yes" if i in chosen else ""
        typer.echo(
            f"{rank:>4}  {project.project_id:<12} {project.cost:>12,} {outcome.votes[i]:>8,}  "
            f"{mark:<8}  {name}"
        )
    typer.echo(f"budget {election.budget:,}, spent {outcome.spent:,}, rule {rule.value}")


def _tally_explained(election: "PabulibElection", rule: str, *, as_json: bool) -> None:
    """`tally --explain`: the rule's outcome with a plain sentence per project (English) and
    the fairness figures; or, with --json, the API's explanations and fairness."""
    import json

    from app.services import results, results_page

    e = election.election()
    outcome, explained = RULES[rule].explain(e)
    explanations = [results.explanation(x) for x in explained]
    figures = results.fairness(e, outcome)
    with_choice, per_voter = results.shares(e, outcome)
    ids = [project.project_id for project in election.projects]
    if as_json:
        result = {
            "rule": rule,
            "budget": election.budget,
            "selected": [ids[i] for i in outcome.selected],
            "spent": outcome.spent,
            "voters_with_a_funded_choice": with_choice,
            "funded_choices_per_voter": per_voter,
            "explanations": {
                pid: x.model_dump(mode="json") for pid, x in zip(ids, explanations, strict=True)
            },
            "fairness": figures.model_dump(mode="json"),
        }
        typer.echo(json.dumps(result))
        return
    chosen = set(outcome.selected)
    typer.echo(f"{'rank':>4}  {'project':<12} {'cost':>12} {'votes':>8}  selected  why")
    for rank, i in enumerate(outcome.ranking, start=1):
        project = election.projects[i]
        mark = "yes" if i in chosen else ""
        why = results_page.sentence(explanations[i], rule, project.cost, "en")
        typer.echo(
            f"{rank:>4}  {project.project_id:<12} {project.cost:>12,} {outcome.votes[i]:>8,}  "
            f"{mark:<8}  {why}"
        )
    typer.echo(f"budget {election.budget:,}, spent {outcome.spent:,}, rule {rule}")
    typer.echo(
        f"voters with a funded choice {with_choice:.2%}, funded choices per voter "
        f"{per_voter:.2f}, mean funded share {figures.mean_funded_share:.2%}, "
        f"Gini of the funded share {figures.gini_funded_share:.4f}"
    )
    histogram = ", ".join(f"{k}: {n:,}" for k, n in figures.funded_choices_histogram.items())
    typer.echo(f"ballots by funded choices: {histogram}")


@cli.command()
def seal(
    process_id: Annotated[
        int | None, typer.Argument(metavar="[PROCESS_ID]", help="The process to seal.")
    ] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Seal every process whose seal_after_days passed.")
    ] = False,
) -> None:
    """Remove the link between voters and ballots of a published process (irreversible).

    Results, exports, digest and receipts stay the same. With --due (for cron), seal every
    process published at least its `seal_after_days` ago.
    """
    from app.core.config import get_settings
    from app.core.db import migrate as apply_migrations
    from app.core.db import open_session
    from app.core.errors import DomainError
    from app.services import sealing

    if (process_id is None) == (not due):
        fail("give either a PROCESS_ID or --due")
    settings = get_settings()
    _wait_for_database(settings.database_url, settings.db_wait_seconds)
    apply_migrations(settings.database_url)
    sealed: list[int] = []
    failures: list[str] = []
    with _engine(settings.database_url) as engine:
        with open_session(engine) as session:
            targets = sealing.due(session) if due else [process_id]
        for target in targets:
            assert target is not None
            # One transaction per process: one failure neither undoes nor stops the others
            # (two cron runs racing make one `already_sealed`).
            try:
                with open_session(engine) as session:
                    sealing.seal(session, actor=None, process_id=target)
                    session.commit()
            except DomainError as exc:
                failures.append(f"process {target}: {exc.code}: {exc.detail}")
            else:
                sealed.append(target)
        # Once, after the commits: it runs outside any transaction.
        if sealed and (problem := sealing.scrub(engine)) is not None:
            failures.append(
                f"scrubbing the database files failed ({problem}); run VACUUM FULL "
                f"{', '.join(sealing.SCRUBBED_TABLES)} on PostgreSQL, or "
                "PRAGMA wal_checkpoint(TRUNCATE) on SQLite"
            )
    typer.echo(f"sealed: {', '.join(map(str, sealed)) or 'none'}")
    if failures:
        fail("; ".join(failures))


@cli.command("paper-import")
def paper_import(
    process_id: Annotated[int, typer.Argument(metavar="PROCESS_ID")],
    path: Annotated[Path, typer.Argument(metavar="FILE.csv", help="One row per paper ballot.")],
    source: Annotated[str, typer.Option(help='Where the forms come from: "Stadhuis, box 3".')],
    as_email: Annotated[str, typer.Option("--as", help="The staff account keying this.")],
    confirm: Annotated[
        int | None,
        typer.Option(metavar="BATCH_ID", help="Key an entered batch a second time to confirm it."),
    ] = None,
) -> None:
    """Enter a batch of paper ballots from a CSV file, or confirm one (four eyes).

    Columns: `proposal_ids` ("3 7 9") or `points` ("3:5 7:5"), and optionally
    `voting_code`. Without --confirm a new batch is entered; a second staff account then
    imports its own keying of the same forms with --confirm BATCH_ID.
    """
    from pydantic import ValidationError
    from sqlmodel import select

    from app.core.config import get_settings
    from app.core.db import open_session
    from app.core.errors import DomainError
    from app.models.paper import PaperBatchIn
    from app.models.user import User
    from app.services import paper, voting_codes

    settings = get_settings()
    try:
        data = PaperBatchIn.model_validate(
            {"source": source, "ballots": paper.parse_csv(path.read_text(encoding="utf-8-sig"))}
        )
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    except paper.CsvError as exc:
        fail(f"{path}: {exc}")
    except ValidationError as exc:
        fail(_field_errors(exc))
    key = voting_codes.code_key(settings.signing_key())
    with _engine(settings.database_url) as engine:
        try:
            with open_session(engine) as session:
                actor = session.exec(
                    select(User).where(User.email == as_email.strip().lower())
                ).first()
                if actor is None:
                    fail(f"no account {as_email}")
                if confirm is None:
                    batch = paper.enter(
                        session, actor=actor, process_id=process_id, data=data, key=key
                    )
                else:
                    batch = paper.confirm(
                        session, actor=actor, batch_id=confirm, data=data, key=key
                    )
                session.commit()
        except DomainError as exc:
            for difference in exc.extra.get("differences", []):
                typer.echo(
                    f"ballot {difference['index']}: first {difference['first']}, "
                    f"second {difference['second']}",
                    err=True,
                )
            fail(f"{exc.code}: {exc.detail}")
    c = batch.counts
    typer.echo(
        f"batch {batch.id} {batch.status}: {c.ballots} ballots, {c.valid} valid, "
        f"{c.invalid} invalid, {c.duplicate} duplicate"
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic narrates every upgrade at INFO ("Context impl SQLiteImpl."); commands say
    # themselves what they did, so only its warnings are worth an operator's eyes.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cli()
