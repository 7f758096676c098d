"""Who may take part in a process (vote-rules.md, "Eligibility").

- `postcode_prefixes`: the voter's postcode, upper-cased without spaces, must start with one
  of them; an empty list admits everyone. An account without a postcode fails a non-empty list.
- `min_age`: the voter must turn at least that age in the calendar year voting opens: the
  year of `voting_opens_at`, else the year the process entered `voting`, else the current
  year (UTC). An account without a birth year fails any age rule.
- Voting codes concern ballots only: a process with `require_voting_code` takes ballots only
  from accounts holding a claimed code of it.
- `reasons` gives every reason at once, as codes (`Reason`), for `GET /processes/{id}/me`
  and for the `reasons` of a `not_eligible` problem, so the two can never disagree.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from app.core.errors import DomainError, NotEligible, Reason
from app.core.i18n import Message, _t
from app.models.process import Process
from app.models.user import User, normalise_postcode
from app.services.processes import Voting, submissions_open, voting_state

Action = Literal["submit", "vote"]


def voting_year(process: Process, now: datetime) -> int:
    for moment in (process.voting_opens_at, process.voting_started_at):
        if moment is not None:
            return moment.year
    return now.year


def _postcode_fails(user: User, process: Process) -> bool:
    prefixes = process.postcode_prefixes
    if not prefixes:
        return False
    postcode = normalise_postcode(user.postcode or "")
    return not postcode or not postcode.startswith(tuple(prefixes))


def _age_fails(user: User, process: Process, now: datetime) -> bool:
    if process.min_age is None:
        return False
    year = voting_year(process, now)
    return user.birth_year is None or year - user.birth_year < process.min_age


def _needs_verified_email(user: User, process: Process) -> bool:
    return process.require_verified_email and not user.email_verified


def _in_phase(process: Process, action: Action, now: datetime) -> bool:
    if action == "submit":
        return submissions_open(process, now)
    return voting_state(process, now) == Voting.open


def reasons(
    user: User,
    process: Process,
    *,
    now: datetime,
    action: Action,
    holds_code: bool,
    phase: bool = True,
) -> list[Reason]:
    """Every reason `user` may not `action` in `process` now, in `Reason`'s order; empty
    when they may. Voting codes (and verified e-mail) concern ballots only. `holds_code`:
    whether the account holds a claimed code of this process (ignored when none is needed).
    With `phase=False` the phase is left to the caller (whose own error comes first)."""
    found: list[Reason] = []
    if _postcode_fails(user, process):
        found.append(Reason.postcode)
    if _age_fails(user, process, now):
        found.append(Reason.age)
    if action == "vote":
        if process.require_voting_code and not holds_code:
            found.append(Reason.voting_code)
        if _needs_verified_email(user, process):
            found.append(Reason.verified_email)
    if phase and not _in_phase(process, action, now):
        found.append(Reason.phase)
    return found


def describe(reason: Reason, process: Process, now: datetime) -> Message:
    """The sentence for a reason, for the `detail` of a `not_eligible` problem."""
    if reason == Reason.postcode:
        prefixes = ", ".join(process.postcode_prefixes)
        return _t("This process is open to postcodes starting with {prefixes}.", prefixes=prefixes)
    if reason == Reason.age:
        year = voting_year(process, now)
        return _t(
            "This process is open to residents who turn {age} in {year}.",
            age=process.min_age,
            year=year,
        )
    if reason == Reason.voting_code:
        return _t("This process needs a voting code: claim the code from your letter first.")
    if reason == Reason.verified_email:
        return _t("This process needs a verified e-mail address: follow the link in your mail.")
    return _t("The process is not in a phase that allows this.")


def not_eligible(found: Sequence[Reason], process: Process, now: datetime) -> DomainError:
    """The `not_eligible` error for `found` (non-empty): the first reason as the sentence,
    every reason as codes in `reasons`."""
    return NotEligible(
        describe(found[0], process, now), extra={"reasons": [r.value for r in found]}
    )


def ineligibility(user: User, process: Process, *, now: datetime) -> str | None:
    """Why `user` may not take part in `process` (postcode and age), or None when they may."""
    found = reasons(user, process, now=now, action="submit", holds_code=True, phase=False)
    return str(describe(found[0], process, now)) if found else None


def require_eligible(
    user: User,
    process: Process,
    *,
    now: datetime,
    action: Action = "submit",
    holds_code: bool = True,
) -> None:
    """Raise `not_eligible` with every reason when `user` may not `action` (the phase is the
    caller's to check first)."""
    found = reasons(user, process, now=now, action=action, holds_code=holds_code, phase=False)
    if found:
        raise not_eligible(found, process, now)
