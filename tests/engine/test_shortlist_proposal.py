"""The auction-lot proposal: greedy best-answer coverage with an industry balance."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from matcher.shortlist import Proposal, ProposedLot, coverage_value, propose, rank_weight

SAME = "智能制造"


def _ids(proposal: Proposal) -> list[int]:
    return [lot.result_id for lot in proposal.lots]


def _covered(needs_of: dict[int, dict[int, int]], chosen: list[int]) -> int:
    return len({need for result in chosen for need in needs_of.get(result, {})})


def test_rank_weight_decays_from_one() -> None:
    assert rank_weight(1) == 1.0
    assert rank_weight(2) == pytest.approx(1 / math.log2(3))
    assert rank_weight(10) < rank_weight(3) < rank_weight(2)
    with pytest.raises(ValueError):
        rank_weight(0)


def test_covers_more_needs_than_top_n_by_individual_count() -> None:
    needs_of = {
        1: {101: 1, 102: 1, 103: 1, 104: 1},  # answers most needs
        2: {101: 1, 102: 1, 103: 1},  # second most, but all of them already answered by 1
        3: {105: 1, 106: 1},
        4: {107: 1},
    }
    industry_of = dict.fromkeys(needs_of, SAME)
    top_by_count = sorted(needs_of, key=lambda r: -len(needs_of[r]))[:2]
    assert top_by_count == [1, 2] and _covered(needs_of, top_by_count) == 4

    proposal = propose(needs_of, industry_of, 2, balance=0)
    assert _ids(proposal) == [1, 3]
    assert proposal.needs_covered == 6 > _covered(needs_of, top_by_count)
    first, second = proposal.lots
    assert first == ProposedLot(1, (101, 102, 103, 104), (), 4.0, 4.0, SAME)
    assert second.new_needs == (105, 106) and second.gain == pytest.approx(2.0)
    assert proposal.industries == ((SAME, 2),)
    assert proposal.needs_available == 7 and proposal.needs_newly_covered == 6


def test_a_better_answer_to_an_answered_need_adds_only_the_improvement() -> None:
    needs_of = {1: {10: 3, 11: 1}, 2: {10: 1}, 3: {12: 4}}
    proposal = propose(needs_of, {}, 3, balance=0)
    assert _ids(proposal) == [1, 2, 3]
    improved = proposal.lots[1]
    assert improved.new_needs == () and improved.improved_needs == (10,)
    assert improved.gain == pytest.approx(rank_weight(1) - rank_weight(3))
    assert proposal.value == pytest.approx(coverage_value(needs_of, [1, 2, 3]))


def test_balance_spreads_lots_across_industries() -> None:
    needs_of = {
        1: {101: 1, 102: 1, 103: 1},
        2: {104: 1, 105: 1, 106: 1},
        3: {107: 1, 108: 1},
    }
    industry_of = {1: SAME, 2: SAME, 3: "生物医药"}
    assert _ids(propose(needs_of, industry_of, 2, balance=0)) == [1, 2]
    balanced = propose(needs_of, industry_of, 2, balance=1)
    assert _ids(balanced) == [1, 3]
    assert balanced.industries == ((SAME, 1), ("生物医药", 1))
    # The score shows the penalty; the gain is what the lot adds.
    assert balanced.lots[1].score == balanced.lots[1].gain == pytest.approx(2.0)
    assert propose(needs_of, industry_of, 3, balance=1).lots[2].score == pytest.approx(1.5)


def test_lots_already_on_the_list_cover_their_needs_and_count_for_balance() -> None:
    needs_of = {
        1: {101: 1, 102: 1, 103: 1},
        2: {101: 1, 102: 1, 104: 1},
        3: {105: 1, 106: 1},
    }
    industry_of = {1: SAME, 2: SAME, 3: "生物医药"}
    proposal = propose(needs_of, industry_of, 5, exclude={1}, balance=0)
    assert 1 not in _ids(proposal)
    assert _ids(proposal) == [3, 2]
    assert proposal.lots[1].new_needs == (104,)
    assert proposal.needs_already_covered == 3 and proposal.needs_covered == 6
    # Equal gains: without balance the smaller id wins; with it, the listed lot 1 counts
    # against 2, which shares its industry.
    tie = {1: {101: 1}, 2: {102: 1}, 3: {103: 1}}
    assert _ids(propose(tie, industry_of, 1, exclude={1}, balance=0)) == [2]
    assert _ids(propose(tie, industry_of, 1, exclude={1}, balance=0.5)) == [3]


def test_n_larger_than_the_candidates_stops_when_nothing_is_added() -> None:
    needs_of = {5: {1: 1}, 6: {1: 2}, 7: {2: 1}, 8: {}}
    proposal = propose(needs_of, {}, 50)
    # 6 answers need 1 worse than 5 does, and 8 answers nothing: neither adds anything.
    assert _ids(proposal) == [5, 7]
    assert proposal.needs_covered == 2


def test_empty_input_and_zero_n() -> None:
    empty = propose({}, {}, 10)
    assert empty.lots == () and empty.needs_covered == 0 and empty.value == 0
    assert empty.industries == ()
    assert propose({1: {1: 1}}, {}, 0).lots == ()
    assert propose({1: {1: 1}}, {}, 3, exclude={1}).lots == ()
    with pytest.raises(ValueError):
        propose({}, {}, -1)
    with pytest.raises(ValueError):
        propose({}, {}, 1, balance=-0.5)


def test_ties_go_to_the_smaller_id_whatever_the_input_order() -> None:
    needs_of = {9: {1: 2, 2: 3}, 4: {3: 3, 4: 2}, 7: {5: 2, 6: 3}}
    assert _ids(propose(needs_of, {}, 3)) == [4, 7, 9]
    reordered = dict(reversed(list(needs_of.items())))
    assert _ids(propose(reordered, {}, 3)) == [4, 7, 9]


def _naive_greedy(needs_of: dict[int, dict[int, int]], industry_of: dict[int, str | None],
                  n: int, balance: float) -> list[int]:
    """The textbook greedy, every candidate re-scored at every step."""
    chosen: list[int] = []
    for _ in range(n):
        best_id, best_score = None, 0.0
        base = coverage_value(needs_of, chosen)
        for result_id in sorted(needs_of):
            if result_id in chosen:
                continue
            gain = coverage_value(needs_of, [*chosen, result_id]) - base
            same = sum(industry_of[c] == industry_of[result_id] for c in chosen)
            score = round(gain / (1 + balance * same), 9)
            if score > best_score:
                best_id, best_score = result_id, score
        if best_id is None:
            break
        chosen.append(best_id)
    return chosen


def _random_case(rng: random.Random, equal_ranks: bool
                 ) -> tuple[dict[int, dict[int, int]], dict[int, str | None]]:
    needs = list(range(100, 100 + rng.randint(3, 14)))
    needs_of = {}
    for result_id in range(1, rng.randint(2, 9)):
        answered = rng.sample(needs, rng.randint(0, min(6, len(needs))))
        needs_of[result_id] = {need: 1 if equal_ranks else rng.randint(1, 10)
                               for need in answered}
    industry_of = {r: rng.choice([SAME, "生物医药", None]) for r in needs_of}
    return needs_of, industry_of


@pytest.mark.parametrize("equal_ranks", [True, False], ids=["coverage", "weighted"])
def test_greedy_is_within_one_minus_one_over_e_of_brute_force(equal_ranks: bool) -> None:
    rng = random.Random(20240601 + equal_ranks)
    bound = 1 - 1 / math.e
    for _ in range(200):
        needs_of, industry_of = _random_case(rng, equal_ranks)
        n = rng.randint(1, 4)
        proposal = propose(needs_of, industry_of, n, balance=0)
        greedy = coverage_value(needs_of, _ids(proposal))
        best = max(coverage_value(needs_of, subset)
                   for size in range(min(n, len(needs_of)) + 1)
                   for subset in itertools.combinations(needs_of, size))
        assert greedy >= bound * best - 1e-9
        assert proposal.value == pytest.approx(greedy)
        if equal_ranks:  # with equal ranks the value is the number of needs covered
            assert proposal.needs_covered == _covered(needs_of, _ids(proposal)) == greedy


def test_lazy_evaluation_picks_what_the_textbook_greedy_picks() -> None:
    rng = random.Random(7)
    for _ in range(200):
        needs_of, industry_of = _random_case(rng, equal_ranks=rng.random() < 0.5)
        n = rng.randint(1, 6)
        balance = rng.choice([0, 0.5, 1, 3])
        expected = _naive_greedy(needs_of, industry_of, n, balance)
        assert _ids(propose(needs_of, industry_of, n, balance=balance)) == expected
