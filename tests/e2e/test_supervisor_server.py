"""Supervisor and the example team through a real `langgraph dev` server (their demos)."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import get_client

from graphs.cli import load_demo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def run_demo(
    dev_server: str, llm_server: Any, graph_id: str, context: dict[str, Any] | None = None
) -> Any:
    from nodes.offline import load_script

    demo = load_demo(graph_id)
    llm_server.script = load_script(demo["script"])
    llm_server.requests.clear()
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    return await client.runs.wait(
        thread["thread_id"],
        graph_id,
        input={"messages": [{"role": "user", "content": demo["input"]}]},
        context=context or {},
    )


async def test_supervisor_and_team_are_registered(dev_server: str) -> None:
    assistants = await get_client(url=dev_server).assistants.search(limit=100)
    assert {"supervisor", "team"} <= {a["graph_id"] for a in assistants}


async def test_supervisor_demo_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    result = await run_demo(dev_server, llm_server, "supervisor", {"supervisor_max_handoffs": 5})

    assert result["success"] is True, result.get("error")
    assert result["final_answer"].startswith("17.5% of 2,480 is 434")
    steps = sorted((h["step"], h["worker"]) for h in result["handoffs"])
    assert steps == [(0, "analyst"), (0, "clock"), (1, "writer")]
    # 3 supervisor decisions + analyst 2 + clock 2 + writer 1
    assert len(llm_server.requests) == 8
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 8
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]


async def test_supervisor_guard_stops_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    result = await run_demo(dev_server, llm_server, "supervisor", {"supervisor_max_handoffs": 1})

    assert result["success"] is False
    assert result["error"].startswith("max_handoffs (1) reached")
    assert result.get("handoffs", []) == []
    assert len(llm_server.requests) == 1


async def test_team_demo_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    result = await run_demo(dev_server, llm_server, "team")

    assert result["success"] is True, result.get("error")
    assert [h["worker"] for h in result["handoffs"]] == ["analyst", "memo_team"]
    assert result["final_answer"].startswith("Hotels get 434 EUR")
    assert len(llm_server.requests) == 7
