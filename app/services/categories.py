"""Proposal categories of a process.

Rules enforced here:
- a process may fix its categories (`categories` in its spec, distinct ignoring case); a
  proposal's category must then be one of them (`validation_error` on `category`), matched
  ignoring case and stored as the process spells it; without a fixed list any category
  (or none) goes;
- the category list counts proposals that are not withdrawn: with a fixed list, every
  category in its order (zeros included, a proposal filed under a name since dropped from
  the list is not shown); without one, every category in use, by name.
"""

from collections import Counter

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core.errors import FieldError, ValidationFailed
from app.core.i18n import _t
from app.models.process import Process
from app.models.proposal import CategoryCount, Proposal, ProposalStatus
from app.models.user import User
from app.services import processes


def canonical(process: Process, category: str | None) -> str | None:
    """`category` as the process spells it, or `validation_error` when it fixes its
    categories and this is not one of them."""
    if category is None or process.categories is None:
        return category
    for name in process.categories:
        if name.casefold() == category.casefold():
            return name
    raise ValidationFailed(
        _t("The category must be one of: {names}.", names=", ".join(process.categories)),
        fields=[
            FieldError(("category",), "not one of the process's categories", "category_unknown")
        ],
    )


def list_for_process(
    session: Session, *, viewer: User | None, process_id: int
) -> list[CategoryCount]:
    process = processes.get_visible(session, process_id=process_id, viewer=viewer)
    rows = session.exec(
        select(Proposal.category, func.count())
        .where(
            Proposal.process_id == process_id,
            Proposal.status != ProposalStatus.withdrawn,
            col(Proposal.category).is_not(None),
        )
        .group_by(col(Proposal.category))
    ).all()
    if process.categories is None:
        return [
            CategoryCount(name=name, proposal_count=count)
            for name, count in sorted(rows, key=lambda row: (str(row[0]).casefold(), row[0]))
            if name is not None
        ]
    folded: Counter[str] = Counter()
    for name, count in rows:
        if name is not None:
            folded[name.casefold()] += count
    return [
        CategoryCount(name=name, proposal_count=folded[name.casefold()])
        for name in process.categories
    ]
