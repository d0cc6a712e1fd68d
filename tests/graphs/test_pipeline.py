"""Pipeline: structure, the research pipeline's happy path, a stage validation failure kept in
the checkpoint then resumed from that stage (earlier stages not repeated), review interrupts
(approve, edit, retry, stop), and the ETL example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from examples.etl_pipeline import build_etl_pipeline
from graphs.pipeline import build_graph, build_pipeline, resume_pipeline
from nodes.context import Context
from nodes.pipelines import StageContext, StageSpec

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("pipeline.mmd")

NOTES = AIMessage("Notes: X is 42 (source: the manual).")
GOOD_ANALYSIS = {"json": {"findings": ["X is 42."], "gaps": []}}
EMPTY_ANALYSIS = {"json": {"findings": [], "gaps": ["everything"]}}
REPORT = {"json": {"title": "About X", "body": "X is 42."}}
APPROVED = {"json": {"approved": True, "issues": []}}
REJECTED = {"json": {"approved": False, "issues": ["No source cited."]}}


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def user_text(call: list[Any]) -> str:
    return next(m.content for m in reversed(call) if isinstance(m, HumanMessage))


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_research_pipeline_runs_every_stage_in_order(scripted_model: Any) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS, REPORT, APPROVED)
    result = await build_graph(model=model).ainvoke({"task": "What is X?"})

    assert result["success"] is True
    assert result["error"] is None
    assert result["failed_stage"] is None
    assert result["final_answer"] == "# About X\n\nX is 42."
    assert result["completed_stages"] == ["research", "analyse", "write", "review"]
    assert result["stage_outputs"]["research"]["notes"] == NOTES.content
    assert result["stage_outputs"]["analyse"] == {"findings": ["X is 42."], "gaps": []}
    assert len(model.calls) == 4
    assert result["usage"]["scripted"]["calls"] == 4
    # Each stage got what the one before produced.
    assert "What is X?" in user_text(model.calls[0])
    assert NOTES.content in user_text(model.calls[1])
    assert "- X is 42." in user_text(model.calls[2])
    assert "# About X" in user_text(model.calls[3])


async def test_research_stage_uses_tools_through_the_react_sub_agent(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage("", tool_calls=[{"name": "calculate", "args": {"expression": "6*7"}, "id": "a"}]),
        AIMessage("Notes: 6*7 is 42."),
        GOOD_ANALYSIS,
        REPORT,
        APPROVED,
    )
    result = await build_graph(model=model).ainvoke({"task": "6*7?"})

    assert result["success"] is True
    assert [(r["tool"], r["ok"]) for r in result["tool_results"]] == [("calculate", True)]
    assert isinstance(model.calls[1][-1], ToolMessage)
    assert len(model.calls) == 5


async def test_invalid_stage_output_stops_there_and_resumes_from_that_stage(
    scripted_model: Any,
) -> None:
    model = scripted_model(NOTES, EMPTY_ANALYSIS, GOOD_ANALYSIS, REPORT, APPROVED)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("p1")

    first = await graph.ainvoke({"task": "What is X?"}, config)

    assert first["success"] is False
    assert first["failed_stage"] == "analyse"
    assert "stage 'analyse' produced an invalid output" in first["error"]
    assert "'findings' must not be empty" in first["error"]
    assert first["rejected_output"] == {"findings": [], "gaps": ["everything"]}
    assert first["completed_stages"] == ["research"]
    saved = (await graph.aget_state(config)).values
    assert saved["failed_stage"] == "analyse"
    assert saved["stage_outputs"] == {"research": first["stage_outputs"]["research"]}
    assert len(model.calls) == 2

    # The human fixes the failed stage's input and resumes: the documented two-step recipe.
    fixed = {"task": "What is X?", "notes": "Corrected notes: X is 42."}
    await graph.aupdate_state(config, {"stage_inputs": {"analyse": fixed}, "failed_stage": None})
    resumed = await graph.ainvoke(None, config)

    assert resumed["success"] is True
    assert resumed["failed_stage"] is None
    assert resumed["completed_stages"] == ["research", "analyse", "write", "review"]
    # research's model call was not repeated: 2 before + analyse, write, review.
    assert len(model.calls) == 5
    assert "Corrected notes" in user_text(model.calls[2])
    assert resumed["usage"]["scripted"]["calls"] == 5


async def test_resume_pipeline_helper_reruns_only_the_failed_stage(scripted_model: Any) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS, REPORT, REJECTED, APPROVED)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("p2")

    first = await graph.ainvoke({"task": "What is X?"}, config)
    assert first["failed_stage"] == "review"
    assert "No source cited." in first["error"]
    assert len(model.calls) == 4

    fixed_report = {"title": "About X", "body": "X is 42 (the manual)."}
    result = await resume_pipeline(
        graph, config, updates={"stage_outputs": {**first["stage_outputs"], "write": fixed_report}}
    )

    assert result["success"] is True
    assert result["final_answer"] == "# About X\n\nX is 42 (the manual)."
    assert len(model.calls) == 5
    assert "(the manual)" in user_text(model.calls[4])


async def test_resume_without_a_failure_is_refused(scripted_model: Any) -> None:
    graph = build_graph(
        model=scripted_model(NOTES, GOOD_ANALYSIS, REPORT, APPROVED), checkpointer=InMemorySaver()
    )
    await graph.ainvoke({"task": "t"}, thread("p3"))
    with pytest.raises(ValueError, match="has no failed stage"):
        await resume_pipeline(graph, thread("p3"))


async def test_review_interrupt_edit_is_used_by_the_next_stage(scripted_model: Any) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS, REPORT, APPROVED)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("r1")
    review = Context(pipeline_review_after=("analyse",))

    paused = await graph.ainvoke({"task": "What is X?"}, config, context=review)

    request = paused["__interrupt__"][0].value
    assert request["stage"] == "analyse"
    assert request["output"] == {"findings": ["X is 42."], "gaps": []}
    assert len(model.calls) == 2
    edited = {"findings": ["X is 42, per the manual."], "gaps": []}
    result = await graph.ainvoke(
        Command(resume={"action": "edit", "output": edited}), config, context=review
    )

    assert result["success"] is True
    assert result["stage_outputs"]["analyse"] == edited
    assert "per the manual" in user_text(model.calls[2])
    assert len(model.calls) == 4  # the review itself costs no model call


async def test_review_retry_reruns_the_stage_and_stop_ends_the_run(scripted_model: Any) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS, GOOD_ANALYSIS)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("r2")
    review = Context(pipeline_review_after=("*",))

    await graph.ainvoke({"task": "What is X?"}, config, context=review)  # paused after research
    await graph.ainvoke(Command(resume="approve"), config, context=review)  # after analyse
    retry = {"action": "retry", "input": {"task": "What is X?", "notes": "Notes v2"}}
    paused = await graph.ainvoke(Command(resume=retry), config, context=review)

    assert paused["__interrupt__"][0].value["stage"] == "analyse"
    assert "Notes v2" in user_text(model.calls[2])
    result = await graph.ainvoke(
        Command(resume={"action": "stop", "reason": "enough"}), config, context=review
    )
    assert result["success"] is False
    assert result["error"] == "stopped by the reviewer after stage 'analyse': enough"
    assert len(model.calls) == 3


async def test_invalid_edit_fails_the_stage(scripted_model: Any) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("r3")
    review = Context(pipeline_review_after=("analyse",))
    await graph.ainvoke({"task": "t"}, config, context=review)

    result = await graph.ainvoke(
        Command(resume={"action": "edit", "output": {"gaps": []}}), config, context=review
    )
    assert result["failed_stage"] == "analyse"
    assert "reviewer's edit" in result["error"] and "findings" in result["error"]


async def test_a_fresh_request_on_the_same_thread_starts_over(scripted_model: Any) -> None:
    model = scripted_model(NOTES, EMPTY_ANALYSIS, NOTES, GOOD_ANALYSIS, REPORT, APPROVED)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("f1")
    await graph.ainvoke({"task": "t"}, config)
    result = await graph.ainvoke({"task": "t again"}, config)
    assert result["success"] is True
    assert len(model.calls) == 6


async def test_subgraph_and_function_stages_in_a_custom_pipeline() -> None:
    inner = build_pipeline(
        [StageSpec("double", _double, input_transform=lambda v: int(v.data["n"]))], name="inner"
    )
    outer = build_pipeline(
        [
            StageSpec("nested", inner, input_transform=lambda v: {"task": v.task, "data": v.data}),
            StageSpec("describe", _describe),
        ],
        name="outer",
    )
    result = await outer.ainvoke({"task": "t", "data": {"n": 21}})
    assert result["final_answer"] == "42"
    assert result["stage_outputs"]["nested"]["stage_outputs"] == {"double": 42}


async def _double(n: int, stage: StageContext) -> int:
    return n * 2


async def _describe(nested: dict[str, Any], stage: StageContext) -> str:
    return str(nested["stage_outputs"]["double"])


CSV = """id,name,email,company
c1,Ada,ada@example.com,Engines Ltd
c2,Bob,bob-at-example.com,
"""
SEGMENTS = {
    "json": {
        "items": [
            {"id": "c1", "segment": "enterprise", "reason": "company"},
            {"id": "c2", "segment": "consumer", "reason": "no company"},
        ]
    }
}


async def test_etl_example_stops_at_validate_then_loads_after_the_fix(
    scripted_model: Any,
) -> None:
    model = scripted_model(SEGMENTS)
    store = InMemoryStore()
    graph = build_etl_pipeline(model=model, checkpointer=InMemorySaver(), store=store)
    config = thread("etl")

    first = await graph.ainvoke({"task": "import", "data": {"csv": CSV}}, config)

    assert first["failed_stage"] == "validate"
    assert "email 'bob-at-example.com' has no '@'" in first["error"]
    assert len(model.calls) == 0
    records = first["rejected_output"]["records"]
    fixed = [{**r, "email": "bob@example.com"} if r["id"] == "c2" else r for r in records]

    result = await resume_pipeline(graph, config, stage_inputs={"validate": {"records": fixed}})

    assert result["success"] is True
    assert result["completed_stages"] == ["extract", "validate", "enrich", "load"]
    assert result["final_answer"] == (
        "Loaded 2 customer records into etl/customers (consumer: 1, enterprise: 1)."
    )
    assert len(model.calls) == 1
    saved = await store.aget(("etl", "customers"), "c2")
    assert saved is not None and saved.value["segment"] == "consumer"
    assert saved.value["email"] == "bob@example.com"


async def test_a_budget_stops_before_a_stage_and_a_larger_budget_resumes_there(
    scripted_model: Any,
) -> None:
    model = scripted_model(NOTES, GOOD_ANALYSIS, REPORT, APPROVED)
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("budget")

    first = await graph.ainvoke({"task": "What is X?"}, config, context=Context(max_model_calls=2))
    assert first["failed_stage"] == "write"
    assert first["error"] == "max_model_calls (2) reached: 2 used before stage 'write'"
    assert first["completed_stages"] == ["research", "analyse"]
    assert first["metrics"]["stopped_by"] == "max_model_calls"
    assert first["metrics"]["iterations"] == 2
    assert len(model.calls) == 2

    resumed = await resume_pipeline(graph, config, context=Context(max_model_calls=10))
    assert resumed["success"] is True
    assert resumed["completed_stages"] == ["research", "analyse", "write", "review"]
    assert len(model.calls) == 4  # the finished stages were not repeated
    assert resumed["metrics"]["model_calls"] == 4  # one run, resumed: its whole spend
