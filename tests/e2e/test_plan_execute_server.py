"""Planner-executor through a real `langgraph dev` server, driven with `langgraph_sdk`."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import get_client

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PLAN = {
    "tasks": [
        {"id": "t1", "description": "Recall the capital of France.", "depends_on": []},
        {"id": "t2", "description": "Recall the capital of Italy.", "depends_on": []},
        {"id": "t3", "description": "Compare t1 and t2.", "depends_on": ["t1", "t2"]},
        {
            "id": "t4",
            "description": "Compute 17 * 23.",
            "depends_on": [],
            "tool": "calculate",
            "tool_args": '{"expression": "17 * 23"}',
        },
    ]
}
SCRIPT = {
    "rules": [
        {"match": {"schema": "Plan"}, "replies": [{"json": PLAN}]},
        {"match": {"user": "^Task t1:"}, "replies": ["Paris"]},
        {"match": {"user": "^Task t2:"}, "replies": ["Rome"]},
        {"match": {"user": "^Task t3:.*\\[t1\\] Paris.*\\[t2\\] Rome"}, "replies": ["both"]},
        {
            "match": {"schema": "FinalAnswer"},
            "replies": [
                {"json": {"answer": "Paris [t1] and Rome [t2]", "cited_task_ids": ["t1", "t2"]}}
            ],
        },
    ]
}


async def test_plan_execute_reviews_and_runs_on_the_dev_server(
    dev_server: str, llm_server: Any
) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    assert "plan_execute" in {a["graph_id"] for a in await client.assistants.search()}

    thread = await client.threads.create()
    paused = await client.runs.wait(
        thread["thread_id"],
        "plan_execute",
        input={"request": "Capitals of France and Italy?"},
        context={"review_plan": True},
    )
    review = paused["__interrupt__"][0]["value"]
    assert review["kind"] == "plan_review"
    assert [t["id"] for t in review["tasks"]] == ["t1", "t2", "t3", "t4"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "interrupted"

    result = await client.runs.wait(
        thread["thread_id"],
        "plan_execute",
        command={"resume": {"action": "approve"}},
        context={"review_plan": True},
    )

    assert result["success"] is True
    assert result["final_answer"] == "Paris [t1] and Rome [t2]"
    assert [(t["id"], t["status"]) for t in result["tasks"]] == [
        ("t1", "completed"),
        ("t2", "completed"),
        ("t3", "completed"),
        ("t4", "completed"),
    ]
    assert [t["result"] for t in result["tasks"][:3]] == ["Paris", "Rome", "both"]
    assert "391" in result["tasks"][3]["result"]
    assert [r["tool"] for r in result["tool_results"]] == ["calculate"]
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 5
    assert result["citations"] == ["t1", "t2"]
