"""`cumulative`: the voter spreads at most `points` points over accepted proposals, whole
numbers >= 1, each at most `max_points_per_project` when that is set. In the tally a
proposal's weight on a ballot is the points it got."""

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from app.ballot_types.base import BallotKind, BallotSettings, Count
from app.core.errors import InvalidPoints, PointsExceeded
from app.core.i18n import _t


class CumulativeSettings(BallotSettings):
    type: Literal["cumulative"] = "cumulative"
    points: Count = Field(description="Points each voter may give in all.")
    max_points_per_project: Count | None = None


class Cumulative(BallotKind[CumulativeSettings]):
    name = "cumulative"
    settings_model = CumulativeSettings
    body_field = "points"
    pabulib_vote_type = "cumulative"
    weighted = True

    def weights(
        self, settings: CumulativeSettings, entries: Sequence[tuple[int, object]]
    ) -> list[int]:
        weights = []
        for proposal_id, weight in entries:
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise InvalidPoints(
                    _t(
                        "Points for proposal {proposal_id} must be a whole number >= 1.",
                        proposal_id=proposal_id,
                    )
                )
            weights.append(weight)
        return weights

    def check_totals(
        self, settings: CumulativeSettings, *, budget: int, weights: list[int], total_cost: int
    ) -> None:
        if sum(weights) > settings.points:
            raise PointsExceeded(
                _t(
                    "At most {points} points in all; {given} given.",
                    points=settings.points,
                    given=sum(weights),
                )
            )
        cap = settings.max_points_per_project
        if cap is not None and max(weights, default=0) > cap:
            raise PointsExceeded(_t("At most {cap} points per proposal.", cap=cap))

    def pabulib_limits(
        self, settings: CumulativeSettings, *, budget: int, num_projects: int
    ) -> dict[str, str]:
        return {
            **super().pabulib_limits(settings, budget=budget, num_projects=num_projects),
            "max_sum_points": str(settings.points),
        }
