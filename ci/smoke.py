"""A resident journey over plain HTTP, for deployment checks (the image, the previous release
on a newer schema, an upgrade with data, a restored backup). Only the contract's stable
endpoints: it runs against this release and the one before it alike.

    python ci/smoke.py journey BASE ADMIN_EMAIL ADMIN_PASSWORD STATE.json
        a process with voting codes: residents register, propose, claim codes and vote;
        the process closes and is published; a second process stays in voting with one
        code nobody claimed. What a resident and the council can check later goes to STATE.
    python ci/smoke.py verify BASE STATE.json N
        the published results, their digest, results.pb and results.csv are byte for byte
        as recorded, every receipt answers as it did, and the N-th code nobody claimed (0-2)
        still claims and votes.

Exits non-zero, saying what differed, on any failure.
"""

import hashlib
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "a smoke-test passphrase"


class Api:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base.rstrip("/") + "/api/v1", timeout=60)

    def call(
        self, method: str, path: str, expect: int, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, path, headers=headers, **kw)
        if response.status_code != expect:
            sys.exit(
                f"{method} {path}: expected {expect}, got {response.status_code}: {response.text}"
            )
        return response

    def sign_in(self, email: str, password: str) -> str:
        data = {"username": email, "password": password}
        token: str = self.call("POST", "/auth/token", 200, data=data).json()["access_token"]
        return token

    def resident(self, name: str) -> str:
        email = f"{name}-{secrets.token_hex(4)}@smoke.example.org"
        body = {
            "email": email,
            "password": PASSWORD,
            "display_name": name.title(),
            "postcode": "9713 AB",
            "birth_year": 1990,
        }
        self.call("POST", "/auth/register", 201, json=body)
        return self.sign_in(email, PASSWORD)

    def process(self, admin: str, title: str) -> int:
        spec = {
            "title": title,
            "area": "Oosterpark",
            "budget": 10_000,
            "ballot": {"type": "knapsack"},
            "eligibility": {"postcode_prefixes": ["9713"], "require_voting_code": True},
            "tally_rule": "mes",
        }
        process_id: int = self.call("POST", "/processes", 201, admin, json=spec).json()["id"]
        self.move(admin, process_id, "submission")
        return process_id

    def move(self, admin: str, process_id: int, to: str) -> None:
        self.call("POST", f"/processes/{process_id}/transition", 200, admin, json={"to": to})

    def codes(self, admin: str, process_id: int, count: int) -> list[str]:
        answer = self.call(
            "POST", f"/processes/{process_id}/voting-codes", 201, admin, json={"count": count}
        )
        return answer.text.split()[1:]


def digest_of(response: httpx.Response) -> str:
    return hashlib.sha256(response.content).hexdigest()


def journey(base: str, admin_email: str, admin_password: str, state_file: str) -> None:
    api = Api(base)
    admin = api.sign_in(admin_email, admin_password)
    closed = api.process(admin, "Smoke: published")
    open_ = api.process(admin, "Smoke: still voting")
    authors = [api.resident(name) for name in ("anna", "bram", "chris")]
    proposals: dict[int, list[int]] = {}
    for process_id in (closed, open_):
        for n, (author, cost) in enumerate(zip(authors, (6_000, 4_000, 3_000), strict=True)):
            body = {
                "title": f"Plan {n} of process {process_id}",
                "summary": "A plan for the neighbourhood.",
                "estimated_cost": cost,
                "category": "greenery",
            }
            created = api.call("POST", f"/processes/{process_id}/proposals", 201, author, json=body)
            proposals.setdefault(process_id, []).append(created.json()["id"])
        api.move(admin, process_id, "review")
        for proposal_id in proposals[process_id]:
            review = {"decision": "accept", "cost": 3_500}
            api.call("POST", f"/proposals/{proposal_id}/review", 200, admin, json=review)
        api.move(admin, process_id, "voting")
    receipts = []
    codes = api.codes(admin, closed, len(authors))
    choices = ([0, 1], [1, 2], [0, 2])
    for voter, code, chosen in zip(authors, codes, choices, strict=True):
        api.call("POST", f"/processes/{closed}/voting-codes/claim", 200, voter, json={"code": code})
        ballot = {"proposal_ids": [proposals[closed][i] for i in chosen]}
        cast = api.call("PUT", f"/processes/{closed}/ballot", 200, voter, json=ballot)
        receipts.append(cast.json()["receipt"])
    # A replaced ballot: its first receipt stays resolvable, no longer current.
    ballot = {"proposal_ids": [proposals[closed][0]]}
    receipts.append(
        api.call("PUT", f"/processes/{closed}/ballot", 200, authors[0], json=ballot).json()[
            "receipt"
        ]
    )
    api.move(admin, closed, "closed")
    results = api.call("POST", f"/processes/{closed}/results", 201, admin).json()
    unclaimed = api.codes(admin, open_, 3)
    state = {
        "closed": closed,
        "open": open_,
        "digest": results["digest"],
        "results": digest_of(api.call("GET", f"/processes/{closed}/results", 200)),
        "pb": digest_of(api.call("GET", f"/processes/{closed}/results.pb", 200)),
        "csv": digest_of(api.call("GET", f"/processes/{closed}/results.csv", 200)),
        "receipts": {
            r: api.call("GET", f"/processes/{closed}/receipts/{r}", 200).json() for r in receipts
        },
        "unclaimed_codes": unclaimed,
        "open_proposal": proposals[open_][0],
    }
    Path(state_file).write_text(json.dumps(state, indent=2))
    print(f"journey done: process {closed} published, digest {results['digest'][:16]}...")


def verify(base: str, state_file: str, code_index: str) -> None:
    api = Api(base)
    state = json.loads(Path(state_file).read_text())
    closed = state["closed"]
    problems = []
    results = api.call("GET", f"/processes/{closed}/results", 200)
    if results.json()["digest"] != state["digest"]:
        problems.append("the results' digest changed")
    for name, path in (("results", ""), ("pb", ".pb"), ("csv", ".csv")):
        if digest_of(api.call("GET", f"/processes/{closed}/results{path}", 200)) != state[name]:
            problems.append(f"results{path} changed")
    for receipt, answer in state["receipts"].items():
        now = api.call("GET", f"/processes/{closed}/receipts/{receipt}", 200).json()
        if now != answer:
            problems.append(f"receipt {receipt[:8]}... answers {now}, was {answer}")
    voter = api.resident("dana")
    code = {"code": state["unclaimed_codes"][int(code_index)]}
    api.call("POST", f"/processes/{state['open']}/voting-codes/claim", 200, voter, json=code)
    ballot = {"proposal_ids": [state["open_proposal"]]}
    api.call("PUT", f"/processes/{state['open']}/ballot", 200, voter, json=ballot)
    if problems:
        sys.exit("verify failed: " + "; ".join(problems))
    count = len(state["receipts"])
    print(f"verify done: digest, results, .pb, .csv and {count} receipts unchanged; a code claimed")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "journey" and len(args) == 4:
        journey(*args)
    elif command == "verify" and len(args) == 3:
        verify(*args)
    else:
        sys.exit(__doc__)
