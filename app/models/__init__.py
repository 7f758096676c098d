"""Tables and API shapes. Importing this package registers every table on the metadata."""

from sqlmodel import SQLModel

from app.models import base as base
from app.models.audit import AuditEntry
from app.models.ballot import Ballot, Receipt, VotingCode
from app.models.mail import AccountToken, OutgoingMail
from app.models.paper import PaperBatch, PaperEntry
from app.models.process import Process
from app.models.proposal import Comment, CommentReport, Proposal, Support
from app.models.result import PublishedResult
from app.models.round import Round, RoundGroup
from app.models.throttle import ThrottleEvent
from app.models.user import User

metadata = SQLModel.metadata

__all__ = [
    "AccountToken",
    "AuditEntry",
    "Ballot",
    "Comment",
    "CommentReport",
    "OutgoingMail",
    "PaperBatch",
    "PaperEntry",
    "Process",
    "Proposal",
    "PublishedResult",
    "Receipt",
    "Round",
    "RoundGroup",
    "Support",
    "ThrottleEvent",
    "User",
    "VotingCode",
    "metadata",
]
