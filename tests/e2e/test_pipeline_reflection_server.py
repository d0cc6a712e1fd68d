"""Pipeline, critic-refine and Reflexion through a real `langgraph dev` server (langgraph_sdk)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk import get_client

from nodes.critique import LESSON_AGENT

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PIPELINE_SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": {"system": "research stage"}, "replies": ["Notes: X is 42."]},
        {
            "match": {"schema": "Analysis", "user": "Corrected notes"},
            "replies": [{"json": {"findings": ["X is 42."], "gaps": []}}],
        },
        {"match": {"schema": "Analysis"}, "replies": [{"json": {"findings": [], "gaps": []}}]},
        {"match": {"schema": "Report"}, "replies": [{"json": {"title": "X", "body": "X is 42."}}]},
        {"match": {"schema": "ReportReview"}, "replies": [{"json": {"approved": True}}]},
    ]
}

REFINE_SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": {"system": "Produce the best answer"}, "replies": ["draft one"]},
        {"match": {"system": "revising your draft"}, "replies": ["draft two"]},
        {
            "match": {"schema": "Critique", "user": "draft two"},
            "replies": [
                {"json": {"correctness": 5, "completeness": 4, "clarity": 4, "efficiency": 4}}
            ],
        },
        {
            "match": {"schema": "Critique"},
            "replies": [
                {
                    "json": {
                        "correctness": 2,
                        "completeness": 3,
                        "clarity": 3,
                        "efficiency": 3,
                        "suggestions": ["Be precise."],
                    }
                }
            ],
        },
    ]
}

LESSON = "Apply every operation in the expression before answering."
REFLEXION_SCRIPT: dict[str, Any] = {
    "rules": [
        {
            "match": {"system": "agent solving a task", "user": "<reflections>"},
            "replies": ["The answer is 396."],
        },
        {"match": {"system": "agent solving a task"}, "replies": ["The answer is 391."]},
        {
            "match": {"schema": "Evaluation", "user": "answer is 396"},
            "replies": [{"json": {"passed": True, "feedback": "correct"}}],
        },
        {
            "match": {"schema": "Evaluation"},
            "replies": [{"json": {"passed": False, "feedback": "forgot the + 5"}}],
        },
        {
            "match": {"schema": "Reflection"},
            "replies": [{"json": {"diagnosis": "stopped early", "lesson": LESSON}}],
        },
    ]
}


def _load(llm_server: Any, script: dict[str, Any]) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(script)
    llm_server.requests.clear()


async def test_graphs_are_served(dev_server: str) -> None:
    assistants = await get_client(url=dev_server).assistants.search(limit=100)
    assert {"pipeline", "refine", "reflexion"} <= {a["graph_id"] for a in assistants}


async def test_pipeline_fails_at_a_stage_and_resumes_after_update_state(
    dev_server: str, llm_server: Any
) -> None:
    _load(llm_server, PIPELINE_SCRIPT)
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    tid = thread["thread_id"]

    failed = await client.runs.wait(tid, "pipeline", input={"task": "What is X?"})

    assert failed["success"] is False
    assert failed["failed_stage"] == "analyse"
    assert failed["stage_outputs"]["research"]["notes"] == "Notes: X is 42."
    assert len(llm_server.requests) == 2

    fixed = {"task": "What is X?", "notes": "Corrected notes: X is 42."}
    await client.threads.update_state(
        tid, {"stage_inputs": {"analyse": fixed}, "failed_stage": None}
    )
    resumed = await client.runs.wait(tid, "pipeline", input=None)

    assert resumed["success"] is True, resumed.get("error")
    assert resumed["final_answer"] == "# X\n\nX is 42."
    assert resumed["completed_stages"] == ["research", "analyse", "write", "review"]
    assert len(llm_server.requests) == 5  # research ran once


async def test_refine_on_the_server(dev_server: str, llm_server: Any) -> None:
    _load(llm_server, REFINE_SCRIPT)
    client = get_client(url=dev_server)
    thread = await client.threads.create()

    result = await client.runs.wait(
        thread["thread_id"],
        "refine",
        input={"task": "Say it well."},
        context={"refine_threshold": 4.0},
    )

    assert result["success"] is True
    assert result["final_answer"] == "draft two"
    assert [d["average"] for d in result["drafts"]] == [2.75, 4.25]
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 4


async def test_reflexion_lesson_from_one_run_helps_the_next_on_the_server(
    dev_server: str, llm_server: Any
) -> None:
    _load(llm_server, REFLEXION_SCRIPT)
    client = get_client(url=dev_server)
    # Reflexion keeps lessons only with memory on, like every pattern.
    context = {
        "user_id": f"user-{uuid.uuid4().hex[:8]}",
        "reflexion_max_trials": 1,
        "memory_enabled": True,
    }

    first_thread = await client.threads.create()
    first = await client.runs.wait(
        first_thread["thread_id"], "reflexion", input={"task": "17 * 23 + 5?"}, context=context
    )
    assert first["success"] is False
    assert first["reflections"] == [LESSON]
    # Lessons are procedures scoped to the Reflexion agent.
    namespace = ("memories", context["user_id"], "procedural", LESSON_AGENT)
    stored = await client.store.search_items(namespace)
    assert [item["value"]["content"] for item in stored["items"]] == [LESSON]

    second_thread = await client.threads.create()
    second = await client.runs.wait(
        second_thread["thread_id"], "reflexion", input={"task": "17 * 23 + 5?"}, context=context
    )
    assert second["success"] is True
    assert second["recalled_reflections"] == [LESSON]
    assert second["final_answer"] == "The answer is 396."
    assert len(llm_server.requests) == 3 + 2  # run 1: actor, evaluate, reflect; run 2: 2
