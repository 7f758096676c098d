"""Fixtures for API tests: one account of each kind, with ready-made auth headers."""

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from app.core.config import Settings
from app.models.user import Role, User
from tests.factories import auth, make_user


@dataclass
class Actor:
    user: User
    headers: dict[str, str]

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id


@dataclass
class Actors:
    admin: Actor
    moderator: Actor
    resident: Actor
    author: Actor
    outsider: Actor  # postcode outside the usual 9713 prefix


@pytest.fixture
def actors(session: Session, settings: Settings) -> Actors:
    key = settings.signing_key()

    def actor(role: Role, **fields: object) -> Actor:
        user = make_user(session, role=role, **fields)  # type: ignore[arg-type]
        return Actor(user=user, headers=auth(user, key))

    return Actors(
        admin=actor(Role.admin, display_name="Admin"),
        moderator=actor(Role.moderator, display_name="Moderator"),
        resident=actor(Role.resident, display_name="Resident"),
        author=actor(Role.resident, display_name="Author"),
        outsider=actor(Role.resident, display_name="Outsider", postcode="1011AB"),
    )
