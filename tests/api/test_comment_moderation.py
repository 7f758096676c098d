"""Comments after they are written (issue 11, item 9): the author removes their own (text
deleted, listed as removed), moderators hide one with a reason (audited, text kept but never
shown), residents report one once per account, moderators list the reported ones."""

from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.models.audit import AuditEntry
from app.models.process import Phase, Process
from app.models.proposal import Comment, CommentReport, Proposal
from tests.api.conftest import Actor, Actors
from tests.factories import make_process, make_proposal
from tests.helpers import API, all_at_once, assert_problem, count_rows


def setup(
    session: Session, actors: Actors, phase: Phase = Phase.review
) -> tuple[Process, Proposal]:
    process = make_process(session, phase=phase)
    return process, make_proposal(session, process, actors.author.user)


def write(client: TestClient, proposal: Proposal, who: Actor, body: str = "Nonsense!") -> int:
    response = client.post(
        f"{API}/proposals/{proposal.id}/comments", json={"body": body}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "visible"
    assert response.json()["hidden_reason"] is None
    return int(response.json()["id"])


def listed(client: TestClient, proposal: Proposal) -> dict[int, dict[str, Any]]:
    items = client.get(f"{API}/proposals/{proposal.id}/comments").json()["items"]
    return {item["id"]: item for item in items}


def hide(client: TestClient, comment_id: int, who: Actor, reason: str) -> httpx.Response:
    response: httpx.Response = client.post(
        f"{API}/comments/{comment_id}/hide", json={"reason": reason}, headers=who.headers
    )
    return response


def report(client: TestClient, comment_id: int, who: Actor, reason: str = "Rude") -> int:
    response = client.post(
        f"{API}/comments/{comment_id}/report", json={"reason": reason}, headers=who.headers
    )
    return int(response.status_code)


def audits(session: Session) -> list[AuditEntry]:
    session.commit()  # a fresh snapshot
    query = select(AuditEntry).where(AuditEntry.action == "comment.hidden")
    return list(session.exec(query.order_by(col(AuditEntry.id))).all())


def test_the_author_removes_their_comment_and_its_text_is_gone(
    client: TestClient, actors: Actors, session: Session
) -> None:
    _, proposal = setup(session, actors)
    mine = write(client, proposal, actors.author, "I regret this.")
    other = write(client, proposal, actors.resident, "Fine plan.")
    url = f"{API}/comments/{mine}"
    assert client.delete(url, headers=actors.author.headers).status_code == 204
    shown = listed(client, proposal)
    assert shown[mine]["status"] == "removed"
    assert shown[mine]["body"] is None
    assert shown[mine]["hidden_reason"] is None
    assert shown[mine]["author"]["display_name"] == "Author"
    assert shown[other]["body"] == "Fine plan."
    session.commit()  # a fresh snapshot
    stored = session.get(Comment, mine)
    assert stored is not None
    assert stored.body is None
    # Again: nothing left to remove, the same answer.
    assert client.delete(url, headers=actors.author.headers).status_code == 204
    assert client.get(f"{API}/proposals/{proposal.id}").json()["comment_count"] == 2


def test_a_moderator_hides_a_comment_with_a_reason_and_it_is_audited(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposal = setup(session, actors)
    comment = write(client, proposal, actors.resident, "Call 06-12345678 for a deal")
    response = hide(client, comment, actors.moderator, "Advertising.")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["body"], body["hidden_reason"]) == (
        "hidden",
        None,
        "Advertising.",
    )
    shown = listed(client, proposal)[comment]
    assert (shown["status"], shown["body"], shown["hidden_reason"]) == (
        "hidden",
        None,
        "Advertising.",
    )
    session.commit()  # a fresh snapshot
    stored = session.get(Comment, comment)
    assert stored is not None
    assert stored.body == "Call 06-12345678 for a deal"  # kept, never shown
    (entry,) = audits(session)
    assert entry.actor_id == actors.moderator.id
    assert (entry.target_type, entry.target_id, entry.process_id) == (
        "comment",
        comment,
        process.id,
    )
    assert entry.before == {"status": "visible", "hidden_reason": None}
    assert entry.after == {"status": "hidden", "hidden_reason": "Advertising."}
    # A second hide replaces the reason and is audited too.
    assert hide(client, comment, actors.admin, "Spam.").json()["hidden_reason"] == "Spam."
    assert [e.after for e in audits(session)][-1] == {"status": "hidden", "hidden_reason": "Spam."}


def test_a_removed_comment_cannot_be_hidden_and_a_hidden_one_loses_its_text_on_removal(
    client: TestClient, actors: Actors, session: Session
) -> None:
    _, proposal = setup(session, actors)
    removed = write(client, proposal, actors.author)
    client.delete(f"{API}/comments/{removed}", headers=actors.author.headers)
    assert_problem(hide(client, removed, actors.moderator, "Rude."), 409, "invalid_status")
    assert audits(session) == []
    hidden = write(client, proposal, actors.author, "Rude words")
    assert hide(client, hidden, actors.moderator, "Rude.").status_code == 200
    assert (
        client.delete(f"{API}/comments/{hidden}", headers=actors.author.headers).status_code == 204
    )
    shown = listed(client, proposal)[hidden]
    assert (shown["status"], shown["hidden_reason"]) == ("hidden", "Rude.")
    session.commit()  # a fresh snapshot
    stored = session.get(Comment, hidden)
    assert stored is not None
    assert stored.body is None


def test_reports_count_once_per_account_and_moderators_see_them(
    client: TestClient, actors: Actors, session: Session
) -> None:
    process, proposal = setup(session, actors)
    worst = write(client, proposal, actors.author, "Worst")
    bad = write(client, proposal, actors.author, "Bad")
    fine = write(client, proposal, actors.author, "Fine")
    hidden = write(client, proposal, actors.author, "Hidden")
    for who in (actors.resident, actors.outsider, actors.moderator):
        assert report(client, worst, who, f"by {who.user.display_name}") == 204
    assert report(client, worst, actors.resident, "again") == 204  # not counted twice
    assert report(client, bad, actors.resident) == 204
    assert report(client, hidden, actors.resident) == 204
    assert report(client, hidden, actors.outsider) == 204
    assert report(client, hidden, actors.admin) == 204
    assert report(client, hidden, actors.moderator) == 204
    hide(client, hidden, actors.moderator, "Handled.")
    # Elsewhere: another process's reported comment is not listed here.
    _, elsewhere = setup(session, actors)
    assert report(client, write(client, elsewhere, actors.author), actors.resident) == 204
    assert count_rows(session, CommentReport) == 9

    url = f"{API}/processes/{process.id}/reported-comments"
    page = client.get(url, headers=actors.moderator.headers).json()
    assert page["total"] == 3
    got = [(c["id"], c["status"], c["report_count"]) for c in page["items"]]
    assert got == [(worst, "visible", 3), (bad, "visible", 1), (hidden, "hidden", 4)]
    first = page["items"][0]
    assert first["body"] == "Worst"
    assert sorted(first["reasons"]) == ["by Moderator", "by Outsider", "by Resident"]
    assert page["items"][2]["body"] is None
    assert fine not in {c["id"] for c in page["items"]}
    second = client.get(url + "?limit=1&offset=1", headers=actors.admin.headers).json()
    assert [c["id"] for c in second["items"]] == [bad]


def test_reporting_a_comment_no_longer_visible_changes_nothing(
    client: TestClient, actors: Actors, session: Session
) -> None:
    _, proposal = setup(session, actors)
    comment = write(client, proposal, actors.author)
    client.delete(f"{API}/comments/{comment}", headers=actors.author.headers)
    assert report(client, comment, actors.resident) == 204
    assert count_rows(session, CommentReport) == 0


def test_bad_input_changes_nothing(client: TestClient, actors: Actors, session: Session) -> None:
    _, proposal = setup(session, actors)
    comment = write(client, proposal, actors.author)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 2001}, {"reason": "a\x00"},
                 {"reason": "ok", "extra": 1}):  # fmt: skip
        assert_problem(
            client.post(f"{API}/comments/{comment}/hide", json=body, headers=actors.admin.headers),
            422,
            "validation_error",
        )
        assert_problem(
            client.post(
                f"{API}/comments/{comment}/report", json=body, headers=actors.resident.headers
            ),
            422,
            "validation_error",
        )
    for missing in (999_999, 0, 2**31, -1):
        assert_problem(
            client.delete(f"{API}/comments/{missing}", headers=actors.author.headers),
            404,
            "not_found",
        )
        assert report(client, missing, actors.resident) == 404
    assert_problem(
        client.get(f"{API}/processes/999999/reported-comments", headers=actors.admin.headers),
        404,
        "not_found",
    )
    assert listed(client, proposal)[comment]["status"] == "visible"
    assert count_rows(session, CommentReport) == 0
    assert audits(session) == []


def test_parallel_reports_of_one_account_count_once(
    base_url: str, http: httpx.Client, actors: Actors, session: Session
) -> None:
    process = make_process(session, phase=Phase.review)
    proposal = make_proposal(session, process, actors.author.user)
    assert proposal.id is not None
    comment = Comment(proposal_id=proposal.id, author_id=actors.author.id, body="Nonsense!")
    session.add(comment)
    session.commit()
    url = f"{base_url}/comments/{comment.id}/report"

    def once() -> int:
        response = http.post(url, json={"reason": "Rude"}, headers=actors.resident.headers)
        return response.status_code

    assert all_at_once([once] * 12) == [204] * 12
    assert count_rows(session, CommentReport) == 1
