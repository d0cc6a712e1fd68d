"""Debate, tree of thoughts and router through a real `langgraph dev` server (their demos)."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import get_client

from graphs.cli import load_demo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def run_demo(dev_server: str, llm_server: Any, graph_id: str, payload: dict[str, Any]) -> Any:
    from nodes.offline import load_script

    demo = load_demo(graph_id)
    llm_server.script = load_script(demo["script"])
    llm_server.requests.clear()
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    return await client.runs.wait(
        thread["thread_id"], graph_id, input=payload, context=demo.get("context", {})
    )


async def test_graphs_are_registered_on_the_server(dev_server: str) -> None:
    assistants = await get_client(url=dev_server).assistants.search(limit=100)
    assert {"debate", "tot", "router"} <= {a["graph_id"] for a in assistants}


async def test_debate_demo_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    question = load_demo("debate")["input"]
    result = await run_demo(dev_server, llm_server, "debate", {"question": question})

    assert result["success"] is True
    assert result["final_answer"].startswith("Use a managed identity provider")
    assert result["verdict"]["points_of_disagreement"]
    assert result["converged"] is True and result["rounds_completed"] == 2
    assert [a["agreement"] for a in result["assessments"]] == [0.4, 0.9]
    # 3 debaters x 2 rounds + 2 judge convergence checks + the verdict
    assert len(llm_server.requests) == 9
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 9


async def test_tot_demo_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    problem = load_demo("tot")["input"]
    result = await run_demo(dev_server, llm_server, "tot", {"problem": problem})

    assert result["final_answer"] == "6 × (9 − 4) = 30"
    assert result["best_path"] == ["9 - 4 = 5 (left: 5, 6)", "5 * 6 = 30"]
    assert result["stop_reason"] == "threshold" and result["depth_reached"] == 2
    assert {n["id"] for n in result["tree"] if n["kept"]} == {"0", "0.1", "0.3", "0.1.1", "0.3.1"}
    # expansions 1 + 2, scores 3 + 6, the solution
    assert len(llm_server.requests) == 13


async def test_router_demo_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    text = load_demo("router")["input"]
    result = await run_demo(
        dev_server, llm_server, "router", {"messages": [{"role": "user", "content": text}]}
    )

    assert result["routed_to"] == "order_status" and result["confidence"] == 0.94
    assert '"expected_delivery": "2026-11-27"' in result["final_answer"]
    assert [r["tool"] for r in result["tool_results"]] == ["look_up_order"]
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 3
