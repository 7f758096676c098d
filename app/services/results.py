"""Results: tally previews and immutable publication."""

from sqlmodel import Session, select

from app.models.result import PublishedResult


def is_published(session: Session, process_id: int) -> bool:
    found = session.exec(
        select(PublishedResult.process_id).where(PublishedResult.process_id == process_id)
    )
    return found.first() is not None
