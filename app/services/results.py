"""Results: tally previews, immutable publication, and the exports anyone can re-check.

Rules enforced here:
- moderators and admins preview the tally once the process is closed and before
  publication (`invalid_phase` before closing, also during voting, where comparing two
  previews would reveal a single ballot; `results_already_published` after); each preview
  is written to the audit log, nothing else is stored;
- an admin publishes once the process is closed: the outcome of the official rule and of
  the other rule (so a council can compare) is computed once, stored with its digest and
  the canonical inputs, and served from storage ever after; a second publication is
  `results_already_published`, also when two race (the primary key decides);
- before publication `results`, `results.csv` and `results.pb` are `results_not_published`.
- `results.csv` is for spreadsheets: every cell is quoted and a text cell starting with `=`,
  `+`, `-`, `@`, tab or carriage return gets a leading `'` (OWASP's advice against formula
  injection); `results.pb` keeps every title exactly, since programs read it.

The digest is SHA-256 over the UTF-8 bytes of the compact JSON (keys sorted, no spaces) of
{"budget", "rule", "proposals": [[id, cost]...] by id, "ballots": [[[id, weight]...]...]
each sorted by id and all sorted, "selected_ids": sorted}: anyone with results.pb can
recompute it.
"""

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.errors import (
    InvalidPhase,
    PaperBatchesPending,
    ResultsAlreadyPublished,
    ResultsNotPublished,
)
from app.core.i18n import _t
from app.models.ballot import Ballot
from app.models.process import Phase, Process, ballot_kind, ballot_settings
from app.models.result import (
    BallotsByChannel,
    Explanation,
    Fairness,
    PaperRejected,
    Price,
    ProjectResult,
    PublishedInputs,
    PublishedResult,
    Results,
    RuleResult,
)
from app.models.user import Role, User
from app.services import audit, pabulib, paper, processes, rounds, tally
from app.services.permissions import require_role
from app.services.tally import RULES, Election, Outcome


@dataclass(frozen=True)
class TallyInputs:
    budget: int
    proposal_ids: list[int]  # ascending: the tie-break order
    titles: list[str]
    costs: list[int]
    ballots: list[list[list[int]]]  # canonical: pairs sorted by id, ballots sorted
    # Ballots per channel (`online`, `paper`), and the paper ballots of confirmed batches
    # that were not counted: (invalid, duplicate).
    channels: dict[str, int] = field(default_factory=dict)
    paper_rejected: tuple[int, int] = (0, 0)

    def election(self) -> Election:
        index = {proposal_id: i for i, proposal_id in enumerate(self.proposal_ids)}
        return Election.build(
            self.budget, self.costs, ([(index[pid], w) for pid, w in b] for b in self.ballots)
        )


def load_inputs(session: Session, process: Process) -> TallyInputs:
    assert process.id is not None
    proposals = processes.accepted_proposals(session, process.id)
    rows = session.exec(
        select(Ballot.items, Ballot.channel).where(Ballot.process_id == process.id)
    ).all()
    ballots: list[list[list[int]]] = sorted([list(pair) for pair in items] for items, _ in rows)
    channels = Counter(channel for _, channel in rows)
    return TallyInputs(
        budget=process.budget,
        proposal_ids=[pid for pid, _, _ in proposals],
        titles=[title for _, title, _ in proposals],
        costs=[cost for _, _, cost in proposals],
        ballots=ballots,
        channels={"online": channels["online"], "paper": channels["paper"]},
        paper_rejected=paper.rejected(session, process.id),
    )


