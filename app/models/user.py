"""Accounts: the table and the shapes the API reads and writes."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import CheckConstraint, Column, String, event
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.core.i18n import N_, negotiate
from app.models.base import UTCDateTime, utcnow
from app.models.common import Name, NoNul, Schema

# The name shown for an erased account, on its own profile and as author of its proposals.
FORMER_RESIDENT = "Former resident"


class Role(StrEnum):
    resident = "resident"
    moderator = "moderator"
    admin = "admin"


ROLE_RANK = {Role.resident: 0, Role.moderator: 1, Role.admin: 2}


class Language(StrEnum):
    """The language of an account's mails."""

    nl = "nl"
    en = "en"


DEFAULT_LANGUAGE = Language.en


def language_from_header(accept_language: str | None) -> Language:
    """An account's language from `Accept-Language`; English when it names neither."""
    return Language(negotiate(accept_language))


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN ('resident', 'moderator', 'admin')", name="role"),
        CheckConstraint("language IN ('nl', 'en')", name="language"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    email: str = SQLField(sa_column=Column(String(254), nullable=False, unique=True))
    password_hash: str = SQLField(sa_column=Column(String(255), nullable=False))
    display_name: str = SQLField(sa_column=Column(String(100), nullable=False))
    role: str = SQLField(default=Role.resident, sa_column=Column(String(16), nullable=False))
    postcode: str | None = SQLField(default=None, sa_column=Column(String(16), nullable=True))
    birth_year: int | None = SQLField(default=None, nullable=True)
    # Set when a link mailed to `email` was followed; a new email is unverified again.
    email_verified: bool = SQLField(default=False, nullable=False)
    language: str = SQLField(default=DEFAULT_LANGUAGE, sa_column=Column(String(2), nullable=False))
    # Bumped on a password change, a reset, a sign-out or a demotion: tokens carrying an
    # older value stop working.
    token_version: int = SQLField(default=0, nullable=False)
    created_at: datetime = SQLField(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    # Set when the resident erased their account: the row stays (what they wrote is shown
    # by a "former resident"), emptied of every personal detail.
    erased_at: datetime | None = SQLField(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # `email` as one mailbox (`mailbox_of`), kept in step with it on every insert and
    # update: "one mailbox, one vote" where a process requires a verified e-mail.
    mailbox: str | None = SQLField(
        default=None, sa_column=Column(String(254), nullable=True, index=True)
    )


def normalise_email(value: str) -> str:
    return value.strip().lower()


def mailbox_of(email: str) -> str:
    """The mailbox an address delivers to, as far as any provider agrees: case ignored and
    plus-addressing (`name+tag@`) dropped. `Ann+1@Mail.example` -> `ann@mail.example`."""
    local, _, domain = normalise_email(email).rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else normalise_email(email)


@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _keep_mailbox(_mapper: Any, _connection: Any, user: User) -> None:
    user.mailbox = mailbox_of(user.email)


def normalise_postcode(value: str) -> str:
    """`9713 ab` -> `9713AB`: upper case without spaces, as eligibility compares them."""
    return re.sub(r"\s+", "", value).upper()


def _check_postcode(value: str) -> str:
    value = normalise_postcode(value)
    if not re.fullmatch(r"[0-9A-Z-]{1,10}", value):
        raise ValueError(N_("a postcode has 1 to 10 letters, digits or dashes"))
    return value


def _normalise_email_input(value: object) -> object:
    return normalise_email(value) if isinstance(value, str) else value


Email = Annotated[EmailStr, BeforeValidator(_normalise_email_input)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256), NoNul]
Postcode = Annotated[str, StringConstraints(max_length=16), NoNul, AfterValidator(_check_postcode)]
BirthYear = Annotated[int, Field(ge=1900, le=2100)]


class UserCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "anna@example.org",
                    "password": "correct horse battery",
                    "display_name": "Anna",
                    "postcode": "9713 AB",
                    "birth_year": 1990,
                }
            ]
        }
    )

    email: Email
    password: Password
    display_name: Name
    postcode: Postcode | None = None
    birth_year: BirthYear | None = None
    language: Language | None = Field(
        default=None, description="Of the account's mails; else from Accept-Language."
    )


class UserUpdate(Schema):
    """`PATCH /users/me`: only the fields sent change. `postcode` and `birth_year` may be
    null (removed); the others may not."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"display_name": "Anna B.", "language": "nl"}]}
    )

    display_name: Name | None = None
    language: Language | None = None
    postcode: Postcode | None = None
    birth_year: BirthYear | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in ("display_name", "language", "email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise PydanticCustomError("missing", f"{name} cannot be null")
        return self


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: Role
    postcode: str | None
    birth_year: int | None
    email_verified: bool
    language: Language
    created_at: datetime


class RoleUpdate(Schema):
    role: Role


class PasswordChange(Schema):
    current_password: Annotated[str, StringConstraints(max_length=256), NoNul]
    new_password: Password


class SignIn(BaseModel):
    """The OAuth2 password form (`application/x-www-form-urlencoded`). Other OAuth2 fields a
    client may send (`scope`, `client_id`, ...) are ignored, as the flow allows."""

    username: Annotated[str, StringConstraints(max_length=254), NoNul] = Field(
        description="The account's email.", examples=["anna@example.org"]
    )
    password: Annotated[str, StringConstraints(max_length=256), NoNul]
    grant_type: Annotated[str, StringConstraints(pattern="^password$")] | None = Field(
        default=None, description="`password`, when sent."
    )


TokenText = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


class EmailVerification(Schema):
    token: TokenText


class PasswordResetRequest(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "anna@example.org"}]})

    email: Email


class PasswordReset(Schema):
    token: TokenText
    new_password: Password


class Accepted(BaseModel):
    status: str = Field(examples=["sent if the account exists"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
