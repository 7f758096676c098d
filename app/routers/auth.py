"""Registration and sign-in (OAuth2 password flow, so `/docs` can authorize)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, status

from app.core.errors import (
    EmailTaken,
    InvalidCredentials,
    TooManyAttempts,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.user import SignIn, Token, UserCreate, UserPublic
from app.routers.deps import ClientAddress, ReadSessionDep, SessionDep, SettingsDep, Throttle
from app.services import accounts

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=problem_responses(EmailTaken, ValidationFailed, TooManyAttempts),
    summary="Create a resident account",
)
def register(
    data: UserCreate, session: SessionDep, address: ClientAddress, guard: Throttle
) -> UserPublic:
    user = accounts.register_from(session, data=data, address=address, guard=guard)
    return UserPublic.model_validate(user)


@router.post(
    "/token",
    response_model=Token,
    responses=problem_responses(InvalidCredentials, ValidationFailed, TooManyAttempts),
    summary="Sign in: exchange email and password for an access token",
)
def token(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    address: ClientAddress,
    guard: Throttle,
    form: Annotated[SignIn, Form()],
) -> Token:
    return accounts.issue_token(
        session,
        email=form.username,
        password=form.password,
        key=request.app.state.signing_key,
        expires_minutes=settings.access_token_expire_minutes,
        address=address,
        guard=guard,
    )
