"""Pure helpers of the debate graph: canonical answers, majority vote, embedding agreement."""

from __future__ import annotations

import math

import pytest

from nodes.debating import (
    canonical_answer,
    cosine_similarity,
    mean_pairwise_similarity,
    tally_votes,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Yes. ", "yes"), ("PARIS", "paris"), ("new   york", "new york"), ("４２", "42")],
)
def test_canonical_answer_removes_only_trivial_differences(raw: str, expected: str) -> None:
    assert canonical_answer(raw) == expected


def test_canonical_answer_keeps_real_differences_apart() -> None:
    assert canonical_answer("yes") != canonical_answer("yes, but")
    assert canonical_answer("3.5") == "3.5"


def test_majority_vote_counts_and_agreement() -> None:
    tally = tally_votes(["No.", "yes", "no", "NO"])
    assert tally.counts == {"no": 3, "yes": 1}
    assert tally.winners == ("no",)
    assert tally.agreement == 0.75
    assert tally.tie is False


def test_tie_lists_every_top_answer_in_first_seen_order() -> None:
    tally = tally_votes(["b", "a", "a", "b", "c"])
    assert tally.winners == ("b", "a")
    assert tally.tie is True
    assert tally.agreement == pytest.approx(0.4)


def test_unanimous_vote_has_full_agreement() -> None:
    assert tally_votes(["x", "x"]).agreement == 1.0


def test_empty_vote_is_refused() -> None:
    with pytest.raises(ValueError, match="expected at least one answer, got 0"):
        tally_votes([])


def test_cosine_similarity() -> None:
    assert cosine_similarity([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine_similarity([1, 1], [1, 0]) == pytest.approx(1 / math.sqrt(2))
    assert cosine_similarity([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert cosine_similarity([0, 0], [1, 0]) == 0.0


def test_cosine_similarity_rejects_mismatched_dimensions() -> None:
    with pytest.raises(ValueError, match="expected 2, got 3"):
        cosine_similarity([1, 0], [1, 0, 0])


def test_mean_pairwise_similarity_averages_all_pairs() -> None:
    # pairs: (a,b)=1, (a,c)=0, (b,c)=0
    assert mean_pairwise_similarity([[1, 0], [2, 0], [0, 3]]) == pytest.approx(1 / 3)
    assert mean_pairwise_similarity([[1, 0]]) == 1.0
