"""Tree of thoughts: structure, exact call counts, pruning, threshold early stop, the tree."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from graphs.tot import SearchSettingsError, build_graph
from nodes.context import Context
from nodes.offline import ScriptedChatModel

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("tot.mmd")
PROBLEM = "Use 4, 6 and 9 once each with + - * / to make 30."
SMALL = Context(tot_candidates=3, tot_beam_width=2, tot_max_depth=2, tot_score_threshold=9.5)

SCORES = {"A": 7, "B": 3, "C": 6, "A1": 5, "A2": 8, "A3": 2, "C1": 4, "C2": 6, "C3": 1}


def proposals(parent_path: str, thoughts: list[str]) -> dict[str, Any]:
    return {
        "name": f"expand {parent_path}",
        "match": {"schema": "ThoughtProposals", "user": parent_path},
        "replies": [{"json": {"thoughts": thoughts}}],
    }


def score_rule(thought: str, score: float) -> dict[str, Any]:
    return {
        "name": f"score {thought}",
        "match": {"schema": "ThoughtValue", "user": f"<candidate>\n{thought}\n</candidate>"},
        "replies": [{"json": {"score": score, "reason": f"{thought} looks {score}/10"}}],
    }


SOLUTION = {
    "match": {"schema": "Solution"},
    "replies": [{"json": {"answer": "6 * (9 - 4) = 30", "explanation": "follow A then A2"}}],
}

# No default reply: expanding a pruned node (B) or scoring an unknown thought fails the run.
SCRIPT = {
    "name": "tot-test",
    "rules": [
        proposals(r"\(no steps yet\)", ["A", "B", "C"]),
        proposals(r"(?m)^Step 1: A$", ["A1", "A2", "A3"]),
        proposals(r"(?m)^Step 1: C$", ["C1", "C2", "C3"]),
        *(score_rule(t, s) for t, s in SCORES.items()),
        SOLUTION,
    ],
}


def schema_counts(model: ScriptedChatModel) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in model.requests:
        name = request["tools"][0]["function"]["name"]
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_search_keeps_the_best_b_and_solves_from_the_best_path(scripted_model: Any) -> None:
    model = scripted_model(script=SCRIPT)
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM}, context=SMALL)

    # (k+1)·(1 + b·(d−1)) + 1 = 4·3 + 1
    assert len(model.calls) == 13
    assert schema_counts(model) == {"ThoughtProposals": 3, "ThoughtValue": 9, "Solution": 1}
    assert result["usage"]["scripted"]["calls"] == 13
    assert result["final_answer"] == "6 * (9 - 4) = 30"
    assert result["success"] is True and result["error"] is None
    assert result["best_path"] == ["A", "A2"]
    assert result["best_score"] == 8
    assert result["stop_reason"] == "max_depth"
    assert result["depth_reached"] == 2
    solve_prompt = str(model.calls[-1][-1].content)
    assert "Step 1: A\nStep 2: A2" in solve_prompt


async def test_search_tree_is_in_state_with_scores_and_pruning(scripted_model: Any) -> None:
    model = scripted_model(script=SCRIPT)
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM}, context=SMALL)

    tree = {n["id"]: n for n in result["tree"]}
    assert tree["0"]["thought"] == PROBLEM and tree["0"]["parent"] is None
    assert len(tree) == 1 + 3 + 6  # B (pruned) has no children
    assert {i for i, n in tree.items() if n["kept"]} == {"0", "0.1", "0.3", "0.1.2", "0.3.2"}
    assert tree["0.2"]["thought"] == "B" and tree["0.2"]["kept"] is False
    assert tree["0.1.2"] == {
        "id": "0.1.2",
        "parent": "0.1",
        "thought": "A2",
        "depth": 2,
        "score": 8,
        "kept": True,
        "reason": "A2 looks 8/10",
    }
    assert not [n for n in tree.values() if n["parent"] == "0.2"]
    expanded = [str(c[-1].content) for c in model.calls if "Propose" in str(c[-1].content)]
    assert not any("Step 1: B" in prompt for prompt in expanded)


async def test_a_thought_over_the_threshold_stops_the_search(scripted_model: Any) -> None:
    model = scripted_model(script=SCRIPT)
    ctx = Context(tot_candidates=3, tot_beam_width=2, tot_max_depth=2, tot_score_threshold=7.0)
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM}, context=ctx)

    # One expansion, three scores, the solution: depth 2 never runs.
    assert len(model.calls) == 1 + 3 + 1
    assert result["stop_reason"] == "threshold"
    assert result["depth_reached"] == 1
    assert result["best_path"] == ["A"]
    assert max(n["depth"] for n in result["tree"]) == 1


async def test_default_settings_cost_31_calls(scripted_model: Any) -> None:
    script = {
        "rules": [
            {
                "match": {"schema": "ThoughtProposals"},
                "replies": [{"json": {"thoughts": [f"idea {i}" for i in range(1, 7)]}}],
            },
            {
                "match": {"schema": "ThoughtValue"},
                "replies": [{"json": {"score": 5, "reason": "plausible"}}],
            },
            SOLUTION,
        ]
    }
    model = scripted_model(script=script)
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM})

    # k=5, b=2, d=3: (5+1)·(1 + 2·2) + 1; the sixth proposed idea is dropped (k caps it).
    assert len(model.calls) == 31
    assert len(result["tree"]) == 1 + 5 + 10 + 10
    assert result["stop_reason"] == "max_depth"
    assert result["best_path"] == ["idea 1", "idea 1", "idea 1"]


async def test_candidates_of_a_level_are_scored_concurrently() -> None:
    barrier = asyncio.Barrier(3)

    class RendezvousModel(ScriptedChatModel):
        async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> Any:
            if "<candidate>" in str(messages[-1].content) and "(no steps yet)" in str(
                messages[-1].content
            ):
                # Scored one after another, the first would wait here until the timeout.
                await asyncio.wait_for(barrier.wait(), timeout=5)
            return await super()._agenerate(messages, *args, **kw)

    model = RendezvousModel(script=SCRIPT)
    ctx = Context(tot_candidates=3, tot_beam_width=1, tot_max_depth=1)
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM}, context=ctx)
    assert result["best_path"] == ["A"]


async def test_invalid_search_settings_are_refused(scripted_model: Any) -> None:
    with pytest.raises(SearchSettingsError, match="tot_beam_width must be >= 1, got 0"):
        await build_graph(model=scripted_model("unused")).ainvoke(
            {"problem": PROBLEM}, context=Context(tot_beam_width=0)
        )


async def test_a_level_that_does_not_fit_the_budget_is_skipped_and_the_best_path_solved(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=SCRIPT)
    ctx = Context(
        tot_candidates=3,
        tot_beam_width=2,
        tot_max_depth=2,
        tot_score_threshold=9.5,
        max_model_calls=10,
    )
    result = await build_graph(model=model).ainvoke({"problem": PROBLEM}, context=ctx)

    # Level 1 costs 1 + 3; level 2 would cost 2·(1 + 3) more, plus solving: 13 > 10.
    assert schema_counts(model) == {"ThoughtProposals": 1, "ThoughtValue": 3, "Solution": 1}
    assert result["stop_reason"] == "budget"
    assert result["best_path"] == ["A"]
    assert result["final_answer"] == "6 * (9 - 4) = 30"
    assert result["success"] is False
    assert result["error"] == (
        "max_model_calls (10) reached: 4 used, 9 more needed; solved along the best path so far"
    )
    assert result["metrics"]["model_calls"] == 5
