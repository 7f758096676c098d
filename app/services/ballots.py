"""Ballots. (The voting half lands with issue 4; until then no process has ballots.)"""

from collections.abc import Sequence

from sqlmodel import Session


def ballot_counts(session: Session, process_ids: Sequence[int]) -> dict[int, int]:
    """Current ballots per process."""
    return {}
