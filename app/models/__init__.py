"""Tables and API shapes. Importing this package registers every table on the metadata."""

from sqlmodel import SQLModel

from app.models import base as base
from app.models.user import User

metadata = SQLModel.metadata

__all__ = ["User", "metadata"]
