"""A plain Method of Equal Shares, for differential tests of the fast one in app/services/tally.

Deliberately straightforward: every voter group holds its own `Fraction` of money, and every
round re-prices every open proposal from scratch. Slow, and easy to check by reading.
"""

from collections.abc import Sequence
from fractions import Fraction

from app.services.tally import Election, greedy_order


def reference_mes(election: Election) -> list[int]:
    """The `mes` selection with Add1, by the book."""
    votes = election.votes()
    n = election.voter_count
    if n == 0:
        return []
    voted = {i for i, v in enumerate(votes) if v > 0}
    best = equal_shares(election, votes, Fraction(election.budget))
    if voted <= set(best):
        return best
    base = election.budget // n * n
    k = 1
    while True:
        attempt = equal_shares(election, votes, Fraction(base + k * n))
        if sum(election.costs[i] for i in attempt) > election.budget:
            return best
        best = attempt
        if voted <= set(best):
            return best
        k += 1


def equal_shares(election: Election, votes: Sequence[int], total: Fraction) -> list[int]:
    costs = election.costs
    n = election.voter_count
    money = [total / n for _ in election.ballots]
    open_ = {i for i in range(len(costs)) if votes[i] > 0}
    selected: list[int] = []
    while True:
        best_key = None
        best_q = Fraction(0)
        for index in sorted(open_):
            group = [
                (g, weight, count)
                for g, (ballot, count) in enumerate(election.ballots)
                for i, weight in ballot
                if i == index
            ]
            if sum(money[g] * count for g, _, count in group) < costs[index]:
                continue
            q = _solve(costs[index], [(money[g], weight, count) for g, weight, count in group])
            rho = q / costs[index] if costs[index] else Fraction(0)
            key = (rho, costs[index], -votes[index], index)
            if best_key is None or key < best_key:
                best_key, best_q = key, q
        if best_key is None:
            return selected
        winner = best_key[3]
        for g, (ballot, _count) in enumerate(election.ballots):
            for i, weight in ballot:
                if i == winner:
                    money[g] -= min(money[g], best_q * weight)
        open_.discard(winner)
        selected.append(winner)


def _solve(cost: int, holders: list[tuple[Fraction, int, int]]) -> Fraction:
    """The q with sum(count * min(money, q * weight)) == cost, by bisection on the caps."""
    holders = sorted(holders, key=lambda h: h[0] / h[1])
    remaining = Fraction(cost)
    weight_left = sum(w * c for _, w, c in holders)
    for money, weight, count in holders:
        if remaining <= money / weight * weight_left:
            break
        remaining -= money * count
        weight_left -= weight * count
    return remaining / weight_left if weight_left else Fraction(0)


__all__ = ["greedy_order", "reference_mes"]