def digest(inputs: TallyInputs, rule: str, selected_ids: list[int]) -> str:
    canonical = {
        "budget": inputs.budget,
        "rule": rule,
        "proposals": [
            [pid, cost] for pid, cost in zip(inputs.proposal_ids, inputs.costs, strict=True)
        ],
        "ballots": inputs.ballots,
        "selected_ids": sorted(selected_ids),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _share(numerator: int, denominator: int) -> float:
    # Exact, then rounded half-to-even to 4 decimals (round() on a Fraction does exactly that).
    return float(round(Fraction(numerator, denominator), 4)) if denominator else 0.0


def shares(election: Election, outcome: Outcome) -> tuple[float, float]:
    """voters_with_a_funded_choice and funded_choices_per_voter."""
    chosen = set(outcome.selected)
    with_choice = funded = 0
    for ballot, count in election.ballots:
        hits = sum(1 for index, _ in ballot if index in chosen)
        funded += hits * count
        with_choice += count if hits else 0
    n = election.voter_count
    return _share(with_choice, n), _share(funded, n)


def _rounded(value: Fraction, places: int) -> float:
    return float(round(value, places))


def explanation(e: tally.Explanation) -> Explanation:
    """The reply's form of an exact explanation: rho as a fraction and a decimal, money to
    the cent (each rounded once, half to even)."""
    rho = e.price_per_support
    return Explanation(
        outcome=e.outcome,
        budget_left_when_considered=e.budget_left_when_considered,
        round=e.round,
        price_per_support=(
            Price(fraction=f"{rho.numerator}/{rho.denominator}", decimal=float(rho))
            if rho is not None
            else None
        ),
        supporters_paid_in_full=e.supporters_paid_in_full,
        supporters_paid_all_they_had=e.supporters_paid_all_they_had,
        supporters_money_left=(
            _rounded(e.supporters_money_left, 2) if e.supporters_money_left is not None else None
        ),
        shortfall=_rounded(e.shortfall, 2) if e.shortfall is not None else None,
        would_win_at_cost=e.would_win_at_cost,
    )


def fairness(election: Election, outcome: Outcome) -> Fairness:
    figures = tally.fairness(election, outcome.selected)
    return Fairness(
        funded_choices_histogram={str(k): n for k, n in figures.histogram.items()},
        mean_funded_share=_rounded(figures.mean_funded_share, 4),
        gini_funded_share=_rounded(figures.gini_funded_share, 4),
    )


def _rule_result(
    inputs: TallyInputs,
    election: Election,
    outcome: Outcome,
    explanations: list[tally.Explanation],
) -> RuleResult:
    with_choice, per_voter = shares(election, outcome)
    return RuleResult(
        selected_ids=[inputs.proposal_ids[i] for i in outcome.selected],
        spent=outcome.spent,
        voters_with_a_funded_choice=with_choice,
        funded_choices_per_voter=per_voter,
        explanations={
            str(pid): explanation(e)
            for pid, e in zip(inputs.proposal_ids, explanations, strict=True)
        },
        fairness=fairness(election, outcome),
    )


def compute(process: Process, inputs: TallyInputs) -> Results:
    assert process.id is not None
    election = inputs.election()
    explained = {name: rule.explain(election) for name, rule in RULES.items()}
    outcomes = {name: outcome for name, (outcome, _) in explained.items()}
    official, official_explanations = explained[process.tally_rule]
    chosen = set(official.selected)
    projects = [
        ProjectResult(
            proposal_id=inputs.proposal_ids[i],
            title=inputs.titles[i],
            cost=inputs.costs[i],
            votes=official.votes[i],
            selected=i in chosen,
            rank=rank,
            explanation=explanation(official_explanations[i]),
        )
        for rank, i in enumerate(official.ranking, start=1)
    ]
    selected_ids = [inputs.proposal_ids[i] for i in official.selected]
    return Results(
        process_id=process.id,
        rule=process.tally_rule,
        budget=inputs.budget,
        spent=official.spent,
        remaining=inputs.budget - official.spent,
        ballot_count=election.voter_count,
        published=False,
        published_at=None,
        projects=projects,
        selected_ids=selected_ids,
        rules={
            name: _rule_result(inputs, election, o, explained[name][1])
            for name, o in outcomes.items()
        },
        digest=digest(inputs, process.tally_rule, selected_ids),
        ballots_by_channel=BallotsByChannel(
            online=inputs.channels.get("online", 0), paper=inputs.channels.get("paper", 0)
        ),
        paper_rejected=PaperRejected(
            invalid=inputs.paper_rejected[0], duplicate=inputs.paper_rejected[1]
        ),
    )


def preview(session: Session, *, actor: User, process_id: int) -> Results:
    # Only once closed: during voting, two previews around one resident's cast would reveal
    # that ballot. KEY SHARE waits for a close or a publication in progress, like casting.
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="key_share")
    require_role(actor, Role.moderator)
    if process.phase != Phase.closed:
        raise InvalidPhase(_t("A tally can be previewed once the process is closed."))
    if session.get(PublishedResult, process_id) is not None:
        raise ResultsAlreadyPublished(
            _t("The results of this process are published; read them instead of a preview.")
        )
    audit.record(
        session,
        actor=actor,
        action="results.previewed",
        target_type="process",
        target_id=process_id,
        process_id=process_id,
    )
    return compute(process, load_inputs(session, process))


def _date(moment: datetime | None) -> str:
    return moment.strftime("%d.%m.%Y") if moment else ""


