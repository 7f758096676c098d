"""The signed-in account and its proposals; finding accounts and managing roles (admins)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.core.errors import (
    EmailTaken,
    Forbidden,
    InvalidCredentials,
    LastAdmin,
    NotAuthenticated,
    NotFound,
    ProfileLocked,
    TooManyAttempts,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.common import NoNul, Page
from app.models.export import AccountExport
from app.models.proposal import ProposalPublic
from app.models.user import PasswordChange, Role, RoleUpdate, UserPublic, UserUpdate
from app.routers.deps import CurrentUser, Paging, SessionDep, Throttle
from app.services import accounts, my_account, privacy, proposals

SearchText = Annotated[str, NoNul]

router = APIRouter(prefix="/users", tags=["accounts"])


@router.get(
    "/me",
    response_model=UserPublic,
    responses=problem_responses(NotAuthenticated),
    summary="The signed-in account",
)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.patch(
    "/me",
    response_model=UserPublic,
    responses=problem_responses(
        NotAuthenticated, ValidationFailed, ProfileLocked, EmailTaken, TooManyAttempts
    ),
    summary="Edit your profile",
    description="Only the fields sent change. A new `email` is unverified until the link "
    "mailed to it is followed; e-mail changes are throttled per account and per new address "
    "(`too_many_attempts`). `postcode` and `birth_year` cannot change while you have a "
    "ballot in a process in `voting`, nor `email` while that process requires a verified "
    "e-mail (`profile_locked`, with `fields`).",
)
def update_me(
    data: UserUpdate, user: CurrentUser, session: SessionDep, guard: Throttle
) -> UserPublic:
    return UserPublic.model_validate(
        my_account.update_profile(session, user=user, data=data, guard=guard)
    )


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
    response_model=AccountExport,
    responses=problem_responses(NotAuthenticated),
    summary="Everything held about your account (GDPR access)",
)
def export_me(user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return privacy.export(session, user=user)


@router.get(
    "/me/proposals",
    response_model=Page[ProposalPublic],
    responses=problem_responses(NotAuthenticated, ValidationFailed),
    summary="Your own proposals in every process, newest first",
)
def my_proposals(user: CurrentUser, session: SessionDep, paging: Paging) -> Page[ProposalPublic]:
    return proposals.list_own(session, user=user, limit=paging.limit, offset=paging.offset)


@router.get(
    "",
    response_model=Page[UserPublic],
    responses=problem_responses(NotAuthenticated, Forbidden, ValidationFailed),
    summary="List and search accounts (admin)",
    description="By id. `q` matches part of the e-mail or the display name, ignoring case; "
    "`role` keeps one role. Erased accounts are not listed.",
)
def list_users(
    actor: CurrentUser,
    session: SessionDep,
    paging: Paging,
    q: Annotated[
        SearchText | None, Query(max_length=254, description="Part of the e-mail or name.")
    ] = None,
    role: Annotated[Role | None, Query(description="Only accounts with this role.")] = None,
) -> Page[UserPublic]:
    return accounts.list_users(
        session, actor=actor, q=q, role=role, limit=paging.limit, offset=paging.offset
    )


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
