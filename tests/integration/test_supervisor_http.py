"""Supervisor and team graphs through the real ChatOpenAI against the scripted HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.cli import load_demo
from graphs.supervisor import build_graph
from graphs.team import build_team_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tools_offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def schema_of(request: dict[str, Any]) -> str | None:
    response_format = request.get("response_format") or {}
    spec = response_format.get("json_schema") or {}
    return spec.get("name")


async def test_demo_team_runs_over_http_with_structured_decisions(use_script: Any) -> None:
    demo = load_demo("supervisor")
    server = use_script(demo["script"])
    graph = build_graph(checkpointer=InMemorySaver())

    result = await graph.ainvoke(
        {"messages": [HumanMessage(demo["input"])]},
        {"configurable": {"thread_id": "http-1"}},
    )

    assert result["success"] is True
    assert result["final_answer"].startswith("17.5% of 2,480 is 434")
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 8
    assert len(server.requests) == 8
    decisions = [r for r in server.requests if schema_of(r) == "SupervisorDecision"]
    assert len(decisions) == 3
    # The enum of workers reaches the provider, so it can reject unknown names itself.
    schema = decisions[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["next"]["enum"] == ["analyst", "clock", "writer", "FINISH"]
    by_worker = {h["worker"]: h for h in result["handoffs"]}
    assert by_worker["analyst"]["result"] == "17.5% of 2,480 is 434."
    assert by_worker["clock"]["result"].startswith("In Tokyo it is now 20")
    # Each worker is offered only its own tool subset.
    worker_requests = [r for r in server.requests if schema_of(r) is None]
    offered = {
        next(
            w
            for w in ("analyst", "clock", "writer")
            if f"worker '{w}'" in r["messages"][0]["content"]
        ): tools_offered(r)
        for r in worker_requests
    }
    assert offered == {"analyst": ["calculate"], "clock": ["get_current_time"], "writer": []}


async def test_capability_router_over_http(use_script: Any) -> None:
    demo = load_demo("supervisor")
    tagger = {
        "name": "tagger",
        "match": {"schema": "TaskCapabilities"},
        "replies": [{"json": {"capabilities": ["math", "time"]}}],
    }
    server = use_script({**demo["script"], "rules": [tagger, *demo["script"]["rules"]]})

    result = await build_graph().ainvoke(
        {"messages": [HumanMessage(demo["input"])]},
        context=Context(supervisor_router="capability"),
    )

    assert result["success"] is True
    assert [(h["worker"], h["capabilities"]) for h in result["handoffs"]] == [
        ("analyst", ["math"]),
        ("clock", ["time"]),
    ]
    assert [schema_of(r) for r in server.requests].count("TaskCapabilities") == 1
    assert "SupervisorDecision" not in [schema_of(r) for r in server.requests]
    assert len(server.requests) == 5  # 1 tagging call + 2 analyst + 2 clock
    assert result["final_answer"].startswith("analyst:\n17.5% of 2,480 is 434.")


async def test_sequential_team_spec_over_http(use_script: Any) -> None:
    server = use_script(
        {
            "rules": [
                {
                    "match": {"system": "worker 'planner'"},
                    "replies": [{"content": "Colosseum 18 EUR; lunch 22 EUR"}],
                },
                {
                    "match": {"system": "worker 'accountant'", "user": "Colosseum 18 EUR"},
                    "replies": [
                        {"tool_calls": [{"name": "calculate", "args": {"expression": "18+22"}}]},
                        {"content": "Total {{tool:calculate}} EUR"},
                    ],
                },
            ]
        }
    )
    result = await build_team_graph(EXAMPLES / "trip_team.json").ainvoke(
        {"messages": [HumanMessage("A day in Rome")]}
    )
    assert result["final_answer"] == "Total 40 EUR"
    assert len(server.requests) == 3
