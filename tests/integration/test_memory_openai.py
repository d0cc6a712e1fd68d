"""Memory through real HTTP clients: ChatOpenAI and OpenAIEmbeddings against the scripted
OpenAI-compatible server, with the default Qdrant store built from the environment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.memory_maintenance import build_graph as build_maintenance
from memory.manager import MemoryManager
from memory.settings import MemorySettings
from memory.store import make_store
from nodes.agent import build_agent
from nodes.context import Context
from nodes.offline import load_script
from tools import builtin_tools
from tools.memory_tools import memory_tools

pytestmark = pytest.mark.anyio

ALLOW_ALL = {
    "name": "test-allow-all",
    "rules": [{"id": "allow", "tool": ".*", "decision": "allow", "priority": 1}],
}

SCRIPT = {
    "rules": [
        {
            "match": {"user": "favourite colour is teal"},
            "replies": [
                {
                    "tool_calls": [
                        {
                            "name": "save_memory",
                            "args": {
                                "content": "The user's favourite colour is teal",
                                "importance": 0.9,
                            },
                        }
                    ]
                },
                {"content": "Noted."},
            ],
        },
        {"match": {"user": "What is my favourite colour"}, "replies": [{"content": "Teal."}]},
    ]
}


@pytest.fixture
def openai_store(monkeypatch: pytest.MonkeyPatch, use_script: Any) -> Any:
    server = use_script(SCRIPT)
    monkeypatch.setenv("WEFT_EMBEDDINGS", "openai:text-embedding-3-small")
    monkeypatch.setenv("WEFT_EMBEDDING_DIMS", "64")  # the scripted server's vector size
    monkeypatch.setenv("WEFT_MEMORY_COLLECTION", f"it_{uuid.uuid4().hex[:8]}")
    return server, make_store(MemorySettings.from_env())


def system_prompts(server: Any) -> list[str]:
    return [
        next(m["content"] for m in request["messages"] if m["role"] == "system")
        for request in server.requests
    ]


async def test_cross_thread_recall_over_http(openai_store: Any) -> None:
    server, store = openai_store
    assert type(store.embeddings).__name__ == "OpenAIEmbeddings"
    graph = build_agent(
        tools=[*builtin_tools(), *memory_tools()],
        store=store,
        checkpointer=InMemorySaver(),
        policy=ALLOW_ALL,
    )

    def context(user: str) -> Context:
        return Context(user_id=user, memory_enabled=True, approval_mode="never")

    first = await graph.ainvoke(
        {"messages": [HumanMessage("Remember: my favourite colour is teal")]},
        {"configurable": {"thread_id": "a1"}},
        context=context("alice"),
    )
    second = await graph.ainvoke(
        {"messages": [HumanMessage("What is my favourite colour?")]},
        {"configurable": {"thread_id": "a2"}},
        context=context("alice"),
    )
    other = await graph.ainvoke(
        {"messages": [HumanMessage("What is my favourite colour?")]},
        {"configurable": {"thread_id": "b1"}},
        context=context("bob"),
    )

    assert (first["final_answer"], second["final_answer"]) == ("Noted.", "Teal.")
    prompts = system_prompts(server)
    assert len(prompts) == 4
    assert "The user's favourite colour is teal" in prompts[2]
    assert "favourite colour is teal" not in prompts[3]
    assert other.get("degraded", []) == []
    episodes = await MemoryManager(store, "alice").list_memories("episodic")
    assert len(episodes) == 2


async def test_maintenance_consolidates_through_chat_openai(openai_store: Any) -> None:
    server, store = openai_store
    server.script = load_script(
        {
            "rules": [
                {
                    "match": {"schema": "Insights"},
                    "replies": [
                        {
                            "json": {
                                "insights": [
                                    {"content": "The user deploys on Tuesdays", "importance": 0.7}
                                ]
                            }
                        }
                    ],
                }
            ]
        }
    )
    past = datetime.now(UTC) - timedelta(days=10)
    old = MemoryManager(store, "alice", clock=lambda: past)
    for day in ("Monday", "Tuesday", "Wednesday"):
        await old.remember(f"Task: deploy on {day}\nOutcome (succeeded): ok", kind="episodic")

    result = await build_maintenance(store=store).ainvoke({})

    assert result["success"] is True
    assert result["report"]["insights"] == 1
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 1
    facts = await MemoryManager(store, "alice").list_memories("semantic")
    assert [f.content for f in facts] == ["The user deploys on Tuesdays"]
