"""Who may do what, by role. Checked after the target is found (404 before 403)."""

from app.core.errors import Forbidden
from app.core.i18n import _t
from app.models.user import ROLE_RANK, Role, User


def has_role(user: User | None, minimum: Role) -> bool:
    return user is not None and ROLE_RANK[Role(user.role)] >= ROLE_RANK[minimum]


def require_role(user: User, minimum: Role) -> None:
    if not has_role(user, minimum):
        raise Forbidden(_t("This needs the {role} role.", role=minimum.value))
