"""Approvals through a real `langgraph dev` server: interrupt, then `command={"resume": ...}`."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import get_client

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = {
    "rules": [
        {
            "match": {"user": "approve 9 \\* 9"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "9 * 9"}, "id": "srv1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
        {
            "match": {"user": "edit 9 \\* 9"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "9 * 9"}, "id": "srv2"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
    ]
}


async def start(client: Any, text: str) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "react",
        input={"messages": [{"role": "user", "content": text}]},
        context={"approval_mode": "always"},
    )
    return thread["thread_id"], result


async def test_approve_through_the_server(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    thread_id, paused = await start(client, "approve 9 * 9")

    (interrupt,) = paused["__interrupt__"]
    (request,) = interrupt["value"]["calls"]
    assert (request["id"], request["tool"], request["reason"]) == (
        "srv1",
        "calculate",
        "Computing.",
    )
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approval"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    result = await client.runs.wait(
        thread_id, "react", command={"resume": {"srv1": {"decision": "approve"}}}
    )
    assert result["final_answer"] == "Result: 81."
    assert result["tool_results"][0]["ok"] is True


async def test_edit_through_the_server(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    thread_id, _ = await start(client, "edit 9 * 9")
    result = await client.runs.wait(
        thread_id,
        "react",
        command={"resume": {"srv2": {"decision": "edit", "args": {"expression": "9 * 10"}}}},
    )
    assert result["final_answer"] == "Result: 90."  # the reviewer's arguments ran
    (tool_message,) = [m for m in result["messages"] if m["type"] == "tool"]
    assert tool_message["content"].startswith("Note: a reviewer changed the arguments")
