"""The resident journey through the Python client that openapi-python-client generates from
/openapi.json, against a live server (clients/check.sh starts one with the demo data).

The demo admin opens voting, then a new resident registers, signs in, lists processes
without a token, checks they may vote, casts a ballot and checks the receipt without a
token. Type-checked with mypy --strict: a change to the document that breaks a generated
function's shape fails here before it reaches an app.

Usage: python journey.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD
"""

import sys
import uuid
from typing import TypeVar

from wijkbudget_client import AuthenticatedClient, Client
from wijkbudget_client.api.accounts import accounts_register, accounts_token
from wijkbudget_client.api.processes import (
    processes_list_processes,
    processes_my_participation,
    processes_transition_process,
)
from wijkbudget_client.api.proposals import proposals_list_proposals
from wijkbudget_client.api.results import results_show_results
from wijkbudget_client.api.voting import voting_cast_ballot, voting_check_receipt
from wijkbudget_client.models import (
    BallotCast,
    BallotPublic,
    Participation,
    Phase,
    Problem,
    ProblemCode,
    ProcessPage,
    ProcessPublic,
    ProposalPage,
    ProposalSort,
    ProposalStatus,
    ReceiptStatus,
    SignIn,
    Token,
    Transition,
    UserCreate,
    UserPublic,
)

T = TypeVar("T")


class JourneyFailed(Exception):
    pass


def expect(value: T | Problem | None, kind: type[T], step: str) -> T:
    """The reply of `step`, or stop with the problem's code (a UI's switch, not English)."""
    if isinstance(value, kind):
        return value
    if isinstance(value, Problem):
        raise JourneyFailed(f"{step}: {value.code.value} ({value.detail})")
    raise JourneyFailed(f"{step}: unexpected reply {value!r}")


def sign_in(base_url: str, email: str, password: str) -> AuthenticatedClient:
    anonymous = Client(base_url=base_url)
    reply = accounts_token.sync(client=anonymous, body=SignIn(username=email, password=password))
    token = expect(reply, Token, "sign in")
    return AuthenticatedClient(base_url=base_url, token=token.access_token)


def open_voting(base_url: str, admin_email: str, admin_password: str) -> int:
    admin = sign_in(base_url, admin_email, admin_password)
    page = expect(
        processes_list_processes.sync(client=admin, phase=Phase.REVIEW), ProcessPage, "list"
    )
    process = page.items[0]
    moved = processes_transition_process.sync(
        process.id, client=admin, body=Transition(to=Phase.VOTING)
    )
    return expect(moved, ProcessPublic, "open voting").id


def journey(base_url: str, admin_email: str, admin_password: str) -> None:
    open_voting(base_url, admin_email, admin_password)
    anonymous = Client(base_url=base_url)
    email = f"journey-{uuid.uuid4().hex[:8]}@example.org"
    password = "a long enough password"

    registered = accounts_register.sync(
        client=anonymous,
        body=UserCreate(
            email=email,
            password=password,
            display_name="Journey",
            postcode="9713 AB",
            birth_year=1990,
        ),
    )
    user = expect(registered, UserPublic, "register")
    assert user.email == email
    resident = sign_in(base_url, email, password)

    # Public reads take the anonymous client: the document marks their token optional.
    processes = expect(
        processes_list_processes.sync(client=anonymous, phase=Phase.VOTING), ProcessPage, "list"
    )
    process_id = processes.items[0].id

    standing = expect(
        processes_my_participation.sync(process_id, client=resident), Participation, "me"
    )
    if not standing.can_vote:
        raise JourneyFailed(f"cannot vote: {[r.value for r in standing.reasons]}")

    proposals = expect(
        proposals_list_proposals.sync(
            process_id,
            client=anonymous,
            status=ProposalStatus.ACCEPTED,
            sort=ProposalSort.COST,
        ),
        ProposalPage,
        "proposals",
    )
    cheapest = proposals.items[0]
    assert cheapest.supported_by_me is None  # anonymous

    # The ballot call the README shows in TypeScript, here in Python.
    ballot = expect(
        voting_cast_ballot.sync(
            process_id, client=resident, body=BallotCast(proposal_ids=[cheapest.id])
        ),
        BallotPublic,
        "cast",
    )
    again = expect(
        processes_my_participation.sync(process_id, client=resident), Participation, "me again"
    )
    assert again.has_ballot

    receipt = expect(
        voting_check_receipt.sync(process_id, ballot.receipt, client=anonymous),
        ReceiptStatus,
        "receipt",
    )
    assert receipt.current
    assert receipt.counted is None  # not published yet

    # Not published yet: a problem with a code from the enum, readable without a token.
    unpublished = results_show_results.sync(process_id, client=anonymous)
    assert isinstance(unpublished, Problem)
    assert unpublished.code == ProblemCode.RESULTS_NOT_PUBLISHED
    print(f"journey ok: process {process_id}, ballot {ballot.proposal_ids}, receipt current")


if __name__ == "__main__":
    journey(*sys.argv[1:4])
