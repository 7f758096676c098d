"""The application factory: `create_app()` wires settings, database, errors and routers."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from app import __version__, openapi
from app.core import metrics
from app.core.config import Settings, get_settings
from app.core.db import make_engine
from app.core.logsetup import ensure_configured
from app.core.middleware import (
    BodySizeLimitMiddleware,
    BodyTimeoutMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
)
from app.core.problems import (
    install_error_handlers,
)
from app.core.slots import ConnectionSlots
from app.routers import (
    admin,
    analysis,
    audit,
    auth,
    ballots,
    comments,
    content,
    health,
    paper,
    processes,
    proposals,
    results,
    rounds,
    users,
)
from app.routers import metrics as metrics_router
from app.routers.deps import API_PREFIX
from app.services.analysis import analysis_pool
from app.services.images import JobSlots
from app.services.mail import MAIL_SENDER_CONNECTIONS, Mailer, make_mailer, sender_loop
from app.services.media import make_store
from app.services.throttle import make_guard

DESCRIPTION = """
Wijkbudget is the backend of a participatory budget: residents propose plans for their
neighbourhood, discuss and support them, the municipality reviews them, and residents divide
the budget by voting. Results are computed by `greedy` or the Method of Equal Shares (`mes`)
and published with a digest anyone can recompute.

Every error is `application/problem+json` with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ensure_configured(settings.log_level, settings.effective_log_format)
    settings.require_strong_secret()
    settings.require_mail_transport()
    settings.require_media_store()
    timeouts = {
        "lock_timeout": settings.db_lock_timeout_seconds,
        "statement_timeout": settings.db_statement_timeout_seconds,
    }
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        **timeouts,
    )
    # The mail sender has connections of its own (it holds its lock on one and works on
    # the other), so a small or busy request pool can neither starve it nor be starved by it.
    sender_engine = make_engine(
        settings.database_url, pool_size=MAIL_SENDER_CONNECTIONS, max_overflow=0, **timeouts
    )

    admitted = settings.db_pool_size + settings.db_max_overflow
    mailer = make_mailer(settings)
    metrics_on = settings.metrics_token is not None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers need a thread beyond every connection slot (see app/core/slots.py).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, admitted + 10)
        if metrics_on:
            metrics.watch_pool(engine, admitted)
        sender = _start_mail_sender(sender_engine, mailer, settings.mail_sender_interval_seconds)
        # What-if tallies run in child processes, started on first use.
        _app.state.analysis_pool = analysis_pool(settings)
        yield
        _app.state.analysis_pool.shutdown()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        engine.dispose()
        sender_engine.dispose()
        if metrics_on:
            metrics.unwatch_pool(engine, admitted)
            metrics.worker_stopped()

    app = FastAPI(
        title="Wijkbudget",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        # One schema per model, not `X-Input`/`X-Output` twins, for readable client types.
        separate_input_output_schemas=False,
        servers=[{"url": "/", "description": "This server; the API is under /api/v1."}],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.connection_slots = ConnectionSlots(admitted)
    app.state.mailer = mailer
    app.state.media_store = make_store(settings)
    app.state.image_jobs = JobSlots(settings.image_jobs)
    app.state.signing_key = settings.signing_key()
    app.state.guard = make_guard(engine, settings, app.state.signing_key)

    install_error_handlers(app)
    app.include_router(health.router)
    if metrics_on:
        app.include_router(metrics_router.router)
    for module in (
        auth,
        users,
        processes,
        proposals,
        comments,
        content,
        ballots,
        paper,
        results,
        rounds,
        audit,
        admin,
        analysis,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    # Added last runs first: the request id wraps everything, then CORS, so every answer
    # carries both, a refused body (408, 413) and an unexpected failure (500) included.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(BodyTimeoutMiddleware, seconds=settings.body_timeout_seconds)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # A pabulib file for a what-if tally is far larger than any JSON request.
        per_path={f"{API_PREFIX}/analysis/tally": settings.analysis_max_bytes},
        # An image upload: the file plus room for the multipart framing around it.
        per_pattern=[
            (rf"{API_PREFIX}/proposals/[0-9]+/images", settings.image_max_bytes + 64 * 1024)
        ],
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(
        RequestContextMiddleware,
        hsts=settings.environment == "production",
        log_requests=settings.log_requests,
        metrics=metrics_on,
    )

    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    return app


def _start_mail_sender(
    engine: Engine, mailer: Mailer, interval: float
) -> "asyncio.Task[None] | None":
    log = logging.getLogger("wijkbudget.mail")
    if interval <= 0:
        log.info(
            "mail goes to %s; no sender in this server (run wijkbudget send-mail)",
            mailer.description,
        )
        return None
    log.info("mail goes to %s, sent every %s s", mailer.description, interval)
    return asyncio.create_task(sender_loop(engine, mailer, interval))
