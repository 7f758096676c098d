"""The tally (vote-rules.md, "The tally"): pure functions, exact arithmetic, no database.

Proposals are given in tie-break order ("lower id" first: ascending proposal id, or file
order for a pabulib election) and referred to by their index in that order. A ballot is a
tuple of (index, weight) pairs: weight 1 on knapsack and approval ballots, the points on
cumulative ones. `votes(p)` is the sum of the weights given to `p`.

`greedy`: order by votes descending, cost ascending, index ascending; walk the order and
fund each proposal that fits what is left; never fund a proposal with 0 votes.

`mes` (Method of Equal Shares with cost utilities and Add1 completion): every ballot holds
an equal share of a budget B'. A proposal is affordable when its supporters together still
hold its cost; each supporter i pays min(money_i, rho * w_i * cost), with the smallest rho
that covers the cost. The affordable proposal with the smallest rho is funded (ties: lower
cost, more votes, lower index), its supporters pay, and this repeats until none is
affordable. Add1 reruns from scratch with B' = floor(budget / n) * n + k * n for k = 1, 2,
... and keeps the last outcome that does not overspend the real budget; it stops early when
an outcome funds every proposal that has a vote.

Speed without floats (all arithmetic is on integers and `Fraction`s):
- identical ballots are grouped, and voters who supported the same funded proposals with
  the same weights hold the same money, so money is kept per "wallet class";
- money is kept as integers over one common scale, rescaled when a payment divides;
- lazy pricing: money only shrinks during a run, so a proposal's earlier price is a lower
  bound of its price now; a heap re-prices only proposals that could still win;
- Add1 skips ahead with proof: every amount in a run is an affine function of the starting
  money per voter, b, and every decision the run took is the sign of such a function. The
  run records the smallest b at which any of those signs could change; below it the same
  decisions, and so the same outcome, are certain, so the runs in between are skipped.
"""

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

Ballot = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Election:
    budget: int
    costs: tuple[int, ...]  # per proposal, in tie-break order
    ballots: tuple[tuple[Ballot, int], ...]  # distinct ballots with their multiplicity

    @classmethod
    def build(
        cls, budget: int, costs: Sequence[int], ballots: Iterable[Iterable[tuple[int, int]]]
    ) -> "Election":
        grouped = Counter(tuple(sorted(ballot)) for ballot in ballots)
        return cls(budget=budget, costs=tuple(costs), ballots=tuple(grouped.items()))

    @property
    def voter_count(self) -> int:
        return sum(count for _, count in self.ballots)

    def votes(self) -> list[int]:
        totals = [0] * len(self.costs)
        for ballot, count in self.ballots:
            for index, weight in ballot:
                totals[index] += weight * count
        return totals


@dataclass(frozen=True)
class Outcome:
    rule: str
    selected: list[int]  # indices, in selection order
    spent: int
    votes: list[int]
    ranking: list[int] = field(default_factory=list)  # every index, in rank order


@dataclass(frozen=True)
class Rule:
    """A tally rule: how it counts, and how a pabulib file names it in META."""

    name: str
    count: Callable[[Election], Outcome]
    pabulib_meta: dict[str, str]


def greedy_order(costs: Sequence[int], votes: Sequence[int]) -> list[int]:
    return sorted(range(len(costs)), key=lambda i: (-votes[i], costs[i], i))


def greedy(election: Election) -> Outcome:
    votes = election.votes()
    order = greedy_order(election.costs, votes)
    remaining = election.budget
    selected = []
    for index in order:
        cost = election.costs[index]
        if votes[index] > 0 and cost <= remaining:
            selected.append(index)
            remaining -= cost
    return Outcome("greedy", selected, election.budget - remaining, votes, order)


