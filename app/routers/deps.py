"""Dependencies shared by the routers, as `Annotated` aliases."""

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from app.core.config import Settings
from app.core.db import open_session
from app.core.errors import NotAuthenticated
from app.core.i18n import _t
from app.core.limits import INT32_MAX
from app.core.slots import ConnectionSlots
from app.models.user import Language, User, language_from_header
from app.services import accounts
from app.services.throttle import Guard

API_PREFIX = "/api/v1"

# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in a thread, and each
# such hop costs more than the work.

_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# auto_error=False: a missing token is rendered by our own handler as problem+json.
_bearer = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@asynccontextmanager
async def _transaction(request: Request, *, write: bool) -> AsyncIterator[Session]:
    """One transaction per request. Opening a session does no I/O, so it happens here in
    the event loop; only the commit (or rollback) takes a trip to a worker thread. The
    request holds a connection slot (app/core/slots.py) from here until the session is
    closed; the body has been read by then."""
    async with _slots(request).held():
        session = open_session(request.app.state.engine, write=write)
        try:
            yield session
            await run_in_threadpool(_commit_and_close, session)
        except BaseException:
            await run_in_threadpool(_roll_back_and_close, session)
            raise


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session; a request that may write takes SQLite's write lock at once."""
    async with _transaction(request, write=request.method not in _READ_ONLY_METHODS) as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A session that never takes SQLite's write lock, for a request whose only writes are
    throttle records in transactions of their own (sign-in: Argon2 must not run while every
    other writer waits)."""
    async with _transaction(request, write=False) as session:
        yield session


def _slots(request: Request) -> ConnectionSlots:
    slots: ConnectionSlots = request.app.state.connection_slots
    return slots


async def hold_connection_slot(request: Request) -> AsyncIterator[None]:
    """A slot for a handler that uses the engine without a session (the readiness probe)."""
    async with _slots(request).held():
        yield


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


def _roll_back_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(app_settings)]
# scope="function": commit (or roll back) before the response is sent, never after.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]


def get_optional_user(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(_bearer)]
) -> User | None:
    if token is None:
        return None
    return accounts.user_from_token(session, token=token, key=request.app.state.signing_key)


async def get_current_user(user: Annotated[User | None, Depends(get_optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated(_t("Sign in and send the token as 'Authorization: Bearer <token>'."))
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]


# Every client whose address is not an IP address shares this one: a proxy's garbage (or a
# forged header it passed on) can neither fail a request nor open a fresh throttle bucket.
UNKNOWN_ADDRESS = "unknown"
_MAX_ADDRESS_LENGTH = 45  # the longest textual IPv6 address (with an embedded IPv4)


async def get_client_address(request: Request) -> str:
    """The caller's address, for throttling: an IP address in its normal form, or
    `UNKNOWN_ADDRESS`. Behind a proxy, serve with --forwarded-allow-ips (FORWARDED_ALLOW_IPS)
    so this is the client's, not the proxy's; without it proxy headers are ignored."""
    host = request.client.host if request.client else ""
    if len(host) > _MAX_ADDRESS_LENGTH:
        return UNKNOWN_ADDRESS
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return UNKNOWN_ADDRESS
    return address.compressed


async def get_guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


ClientAddress = Annotated[str, Depends(get_client_address)]
Throttle = Annotated[Guard, Depends(get_guard)]


async def get_language(request: Request) -> Language:
    """The caller's language by `Accept-Language`, for an account made now."""
    return language_from_header(request.headers.get("accept-language"))


PreferredLanguage = Annotated[Language, Depends(get_language)]
