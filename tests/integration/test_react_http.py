"""ReAct through the real ChatOpenAI client speaking HTTP to the scripted server."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from graphs.react import build_graph

pytestmark = pytest.mark.anyio

SCRIPT = {
    "rules": [
        {
            "match": {"user": "area of a circle"},
            "replies": [
                {
                    "content": "Computing both.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "pi * 3 ** 2"}},
                        {"name": "calculate", "args": {"expression": "2 * pi * 3"}},
                    ],
                },
                {"content": "Area ≈ {{last_tool}} (last result shown); both computed."},
            ],
        }
    ]
}
QUESTION = {"messages": [HumanMessage("What are the area of a circle and its circumference, r=3?")]}


async def test_invoke_runs_parallel_tools_over_http(use_script: Any) -> None:
    server = use_script(SCRIPT)
    result = await build_graph().ainvoke(QUESTION)

    assert result["success"] is True
    assert len(result["tool_results"]) == 2 and all(r["ok"] for r in result["tool_results"])
    assert len(server.requests) == 2
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["calculate", "get_current_time"]
    assert [m["role"] for m in second["messages"]][-3:] == ["assistant", "tool", "tool"]
    usage = result["usage"]["openai:gpt-4.1-mini"]
    assert usage["calls"] == 2 and usage["input_tokens"] > 0 and usage["output_tokens"] > 0


async def test_streaming_yields_tokens_and_usage(use_script: Any) -> None:
    server = use_script(SCRIPT)
    chunks: list[AIMessageChunk] = []
    final: dict[str, Any] = {}
    async for mode, data in build_graph().astream(QUESTION, stream_mode=["messages", "values"]):
        if mode == "messages":
            message, metadata = data
            if isinstance(message, AIMessageChunk):
                assert metadata["langgraph_node"] == "agent"
                chunks.append(message)
        else:
            final = data

    assert all(request["stream"] is True for request in server.requests)
    assert any(c.tool_call_chunks for c in chunks)
    assert "".join(str(c.content) for c in chunks).endswith("both computed.")
    assert final["usage"]["openai:gpt-4.1-mini"]["total_tokens"] > 0


def test_sync_invoke_over_http(use_script: Any) -> None:
    use_script(SCRIPT)
    result = build_graph().invoke(QUESTION)
    assert result["final_answer"].startswith("Area ≈ ")
