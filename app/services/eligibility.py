"""Who may take part in a process (vote-rules.md, "Eligibility").

- `postcode_prefixes`: the voter's postcode, upper-cased without spaces, must start with one
  of them; an empty list admits everyone. An account without a postcode fails a non-empty list.
- `min_age`: the voter must turn at least that age in the calendar year voting opens: the
  year of `voting_opens_at`, else the year the process entered `voting`, else the current
  year (UTC). An account without a birth year fails any age rule.
Voting codes concern ballots only and are checked by the ballot service.
"""

from datetime import datetime

from app.core.errors import NotEligible
from app.models.process import Process
from app.models.user import User, normalise_postcode


def voting_year(process: Process, now: datetime) -> int:
    for moment in (process.voting_opens_at, process.voting_started_at):
        if moment is not None:
            return moment.year
    return now.year


def ineligibility(user: User, process: Process, *, now: datetime) -> str | None:
    """Why `user` may not take part in `process`, or None when they may."""
    prefixes = process.postcode_prefixes
    if prefixes:
        postcode = normalise_postcode(user.postcode or "")
        if not postcode or not postcode.startswith(tuple(prefixes)):
            return f"This process is open to postcodes starting with {', '.join(prefixes)}."
    if process.min_age is not None:
        year = voting_year(process, now)
        if user.birth_year is None or year - user.birth_year < process.min_age:
            return f"This process is open to residents who turn {process.min_age} in {year}."
    return None


def require_eligible(user: User, process: Process, *, now: datetime) -> None:
    reason = ineligibility(user, process, now=now)
    if reason is not None:
        raise NotEligible(reason)
