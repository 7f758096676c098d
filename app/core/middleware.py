"""Pure ASGI middleware: request ids, access log, security and cache headers, and the limits
on request bodies (size, and time to arrive)."""

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.i18n import N_, _t, negotiate, render_text
from app.core.i18n import Message as I18nMessage
from app.core.logsetup import request_id_var
from app.core.logtext import log_path, log_safe
from app.core.metrics import record_request, route_template
from app.core.problems import TranslatedHTTPException, problem_body, unexpected_response

log = logging.getLogger("wijkbudget.request")
_errors = logging.getLogger("wijkbudget")

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Production is served over HTTPS only (behind a TLS-terminating proxy): browsers that saw
# this never try plain HTTP for two years, on subdomains neither.
HSTS = "max-age=63072000; includeSubDomains"
_READS = frozenset({"GET", "HEAD"})


def must_not_store(method: str, path: str, headers: Headers) -> bool:
    """Whether no cache (browser, proxy, CDN) may keep the response.

    Only an anonymous read is public: whatever answers a token (the account, its export, a
    ballot, a new token) or a write, and a receipt's status (a receipt is a voter's secret),
    is `no-store`. Deciding by the request, not per endpoint, covers endpoints added later."""
    if method not in _READS or "authorization" in headers:
        return True
    return "/receipts/" in path


class RequestContextMiddleware:
    """Tags every request with an id (a valid `X-Request-ID` is kept, else one is made),
    echoes it, adds the security headers, logs one line per request (`log_requests`) and
    counts it by route template (`metrics`)."""

    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, log_requests: bool = True, metrics: bool = False
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.log_requests = log_requests
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        given = request_headers.get("x-request-id", "")
        request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        # Every record made while this request runs carries its id; not reset afterwards,
        # since the handler of an unexpected error logs after this middleware (each request
        # is a task of its own, so the value goes no further).
        request_id_var.set(request_id)
        no_store = must_not_store(scope["method"], scope["path"], request_headers)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if no_store:
                    # Set, not defaulted: no handler may make such a response cacheable.
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics:
                record_request(scope["method"], route_template(scope), status, seconds)
            if self.log_requests:
                # The path is the client's text (decoded: `%0A` is a newline), so it is
                # escaped; receipts are masked; the query string is never logged.
                method, path = log_safe(scope["method"]), log_path(scope["path"])
                duration_ms = round(seconds * 1000, 1)
                log.info(
                    "%s %s %s %.1fms",
                    method,
                    path,
                    status,
                    duration_ms,
                    extra={
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )


class UnexpectedErrorMiddleware:
    """Answers an unexpected failure with a 500 problem and logs it once, with its
    traceback and the request id.

    Placed inside the request-id and CORS middleware, so the answer carries their headers
    (a browser would otherwise see a network error), and without re-raising, so the server
    keeps the keep-alive connection instead of closing it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            _errors.exception(
                "unhandled error on %s %s request_id=%s",
                log_safe(scope["method"]),
                log_path(scope["path"]),
                scope.get("state", {}).get("request_id", "-"),
            )
            if started:
                raise  # half an answer is out: only closing the connection can tell
            response = unexpected_response(Headers(scope=scope).get("accept-language"))
            await response(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuses bodies above `max_bytes` with 413, by Content-Length or while streaming.

    `per_path` gives exact paths a limit of their own (a file upload needs more than JSON),
    `per_pattern` paths matching a regular expression as a whole (an upload to a resource)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        per_path: dict[str, int] | None = None,
        per_pattern: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})
        self.per_pattern = [(re.compile(pattern), limit) for pattern, limit in per_pattern]

    def limit_for(self, path: str) -> int:
        if path in self.per_path:
            return self.per_path[path]
        for pattern, limit in self.per_pattern:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _send_too_large(send, max_bytes, Headers(scope=scope).get("accept-language"))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # FastAPI re-raises HTTPException from body reading; our handler renders it.
                    raise TranslatedHTTPException(413, _too_large_detail(max_bytes))
            return message

        await self.app(scope, limited_receive, send)


def _too_large_detail(max_bytes: int) -> I18nMessage:
    return _t("The request body is larger than {max_bytes} bytes.", max_bytes=max_bytes)


async def _send_too_large(send: Send, max_bytes: int, accept_language: str | None) -> None:
    language = negotiate(accept_language)
    body: dict[str, Any] = problem_body(
        413,
        "payload_too_large",
        render_text(N_("Payload too large"), language),
        _too_large_detail(max_bytes).text(language),
    )
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
                (b"content-language", language.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyTimeoutMiddleware:
    """Answers `408 request_timeout` (and closes the connection) when a request body has not
    fully arrived `seconds` after the app first asked for it.

    Uvicorn waits for a body as long as the client keeps the socket open, so a client that
    sends a few bytes and stalls would keep its request alive for ever. The clock starts at
    the first read, and stops once the body is complete: waiting for a disconnect afterwards
    (a streaming response does) is not limited."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # FastAPI re-raises HTTPException from body reading; our handler renders it.
                raise TranslatedHTTPException(
                    408, _timeout_detail(self.seconds), headers={"Connection": "close"}
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed_receive, send)


def _timeout_detail(seconds: float) -> I18nMessage:
    return _t("The request body did not arrive within {seconds:g} seconds.", seconds=seconds)
