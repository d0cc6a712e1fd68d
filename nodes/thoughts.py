"""Pure helpers of the tree-of-thoughts graph: the search tree, beam selection and paths.

The model proposes and scores thoughts; these functions only keep the tree and apply the
documented beam rule: at each depth keep the `beam_width` highest-scoring thoughts (ties broken
by id, i.e. proposal order), and stop early once a thought scores at least the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NotRequired

from typing_extensions import TypedDict

__all__ = [
    "ROOT_ID",
    "ThoughtNode",
    "best_node",
    "child_id",
    "level",
    "merge_tree_nodes",
    "path_to",
    "select_beam",
]

ROOT_ID = "0"


class ThoughtNode(TypedDict):
    """One node of the search tree (the root holds the problem, not a thought)."""

    id: str
    """`0` for the root; children append `.i` (`0.2.1` is the 1st child of the 2nd child)."""
    parent: str | None
    thought: str
    depth: int
    score: float | None
    """The model's value judgment, 0-10; None until evaluated."""
    kept: bool
    """True when the thought survived beam selection (the root is always kept)."""
    reason: NotRequired[str | None]
    """Why the model gave that score."""


def child_id(parent_id: str, index: int) -> str:
    """Id of the `index`-th (0-based) child of `parent_id`."""
    return f"{parent_id}.{index + 1}"


def merge_tree_nodes(
    current: list[ThoughtNode] | None, update: list[ThoughtNode] | None
) -> list[ThoughtNode]:
    """Reducer: add new nodes, replace nodes whose id is already present (keeping order)."""
    merged = {node["id"]: node for node in current or []}
    for node in update or []:
        merged[node["id"]] = {**merged.get(node["id"], {}), **node}  # type: ignore[typeddict-item]
    return list(merged.values())


def level(tree: Sequence[ThoughtNode], depth: int) -> list[ThoughtNode]:
    """Nodes at `depth`, in id order."""
    return sorted((n for n in tree if n["depth"] == depth), key=lambda n: _id_key(n["id"]))


def select_beam(candidates: Sequence[ThoughtNode], beam_width: int) -> list[ThoughtNode]:
    """The `beam_width` best-scoring candidates; unscored ones rank last, ties by id.

    Raises:
        ValueError: when `beam_width` is below 1.
    """
    if beam_width < 1:
        raise ValueError(f"beam width must be >= 1, got {beam_width!r}")
    ranked = sorted(
        candidates,
        key=lambda n: (
            -(n["score"] if n["score"] is not None else float("-inf")),
            _id_key(n["id"]),
        ),
    )
    return ranked[:beam_width]


def best_node(candidates: Sequence[ThoughtNode]) -> ThoughtNode | None:
    """The highest-scoring candidate (ties by id), or None when there are none."""
    beam = select_beam(candidates, 1) if candidates else []
    return beam[0] if beam else None


def path_to(tree: Sequence[ThoughtNode], node_id: str) -> list[ThoughtNode]:
    """Nodes from the first thought below the root down to `node_id` (the root excluded).

    Raises:
        KeyError: naming the missing id when the tree does not contain the path.
    """
    by_id = {n["id"]: n for n in tree}
    path: list[ThoughtNode] = []
    current: str | None = node_id
    while current is not None and current != ROOT_ID:
        if current not in by_id:
            raise KeyError(f"node {current!r} is not in the search tree")
        node = by_id[current]
        path.append(node)
        current = node["parent"]
    return list(reversed(path))


def _id_key(node_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in node_id.split("."))
