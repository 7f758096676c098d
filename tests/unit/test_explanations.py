"""Explanations and fairness figures: checked against brute force (re-run the rule with a
project's cost lowered) on generated elections, by hand, and on real elections."""

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import pabulib
from app.services.tally import (
    Election,
    _mes,
    equal_shares_run,
    explain_greedy,
    explain_mes,
    fairness,
    greedy,
)
from tests.pabulib_data import pabulib_files
from tests.reference_tally import equal_shares, reference_mes
from tests.unit.test_tally import approval, elections, larger_elections


def with_cost(election: Election, index: int, cost: int) -> Election:
    costs = list(election.costs)
    costs[index] = cost
    return replace(election, costs=tuple(costs))


def brute_greedy_would_win(election: Election, index: int) -> int | None:
    for cost in range(election.costs[index] - 1, 0, -1):
        if index in greedy(with_cost(election, index, cost)).selected:
            return cost
    return None


def reference_final_budget(election: Election) -> Fraction:
    """Add1 by the book, one unit per voter at a time: the total B' of the kept outcome."""
    votes = election.votes()
    n = election.voter_count
    voted = {i for i, v in enumerate(votes) if v > 0}
    best_total = Fraction(election.budget)
    best = equal_shares(election, votes, best_total)
    if voted <= set(best):
        return best_total
    k = 1
    while True:
        total = Fraction(election.budget // n * n + k * n)
        attempt = equal_shares(election, votes, total)
        if sum(election.costs[i] for i in attempt) > election.budget:
            return best_total
        best, best_total = attempt, total
        if voted <= set(best):
            return best_total
        k += 1


def brute_mes_would_win(election: Election, index: int, total: Fraction) -> int | None:
    votes = election.votes()
    for cost in range(election.costs[index] - 1, 0, -1):
        if index in equal_shares(with_cost(election, index, cost), votes, total):
            return cost
    return None


def reference_replay(
    election: Election, total: Fraction
) -> tuple[list[int], dict[int, tuple[Fraction, int, int]], list[Fraction]]:
    """The plain run at B' = total, recording each winner's rho and how many supporters paid
    in full or all they had, and every ballot group's money at the end."""
    votes = election.votes()
    n = election.voter_count
    money = [total / n for _ in election.ballots]
    selected = equal_shares(election, votes, total)
    paid: dict[int, tuple[Fraction, int, int]] = {}
    for winner in selected:
        group = [
            (g, w, count)
            for g, (ballot, count) in enumerate(election.ballots)
            for i, w in ballot
            if i == winner
        ]
        cost = election.costs[winner]
        # bisection on q over the exact breakpoints
        points = sorted({money[g] / w for g, w, _ in group})
        q = Fraction(0)
        for point in [*points, None]:
            capped = [(g, w, c) for g, w, c in group if point is None or money[g] / w < point]
            free = sum(w * c for g, w, c in group if (g, w, c) not in capped)
            have = sum(money[g] * c for g, _, c in capped)
            if free and (point is None or have + point * free >= cost):
                q = (Fraction(cost) - have) / free
                break
        full = sum(c for g, w, c in group if money[g] >= q * w)
        paid[winner] = (q / cost, full, sum(c for _, _, c in group) - full)
        for g, w, _ in group:
            money[g] -= min(money[g], q * w)
    return selected, paid, money


def check_greedy(election: Election) -> None:
    outcome, explanations = explain_greedy(election)
    votes = election.votes()
    left = election.budget
    for i in outcome.ranking:
        e = explanations[i]
        if i in outcome.selected:
            assert (e.outcome, e.budget_left_when_considered) == ("selected", left)
            left -= election.costs[i]
        elif votes[i] == 0:
            assert (e.outcome, e.would_win_at_cost) == ("no_votes", None)
        else:
            assert e.outcome == "did_not_fit"
            assert e.budget_left_when_considered == left < election.costs[i]
            assert e.would_win_at_cost == brute_greedy_would_win(election, i)


def check_mes(election: Election) -> None:
    outcome, explanations = explain_mes(election)
    assert outcome.selected == reference_mes(election)
    votes = election.votes()
    if election.voter_count == 0:
        assert all(e.outcome == "no_votes" for e in explanations)
        return
    total = reference_final_budget(election)
    selected, paid, money = reference_replay(election, total)
    assert selected == outcome.selected
    for i, e in enumerate(explanations):
        if i in selected:
            rho, full, all_they_had = paid[i]
            assert e.outcome == "selected"
            assert e.round == selected.index(i) + 1
            assert e.price_per_support == rho
            assert (e.supporters_paid_in_full, e.supporters_paid_all_they_had) == (
                full,
                all_they_had,
            )
        elif votes[i] == 0:
            assert (e.outcome, e.would_win_at_cost) == ("no_votes", None)
        else:
            left = sum(
                money[g] * count
                for g, (ballot, count) in enumerate(election.ballots)
                if any(j == i for j, _ in ballot)
            )
            assert e.outcome == "underfunded"
            assert e.supporters_money_left == left
            assert e.shortfall == election.costs[i] - left > 0
            assert e.would_win_at_cost == brute_mes_would_win(election, i, total)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections(weighted=True, max_projects=7))
