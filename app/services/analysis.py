"""What-if tallies of any pabulib election: both rules, explained, nothing stored.

Rules enforced here:
- anyone may ask, throttled per client address (`too_many_attempts`): Equal Shares on a
  large file costs a worker seconds; every attempt counts, also an unreadable file;
- the body limit (ANALYSIS_MAX_BYTES, 10 MiB) is the middleware's; beyond it, at most
  ANALYSIS_MAX_VOTES votes (`payload_too_large`);
- a file that is not UTF-8 or not pabulib is `invalid_pabulib` with the line it failed on;
- ids are the file's project ids; ties break in file order, as for `wijkbudget tally`;
- nothing is written but the throttle count.
"""

import re
from datetime import datetime

from sqlmodel import Session

from app.core.errors import InvalidPabulib, PayloadTooLarge
from app.core.i18n import Message, _t
from app.models.analysis import AnalysedRule, Analysis
from app.models.base import utcnow
from app.services import pabulib, throttle
from app.services.results import explanation, fairness, shares
from app.services.tally import RULES
from app.services.throttle import Guard

_LINE = re.compile(r"line (\d+)")


def tally_file(
    session: Session,
    *,
    body: bytes,
    address: str,
    guard: Guard,
    max_votes: int,
    now: datetime | None = None,
) -> Analysis:
    throttle.reserve(
        session,
        guard,
        [(guard.bucket("analysis-address", address), guard.limits.analysis_address)],
        now=now or utcnow(),
        what=_t("analyses"),
    )
    election = parse(body)
    if len(election.ballots) > max_votes:
        raise PayloadTooLarge(
            _t(
                "The file has {votes:,} votes; at most {max_votes:,} are analysed.",
                votes=len(election.ballots),
                max_votes=max_votes,
            )
        )
    return analyse(election)


def parse(body: bytes) -> pabulib.PabulibElection:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InvalidPabulib(
            _t("line {line}: not UTF-8", line=line), extra={"line": line}
        ) from None
    try:
        election = pabulib.parse(text)
        election.budget  # noqa: B018 - a missing or malformed budget is a parse error too
    except pabulib.PabulibError as exc:
        found = _LINE.search(str(exc))
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], Message) else str(exc)
        raise InvalidPabulib(
            reason, extra={"line": int(found.group(1)) if found else None}
        ) from None
    return election


def analyse(file: pabulib.PabulibElection) -> Analysis:
    election = file.election()
    ids = [p.project_id for p in file.projects]
    rules = {}
    for name, rule in RULES.items():
        outcome, explained = rule.explain(election)
        with_choice, per_voter = shares(election, outcome)
        rules[name] = AnalysedRule(
            selected_ids=[ids[i] for i in outcome.selected],
            spent=outcome.spent,
            voters_with_a_funded_choice=with_choice,
            funded_choices_per_voter=per_voter,
            explanations={pid: explanation(e) for pid, e in zip(ids, explained, strict=True)},
            fairness=fairness(election, outcome),
        )
    return Analysis(budget=election.budget, rules=rules)