def mes(election: Election) -> Outcome:
    votes = election.votes()
    n = election.voter_count
    voted = {i for i, v in enumerate(votes) if v > 0}
    order = greedy_order(election.costs, votes)

    def outcome(selected: list[int]) -> Outcome:
        chosen = set(selected)
        ranking = selected + [i for i in order if i not in chosen]
        return Outcome("mes", selected, sum(election.costs[i] for i in selected), votes, ranking)

    if n == 0:
        return outcome([])
    run = _EqualShares(election, votes)
    best, _ = run.run(Fraction(election.budget, n))
    if voted <= set(best):
        return outcome(best)
    per_voter = election.budget // n  # B' = floor(budget / n) * n + k * n, per voter
    k = 1
    while True:
        attempt, valid_until = run.run(Fraction(per_voter + k))
        if sum(election.costs[i] for i in attempt) > election.budget:
            return outcome(best)
        best = attempt
        if voted <= set(best):
            return outcome(best)
        # The same outcome is certain for every per-voter budget below `valid_until`.
        k = max(k + 1, math.ceil(valid_until - per_voter))


class _EqualShares:
    """Runs of the Method of Equal Shares for one election, at a given money per voter b.

    Money is an affine function of b kept as integers: (A + B * b) / scale, per wallet class.
    """

    def __init__(self, election: Election, votes: Sequence[int]) -> None:
        self.costs = election.costs
        self.votes = votes
        self.group_count = len(election.ballots)
        self.supporters: list[list[tuple[int, int, int]]] = [[] for _ in self.costs]
        for g, (ballot, count) in enumerate(election.ballots):
            for index, weight in ballot:
                self.supporters[index].append((g, weight, count))
        self.groups_of = [[g for g, _, _ in s] for s in self.supporters]
        self.weights_of = [[w for _, w, _ in s] for s in self.supporters]
        self.total_weight = [sum(w * c for _, w, c in s) for s in self.supporters]
        self.weight_lcm = [math.lcm(*(w for _, w, _ in s)) if s else 1 for s in self.supporters]
        # Counting supporters per wallet class is the inner loop. When ballots repeat little,
        # counting one entry per voter with Counter (in C) beats a Python loop over groups.
        self.per_voter = election.voter_count <= 8 * max(self.group_count, 1)
        self.voters_by_weight: list[dict[int, list[int]]] = []
        for supporters in self.supporters:
            by_weight: dict[int, list[int]] = {}
            for g, weight, count in supporters:
                by_weight.setdefault(weight, []).extend([g] * count if self.per_voter else [g])
            self.voters_by_weight.append(by_weight)

    def run(self, b: Fraction) -> tuple[list[int], Fraction]:
        """The selection at money b per voter, and a b' > b below which it cannot change."""
        self.bn, self.bd = b.numerator, b.denominator
        self.b = b
        self.limit: Fraction | None = None
        # Add1 tries whole units per voter: once the limit is below the next whole b, no
        # further decision can let it skip anything, and recording stops.
        self.next_whole = Fraction(math.floor(b) + 1)
        self.tight = False
        self.scale = 1
        self.money: dict[int, tuple[int, int]] = {0: (0, 1)}  # live class -> (A, B)
        self.population: Counter[int] = Counter({0: self.group_count})
        self.next_class = 1
        class_of = [0] * self.group_count
        # To start, every proposal's price when nobody is capped, 1 / total weight: a lower
        # bound of its price for the whole run.
        heap = [
            _Entry(1, w, self.costs[i], -self.votes[i], i, (1, 0, w), -1, None)
            for i, w in enumerate(self.total_weight)
            if self.votes[i] > 0
        ]
        heapq.heapify(heap)
        selected: list[int] = []
        round_ = 0
        while heap:
            entry = heapq.heappop(heap)
            if entry.priced_in != round_:
                priced = self._price(entry.index, class_of)
                if priced is not None:
                    num, den, affine, plan = priced
                    heapq.heappush(
                        heap,
                        _Entry(
                            num, den, entry.cost, entry.neg_votes, entry.index, affine, round_, plan
                        ),
                    )
                continue
            # The entry wins: its exact price is at most every other key (exact or lower bound).
            assert entry.plan is not None
            self._record_win(entry.plan)
            for other in heap:
                if self.tight:
                    break
                self._keep_order(entry.affine, other.affine)
            self._pay(entry.index, entry.plan, class_of)
            selected.append(entry.index)
            round_ += 1
        return selected, self.limit if self.limit is not None else Fraction(10**30)

    # -- recording the decisions -------------------------------------------------------

    def _record(self, a: int, b_coef: int, holds: bool) -> None:
        """A decision was `a + b_coef * b >= 0` (holds) or `< 0`; note where it could flip."""
        if self.tight or b_coef == 0 or (b_coef > 0) == holds:
            return  # moving b up only strengthens the decision
        # It flips at the root -a / b_coef, which is at or above the current b.
        limit = self.limit
        if limit is not None:
            # root < limit, multiplied out by b_coef * limit.denominator (mind the sign)
            below = -a * limit.denominator < limit.numerator * b_coef
            if below == (b_coef < 0):
                return  # not below the limit already known
        flip = max(Fraction(-a, b_coef), self.b)
        if limit is None or flip < limit:
            self.limit = flip
            self.tight = flip <= self.next_whole

    def _keep_order(self, winner: tuple[int, int, int], other: tuple[int, int, int]) -> None:
        """The winner's price stays at most the other key's price (ties keep their order)."""
        (wa, wb, wd), (oa, ob, od) = winner, other
        self._record(oa * wd - wa * od, ob * wd - wb * od, holds=True)

    # -- one proposal's price ----------------------------------------------------------

    def _price(
        self, index: int, class_of: list[int]
    ) -> tuple[int, int, tuple[int, int, int], "_Plan"] | None:
        """The price rho at b as numerator and denominator, as affine (A, B, D) meaning
        (A + B*b) / D, and the payment plan; or None when the supporters cannot afford it.

        Only the decision "cannot afford" is recorded here. For any capping set C the
        affine q_C = (cost - money of C) / (weight outside C) is at most the true q at
        every b, so a losing proposal's affine price is a lower bound wherever it is
        used; the winner's own decisions are recorded when it wins (`_record_win`)."""
        held = self._held(index, class_of)
        money, bn, bd = self.money, self.bn, self.bd
        cost = self.costs[index] * self.scale
        entries = []
        total_a = total_b = 0
        for (c, w), n in held.items():
            a, b_coef = money[c]
            total_a += a * n
            total_b += b_coef * n
            entries.append((c, w, n, a, b_coef))
        if (total_a - cost) * bd + total_b * bn < 0:
            self._record(total_a - cost, total_b, holds=False)
            return None
        lcm = self.weight_lcm[index]
        # ascending money per unit of weight: the first to run out come first
        entries.sort(key=lambda e: (e[3] * bd + e[4] * bn) * (lcm // e[1]))
        rest_a, rest_b = cost, 0
        weight_left = self.total_weight[index]
        capped_until = 0
        if cost:
            for _, w, n, a, b_coef in entries:
                # uncapped when money / w >= q = rest / weight_left
                if (a * weight_left - rest_a * w) * bd + (
                    b_coef * weight_left - rest_b * w
                ) * bn >= 0:
                    break
                rest_a -= a * n
                rest_b -= b_coef * n
                weight_left -= w * n
                capped_until += 1
        denominator = weight_left * max(self.costs[index], 1) * self.scale
        plan = (rest_a, rest_b, weight_left, capped_until, entries, total_a - cost, total_b)
        return rest_a * bd + rest_b * bn, denominator * bd, (rest_a, rest_b, denominator), plan

    def _held(self, index: int, class_of: list[int]) -> dict[tuple[int, int], int]:
        """How many supporters of the proposal sit in each (wallet class, weight)."""
        if self.per_voter:
            return {
                (c, weight): n
                for weight, voters in self.voters_by_weight[index].items()
                for c, n in Counter(map(class_of.__getitem__, voters)).items()
            }
        held: dict[tuple[int, int], int] = {}
        for g, weight, count in self.supporters[index]:
            key = (class_of[g], weight)
            held[key] = held.get(key, 0) + count
        return held

    def _record_win(self, plan: "_Plan") -> None:
        """The winner stays affordable and its capping set stays the same."""
        rest_a, rest_b, weight_left, capped_until, entries, spare_a, spare_b = plan
        self._record(spare_a, spare_b, holds=True)
        for position, (_, w, _, a, b_coef) in enumerate(entries):
            if self.tight:
                return
            if position < capped_until:  # money / w at most q
                h_a, h_b = rest_a * w - a * weight_left, rest_b * w - b_coef * weight_left
            else:  # money / w at least q
                h_a, h_b = a * weight_left - rest_a * w, b_coef * weight_left - rest_b * w
            self._record(h_a, h_b, holds=True)

    # -- paying --------------------------------------------------------------------------

    def _pay(self, index: int, plan: "_Plan", class_of: list[int]) -> None:
        rest_a, rest_b, weight_left, capped_until, entries, _, _ = plan
        # q = rest / weight_left is not whole over the current scale: rescale the live
        # classes by weight_left, and q becomes (rest_a, rest_b) exactly.
        self.scale *= weight_left
        money = self.money
        for c, (a, b_coef) in money.items():
            money[c] = (a * weight_left, b_coef * weight_left)
        moved: dict[tuple[int, int], int] = {}
        for position, (c, w, *_) in enumerate(entries):
            capped = position < capped_until
            a, b_coef = money[c]
            new = self.next_class
            self.next_class += 1
            moved[(c, w)] = new
            money[new] = (0, 0) if capped else (a - rest_a * w, b_coef - rest_b * w)
        # Move the supporters' groups to their new classes, with C-level loops (map, zip,
        # Counter): this runs once per funded proposal over thousands of groups.
        groups, weights = self.groups_of[index], self.weights_of[index]
        olds = list(map(class_of.__getitem__, groups))
        news = list(map(moved.__getitem__, zip(olds, weights, strict=True)))
        list(map(class_of.__setitem__, groups, news))
        population = self.population
        population.update(Counter(news))
        for old, leaving in Counter(olds).items():
            population[old] -= leaving
            if not population[old]:
                del population[old], money[old]


class _Entry:
    """A heap entry: a proposal's price num / den (exact now, or a lower bound from an
    earlier round), ordered by price, then lower cost, more votes, lower index."""

    __slots__ = ("affine", "cost", "den", "index", "neg_votes", "num", "plan", "priced_in")

    def __init__(
        self,
        num: int,
        den: int,
        cost: int,
        neg_votes: int,
        index: int,
        affine: tuple[int, int, int],
        priced_in: int,
        plan: "_Plan | None",
    ) -> None:
        self.num, self.den, self.cost, self.neg_votes, self.index = num, den, cost, neg_votes, index
        self.affine, self.priced_in, self.plan = affine, priced_in, plan

    def __lt__(self, other: "_Entry") -> bool:
        left, right = self.num * other.den, other.num * self.den
        if left != right:
            return left < right
        return (self.cost, self.neg_votes, self.index) < (other.cost, other.neg_votes, other.index)


# How a proposal would be paid: rest (A, B) = q * uncapped weight, the uncapped weight, how
# many of the sorted (class, weight, count, A, B) entries are capped, the entries, and the
# supporters' spare money (A, B) beyond the cost.
_Plan = tuple[int, int, int, int, list[tuple[int, int, int, int, int]], int, int]


# The rules, by the name the API and the command line use.
RULES: dict[str, Rule] = {
    "greedy": Rule(
        "greedy",
        greedy,
        # A proposal with 0 votes is never selected, which plain pabulib `greedy` does not know.
        {"rule": "greedy-threshold", "min_project_score_threshold": "1"},
    ),
    "mes": Rule("mes", mes, {"rule": "equalshares/add1"}),
}
