"""The tally: official outcomes of real elections, hand-made cases, and properties checked
against a plain reference implementation on many generated elections."""

from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import pabulib
from app.services.tally import Election, greedy, mes
from tests.pabulib_data import pabulib_files
from tests.reference_tally import reference_mes

OFFICIAL_RULES = {
    "greedy": "greedy",
    "equalshares/add1": "mes",
    "equalshares/add1-comparison": "mes",
}


def conformance_cases() -> list[tuple[str, str]]:
    """Files whose rule is one of ours and that mark the official winners."""
    cases = []
    for path in pabulib_files():
        text = path.read_text(encoding="utf-8-sig")
        projects_header = text[text.index("PROJECTS") :].splitlines()[1]
        marked = "selected" in projects_header.split(";")
        for rule, ours in OFFICIAL_RULES.items():
            if marked and f"\nrule;{rule}\n" in text:
                cases.append((path.name, ours))
    return cases


@pytest.mark.parametrize(("name", "rule"), conformance_cases())
def test_real_elections_reproduce_their_official_winners(name: str, rule: str) -> None:
    election = pabulib.read(next(p for p in pabulib_files() if p.name == name))
    official = election.official_selection()
    assert official is not None
    outcome = (mes if rule == "mes" else greedy)(election.election())
    ids = [p.project_id for p in election.projects]
    assert sorted(ids[i] for i in outcome.selected) == sorted(official)


def test_conformance_covers_the_famous_ones() -> None:
    names = {name for name, _ in conformance_cases()}
    assert {
        "Poland_Wieliczka_2023_Green_Budget.pb",
        "Poland_Swiecie_2023.pb",
        "Netherlands_Assen_2024.pb",
    } <= names


def test_wieliczka_gives_its_official_thirty() -> None:
    election = pabulib.read(next(p for p in pabulib_files() if "Wieliczka" in p.name))
    outcome = mes(election.election())
    assert len(outcome.selected) == 30
    assert outcome.spent <= election.budget


def approval(budget: int, costs: list[int], ballots: list[list[int]]) -> Election:
    return Election.build(budget, costs, ([(i, 1) for i in b] for b in ballots))


def test_greedy_skips_what_does_not_fit_and_never_funds_zero_votes() -> None:
    election = approval(10, [6, 5, 4, 1], [[0, 1], [0, 1], [0, 2], [2]])
    outcome = greedy(election)
    # votes: 3, 2, 2, 0 -> order 0, 2 (cheaper of the tie), 1, 3; 0 and 2 fit
    assert outcome.ranking == [0, 2, 1, 3]
    assert outcome.selected == [0, 2]
    assert outcome.spent == 10
    assert greedy(approval(100, [1], [[]])).selected == []


def test_greedy_ties_go_to_the_cheaper_then_the_lower_index() -> None:
    election = approval(5, [3, 3, 2], [[0], [1], [2]])
    assert greedy(election).ranking == [2, 0, 1]
    assert greedy(election).selected == [2, 0]


def test_mes_is_proportional_where_greedy_is_not() -> None:
    # 6 voters want A0..A2, 4 voters want B3, B4; every project costs 3; budget 9.
    # Greedy gives the majority everything. Equal shares: at 0.9 each, the A-voters buy A0
    # and the B-voters B3; Add1 at 1.0 each adds A1; at 2.0 each it would overspend.
    ballots = [[0, 1, 2]] * 6 + [[3, 4]] * 4
    election = approval(9, [3, 3, 3, 3, 3], ballots)
    assert greedy(election).selected == [0, 1, 2]
    assert mes(election).selected == [0, 1, 3]
    assert mes(election).selected == reference_mes(election)


def test_mes_with_no_ballots_funds_nothing() -> None:
    assert mes(approval(100, [10, 20], [])).selected == []


def test_mes_stops_add1_once_every_voted_project_is_funded() -> None:
    election = approval(100, [10, 20, 30], [[0], [1], [0, 1]])
    outcome = mes(election)
    assert sorted(outcome.selected) == [0, 1]
    assert outcome.ranking[-1] == 2


