"""GET /metrics: the Prometheus figures of every worker (app/core/metrics.py lists them).

Served only when `METRICS_TOKEN` is set (else the path does not exist: 404), and only to a
bearer of that token (else 401). Outside the versioned API and the OpenAPI document: it is
for the operator's Prometheus, not for API clients.
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app import __version__
from app.core import metrics
from app.core.errors import NotAuthenticated
from app.core.i18n import _t
from app.routers.deps import hold_connection_slot
from app.services import mail

router = APIRouter(tags=["operations"])


async def require_metrics_token(request: Request) -> None:
    token = request.app.state.settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode() if token is not None else b""
    # Compared in constant time: the answer's timing must not spell the token out.
    if not (
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected)
    ):
        raise NotAuthenticated(_t("Send the metrics token as 'Authorization: Bearer <token>'."))


@router.get(
    "/metrics",
    include_in_schema=False,
    dependencies=[Depends(require_metrics_token)],
)
def scrape(
    request: Request, _slot: Annotated[None, Depends(hold_connection_slot, scope="function")]
) -> Response:
    engine = request.app.state.engine
    body = metrics.exposition(lambda: mail.outbox_figures(engine), __version__)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
