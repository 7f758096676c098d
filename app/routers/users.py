"""The signed-in account, and role management by admins."""

from typing import Any

from fastapi import APIRouter, Response, status

from app.core.errors import (
    Forbidden,
    InvalidCredentials,
    LastAdmin,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.user import PasswordChange, RoleUpdate, UserPublic
from app.routers.deps import CurrentUser, SessionDep, Throttle
from app.services import accounts, privacy

router = APIRouter(prefix="/users", tags=["accounts"])


@router.get(
    "/me",
    response_model=UserPublic,
    responses=problem_responses(NotAuthenticated),
    summary="The signed-in account",
)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(
        NotAuthenticated, InvalidCredentials, ValidationFailed, TooManyAttempts
    ),
    summary="Change the password; earlier tokens stop working",
)
def change_password(
    data: PasswordChange, user: CurrentUser, session: SessionDep, guard: Throttle
) -> Response:
    accounts.change_password(
        session, user=user, current=data.current_password, new=data.new_password, guard=guard
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me/export",
    responses=problem_responses(NotAuthenticated),
    summary="Everything held about your account (GDPR access)",
)
def export_me(user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return privacy.export(session, user=user)


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, LastAdmin),
    summary="Erase your account's personal data; open-vote ballots are withdrawn",
)
def erase_me(user: CurrentUser, session: SessionDep, guard: Throttle) -> Response:
    privacy.erase(session, user=user, guard=guard)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/{user_id}/role",
    response_model=UserPublic,
    responses=problem_responses(NotAuthenticated, Forbidden, NotFound, LastAdmin, ValidationFailed),
    summary="Change a user's role (admin)",
)
def change_role(
    user_id: int, data: RoleUpdate, actor: CurrentUser, session: SessionDep
) -> UserPublic:
    user = accounts.change_role(session, actor=actor, user_id=user_id, role=data.role)
    return UserPublic.model_validate(user)
