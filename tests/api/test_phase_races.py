"""No decision on a stale phase: phase-dependent actions against a concurrent phase move.

Each test forces the dangerous interleaving instead of hoping for it. The action's request
is paused right after it has checked the phase (a hook around the service's check), the
phase move is sent, and the action is released only once the move has either committed or
is seen waiting on a row lock in `pg_stat_activity`. Without the process-row lock the move
commits while the action is paused, and the action then commits a decision taken on the
old phase; with it, the move waits and then sees the action's result.

PostgreSQL only: on SQLite every writing request holds the database's write lock from its
first statement (BEGIN IMMEDIATE), so the two requests cannot interleave at all and there
is no row lock to observe.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, func, select

from app.models.audit import AuditEntry
from app.models.process import Phase, Process
from app.models.proposal import Proposal, ProposalStatus, Support
from app.services import proposals, voting_codes
from tests.api.conftest import Actors
from tests.factories import make_process, make_proposal, make_voting_process

DEADLINE = 30.0
P = ParamSpec("P")
R = TypeVar("R")


@pytest.fixture(autouse=True)
def _postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row-lock races need PostgreSQL; SQLite serialises whole writing requests")


def _wait_until(predicate: Callable[[], object], *, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.01)  # spaces out the checks; the order comes from the predicate


class PauseAfter:
    """Wraps a function so that its first call, once it has returned, waits for `release`."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self._armed = True
        self._guard = threading.Lock()

    def wrap(self, original: Callable[P, R]) -> Callable[P, R]:
        def paused(*args: P.args, **kwargs: P.kwargs) -> R:
            result = original(*args, **kwargs)
            with self._guard:
                first, self._armed = self._armed, False
            if first:
                self.reached.set()
                assert self.release.wait(DEADLINE), "the paused request was never released"
            return result

        return paused


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return bool(waiting)


