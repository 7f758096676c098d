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
- money is kept per wallet class as a reduced fraction with its own denominator: a voter's
  money depends only on the payments they made, so its denominator stays as small as the
  few prices they paid (one common denominator for all voters would grow with every funded
  proposal, to thousands of bits); a proposal is priced over the least common denominator
  of its supporters' classes;
- lazy pricing: money only shrinks during a run, so a proposal's earlier price is a lower
  bound of its price now; a heap re-prices only proposals that could still win;
- Add1 skips ahead with proof: every amount in a run is an affine function of the starting
  money per voter, b, and every decision the run took is the sign of such a function. The
  run records the smallest b at which any of those signs could change; below it the same
  decisions, and so the same outcome, are certain, so the runs in between are skipped.
"""

import functools
import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import compress, repeat
from operator import add, floordiv, itemgetter, lt, mul
from typing import Literal

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
    explain: Callable[[Election], "tuple[Outcome, list[Explanation]]"]


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
    return _mes(election)[0]


def _mes(election: Election) -> tuple[Outcome, Fraction | None]:
    """The `mes` outcome and the money per voter of the run it comes from (the final Add1
    budget; None without ballots)."""
    votes = election.votes()
    n = election.voter_count
    voted = {i for i, v in enumerate(votes) if v > 0}
    order = greedy_order(election.costs, votes)

    def outcome(selected: list[int]) -> Outcome:
        chosen = set(selected)
        ranking = selected + [i for i in order if i not in chosen]
        return Outcome("mes", selected, sum(election.costs[i] for i in selected), votes, ranking)

    if n == 0:
        return outcome([]), None
    run = _EqualShares(election, votes)
    best_b = Fraction(election.budget, n)
    best, _ = run.run(best_b)
    if voted <= set(best):
        return outcome(best), best_b
    per_voter = election.budget // n  # B' = floor(budget / n) * n + k * n, per voter
    k = 1
    while True:
        b = Fraction(per_voter + k)
        attempt, valid_until = run.run(b)
        if sum(election.costs[i] for i in attempt) > election.budget:
            return outcome(best), best_b
        best = attempt
        if voted <= set(best):
            return outcome(best), b
        # The same outcome is certain for every per-voter budget below `valid_until`.
        next_k = max(k + 1, math.ceil(valid_until - per_voter))
        # Stepping one unit at a time, Add1 would stand at the last whole b before next_k
        # should next_k overspend: the explanations are computed at that b.
        best_b = Fraction(per_voter + next_k - 1)
        k = next_k


def equal_shares_run(election: Election, b: Fraction) -> list[int]:
    """One run of the Method of Equal Shares at money b per voter, without Add1."""
    return _EqualShares(election, election.votes()).run(b)[0]


class _EqualShares:
    """Runs of the Method of Equal Shares for one election, at a given money per voter b.

    Money is an affine function of b kept as integers: (A + B * b) / D per wallet class,
    with gcd(A, B, D) == 1.
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
        self.money: dict[int, tuple[int, int, int]] = {0: (0, 1, 1)}  # live class -> (A, B, D)
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
    ) -> "tuple[int, int, tuple[int, int, int], _Plan] | None":
        """The price rho at b as numerator and denominator, as affine (A, B, D) meaning
        (A + B*b) / D, and the payment plan; or None when the supporters cannot afford it.

        The capped supporters (money / w below q) are found by water-filling: start with
        q = cost / total weight, cap every class below it, raise q to (cost - their money) /
        (weight left), and repeat until nobody new falls below; q only rises on the way, so
        this ends at the set the walk in ascending money / w would find (and, the supporters
        affording the cost, leaves someone uncapped). Only the capped classes' money is
        summed (over the least common denominator of theirs); every other class is compared
        with q over its own denominator.

        Only the decision "cannot afford" is recorded here. For any capping set C the
        affine q_C = (cost - money of C) / (weight outside C) is at most the true q at
        every b, so a losing proposal's affine price is a lower bound wherever it is
        used; the winner's own decisions are recorded when it wins (`_record_win`)."""
        held = self._held(index, class_of)
        bn, bd = self.bn, self.bd
        cost = self.costs[index]
        # Column by column, so that the loops over thousands of classes run in C (map): the
        # classes' money (A + B*b) / d, their weights and their voters.
        wallets = list(map(self.money.__getitem__, map(itemgetter(0), held)))
        a_s, b_s, d_s = (list(map(itemgetter(k), wallets)) for k in range(3))
        counts = list(held.values())
        # money * d * bd per class
        values = list(map(add, map(mul, a_s, repeat(bd)), map(mul, b_s, repeat(bn))))
        # Can they afford it? Their whole euros bound their money from both sides, in small
        # integers; only a close call (or a refusal to record) sums the exact money.
        floors = sum(map(mul, map(floordiv, values, map(mul, d_s, repeat(bd))), counts))
        if floors < cost and (floors + sum(counts) >= cost or not self.tight):
            total_a, total_b, common = _total(a_s, b_s, d_s, counts)
            if (total_a - cost * common) * bd + total_b * bn < 0:
                self._record(total_a - cost * common, total_b, holds=False)
                return None
        elif floors < cost:
            return None  # nothing is recorded any more in this run (`_record`)
        weighed = list(map(mul, map(itemgetter(1), held), d_s))
        capped: list[int] = []
        rest_a, rest_b, scale = cost, 0, 1  # cost - money of the capped, over `scale`
        weight_left = self.total_weight[index]
        shut: set[int] = set()  # the capped
        while True:
            # below q = rest / (scale * weight_left): value * scale * weight_left < rest * w * d
            due, reach = rest_a * bd + rest_b * bn, scale * weight_left
            below = map(lt, map(mul, values, repeat(reach)), map(mul, weighed, repeat(due)))
            short = [i for i in compress(range(len(values)), below) if i not in shut]
            if not short:
                break
            new_scale = math.lcm(scale, *{d_s[i] for i in short})
            rest_a *= new_scale // scale
            rest_b *= new_scale // scale
            for i in short:
                factor, n = new_scale // d_s[i], counts[i]
                rest_a -= a_s[i] * n * factor
                rest_b -= b_s[i] * n * factor
                weight_left -= weighed[i] // d_s[i] * n
            scale = new_scale
            capped += short
            shut.update(short)
        denominator = scale * weight_left * max(cost, 1)
        plan = _Plan(rest_a, rest_b, weight_left, scale, capped, (held, counts, a_s, b_s, d_s))
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
        # (That it stays affordable needs no record: money's coefficient of b is never
        # negative, so more money per voter only adds to what the supporters hold.)
        rest_a, rest_b, weight_left, scale = plan.rest_a, plan.rest_b, plan.weight_left, plan.scale
        capped_until, entries = len(plan.capped), plan.entries()
        reach = scale * weight_left
        for position, (_, w, _, a, b_coef, d) in enumerate(entries):
            if self.tight:
                return
            # money / w - q, times d * w * reach (see `_Plan`)
            h_a, h_b = a * reach - rest_a * w * d, b_coef * reach - rest_b * w * d
            if position < capped_until:  # money / w at most q
                h_a, h_b = -h_a, -h_b
            self._record(h_a, h_b, holds=True)

    # -- paying --------------------------------------------------------------------------

    def _pay(self, index: int, plan: "_Plan", class_of: list[int]) -> None:
        rest_a, rest_b, weight_left, scale = plan.rest_a, plan.rest_b, plan.weight_left, plan.scale
        capped_until, entries = len(plan.capped), plan.entries()
        # What an uncapped supporter keeps, money - q * w, over d * reach (see `_Plan`),
        # reduced: the numerator is the one `_record_win` looked at.
        reach = scale * weight_left
        money = self.money
        moved: dict[tuple[int, int], int] = {}
        for position, (c, w, _, a, b_coef, d) in enumerate(entries):
            new = self.next_class
            self.next_class += 1
            moved[(c, w)] = new
            if position < capped_until:
                money[new] = (0, 0, 1)
            else:
                money[new] = _reduced(
                    a * reach - rest_a * w * d, b_coef * reach - rest_b * w * d, d * reach
                )
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