def test_a_project_above_the_budget_ends_add1_once_affordable() -> None:
    # At 10/6 and 2 per voter nothing is affordable; at 3 per voter project 0 (cost 11) is,
    # which overspends, so Add1 keeps the last outcome: nothing. Project 1's lone voter
    # would have needed 4 per voter.
    election = approval(10, [11, 4], [[0]] * 5 + [[1]])
    assert mes(election).selected == []
    assert reference_mes(election) == []
    cheaper = approval(10, [11, 4], [[0]] * 5 + [[1]] * 3)
    assert mes(cheaper).selected == [1]


# -- generated elections ---------------------------------------------------------------


@st.composite
def elections(draw: st.DrawFn, weighted: bool = False, max_projects: int = 6) -> Election:
    count = draw(st.integers(1, max_projects))
    costs = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count))
    budget = draw(st.integers(1, 150))
    weight = st.integers(1, 4) if weighted else st.just(1)
    ballot = st.lists(
        st.tuples(st.integers(0, count - 1), weight), max_size=count, unique_by=lambda t: t[0]
    )
    ballots = draw(st.lists(ballot, max_size=25))
    return Election.build(budget, costs, ballots)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections(weighted=False))
def test_fast_mes_equals_the_reference_on_approval_ballots(election: Election) -> None:
    assert mes(election).selected == reference_mes(election)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections(weighted=True))
def test_fast_mes_equals_the_reference_on_cumulative_ballots(election: Election) -> None:
    assert mes(election).selected == reference_mes(election)


@settings(max_examples=200, deadline=None)
@given(elections(weighted=True))
def test_never_over_budget_and_greedy_leaves_nothing_affordable(election: Election) -> None:
    votes = election.votes()
    for outcome in (greedy(election), mes(election)):
        assert outcome.spent == sum(election.costs[i] for i in outcome.selected) <= election.budget
        assert len(set(outcome.selected)) == len(outcome.selected)
        assert all(votes[i] > 0 for i in outcome.selected)
        assert sorted(outcome.ranking) == list(range(len(election.costs)))
    left = election.budget - greedy(election).spent
    unfunded = set(range(len(election.costs))) - set(greedy(election).selected)
    assert not [i for i in unfunded if votes[i] > 0 and election.costs[i] <= left]


@settings(max_examples=150, deadline=None)
@given(elections(weighted=True), st.randoms(use_true_random=False))
def test_outcomes_do_not_depend_on_ballot_or_proposal_order(
    election: Election, random: object
) -> None:
    import random as random_module

    assert isinstance(random, random_module.Random)
    ballots = [ballot for ballot, count in election.ballots for _ in range(count)]
    random.shuffle(ballots)
    reshuffled = Election.build(election.budget, election.costs, ballots)
    assert mes(reshuffled).selected == mes(election).selected
    assert greedy(reshuffled).selected == greedy(election).selected
    # Proposals in another order: the same proposals win, as long as no tie needs the id.
    if len(set(election.costs)) == len(election.costs):
        order = list(range(len(election.costs)))
        random.shuffle(order)
        position = {old: new for new, old in enumerate(order)}
        moved = Election.build(
            election.budget,
            [election.costs[old] for old in order],
            ([(position[i], w) for i, w in ballot] for ballot in ballots),
        )
        for rule in (greedy, mes):
            assert sorted(order[i] for i in rule(moved).selected) == sorted(rule(election).selected)


def test_pairs_of_identical_voters_split_costs_evenly() -> None:
    # Two voters, two projects each liked by one of them: each voter pays their own.
    for a, b in combinations([1, 2, 3], 2):
        election = approval(a + b, [a, b], [[0], [1]])
        assert sorted(mes(election).selected) == [0, 1]


@st.composite
def larger_elections(draw: st.DrawFn) -> Election:
    count = draw(st.integers(2, 8))
    costs = draw(st.lists(st.integers(1, 400), min_size=count, max_size=count))
    budget = draw(st.integers(50, 800))
    ballot = st.lists(
        st.tuples(st.integers(0, count - 1), st.integers(1, 3)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    )
    distinct = draw(st.lists(ballot, min_size=1, max_size=12))
    multiplicity = draw(st.lists(st.integers(1, 9), min_size=len(distinct), max_size=len(distinct)))
    ballots = [b for b, m in zip(distinct, multiplicity, strict=True) for _ in range(m)]
    return Election.build(budget, costs, ballots)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(larger_elections())
def test_fast_mes_equals_the_reference_with_many_add1_rounds(election: Election) -> None:
    assert mes(election).selected == reference_mes(election)