def _export_meta(
    process: Process, inputs: TallyInputs, country: str, district: tuple[str, str] | None = None
) -> dict[str, str]:
    opened = process.voting_opens_at or process.voting_started_at
    closed = process.voting_closes_at or process.closed_at
    if closed is not None and process.closed_at is not None and process.closed_at < closed:
        closed = process.closed_at
    kind = ballot_kind(process)
    meta = {
        "description": process.title,
        "country": country,
        "unit": process.area or process.title,
        "instance": str(opened.year if opened else ""),
        "num_projects": str(len(inputs.proposal_ids)),
        "num_votes": str(len(inputs.ballots)),
        "budget": str(inputs.budget),
        "vote_type": kind.pabulib_vote_type,
        **RULES[process.tally_rule].pabulib_meta,
        "date_begin": _date(opened),
        "date_end": _date(closed),
        **kind.pabulib_limits(
            ballot_settings(process), budget=inputs.budget, num_projects=len(inputs.proposal_ids)
        ),
    }
    if sum(inputs.costs) <= inputs.budget:
        meta["fully_funded"] = "1"
    if district is not None:  # a process of a round: its group (or city-wide) and area
        meta["district"], meta["subunit"] = district
    return meta


def publish(session: Session, *, actor: User, process_id: int, country: str) -> Results:
    process = processes.get_visible(session, process_id=process_id, viewer=actor, lock="update")
    require_role(actor, Role.admin)
    if process.phase != Phase.closed:
        raise InvalidPhase(_t("Results can be published once the process is closed."))
    if processes.is_published(session, process_id):
        raise ResultsAlreadyPublished(_t("The results of this process are already published."))
    # Entering and confirming paper take the process row's KEY SHARE lock, so none can
    # change while this UPDATE lock is held: the list is final for this publication.
    pending = paper.unconfirmed(session, process_id)
    if pending:
        raise PaperBatchesPending(
            _t(
                "Paper batches {batches} are not confirmed yet: confirm or void them first, "
                "or their ballots would never count.",
                batches=", ".join(map(str, pending)),
            ),
            extra={"batches": pending},
        )
    inputs = load_inputs(session, process)
    results = compute(process, inputs)
    row = PublishedResult(process_id=process_id, document={}, digest=results.digest)
    results = results.model_copy(update={"published": True, "published_at": row.published_at})
    row.document = results.model_dump(mode="json")
    row.inputs = PublishedInputs(
        budget=inputs.budget,
        proposal_ids=inputs.proposal_ids,
        ballots=inputs.ballots,
        weighted=ballot_kind(process).weighted,
        meta=_export_meta(process, inputs, country, rounds.district_of(session, process)),
    ).model_dump(mode="json")
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ResultsAlreadyPublished(
            _t("The results of this process are already published.")
        ) from None
    audit.record(
        session,
        actor=actor,
        action="results.published",
        target_type="process",
        target_id=process_id,
        process_id=process_id,
        after={
            "rule": results.rule,
            "selected_ids": results.selected_ids,
            "digest": results.digest,
        },
    )
    return results


def published(session: Session, *, viewer: User | None, process_id: int) -> PublishedResult:
    processes.get_visible(session, process_id=process_id, viewer=viewer)
    row = session.get(PublishedResult, process_id)
    if row is None:
        raise ResultsNotPublished(_t("The results of this process are not published yet."))
    return row


def show(session: Session, *, viewer: User | None, process_id: int) -> Results:
    return Results.model_validate(published(session, viewer=viewer, process_id=process_id).document)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); a resident's proposal title must never run on a civil servant's machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell that would start a formula gets a leading `'`, which spreadsheets show as
    text; numbers are left alone (ours are never negative)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def as_csv(session: Session, *, viewer: User | None, process_id: int) -> str:
    """The projects table for spreadsheets: every cell quoted, formula starts neutralised.
    The pabulib export keeps titles exactly: it is data for programs, not a spreadsheet."""
    results = show(session, viewer=viewer, process_id=process_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["rank", "proposal_id", "title", "cost", "votes", "selected"])
    for p in results.projects:
        row = [p.rank, p.proposal_id, p.title, p.cost, p.votes, "true" if p.selected else "false"]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()


def as_pabulib(session: Session, *, viewer: User | None, process_id: int) -> str:
    """The election as a pabulib file: voters numbered 1..n in canonical ballot order."""
    row = published(session, viewer=viewer, process_id=process_id)
    results = Results.model_validate(row.document)
    inputs = PublishedInputs.of(row.inputs)
    cumulative = inputs.weighted
    chose: dict[int, int] = {}
    for ballot in inputs.ballots:
        for pid, _ in ballot:
            chose[pid] = chose.get(pid, 0) + 1
    projects = [
        pabulib.ExportProject(
            project_id=str(p.proposal_id),
            cost=p.cost,
            votes=chose.get(p.proposal_id, 0) if cumulative else p.votes,
            score=p.votes if cumulative else None,
            name=p.title,
            selected=p.selected,
        )
        for p in results.projects
    ]
    votes = (
        (str(n), [(str(pid), weight) for pid, weight in ballot])
        for n, ballot in enumerate(inputs.ballots, start=1)
    )
    return pabulib.write(inputs.meta, projects, votes, cumulative=cumulative)
