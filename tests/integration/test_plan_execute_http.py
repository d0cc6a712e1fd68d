"""Planner-executor through the real ChatOpenAI client against the scripted HTTP server."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graphs.plan_execute import build_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio

PLAN = {
    "tasks": [
        {
            "id": "t1",
            "description": "Compute 6*7.",
            "depends_on": [],
            "tools": [],
            "tool": "calculate",
            "tool_args": json.dumps({"expression": "6*7"}),
        },
        {
            "id": "t2",
            "description": "Add 8 to the result of t1.",
            "depends_on": ["t1"],
            "tools": ["calculate"],
            "tool": None,
            "tool_args": "{}",
        },
    ]
}
SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": {"schema": "Plan"}, "replies": [{"json": PLAN}]},
        {
            "match": {"user": "^Task t2:"},
            "replies": [
                {"tool_calls": [{"name": "calculate", "args": {"expression": "42 + 8"}}]},
                {"content": "42 + 8 = {{tool:calculate}}"},
            ],
        },
        {
            "match": {"schema": "FinalAnswer"},
            "replies": [{"json": {"answer": "50 [t2]", "cited_task_ids": ["t2"]}}],
        },
    ]
}


def _kind(request: dict[str, Any]) -> str:
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return str(response_format["json_schema"]["name"])
    return "worker"


async def test_plan_execute_over_http_with_chat_openai(use_script: Any) -> None:
    server = use_script(SCRIPT)
    graph = build_graph(checkpointer=InMemorySaver())
    result = await graph.ainvoke(
        {"request": "What is 6*7 plus 8?"},
        {"configurable": {"thread_id": "http"}},
        context=Context(planner_model="openai:planner-model", worker_model="openai:worker-model"),
    )

    assert result["success"] is True
    assert result["final_answer"] == "50 [t2]"
    assert [r["status"] for r in result["tasks"]] == ["completed", "completed"]
    assert "50" in result["tasks"][1]["result"]
    kinds = Counter((_kind(r), r["model"]) for r in server.requests)
    assert kinds == {
        ("Plan", "planner-model"): 1,
        ("worker", "worker-model"): 2,
        ("FinalAnswer", "planner-model"): 1,
    }
    assert result["usage"]["openai:planner-model"]["calls"] == 2
    assert result["usage"]["openai:worker-model"]["calls"] == 2
    # The worker was offered exactly the plan's tool subset.
    worker_tools = {
        tuple(t["function"]["name"] for t in r.get("tools", []))
        for r in server.requests
        if _kind(r) == "worker"
    }
    assert worker_tools == {("calculate",)}
