"""Memory on a real `langgraph dev` server: its own store, cross-thread recall, maintenance."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk import get_client

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = {
    "rules": [
        {"match": {"user": "favourite colour is teal"}, "replies": [{"content": "Noted."}]},
        {"match": {"user": "What is my favourite colour"}, "replies": [{"content": "Teal."}]},
    ]
}


def system_prompts(server: Any) -> list[str]:
    return [
        next(m["content"] for m in request["messages"] if m["role"] == "system")
        for request in server.requests
    ]


async def test_react_remembers_across_threads_on_the_server(
    dev_server: str, llm_server: Any
) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    llm_server.requests.clear()
    client = get_client(url=dev_server)
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"

    async def ask(user: str, text: str) -> dict[str, Any]:
        thread = await client.threads.create()
        result = await client.runs.wait(
            thread["thread_id"],
            "react",
            input={"messages": [{"role": "user", "content": text}]},
            context={"user_id": user, "memory_enabled": True},
        )
        assert isinstance(result, dict)
        return result

    first = await ask(alice, "My favourite colour is teal")
    second = await ask(alice, "What is my favourite colour?")
    other = await ask(bob, "What is my favourite colour?")

    assert (first["final_answer"], second["final_answer"]) == ("Noted.", "Teal.")
    assert first.get("degraded", []) == [] and other.get("degraded", []) == []
    prompts = system_prompts(llm_server)
    assert "<memories>" in prompts[1] and "My favourite colour is teal" in prompts[1]
    assert "favourite colour is teal" not in prompts[2]
    stored = await client.store.search_items(("memories", alice, "episodic"))
    assert len(stored["items"]) == 2
    assert stored["items"][0]["value"]["kind"] == "episodic"

    report = await client.runs.wait(None, "memory_maintenance", input={"user_ids": [alice]})
    assert isinstance(report, dict)
    assert report["success"] is True, report.get("error")
    assert report["report"]["users"] == 1
