"""Registration and sign-in (OAuth2 password flow, so `/docs` can authorize)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from app.core.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    TooManyAttempts,
    ValidationFailed,
)
from app.core.problems import problem_responses
from app.models.user import (
    Accepted,
    EmailVerification,
    PasswordReset,
    PasswordResetRequest,
    SignIn,
    Token,
    UserCreate,
    UserPublic,
)
from app.routers.deps import (
    ClientAddress,
    CurrentUser,
    PreferredLanguage,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    Throttle,
)
from app.services import accounts, my_account

RESET_REQUESTED = "sent if the account exists"

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=problem_responses(EmailTaken, ValidationFailed, TooManyAttempts),
    summary="Create a resident account",
)
def register(
    data: UserCreate,
    session: SessionDep,
    address: ClientAddress,
    guard: Throttle,
    language: PreferredLanguage,
) -> UserPublic:
    user = accounts.register_from(
        session, data=data, address=address, guard=guard, language=language
    )
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


@router.post(
    "/verify-email",
    response_model=UserPublic,
    responses=problem_responses(InvalidToken, ValidationFailed),
    summary="Confirm the e-mail address with the token from the mailed link",
    description="The link `{FRONTEND_URL}/verify-email?token=T` leads to the frontend, which "
    "posts `T` here. A token works once, for 48 hours, and only the newest one mailed.",
)
def verify_email(data: EmailVerification, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(my_account.verify_email(session, token=data.token))


@router.post(
    "/verify-email/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=problem_responses(NotAuthenticated, TooManyAttempts),
    summary="Mail a new verification link to the signed-in account (throttled)",
)
def request_verification(user: CurrentUser, session: SessionDep, guard: Throttle) -> Response:
    my_account.request_verification(session, user=user, guard=guard)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problem_responses(ValidationFailed, TooManyAttempts),
    summary="Mail a password-reset link, if an account has this e-mail",
    description="Always the same answer, and the same work, whether or not the account "
    "exists. Throttled per e-mail and per client address.",
)
def request_password_reset(
    data: PasswordResetRequest, session: SessionDep, address: ClientAddress, guard: Throttle
) -> Accepted:
    my_account.request_password_reset(session, email=data.email, address=address, guard=guard)
    return Accepted(status=RESET_REQUESTED)


@router.post(
    "/password-reset",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(InvalidToken, ValidationFailed),
    summary="Set a new password with the token from the mailed link",
    description="The token works once, for 1 hour, and only the newest one mailed. Every "
    "earlier access token of the account stops working.",
)
def reset_password(data: PasswordReset, session: SessionDep, guard: Throttle) -> Response:
    my_account.reset_password(
        session, engine=guard.engine, token=data.token, new_password=data.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotAuthenticated),
    summary="Sign out on every device",
    description="Every access token of the account stops working, on all devices: tokens "
    "cannot be revoked one by one.",
)
def logout(user: CurrentUser, session: SessionDep) -> Response:
    my_account.logout(session, user=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
