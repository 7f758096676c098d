"""Ballot types: one module each, registered here.

`BALLOT_KINDS` maps a type's name to its object; `BallotSpec` is the settings union keyed
on `type`, used by the process spec. Adding a type is a new module with its settings model
and `BallotKind` subclass, plus one line in each of the two places below.
"""

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from app.ballot_types.approval import Approval, ApprovalSettings
from app.ballot_types.base import BallotKind, BallotReply, BallotSettings, CheckedBallot
from app.ballot_types.cumulative import Cumulative, CumulativeSettings
from app.ballot_types.knapsack import Knapsack, KnapsackSettings
from app.core.i18n import _t

BALLOT_KINDS: dict[str, BallotKind[Any]] = {
    kind.name: kind for kind in (Knapsack(), Approval(), Cumulative())
}

BallotSpec = Annotated[
    KnapsackSettings | ApprovalSettings | CumulativeSettings,
    Field(discriminator="type"),
]


def _known(name: str) -> str:
    if name not in BALLOT_KINDS:
        raise ValueError(_t("the ballot type is one of {kinds}", kinds=", ".join(BALLOT_KINDS)))
    return name


# A type's name where no settings come with it (a partial edit).
BallotTypeName = Annotated[
    str, AfterValidator(_known), Field(json_schema_extra={"enum": list(BALLOT_KINDS)})
]


def kind_of(settings: BallotSettings) -> BallotKind[Any]:
    return BALLOT_KINDS[settings.type]


__all__ = [
    "BALLOT_KINDS",
    "BallotKind",
    "BallotReply",
    "BallotSettings",
    "BallotSpec",
    "BallotTypeName",
    "CheckedBallot",
    "kind_of",
]
