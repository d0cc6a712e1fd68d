"""Critic-refine: structure, first-draft pass, critique below threshold then success, giving up
with the best draft, context and argument settings, model roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.refine import build_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("refine.mmd")


def critique(*scores: int, suggestions: list[str] | None = None) -> dict[str, Any]:
    correctness, completeness, clarity, efficiency = scores
    return {
        "json": {
            "correctness": correctness,
            "completeness": completeness,
            "clarity": clarity,
            "efficiency": efficiency,
            "suggestions": suggestions or [],
        }
    }


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_first_draft_good_enough_costs_two_calls(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("Draft one."), critique(5, 4, 4, 4))
    result = await build_graph(model=model).ainvoke({"task": "Say hi."})

    assert result["success"] is True
    assert result["error"] is None
    assert result["final_answer"] == "Draft one."
    assert result["best_score"] == 4.25
    assert result["iterations"] == 1
    assert len(model.calls) == 2
    assert result["usage"]["scripted"]["calls"] == 2


async def test_critique_below_threshold_then_refined_draft_passes(scripted_model: Any) -> None:
    writer = scripted_model(AIMessage("The sky is blue."), AIMessage("Rayleigh scattering."))
    critic = scripted_model(
        critique(2, 2, 4, 4, suggestions=["Name the mechanism."]), critique(5, 4, 5, 4)
    )
    result = await build_graph(model={"agent": writer, "critic": critic}).ainvoke(
        {"task": "Why is the sky blue?"}
    )

    assert result["success"] is True
    assert result["final_answer"] == "Rayleigh scattering."
    assert [d["average"] for d in result["drafts"]] == [3.0, 4.5]
    assert result["drafts"][0]["scores"] == {
        "correctness": 2,
        "completeness": 2,
        "clarity": 4,
        "efficiency": 4,
    }
    # Exactly write, critique, refine, critique: the critic role made the two critiques.
    assert len(writer.calls) == 2 and len(critic.calls) == 2
    refine_prompt = writer.calls[1][-1]
    assert isinstance(refine_prompt, HumanMessage)
    assert "The sky is blue." in refine_prompt.content
    assert "Name the mechanism." in refine_prompt.content
    assert "correctness=2" in refine_prompt.content
    assert "Rayleigh scattering." in critic.calls[1][-1].content


async def test_max_iterations_returns_best_draft_without_success(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage("v1"),
        critique(3, 3, 3, 3),
        AIMessage("v2"),
        critique(4, 4, 3, 3),
        AIMessage("v3"),
        critique(2, 3, 3, 2),
    )
    result = await build_graph(model=model).ainvoke({"task": "t"})

    assert result["success"] is False
    assert result["final_answer"] == "v2"  # the best, not the last
    assert result["best_score"] == 3.5
    assert "threshold 4.0 not reached after 3 draft(s)" in result["error"]
    assert "iteration 2" in result["error"]
    assert len(model.calls) == 6
    assert result["iterations"] == 3


async def test_context_settings_change_threshold_and_limit(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("v1"), critique(3, 3, 3, 3))
    result = await build_graph(model=model).ainvoke(
        {"task": "t"}, context=Context(refine_threshold=3.0)
    )
    assert result["success"] is True and len(model.calls) == 2

    model = scripted_model(AIMessage("v1"), critique(1, 1, 1, 1))
    result = await build_graph(model=model).ainvoke(
        {"task": "t"}, context=Context(refine_max_iterations=1)
    )
    assert result["success"] is False and len(model.calls) == 2


async def test_build_graph_arguments_win_over_context(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("v1"), critique(3, 3, 3, 3), AIMessage("v2"))
    graph = build_graph(model=model, threshold=5.0, max_iterations=1)
    result = await graph.ainvoke({"task": "t"}, context=Context(refine_max_iterations=3))
    assert result["success"] is False
    assert len(model.calls) == 2  # max_iterations=1 from build_graph, not 3 from the context


async def test_out_of_range_score_is_re_asked_once(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("v1"), critique(9, 4, 4, 4), critique(5, 4, 4, 4))
    result = await build_graph(model=model).ainvoke({"task": "t"})
    assert result["success"] is True
    assert len(model.calls) == 3
    assert "Critique" in model.calls[2][-1].content  # the schema-retry prompt


async def test_runs_on_a_thread_with_checkpointer(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("v1"), critique(5, 5, 5, 5))
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "r1"}}
    await graph.ainvoke({"task": "t"}, config)
    state = await graph.aget_state(config)
    assert state.next == ()
    assert state.values["drafts"][0]["average"] == 5.0


async def test_a_call_budget_ends_the_loop_with_the_best_draft_so_far(
    scripted_model: Any,
) -> None:
    model = scripted_model(
        AIMessage("Draft one."),
        critique(3, 3, 3, 3, suggestions=["More detail."]),
        AIMessage("Draft two."),
    )
    result = await build_graph(model=model).ainvoke(
        {"task": "Explain tides."}, context=Context(max_model_calls=3)
    )

    assert len(model.calls) == 3  # write, critique, refine; the second critique is not made
    assert result["success"] is False
    assert result["error"].startswith("max_model_calls (3) reached: 3 used; returning the best")
    assert result["final_answer"] == "Draft one."  # the only scored draft
    assert result["metrics"]["stopped_by"] == "max_model_calls"
    assert result["metrics"]["iterations"] == 2