def test_greedy_explanations_match_brute_force(election: Election) -> None:
    check_greedy(election)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections(weighted=False))
def test_mes_explanations_match_brute_force_on_approval_ballots(election: Election) -> None:
    check_mes(election)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections(weighted=True))
def test_mes_explanations_match_brute_force_on_cumulative_ballots(election: Election) -> None:
    check_mes(election)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(larger_elections())
def test_mes_explanations_match_brute_force_with_many_add1_rounds(election: Election) -> None:
    check_mes(election)


def test_greedy_by_hand() -> None:
    # votes 3, 2, 2, 0; order 0, 2, 1, 3; budget 10: 0 (6) and 2 (4) fit, 1 (5) does not.
    election = approval(10, [6, 5, 4, 1], [[0, 1], [0, 1], [0, 2], [2]])
    _, e = explain_greedy(election)
    assert (e[0].outcome, e[0].budget_left_when_considered) == ("selected", 10)
    assert (e[2].outcome, e[2].budget_left_when_considered) == ("selected", 4)
    # At cost 4 project 1 ties project 2 on votes and cost and the lower index goes first:
    # it takes the 4 left after project 0, and project 2 no longer fits.
    assert (e[1].outcome, e[1].budget_left_when_considered, e[1].would_win_at_cost) == (
        "did_not_fit",
        0,
        4,
    )
    assert (e[3].outcome, e[3].would_win_at_cost) == ("no_votes", None)


def test_greedy_would_win_at_exactly_the_cost_of_a_tie() -> None:
    # C (1) has 3 votes; A (5) and B (8) have 2. Budget 11: C, A, then 5 left for B. At
    # cost 5 B ties A and goes after it (A's id is lower): 5 left, so it fits at exactly 5.
    election = Election.build(11, [5, 8, 1], [[(0, 1), (1, 1), (2, 1)]] * 2 + [[(2, 1)]])
    _, e = explain_greedy(election)
    assert (e[1].outcome, e[1].budget_left_when_considered) == ("did_not_fit", 5)
    assert e[1].would_win_at_cost == 5 == brute_greedy_would_win(election, 1)


@st.composite
def tight_elections(draw: st.DrawFn) -> Election:
    """Small costs and budgets, so ties of cost and budgets left that equal a cost abound."""
    count = draw(st.integers(2, 6))
    costs = draw(st.lists(st.integers(1, 6), min_size=count, max_size=count))
    ballot = st.lists(st.integers(0, count - 1), unique=True, max_size=count)
    ballots = draw(st.lists(ballot, max_size=10))
    return Election.build(draw(st.integers(1, 20)), costs, ([(i, 1) for i in b] for b in ballots))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight_elections())
def test_greedy_explanations_match_brute_force_on_tight_elections(election: Election) -> None:
    check_greedy(election)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight_elections())
def test_mes_explanations_match_brute_force_on_tight_elections(election: Election) -> None:
    check_mes(election)


def test_mes_by_hand() -> None:
    # 6 voters want 0..2, 4 want 3 and 4; every project costs 3; budget 9. Add1 ends at 1 per
    # voter (at 2 it overspends): the A-voters buy 0 (rho 1/6: each pays 1/2 of 3), then 1;
    # the B-voters buy 3 (rho 1/4: each pays 3/4). Project 4's four voters keep 1/4 each.
    election = approval(9, [3] * 5, [[0, 1, 2]] * 6 + [[3, 4]] * 4)
    outcome, e = explain_mes(election)
    assert outcome.selected == [0, 1, 3]
    assert (e[0].round, e[0].price_per_support, e[0].supporters_paid_in_full) == (
        1,
        Fraction(1, 6),
        6,
    )
    assert (e[3].round, e[3].price_per_support, e[3].supporters_paid_all_they_had) == (
        3,
        Fraction(1, 4),
        0,
    )
    assert (e[4].outcome, e[4].supporters_money_left, e[4].shortfall) == (
        "underfunded",
        Fraction(1),
        Fraction(2),
    )
    # At cost 2 project 4 ties project 3 on rho in round 3 and goes first as the cheaper;
    # at 3 the tie goes to the lower index.
    assert e[4].would_win_at_cost == 2
    # Project 2: the A-voters have nothing left after round 2, and in rounds 1 and 2 it
    # would have beaten 0 or 1 only by being cheaper at the same rho: at 2 it wins.
    assert e[2].would_win_at_cost == 2


