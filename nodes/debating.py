"""Pure helpers of the debate and consensus graph: vote counting and agreement measures.

Nothing here calls a model. The model states each debater's answer and its short normalised form
(a structured field); these functions only compare what the models said, with documented
deterministic algorithms: canonicalising normalised answers, majority vote with an agreement
score, and mean pairwise cosine similarity of embeddings.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "VoteTally",
    "canonical_answer",
    "cosine_similarity",
    "mean_pairwise_similarity",
    "tally_votes",
]


def canonical_answer(normalized_answer: str) -> str:
    """Canonical key of a model-normalised answer, so trivial spelling differences vote together.

    The model already reduced its answer to a short normalised form; this only removes what no
    model should be trusted to keep consistent: Unicode form, case, surrounding whitespace,
    inner runs of whitespace and trailing sentence punctuation. `" Yes. "` and `"yes"` vote
    together; `"yes"` and `"yes, but"` do not.
    """
    text = unicodedata.normalize("NFKC", normalized_answer).casefold()
    text = " ".join(text.split())
    return text.rstrip(".!?;:,").strip()


@dataclass(frozen=True)
class VoteTally:
    """Outcome of a majority vote.

    Attributes:
        counts: Votes per canonical answer, most votes first (ties in first-seen order).
        winners: Canonical answers with the most votes; more than one means a tie.
        agreement: Share of voters behind the (first) winner, 0-1.
    """

    counts: dict[str, int]
    winners: tuple[str, ...]
    agreement: float

    @property
    def tie(self) -> bool:
        """True when several answers share the most votes."""
        return len(self.winners) > 1


def tally_votes(normalized_answers: Sequence[str]) -> VoteTally:
    """Majority vote over normalised answers (see `canonical_answer`).

    Raises:
        ValueError: when there are no answers to count.
    """
    if not normalized_answers:
        raise ValueError("cannot tally an empty vote: expected at least one answer, got 0")
    keys = [canonical_answer(answer) for answer in normalized_answers]
    counter = Counter(keys)
    # Counter.most_common keeps first-seen order among equal counts, which makes ties stable.
    counts = dict(counter.most_common())
    top = max(counts.values())
    winners = tuple(key for key, count in counts.items() if count == top)
    return VoteTally(counts=counts, winners=winners, agreement=top / len(keys))


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors; 0.0 when either has zero length.

    Raises:
        ValueError: when the vectors have different dimensions.
    """
    if len(a) != len(b):
        raise ValueError(f"vectors differ in dimension: expected {len(a)}, got {len(b)}")
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm


def mean_pairwise_similarity(vectors: Sequence[Sequence[float]]) -> float:
    """Mean cosine similarity over all unordered pairs; 1.0 for fewer than two vectors."""
    pairs = list(itertools.combinations(vectors, 2))
    if not pairs:
        return 1.0
    return sum(cosine_similarity(a, b) for a, b in pairs) / len(pairs)
