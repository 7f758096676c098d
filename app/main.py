"""The application factory: `create_app()` wires settings, database, errors and routers."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine

from app import __version__
from app.core.config import Settings, get_settings
from app.core.db import make_engine
from app.core.middleware import (
    BodySizeLimitMiddleware,
    ConcurrencyLimitMiddleware,
    RequestContextMiddleware,
)
from app.core.problems import PROBLEM_MEDIA_TYPE, Problem, install_error_handlers
from app.routers import (
    admin,
    analysis,
    audit,
    auth,
    ballots,
    health,
    paper,
    processes,
    proposals,
    results,
    rounds,
    users,
)
from app.routers.deps import API_PREFIX
from app.services.mail import Mailer, make_mailer, sender_loop
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
    settings.require_strong_secret()
    settings.require_mail_transport()
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )

    admitted = settings.db_pool_size + settings.db_max_overflow
    mailer = make_mailer(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync handlers need a thread beyond every admitted request (see the concurrency limit).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, admitted + 10)
        sender = _start_mail_sender(engine, mailer, settings.mail_sender_interval_seconds)
        yield
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        engine.dispose()

    app = FastAPI(
        title="Wijkbudget",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.mailer = mailer
    app.state.signing_key = settings.signing_key()
    app.state.guard = make_guard(engine, settings, app.state.signing_key)

    install_error_handlers(app)
    app.include_router(health.router)
    for module in (
        auth,
        users,
        processes,
        proposals,
        ballots,
        paper,
        results,
        rounds,
        audit,
        admin,
        analysis,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    # Added last runs first: the request id and size limit wrap everything, CORS included.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
    )
    app.add_middleware(ConcurrencyLimitMiddleware, limit=admitted)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # A pabulib file for a what-if tally is far larger than any JSON request.
        per_path={f"{API_PREFIX}/analysis/tally": settings.analysis_max_bytes},
    )
    app.add_middleware(RequestContextMiddleware)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    logging.getLogger("wijkbudget").setLevel(settings.log_level.upper())
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


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error response described as problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 is not None:
                responses["422"] = {
                    "description": "`validation_error`: Invalid input",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                }
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = schema
    return schema
