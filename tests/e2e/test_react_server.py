"""ReAct through a real `langgraph dev` server, driven with `langgraph_sdk`."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import get_client

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALCULATOR_SCRIPT = {
    "rules": [
        {
            "match": {"user": "17 \\* 23"},
            "replies": [
                {"tool_calls": [{"name": "calculate", "args": {"expression": "17 * 23"}}]},
                {"content": "17 × 23 = 391."},
            ],
        }
    ]
}


async def test_react_runs_on_the_dev_server(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(CALCULATOR_SCRIPT)
    client = get_client(url=dev_server)

    assistants = await client.assistants.search()
    assert "react" in {a["graph_id"] for a in assistants}

    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "react",
        input={"messages": [{"role": "user", "content": "What is 17 * 23?"}]},
        context={"max_iterations": 4},
    )

    assert result["final_answer"] == "17 × 23 = 391."
    assert result["success"] is True
    assert result["tool_results"][0]["tool"] == "calculate"
    tool_messages = [m for m in result["messages"] if m["type"] == "tool"]
    assert tool_messages[0]["content"].splitlines()[1] == "391"  # inside <tool_output>
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 2


async def test_budgets_and_cost_work_on_the_dev_server(
    dev_server: str, llm_server: Any, tmp_path: Any
) -> None:
    """The price table is read off the event loop (the server refuses blocking file I/O)."""
    import json

    from nodes.offline import load_script

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai:gpt-4.1-mini": {"input_per_1m": 1, "output_per_1m": 2}}))
    llm_server.script = load_script(CALCULATOR_SCRIPT)
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "react",
        input={"messages": [{"role": "user", "content": "What is 17 * 23?"}]},
        context={"max_cost_usd": 1.0, "price_table": str(prices)},
    )

    assert result["success"] is True, result.get("error")
    assert result["metrics"]["cost_usd"] is not None and result["metrics"]["cost_usd"] > 0