class _Plan:
    """How a proposal would be paid: rest (A, B) over `scale`, the uncapped weight W', the
    scale, which supporter classes are capped, and the classes' columns (held, voters, A,
    B, d: each class's own money (A + B*b) / d). q = rest / (scale * W') is what an uncapped
    supporter pays per unit of weight, and money / w - q, multiplied by the positive
    d * w * scale * W', is (A + B*b) * scale * W' - rest * w * d."""

    __slots__ = ("capped", "columns", "rest_a", "rest_b", "scale", "weight_left")

    def __init__(
        self,
        rest_a: int,
        rest_b: int,
        weight_left: int,
        scale: int,
        capped: list[int],
        columns: tuple[dict[tuple[int, int], int], list[int], list[int], list[int], list[int]],
    ) -> None:
        self.rest_a, self.rest_b, self.weight_left, self.scale = rest_a, rest_b, weight_left, scale
        self.capped, self.columns = capped, columns

    def entries(self) -> list[tuple[int, int, int, int, int, int]]:
        """(class, weight, voters, A, B, d) per supporter class, the capped ones first (built
        only for the winner: most plans are priced and dropped)."""
        held, counts, a_s, b_s, d_s = self.columns
        classes, weights = map(itemgetter(0), held), map(itemgetter(1), held)
        rows = list(zip(classes, weights, counts, a_s, b_s, d_s, strict=True))
        if not self.capped:
            return rows
        shut = set(self.capped)
        return [rows[i] for i in self.capped] + [r for i, r in enumerate(rows) if i not in shut]


