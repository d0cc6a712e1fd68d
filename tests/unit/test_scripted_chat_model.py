"""ScriptedChatModel: the in-process twin of the scripted server."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import openai
import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import BaseModel, ValidationError

from nodes.offline import Script, ScriptedChatModel, ScriptExhausted


class Plan(BaseModel):
    """A plan."""

    steps: list[str]


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "42"


@tool
def search(query: str) -> str:
    """Search the web."""
    return "nothing"


REACT: dict[str, Any] = {
    "name": "react",
    "rules": [
        {"match": {"schema": "Plan"}, "replies": [{"json": {"steps": ["a", "b"]}}]},
        {
            "name": "calc",
            "match": {"system": "calculator", "tool": "calculate"},
            "replies": [
                {
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6*7"}},
                        {"name": "search", "args": {"query": "42"}},
                    ]
                },
                {"content": "6 * 7 = 42"},
            ],
        },
        {
            "match": {"user": "^rate$"},
            "replies": [{"error": {"status": 429, "message": "Slow down!", "retry_after": 3}}],
        },
        {
            "match": {"user": "^boom$"},
            "replies": [{"error": {"status": 503, "message": "overloaded"}}],
        },
        {"match": {"user": "^slow$"}, "replies": [{"content": "late", "delay": 30}]},
    ],
    "default": {"content": "I don't know."},
}


def calc_history() -> list[BaseMessage]:
    return [SystemMessage("You are a calculator."), HumanMessage("what is 6 * 7?")]


# -- construction ----------------------------------------------------------------------


def test_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ScriptedChatModel()
    with pytest.raises(ValidationError, match="exactly one"):
        ScriptedChatModel(script=REACT, replies=["a"])


def test_accepts_script_object_or_dict_and_model_name() -> None:
    model = ScriptedChatModel(script=Script.from_dict(REACT), model_name="planner")
    assert model.model_name == "planner"
    msg = model.invoke("hi")
    assert msg.content == "I don't know."
    assert msg.response_metadata["model_name"] == "planner"
    assert ScriptedChatModel(script=REACT).model_name == "scripted"


def test_invalid_script_is_rejected_at_construction() -> None:
    with pytest.raises(ValidationError, match="rule 0: 'replies' must be a non-empty list"):
        ScriptedChatModel(script={"rules": [{"replies": []}]})


# -- replies sequence ------------------------------------------------------------------


def test_replies_play_in_order_then_fail_loudly() -> None:
    model = ScriptedChatModel(
        replies=[
            "plain text",
            {"tool_calls": [{"name": "calculate", "args": {"expression": "1+1"}}]},
            AIMessage(
                content="from a message",
                tool_calls=[{"name": "search", "args": {"query": "q"}, "id": "abc"}],
            ),
        ]
    )
    assert model.invoke("a").content == "plain text"
    second = model.invoke("b")
    assert [(c["name"], c["args"], c["id"]) for c in second.tool_calls] == [
        ("calculate", {"expression": "1+1"}, "call_1")
    ]
    third = model.invoke("c")
    assert third.content == "from a message"
    assert third.tool_calls[0]["id"] == "abc"
    for _ in range(2):  # never cycles back to the first reply
        with pytest.raises(ScriptExhausted) as info:
            model.invoke("one more question")
        assert "script exhausted after 3 calls" in str(info.value)
        assert "one more question" in str(info.value)


def test_replies_ignore_turns() -> None:
    model = ScriptedChatModel(replies=["first", "second"])
    assert model.invoke([HumanMessage("x")]).content == "first"
    assert model.invoke([HumanMessage("x")]).content == "second"


def test_copies_share_calls_and_reply_position() -> None:
    model = ScriptedChatModel(replies=["a", "b", "c"])
    assert copy.deepcopy(model).invoke("1").content == "a"
    assert model.model_copy().invoke("2").content == "b"
    assert model.invoke("3").content == "c"
    assert [c[0].content for c in model.calls] == ["1", "2", "3"]


def test_replies_are_claimed_once_under_concurrency() -> None:
    model = ScriptedChatModel(replies=[str(i) for i in range(20)])
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        content = str(model.invoke("go").content)
        with lock:
            results.append(content)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=int) == [str(i) for i in range(20)]
    assert len(model.calls) == 20


# -- script mode -----------------------------------------------------------------------


def test_script_drives_a_tool_round_trip() -> None:
    model = ScriptedChatModel(script=REACT)
    bound = model.bind_tools([calculate, search])
    history = calc_history()
    first = bound.invoke(history)
    assert [(c["name"], c["id"]) for c in first.tool_calls] == [
        ("calculate", "call_1"),
        ("search", "call_2"),
    ]
    assert first.response_metadata["finish_reason"] == "tool_calls"
    history += [first] + [ToolMessage("42", tool_call_id=c["id"]) for c in first.tool_calls]
    second = bound.invoke(history)
    assert second.content == "6 * 7 = 42"
    assert second.usage_metadata is not None
    assert second.usage_metadata["total_tokens"] == (
        second.usage_metadata["input_tokens"] + second.usage_metadata["output_tokens"]
    )
    # Without tools bound the 'calc' rule does not match.
    assert model.invoke(calc_history()).content == "I don't know."


def test_calls_are_recorded_and_shared_with_bound_copies() -> None:
    model = ScriptedChatModel(script=REACT)
    model.bind_tools([calculate]).invoke(calc_history())
    model.invoke("hello")
    calls = model.calls
    assert len(calls) == 2
    assert [m.content for m in calls[0]] == ["You are a calculator.", "what is 6 * 7?"]
    assert calls[1][0].content == "hello"


def test_exhausted_rule_raises_with_rule_and_turn() -> None:
    model = ScriptedChatModel(script=Script.sequence(["only"]))
    with pytest.raises(ScriptExhausted, match="rule 0 exhausted at turn 1"):
        model.invoke([HumanMessage("q"), AIMessage("only")])


def test_no_match_without_default_raises() -> None:
    model = ScriptedChatModel(script={"rules": [{"match": {"user": "x"}, "replies": ["x"]}]})
    with pytest.raises(ScriptExhausted, match="no rule matched at turn 0"):
        model.invoke("y")


def test_bind_tools_records_openai_tools_and_tool_choice() -> None:
    model = ScriptedChatModel(script={"default": "ok"})
    model.bind_tools([calculate, search], tool_choice="calculate").invoke("x")
    assert [t["function"]["name"] for t in model.bound_tools] == ["calculate", "search"]
    model.bind_tools([calculate], tool_choice="any").invoke("x")
    model.bind_tools([calculate]).invoke("x")
    model.invoke("x")
    seen = model.requests
    assert [t["function"]["name"] for t in seen[0]["tools"]] == ["calculate", "search"]
    assert seen[0]["tools"][0]["function"]["parameters"]["properties"] == {
        "expression": {"type": "string"}
    }
    assert seen[0]["tool_choice"] == {"type": "function", "function": {"name": "calculate"}}
    assert seen[1]["tool_choice"] == "required"
    assert "tool_choice" not in seen[2]
    assert "tools" not in seen[3]
    assert seen[0]["messages"] == [{"role": "user", "content": "x"}]
    assert seen[0]["model"] == "scripted"
    assert [t["function"]["name"] for t in model.bound_tools] == ["calculate"]


# -- structured output -----------------------------------------------------------------


def test_with_structured_output_uses_forced_tool_call() -> None:
    model = ScriptedChatModel(script=REACT)
    assert model.with_structured_output(Plan).invoke("make a plan") == Plan(steps=["a", "b"])
    raw = model.with_structured_output(Plan, include_raw=True).invoke("make a plan")
    assert isinstance(raw, dict)
    assert raw["parsed"] == Plan(steps=["a", "b"])
    assert raw["parsing_error"] is None
    assert raw["raw"].tool_calls[0]["name"] == "Plan"


def test_with_structured_output_from_replies_sequence() -> None:
    model = ScriptedChatModel(replies=[{"json": {"steps": ["x"]}}])
    assert model.with_structured_output(Plan).invoke("plan") == Plan(steps=["x"])


@pytest.mark.anyio
async def test_with_structured_output_async() -> None:
    model = ScriptedChatModel(script=REACT)
    assert await model.with_structured_output(Plan).ainvoke("plan") == Plan(steps=["a", "b"])


# -- errors ------------------------------------------------------------------------------


def test_error_reply_raises_what_chat_openai_raises() -> None:
    model = ScriptedChatModel(script=REACT)
    with pytest.raises(openai.RateLimitError) as info:
        model.invoke("rate")
    err = info.value
    assert isinstance(err, ModelRateLimitError)  # LangChain's provider-agnostic class too
    assert str(err) == "Error code: 429 - Slow down!"
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "3"
    assert err.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError, match="overloaded"):
        model.invoke("boom")


@pytest.mark.anyio
async def test_error_reply_raises_when_streaming_async() -> None:
    model = ScriptedChatModel(script=REACT)
    with pytest.raises(openai.RateLimitError):
        async for _ in model.astream("rate"):
            pass


@pytest.mark.anyio
async def test_async_delay_is_cancellable() -> None:
    model = ScriptedChatModel(script=REACT)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(model.ainvoke("slow"), timeout=0.05)


# -- streaming -------------------------------------------------------------------------------


def test_stream_emits_one_complete_chunk() -> None:
    model = ScriptedChatModel(script=REACT).bind_tools([calculate, search])
    chunks = list(model.stream(calc_history()))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert isinstance(chunk, AIMessageChunk)
    assert [(c["name"], c["args"], c["id"], c["index"]) for c in chunk.tool_call_chunks] == [
        ("calculate", '{"expression": "6*7"}', "call_1", 0),
        ("search", '{"query": "42"}', "call_2", 1),
    ]
    assert [c["name"] for c in chunk.tool_calls] == ["calculate", "search"]
    assert chunk.usage_metadata is not None and chunk.usage_metadata["output_tokens"] > 0
    assert chunk.response_metadata["model_name"] == "scripted"


@pytest.mark.anyio
async def test_astream_emits_content_and_usage() -> None:
    chunks = [c async for c in ScriptedChatModel(script=REACT).astream("hi")]
    assert len(chunks) == 1
    assert chunks[0].content == "I don't know."
    assert chunks[0].usage_metadata is not None


@pytest.mark.anyio
async def test_ainvoke_matches_invoke() -> None:
    model = ScriptedChatModel(script=REACT).bind_tools([calculate, search])
    sync_msg = model.invoke(calc_history())
    async_msg = await model.ainvoke(calc_history())
    assert async_msg.tool_calls == sync_msg.tool_calls
    assert async_msg.usage_metadata == sync_msg.usage_metadata


# -- LangGraph -------------------------------------------------------------------------------


def build_graph(model: ScriptedChatModel) -> Any:
    bound = model.bind_tools([calculate, search])

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([calculate, search]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def test_langgraph_stream_mode_messages() -> None:
    app = build_graph(ScriptedChatModel(script=REACT))
    streamed = [
        (msg, meta["langgraph_node"])
        for msg, meta in app.stream({"messages": calc_history()}, stream_mode="messages")
    ]
    agent_chunks = [m for m, node in streamed if node == "agent"]
    assert all(isinstance(m, AIMessageChunk) for m in agent_chunks)
    assert len(agent_chunks) == 2
    tool_chunk, final_chunk = agent_chunks
    assert [c["name"] for c in tool_chunk.tool_call_chunks] == ["calculate", "search"]
    assert tool_chunk.usage_metadata is not None
    assert final_chunk.content == "6 * 7 = 42"
    tool_results = [m for m, node in streamed if node == "tools"]
    assert [m.tool_call_id for m in tool_results] == ["call_1", "call_2"]


@pytest.mark.anyio
async def test_langgraph_astream_messages_and_final_state() -> None:
    model = ScriptedChatModel(script=REACT)
    app = build_graph(model)
    chunks = [
        msg
        async for msg, meta in app.astream({"messages": calc_history()}, stream_mode="messages")
        if meta["langgraph_node"] == "agent"
    ]
    assert [c.content for c in chunks] == ["", "6 * 7 = 42"]
    final = await app.ainvoke({"messages": calc_history()})
    assert final["messages"][-1].content == "6 * 7 = 42"
    assert final["messages"][-1].usage_metadata is not None
    assert len(model.calls) == 4
