"""Pure helpers of the tree-of-thoughts graph: tree merge, beam selection, paths."""

from __future__ import annotations

import pytest

from nodes.thoughts import (
    ThoughtNode,
    best_node,
    child_id,
    level,
    merge_tree_nodes,
    path_to,
    select_beam,
)


def node(node_id: str, score: float | None = None, thought: str = "") -> ThoughtNode:
    parent = node_id.rsplit(".", 1)[0] if "." in node_id else None
    return ThoughtNode(
        id=node_id,
        parent=parent,
        thought=thought or f"t{node_id}",
        depth=node_id.count("."),
        score=score,
        kept=False,
    )


def test_child_ids_extend_the_parent_id() -> None:
    assert child_id("0", 0) == "0.1"
    assert child_id("0.3", 1) == "0.3.2"


def test_merge_replaces_by_id_and_keeps_order() -> None:
    current = [node("0"), node("0.1"), node("0.2")]
    merged = merge_tree_nodes(current, [node("0.2", 7.0), node("0.3", 1.0)])
    assert [n["id"] for n in merged] == ["0", "0.1", "0.2", "0.3"]
    assert merged[2]["score"] == 7.0
    assert current[2]["score"] is None  # inputs are not mutated


def test_beam_keeps_highest_scores_ties_by_id_unscored_last() -> None:
    candidates = [node("0.1", 5), node("0.2", 9), node("0.10", 5), node("0.3"), node("0.4", 5)]
    assert [n["id"] for n in select_beam(candidates, 3)] == ["0.2", "0.1", "0.4"]
    assert [n["id"] for n in select_beam(candidates, 10)][-1] == "0.3"
    assert best_node(candidates) == candidates[1]
    assert best_node([]) is None


def test_beam_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="got 0"):
        select_beam([node("0.1", 1)], 0)


def test_level_sorts_numerically() -> None:
    tree = [node("0"), node("0.10"), node("0.2"), node("0.2.1")]
    assert [n["id"] for n in level(tree, 1)] == ["0.2", "0.10"]


def test_path_runs_from_first_thought_to_the_node() -> None:
    tree = [node("0"), node("0.2", thought="a"), node("0.2.1", thought="b")]
    assert [n["thought"] for n in path_to(tree, "0.2.1")] == ["a", "b"]
    assert path_to(tree, "0") == []
    with pytest.raises(KeyError, match="'0.5.1' is not in the search tree"):
        path_to(tree, "0.5.1")
