"""What every ballot type shares: its settings' common fields, the checks every ballot
passes, and the interface each type fills in.

A ballot type is one object (`BallotKind`) with one home (a module in this package): it
parses a cast body into `(proposal id, weight)` entries, checks them in the contract's
order, shapes the reply, and says how the ballot looks in a pabulib file. Everything here
is pure: no database, no HTTP.

The checks run in this order, and the first that fails is the error returned:
`unknown_proposal`, `duplicate_proposal`, `invalid_points`, `too_few_projects`,
`too_many_projects`, `budget_exceeded`, `below_min_budget_share`, `points_exceeded`. The
shared checks are the first, second, fourth and fifth; a type adds its own between them
through `weights` (before the counts) and `check_totals` (after them).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.errors import (
    DuplicateProposal,
    TooFewProjects,
    TooManyProjects,
    UnknownProposal,
    invalid_input,
)
from app.core.i18n import N_, _t
from app.core.limits import INT32_MAX

Count = Annotated[int, Field(ge=1, le=INT32_MAX)]


class BallotSettings(BaseModel):
    """The settings every type has. Each type's model adds its own and fixes `type`.

    A field that belongs to another type may be sent as null (or its neutral value), as
    the full-shape spec in the API guide does; any other value for it is an error."""

    model_config = ConfigDict(extra="forbid")

    # Fields of other types that a client may send with their neutral value.
    _neutral: ClassVar[dict[str, object]] = {
        "min_budget_share": 0.0,
        "points": None,
        "max_points_per_project": None,
    }

    type: str
    min_projects: Count = 1
    max_projects: Count | None = Field(default=None, description="Required for `approval`.")

    @model_validator(mode="before")
    @classmethod
    def _drop_neutral_foreign_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kept = dict(data)
        for name, neutral in cls._neutral.items():
            if name in kept and name not in cls.model_fields:
                if kept[name] == neutral:
                    del kept[name]
                else:
                    kind = kept.get("type", "this")
                    raise ValueError(
                        _t("{name} does not apply to {kind} ballots", name=name, kind=kind)
                    )
        return kept

    @model_validator(mode="after")
    def _counts_in_order(self) -> Self:
        if self.max_projects is not None and self.min_projects > self.max_projects:
            raise ValueError(N_("min_projects must not exceed max_projects"))
        return self


@dataclass(frozen=True)
class CheckedBallot:
    items: list[tuple[int, int]]  # (proposal id, weight), ascending by id
    total_cost: int


@dataclass(frozen=True)
class BallotReply:
    proposal_ids: list[int]
    points: dict[str, int] | None


S = TypeVar("S", bound=BallotSettings)


class BallotKind(Generic[S]):
    """One ballot type. Subclasses set the class attributes and override the hooks."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BallotSettings]]
    # The body field a voter sends (`proposal_ids` or `points`).
    body_field: ClassVar[str]
    # How the ballot is written in pabulib's META `vote_type`.
    pabulib_vote_type: ClassVar[str]
    # Whether a ballot's weights are points (else every weight is 1).
    weighted: ClassVar[bool] = False

    def entries(
        self, proposal_ids: list[int] | None, points: Mapping[str, object] | None
    ) -> list[tuple[int, object]]:
        """The cast body as (proposal id, weight) pairs; a field of another type is a 422."""
        if self.body_field == "points":
            if points is None:
                raise _foreign("proposal_ids", f"a {self.name} ballot sends points")
            return [(int(key), value) for key, value in points.items()]
        if proposal_ids is None:
            raise _foreign("points", f"a {self.name} ballot sends proposal_ids")
        return [(proposal_id, 1) for proposal_id in proposal_ids]

    def weights(self, settings: S, entries: Sequence[tuple[int, object]]) -> list[int]:
        """Each entry's weight, after checking it (`invalid_points`)."""
        return [1] * len(entries)

    def check_totals(
        self, settings: S, *, budget: int, weights: list[int], total_cost: int
    ) -> None:
        """The type's own limits, checked after the counts."""

    def check(
        self,
        settings: S,
        *,
        budget: int,
        costs: Mapping[int, int],
        entries: Sequence[tuple[int, object]],
    ) -> CheckedBallot:
        """Validate `entries` against the settings and the accepted proposals' `costs`."""
        for proposal_id, _ in entries:
            if proposal_id not in costs:
                raise UnknownProposal(
                    _t("Proposal {proposal_id} is not on this ballot.", proposal_id=proposal_id)
                )
        seen: set[int] = set()
        for proposal_id, _ in entries:
            if proposal_id in seen:
                raise DuplicateProposal(
                    _t("Proposal {proposal_id} is chosen more than once.", proposal_id=proposal_id)
                )
            seen.add(proposal_id)
        weights = self.weights(settings, entries)
        count = len(entries)
        if count < settings.min_projects:
            raise TooFewProjects(
                _t(
                    "Choose at least {min_projects} proposal(s); {count} chosen.",
                    min_projects=settings.min_projects,
                    count=count,
                )
            )
        if settings.max_projects is not None and count > settings.max_projects:
            raise TooManyProjects(
                _t(
                    "Choose at most {max_projects} proposal(s); {count} chosen.",
                    max_projects=settings.max_projects,
                    count=count,
                )
            )
        total_cost = sum(costs[proposal_id] for proposal_id, _ in entries)
        self.check_totals(settings, budget=budget, weights=weights, total_cost=total_cost)
        items = sorted(
            (proposal_id, weight) for (proposal_id, _), weight in zip(entries, weights, strict=True)
        )
        return CheckedBallot(items=items, total_cost=total_cost)

    def reply(self, items: Sequence[Sequence[int]]) -> BallotReply:
        """The ballot as the API shows it: ids ascending; points only on weighted types."""
        points = {str(pid): weight for pid, weight in items} if self.weighted else None
        return BallotReply(proposal_ids=[pid for pid, _ in items], points=points)

    def pabulib_limits(self, settings: S, *, budget: int, num_projects: int) -> dict[str, str]:
        """The ballot limits pabulib's META records for this type."""
        meta = {"min_length": str(settings.min_projects)}
        if settings.max_projects is not None:
            meta["max_length"] = str(min(settings.max_projects, num_projects))
        return meta


def _foreign(field: str, message: str) -> Exception:
    return invalid_input([{"loc": [field], "msg": message, "type": "extra_forbidden"}])