def race(
    engine: Engine,
    pause: PauseAfter,
    action: Callable[[], httpx.Response],
    move: Callable[[], httpx.Response],
) -> tuple[httpx.Response, httpx.Response, bool]:
    """Run `action` up to just after its phase check, then `move`; release `action` once
    `move` has finished or waits on a lock. Returns both responses and whether `move` had
    to wait."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        acting = pool.submit(action)
        assert pause.reached.wait(DEADLINE), "the action never reached its phase check"
        moving = pool.submit(move)
        _wait_until(
            lambda: moving.done() or _waiting_on_a_lock(engine),
            what="the phase move committed or waits on a lock",
        )
        move_waited = not moving.done()
        pause.release.set()
        return acting.result(DEADLINE), moving.result(DEADLINE), move_waited


def _post(
    http: httpx.Client, url: str, headers: dict[str, str], body: Any = None
) -> Callable[[], httpx.Response]:
    return lambda: http.post(url, json=body, headers=headers)


def _phase(session: Session, process_id: int | None) -> str:
    session.commit()
    phase = session.exec(select(Process.phase).where(Process.id == process_id)).one()
    session.commit()
    return phase


def _accepted(session: Session, process_id: int | None) -> int:
    session.commit()
    count = session.exec(
        select(func.count())
        .select_from(Proposal)
        .where(Proposal.process_id == process_id, Proposal.status == ProposalStatus.accepted)
    ).one()
    session.commit()
    return count


def _pause_phase_checks(monkeypatch: pytest.MonkeyPatch) -> PauseAfter:
    pause = PauseAfter()
    monkeypatch.setattr(proposals, "_require_phase", pause.wrap(proposals._require_phase))
    return pause


def test_a_withdrawal_racing_the_move_to_voting_never_leaves_voting_without_proposals(
    base_url: str,
    http: httpx.Client,
    engine: Engine,
    session: Session,
    actors: Actors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = make_process(session, phase=Phase.review)
    only = make_proposal(session, process, actors.author.user, status=ProposalStatus.accepted)
    pause = _pause_phase_checks(monkeypatch)
    withdrawn, moved, waited = race(
        engine,
        pause,
        _post(http, f"{base_url}/proposals/{only.id}/withdraw", actors.author.headers),
        _post(
            http,
            f"{base_url}/processes/{process.id}/transition",
            actors.admin.headers,
            {"to": "voting"},
        ),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    if _phase(session, process.id) == Phase.voting:
        assert _accepted(session, process.id) > 0, "voting started with no accepted proposal"
    assert waited, "the move to voting did not wait for the withdrawal"
    assert moved.status_code == 409, moved.text
    assert moved.json()["code"] == "invalid_transition"


def test_a_rejection_racing_the_move_to_voting_never_leaves_voting_without_proposals(
    base_url: str,
    http: httpx.Client,
    engine: Engine,
    session: Session,
    actors: Actors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = make_process(session, phase=Phase.review)
    only = make_proposal(session, process, actors.author.user, status=ProposalStatus.accepted)
    pause = _pause_phase_checks(monkeypatch)
    rejected, moved, waited = race(
        engine,
        pause,
        _post(
            http,
            f"{base_url}/proposals/{only.id}/review",
            actors.moderator.headers,
            {"decision": "reject", "reason": "Not on public ground."},
        ),
        _post(
            http,
            f"{base_url}/processes/{process.id}/transition",
            actors.admin.headers,
            {"to": "voting"},
        ),
    )
    assert rejected.status_code == 200, rejected.text
    if _phase(session, process.id) == Phase.voting:
        assert _accepted(session, process.id) > 0, "voting started with no accepted proposal"
    assert waited, "the move to voting did not wait for the review"
    assert moved.status_code == 409, moved.text
    assert moved.json()["code"] == "invalid_transition"


def test_a_submission_racing_the_move_to_review_is_seen_by_the_move(
    base_url: str,
    http: httpx.Client,
    engine: Engine,
    session: Session,
    actors: Actors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = make_process(session, phase=Phase.submission)
    make_proposal(session, process, actors.author.user)
    pause = _pause_phase_checks(monkeypatch)
    submitted, moved, waited = race(
        engine,
        pause,
        _post(
            http,
            f"{base_url}/processes/{process.id}/proposals",
            actors.resident.headers,
            {
                "title": "A bench by the pond",
                "summary": "Somewhere to sit and look at the ducks.",
                "estimated_cost": 1_500,
            },
        ),
        _post(
            http,
            f"{base_url}/processes/{process.id}/transition",
            actors.admin.headers,
            {"to": "review"},
        ),
    )
    assert submitted.status_code == 201, submitted.text
    assert moved.status_code == 200, moved.text
    session.commit()
    stored = session.exec(
        select(func.count()).select_from(Proposal).where(Proposal.process_id == process.id)
    ).one()
    # The move's own answer counts the proposals it left submission with: a submission
    # decided in `submission` but stored after the move would be missing from it.
    assert moved.json()["proposal_count"] == stored == 2
    assert waited, "the move to review did not wait for the submission"


def test_a_support_racing_the_close_is_stored_before_the_close(
    base_url: str,
    http: httpx.Client,
    engine: Engine,
    session: Session,
    actors: Actors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, (first, *_) = make_voting_process(session, actors.author.user)
    pause = _pause_phase_checks(monkeypatch)
    supported, moved, waited = race(
        engine,
        pause,
        _post(http, f"{base_url}/proposals/{first.id}/support", actors.resident.headers),
        _post(
            http,
            f"{base_url}/processes/{process.id}/transition",
            actors.admin.headers,
            {"to": "closed"},
        ),
    )
    assert supported.status_code == 200, supported.text
    assert moved.status_code == 200, moved.text
    session.commit()
    closed_at = session.exec(select(Process.closed_at).where(Process.id == process.id)).one()
    latest = session.exec(
        select(func.max(col(Support.created_at))).where(Support.proposal_id == first.id)
    ).one()
    session.commit()
    assert closed_at is not None
    assert latest is not None
    assert latest <= closed_at, "a support was added after the process closed"
    assert waited, "the close did not wait for the support"


def test_voting_codes_made_while_the_process_closes_are_made_before_the_close(
    base_url: str,
    http: httpx.Client,
    engine: Engine,
    session: Session,
    actors: Actors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, _ = make_voting_process(session, actors.author.user)
    pause = PauseAfter()
    # The first code is drawn after the phase check; pause there.
    monkeypatch.setattr(voting_codes, "new_code", pause.wrap(voting_codes.new_code))
    made, moved, waited = race(
        engine,
        pause,
        _post(
            http,
            f"{base_url}/processes/{process.id}/voting-codes",
            actors.admin.headers,
            {"count": 3},
        ),
        _post(
            http,
            f"{base_url}/processes/{process.id}/transition",
            actors.admin.headers,
            {"to": "closed"},
        ),
    )
    assert made.status_code == 201, made.text
    assert moved.status_code == 200, moved.text
    session.commit()

    def last(action: str) -> int:
        found = session.exec(
            select(func.max(AuditEntry.id)).where(
                AuditEntry.process_id == process.id, AuditEntry.action == action
            )
        ).one()
        assert found is not None, action
        return found

    session.commit()
    generated, closed = last("voting_codes.generated"), last("process.transitioned")
    session.commit()
    # Audit ids are drawn when the entry is written: codes written after the close was
    # committed were decided on the old phase.
    assert generated < closed, "voting codes were made after the process closed"
    assert waited, "the close did not wait for the code generation"