def test_fairness_by_hand() -> None:
    # costs 6, 5, 4, 1; selected 0 and 2. Ballots: [0,1] share 6/11, [0,1] 6/11, [0,2] 1,
    # [2] 1, [] no share.
    election = approval(10, [6, 5, 4, 1], [[0, 1], [0, 1], [0, 2], [2], []])
    figures = fairness(election, [0, 2])
    assert figures.histogram == {0: 1, 1: 3, 2: 1}
    shares = [Fraction(6, 11), Fraction(6, 11), Fraction(1), Fraction(1)]
    mean = sum(shares, Fraction(0)) / 4
    assert figures.mean_funded_share == mean
    pairs = sum(abs(a - b) for a in shares for b in shares)
    assert figures.gini_funded_share == pairs / (2 * 4 * 4 * mean)
    assert fairness(approval(10, [1], []), []).histogram == {0: 0}
    assert fairness(approval(10, [1], [[0]] * 3), [0]).gini_funded_share == 0


@settings(max_examples=100, deadline=None)
@given(elections(weighted=True))
def test_fairness_matches_the_definition(election: Election) -> None:
    selected = greedy(election).selected
    figures = fairness(election, selected)
    shares = []
    for ballot, count in election.ballots:
        total = sum(election.costs[i] for i, _ in ballot)
        funded = sum(election.costs[i] for i, _ in ballot if i in selected)
        hits = sum(1 for i, _ in ballot if i in selected)
        if total:
            shares += [Fraction(funded, total)] * count
        elif ballot:
            shares += [Fraction(hits, len(ballot))] * count
    assert sum(figures.histogram.values()) == election.voter_count
    if shares:
        mean = sum(shares, Fraction(0)) / len(shares)
        assert figures.mean_funded_share == mean
        expected = (
            sum(abs(a - b) for a in shares for b in shares) / (2 * len(shares) ** 2 * mean)
            if mean
            else 0
        )
        assert figures.gini_funded_share == expected


# -- real elections ---------------------------------------------------------------------


def real(stem: str) -> tuple[pabulib.PabulibElection, Election]:
    election = pabulib.read(next(p for p in pabulib_files() if p.stem == stem))
    return election, election.election()


@pytest.mark.parametrize(
    "stem",
    ["Poland_Wieliczka_2023_Green_Budget", "Netherlands_Assen_2024", "Poland_Swiecie_2023"],
)
def test_mes_explanations_of_real_elections(stem: str) -> None:
    file, election = real(stem)
    outcome, explanations = explain_mes(election)
    ids = [p.project_id for p in file.projects]
    official = file.official_selection()
    assert official is not None
    assert sorted(ids[i] for i, e in enumerate(explanations) if e.outcome == "selected") == sorted(
        official
    )
    assert sorted(e.round for e in explanations if e.round) == list(
        range(1, len(outcome.selected) + 1)
    )
    # The final Add1 budget b: one unit more per voter overspends, and the run at b is
    # the official outcome.
    _, b = _mes(election)
    assert b is not None
    assert equal_shares_run(election, b) == outcome.selected
    # Spot checks of would_win_at_cost by re-running at b: wins at it, loses one euro above.
    losers = [i for i, e in enumerate(explanations) if e.outcome == "underfunded"]
    for i in losers[:3]:
        c = explanations[i].would_win_at_cost
        assert c is not None
        assert c < election.costs[i]
        assert i in equal_shares_run(with_cost(election, i, c), b)
        assert i not in equal_shares_run(with_cost(election, i, c + 1), b)


def test_greedy_explanations_of_a_real_election() -> None:
    _, election = real("Netherlands_Assen_2024")
    outcome, explanations = explain_greedy(election)
    assert outcome.selected == greedy(election).selected
    for i, e in enumerate(explanations):
        if e.outcome == "did_not_fit":
            assert e.would_win_at_cost == brute_greedy_would_win_fast(election, i)


def brute_greedy_would_win_fast(election: Election, index: int) -> int | None:
    """The brute force by bisection: greedy wins are monotone in the cost (checked against
    the plain brute force on generated elections above)."""
    low, high = 1, election.costs[index] - 1
    if high < low or index not in greedy(with_cost(election, index, low)).selected:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if index in greedy(with_cost(election, index, middle)).selected:
            low = middle
        else:
            high = middle - 1
    return low


def test_shares_sort_exactly_where_floats_tie() -> None:
    from app.services.tally import _ascending

    # Distinct values that one float cannot tell apart, and ordinary ones.
    near = [(10**15, 10**15 + 1), (10**15 + 1, 10**15 + 2), (10**16, 10**16 + 1)]
    values = [*near, (1, 3), (0, 1), (1, 1), (2, 7)]
    assert float(Fraction(*near[0])) == float(Fraction(*near[1]))
    assert _ascending(values) == sorted(values, key=lambda f: Fraction(*f))
