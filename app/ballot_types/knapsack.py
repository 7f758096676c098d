"""`knapsack`: the budget ballot (Groningen's Oosterpark pilot, Amsterdam's "Begroot").

The voter chooses a set of accepted proposals whose total cost is at most the budget and
at least `min_budget_share` x budget; the share is compared exactly, as a fraction.
"""

from fractions import Fraction
from typing import Annotated, Literal

from pydantic import Field

from app.ballot_types.base import BallotKind, BallotSettings
from app.core.errors import BelowMinBudgetShare, BudgetExceeded
from app.core.i18n import _t

Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class KnapsackSettings(BallotSettings):
    type: Literal["knapsack"] = "knapsack"
    min_budget_share: Share = Field(default=0.0, description="0..1 of the budget.")


class Knapsack(BallotKind[KnapsackSettings]):
    name = "knapsack"
    settings_model = KnapsackSettings
    body_field = "proposal_ids"
    pabulib_vote_type = "approval"

    def check_totals(
        self, settings: KnapsackSettings, *, budget: int, weights: list[int], total_cost: int
    ) -> None:
        if total_cost > budget:
            raise BudgetExceeded(
                _t(
                    "The chosen proposals cost {total_cost}, the budget is {budget}.",
                    total_cost=total_cost,
                    budget=budget,
                )
            )
        # Through str: 0.3 means 3/10 exactly, not the float nearest to it.
        need = Fraction(str(settings.min_budget_share)) * budget
        if total_cost < need:
            raise BelowMinBudgetShare(
                _t(
                    "Spend at least {need:g} of {budget}; {total_cost} chosen.",
                    need=float(need),
                    budget=budget,
                    total_cost=total_cost,
                )
            )

    def pabulib_limits(
        self, settings: KnapsackSettings, *, budget: int, num_projects: int
    ) -> dict[str, str]:
        return {
            **super().pabulib_limits(settings, budget=budget, num_projects=num_projects),
            "max_sum_cost": str(budget),
        }