def _total(
    a_s: list[int], b_s: list[int], d_s: list[int], counts: list[int]
) -> tuple[int, int, int]:
    """sum(n * (A + B*b) / d) as (A, B) over the least common denominator, which is third."""
    denominators = set(d_s)
    common = math.lcm(*denominators)
    if len(denominators) == 1:
        return sum(map(mul, a_s, counts)), sum(map(mul, b_s, counts)), common
    factors = list(map({d: common // d for d in denominators}.__getitem__, d_s))
    return (
        sum(map(mul, map(mul, a_s, counts), factors)),
        sum(map(mul, map(mul, b_s, counts), factors)),
        common,
    )


def _reduced(a: int, b_coef: int, d: int) -> tuple[int, int, int]:
    """(A + B * b) / D in lowest terms (D > 0)."""
    common = math.gcd(a, b_coef, d)
    return (a // common, b_coef // common, d // common) if common > 1 else (a, b_coef, d)


# -- explanations and fairness ---------------------------------------------------------


# Why a proposal won or lost (see `Explanation`).
ExplanationOutcome = Literal["selected", "did_not_fit", "underfunded", "no_votes"]


@dataclass(frozen=True)
class Explanation:
    """Why a proposal won or lost under one rule (exact; rounded only for the reply).

    outcome: `selected`, `did_not_fit` (greedy: it had votes but not the budget left),
    `underfunded` (mes: its supporters' money did not cover it) or `no_votes`.
    """

    outcome: ExplanationOutcome
    budget_left_when_considered: int | None = None  # greedy
    round: int | None = None  # mes, selected: 1 for the first funded proposal
    price_per_support: Fraction | None = None  # mes, selected: rho
    supporters_paid_in_full: int | None = None  # mes, selected: paid rho * weight * cost
    supporters_paid_all_they_had: int | None = None  # mes, selected: money ran out
    supporters_money_left: Fraction | None = None  # mes, losing: at the end of the run
    shortfall: Fraction | None = None  # mes, losing: cost - supporters_money_left
    would_win_at_cost: int | None = None  # losing: highest whole cost >= 1 that wins


def explain_greedy(election: Election) -> tuple[Outcome, list[Explanation]]:
    """The greedy outcome and one explanation per proposal (index order).

    `would_win_at_cost` of a losing proposal p, all else equal: lowering p's cost only moves
    p earlier in the order (cost breaks vote ties), and the budget left along the walk only
    shrinks, so the costs at which p wins are exactly 1..c*. With the others walked in their
    own order (L_k = budget left before the k-th of them), p at cost c sits at position
    k(c) and wins iff c <= L_k(c); within each range of c that keeps the same position the
    best c is min(range end, L_k). Vote ties are the only positions c can move p between."""
    outcome = greedy(election)
    votes, costs, order = outcome.votes, election.costs, outcome.ranking
    chosen = set(outcome.selected)
    left_at: dict[int, int] = {}
    remaining = election.budget
    for i in order:
        left_at[i] = remaining
        if i in chosen:
            remaining -= costs[i]
    explanations = []
    for i in range(len(costs)):
        if i in chosen:
            explanations.append(Explanation("selected", budget_left_when_considered=left_at[i]))
        elif votes[i] == 0:
            explanations.append(Explanation("no_votes"))
        else:
            explanations.append(
                Explanation(
                    "did_not_fit",
                    budget_left_when_considered=left_at[i],
                    would_win_at_cost=_greedy_would_win(election.budget, costs, votes, order, i),
                )
            )
    return outcome, explanations


def _greedy_would_win(
    budget: int, costs: Sequence[int], votes: Sequence[int], order: Sequence[int], p: int
) -> int | None:
    others = [j for j in order if j != p]
    left = [budget]  # left[k]: budget left before others[k]
    for j in others:
        fits = votes[j] > 0 and costs[j] <= left[-1]
        left.append(left[-1] - costs[j] if fits else left[-1])
    ahead = sum(1 for j in others if votes[j] > votes[p])
    tied = [j for j in others if votes[j] == votes[p]]  # in (cost, index) order
    best: int | None = None
    for place in range(len(tied) + 1):
        # p sits after tied[:place] and before tied[place:]
        low = 1
        if place:
            before = tied[place - 1]
            low = max(low, costs[before] + (0 if before < p else 1))
        high = costs[p] - 1
        if place < len(tied):
            after = tied[place]
            high = min(high, costs[after] - (0 if p < after else 1))
        high = min(high, left[ahead + place])
        if high >= low and (best is None or high > best):
            best = high
    return best


def explain_mes(election: Election) -> tuple[Outcome, list[Explanation]]:
    """The `mes` outcome and one explanation per proposal, from a replay of the run at the
    final Add1 budget b (money per voter), as equalshares.net reports it.

    `would_win_at_cost` of a losing proposal p (at that b, all else equal): while p does not
    win, the run is the same as without the change, so p wins at cost c iff at some round
    r of the actual run p, with cost c, is affordable and beats that round's winner (rho,
    then cost, votes, index), or is affordable once the run has ended. p's rho is
    nondecreasing in c (payments are concave in rho * c), so within one round the winning
    costs are 1..c_r, found by bisection; the answer is the largest c_r. p's rho is at
    least 1 / (its total weight), and its supporters' money only shrinks, which rules out
    most rounds without looking."""
    outcome, b = _mes(election)
    explanations = [Explanation("no_votes") for _ in election.costs]
    if b is not None:
        _MesReplay(election, outcome, b).explain(explanations)
    return outcome, explanations


class _MesReplay:
    """The run at money b per voter, replayed round by round in exact integers: money is
    held per wallet class (voters who paid the same) as a reduced fraction, and a proposal's
    supporters are looked at over the least common denominator of their classes."""

    def __init__(self, election: Election, outcome: Outcome, b: Fraction) -> None:
        self.costs, self.votes, self.outcome = election.costs, outcome.votes, outcome
        self.supporters: list[list[tuple[int, int]]] = [[] for _ in self.costs]
        # per proposal and weight, every supporting voter's group (repeated per voter), so
        # that counting voters per wallet class runs in C (Counter over map)
        self.voters: list[dict[int, list[int]]] = [{} for _ in self.costs]
        for g, (ballot, count) in enumerate(election.ballots):
            for index, weight in ballot:
                self.supporters[index].append((g, weight))
                self.voters[index].setdefault(weight, []).extend([g] * count)
        self.total_weight = [sum(w * len(groups) for w, groups in v.items()) for v in self.voters]
        self.class_of = [0] * len(election.ballots)
        # class -> money as (numerator, denominator) in lowest terms
        self.money: dict[int, tuple[int, int]] = {0: (b.numerator, b.denominator)}
        self.next_class = 1

    def held(self, index: int) -> tuple[list[tuple[int, int, int]], int]:
        """(money * scale, weight, voters) of the proposal's supporters per wallet class and
        weight, in ascending money per weight (the first to run out first), and the scale:
        the least common denominator of their money."""
        money, class_of = self.money, self.class_of
        held = [
            (money[c], w, n)
            for w, groups in self.voters[index].items()
            for c, n in Counter(map(class_of.__getitem__, groups)).items()
        ]
        denominators = {d for (_, d), _, _ in held}
        scale = math.lcm(*denominators)
        factors = {d: scale // d for d in denominators}
        rows = [(m * factors[d], w, n) for (m, d), w, n in held]
        lcm = math.lcm(*(w for _, w, _ in rows)) if rows else 1
        rows.sort(key=lambda row: row[0] * (lcm // row[1]))
        return rows, scale

    def explain(self, explanations: list[Explanation]) -> None:
        costs, votes = self.costs, self.votes
        chosen = set(self.outcome.selected)
        losers = [i for i in range(len(costs)) if votes[i] > 0 and i not in chosen]
        best: dict[int, int] = {}
        ceiling = {p: costs[p] - 1 for p in losers}  # no c above it can win from here on
        for round_, winner in enumerate(self.outcome.selected, start=1):
            rows, scale = self.held(winner)
            rest, weight, capped = _payment(costs[winner] * scale, rows, self.total_weight[winner])
            # rho = q / cost with q = rest / weight (over the scale)
            rho = Fraction(rest, weight * scale * max(costs[winner], 1))
            paid_all = sum(n for _, _, n in rows[:capped])
            explanations[winner] = Explanation(
                "selected",
                round=round_,
                price_per_support=rho,
                supporters_paid_in_full=sum(n for _, _, n in rows) - paid_all,
                supporters_paid_all_they_had=paid_all,
            )
            key = (rho, costs[winner], -votes[winner], winner)
            for p in losers:
                if ceiling[p] <= best.get(p, 0) or rho * self.total_weight[p] < 1:
                    continue  # nothing better possible, or p's rho is above the winner's
                found, total = self._would_win(p, key, best.get(p, 0) + 1)
                ceiling[p] = min(ceiling[p], total)
                if found is not None:
                    best[p] = found
            self._pay(winner, rest, weight * scale)
        for p in losers:
            rows, scale = self.held(p)
            left = Fraction(sum(m * n for m, _, n in rows), scale)
            # Once the run has ended nothing else is affordable: p wins at any cost it can pay.
            at_end = min(costs[p] - 1, math.floor(left))
            if at_end >= 1 and at_end > best.get(p, 0):
                best[p] = at_end
            explanations[p] = Explanation(
                "underfunded",
                supporters_money_left=left,
                shortfall=costs[p] - left,
                would_win_at_cost=best.get(p),
            )

    def _would_win(
        self, p: int, key: tuple[Fraction, int, int, int], at_least: int
    ) -> tuple[int | None, int]:
        """The highest c >= at_least below p's cost at which p beats `key` (None if none),
        and the whole euros p's supporters hold.

        At cost c the supporters would pay P = sum(n * min(m, rho_w * w * c)) at the
        winner's rho_w; p's rho is below rho_w iff P > c, or P == c with every supporter
        capped; equal to it iff P == c otherwise (then the tie-break decides)."""
        rows, scale = self.held(p)
        rho, *tie = key
        a, bb = rho.numerator, rho.denominator
        money_total = sum(m * n for m, _, n in rows)
        prefix = [0]  # money of the first k rows
        for m, _, n in rows:
            prefix.append(prefix[-1] + m * n)
        suffix = [0]  # weight of the rows from k on, built backwards
        for _, w, n in reversed(rows):
            suffix.append(suffix[-1] + w * n)
        suffix.reverse()
        costs, votes = self.costs, self.votes

        def wins(c: int) -> bool:
            # capped rows: m / scale < rho * w * c, i.e. m * bb < a * w * c * scale
            low, high = 0, len(rows)
            while low < high:
                middle = (low + high) // 2
                m, w, _ = rows[middle]
                if m * bb < a * w * c * scale:
                    low = middle + 1
                else:
                    high = middle
            paid = bb * prefix[low] + a * c * scale * suffix[low]  # P * scale * bb
            due = c * scale * bb
            if paid != due:
                return paid > due
            if suffix[low] == 0:
                return True
            return (c, -votes[p], p) < tuple(tie)

        total = money_total // scale
        low, high = at_least, min(costs[p] - 1, total)
        if high < low or not wins(low):
            return None, total
        while low < high:  # wins(low) holds
            middle = (low + high + 1) // 2
            if wins(middle):
                low = middle
            else:
                high = middle - 1
        return low, total

    def _pay(self, winner: int, rest: int, denominator: int) -> None:
        """Every supporter pays min(money, q * w), q = rest / denominator, and moves to a new
        wallet class."""
        money = self.money
        moved: dict[tuple[int, int], int] = {}
        class_of = self.class_of
        for g, w in self.supporters[winner]:
            old = class_of[g]
            new = moved.get((old, w))
            if new is None:
                new = moved[(old, w)] = self.next_class
                self.next_class += 1
                # the denominator is a multiple of every supporter's (`held`)
                m, d = money[old]
                left = m * (denominator // d) - rest * w
                common = math.gcd(left, denominator)
                money[new] = (left // common, denominator // common) if left > 0 else (0, 1)
            class_of[g] = new


def _payment(cost: int, rows: Sequence[tuple[int, int, int]], weight: int) -> tuple[int, int, int]:
    """For rows sorted by money / w (money and cost over one scale): q = rest / weight with
    sum(n * min(money, q * w)) == cost, as (rest, weight), and how many rows are capped."""
    rest, capped = cost, 0
    for m, w, n in rows:
        if rest * w <= m * weight:  # m / w >= q: this row and the rest pay q * w
            break
        rest -= m * n
        weight -= w * n
        capped += 1
    return rest, max(weight, 1), capped


@dataclass(frozen=True)
class Fairness:
    """How the funded proposals spread over the ballots (vote-rules: fairness figures).

    histogram: ballots by how many of their chosen proposals are funded. A ballot's funded
    share is the cost of its funded choices over the cost of all its choices (by count when
    its choices cost nothing); ballots without choices have no share and are left out of
    the mean and the Gini coefficient."""

    histogram: dict[int, int]
    mean_funded_share: Fraction
    gini_funded_share: Fraction


def fairness(election: Election, selected: Iterable[int]) -> Fairness:
    chosen = set(selected)
    costs = election.costs
    kinds: Counter[tuple[int, int, int, int]] = Counter()
    for ballot, count in election.ballots:
        hits = [i for i, _ in ballot if i in chosen]
        kinds[
            (
                sum(costs[i] for i in hits),
                sum(costs[i] for i, _ in ballot),
                len(hits),
                len(ballot),
            )
        ] += count
    histogram: Counter[int] = Counter()
    shares: Counter[tuple[int, int]] = Counter()  # reduced (numerator, denominator)
    for (funded_cost, total_cost, funded, length), count in kinds.items():
        histogram[funded] += count
        if total_cost or length:
            num, den = (funded_cost, total_cost) if total_cost else (funded, length)
            common = math.gcd(num, den)
            shares[(num // common, den // common)] += count
    n = sum(shares.values())
    # Gini = sum over all pairs |x_i - x_j| / (2 n^2 mean) = D / (n * total), where
    # D = sum of x_j - x_i over the pairs i < j in sorted order = sum_k count_k * x_k *
    # (ballots below x_k - ballots above x_k). Summed per denominator, then as a tree of
    # unreduced fractions: adding thousands of unlike fractions one by one would reduce a
    # huge denominator at every step.
    spread: dict[int, int] = {}
    mass: dict[int, int] = {}
    below = 0
    for num, den in _ascending(shares):
        count = shares[(num, den)]
        above = n - below - count
        spread[den] = spread.get(den, 0) + num * count * (below - above)
        mass[den] = mass.get(den, 0) + num * count
        below += count
    differences, total = _sum_fractions(spread), _sum_fractions(mass)
    return Fairness(
        histogram={k: histogram.get(k, 0) for k in range(max(histogram, default=0) + 1)},
        mean_funded_share=Fraction(total[0], total[1] * n) if n else Fraction(0),
        gini_funded_share=(
            Fraction(differences[0] * total[1], differences[1] * total[0] * n)
            if total[0]
            else Fraction(0)
        ),
    )


def _ascending(values: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Distinct reduced fractions (num, den) in ascending order, exactly: by the correctly
    rounded float first (rounding is monotone, so a smaller float means a smaller value),
    and by cross-multiplying where floats tie."""
    by_float = sorted(values, key=lambda f: f[0] / f[1])
    ordered: list[tuple[int, int]] = []
    start = 0
    while start < len(by_float):
        end = start + 1
        key = by_float[start][0] / by_float[start][1]
        while end < len(by_float) and by_float[end][0] / by_float[end][1] == key:
            end += 1
        group = by_float[start:end]
        if len(group) > 1:
            group.sort(key=functools.cmp_to_key(_compare))
        ordered += group
        start = end
    return ordered


def _compare(a: tuple[int, int], b: tuple[int, int]) -> int:
    return a[0] * b[1] - b[0] * a[1]


def _sum_fractions(terms: dict[int, int]) -> tuple[int, int]:
    """sum(numerator / denominator) over {denominator: numerator}, unreduced, pairwise."""
    pairs = [(num, den) for den, num in terms.items()] or [(0, 1)]
    while len(pairs) > 1:
        paired = [
            (a * d + c * b, b * d) for (a, b), (c, d) in zip(pairs[::2], pairs[1::2], strict=False)
        ]
        if len(pairs) % 2:
            paired.append(pairs[-1])
        pairs = paired
    return pairs[0]


# The rules, by the name the API and the command line use.
RULES: dict[str, Rule] = {
    "greedy": Rule(
        "greedy",
        greedy,
        # A proposal with 0 votes is never selected, which plain pabulib `greedy` does not know.
        {"rule": "greedy-threshold", "min_project_score_threshold": "1"},
        explain_greedy,
    ),
    "mes": Rule("mes", mes, {"rule": "equalshares/add1"}, explain_mes),
}
