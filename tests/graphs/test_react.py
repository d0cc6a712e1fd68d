"""ReAct graph: structure, stopping, tool errors, parallel tools, limits, threads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver

from graphs.react import build_graph
from nodes.context import Context
from nodes.model import ModelConfigurationError
from nodes.tool_node import unwrap_tool_output

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("react.mmd")


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_answers_on_first_turn_without_tools(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("Paris is the capital of France."))
    result = await build_graph(model=model).ainvoke(ask("Capital of France?"))

    assert result["final_answer"] == "Paris is the capital of France."
    assert result["success"] is True
    assert result["error"] is None
    assert result["iterations"] == 1
    assert result["usage"]["scripted"]["calls"] == 1
    assert result["usage"]["scripted"]["total_tokens"] > 0
    seen = model.calls[0]
    assert isinstance(seen[0], SystemMessage)
    assert seen[-1].content == "Capital of France?"


async def test_uses_a_tool_then_answers(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage("", tool_calls=[call("calculate", {"expression": "6 * 7"}, "c1")]),
        AIMessage("6 × 7 = 42."),
    )
    result = await build_graph(model=model).ainvoke(ask("What is 6 times 7?"))

    assert result["final_answer"] == "6 × 7 = 42."
    assert result["iterations"] == 2
    tool_message = model.calls[1][-1]
    assert isinstance(tool_message, ToolMessage)
    # Tool output reaches the model wrapped as untrusted data (nodes/tool_node.py).
    assert tool_message.content == '<tool_output tool="calculate" call_id="c1">\n42\n</tool_output>'
    assert [(r["tool"], r["ok"]) for r in result["tool_results"]] == [("calculate", True)]
    assert result["usage"]["scripted"]["calls"] == 2


async def test_stops_at_max_iterations_with_valid_history(scripted_model: Any) -> None:
    looping = [
        AIMessage("still working", tool_calls=[call("calculate", {"expression": "1+1"}, f"c{i}")])
        for i in range(3)
    ]
    model = scripted_model(*looping)
    result = await build_graph(model=model).ainvoke(
        ask("loop forever"), context=Context(max_iterations=3)
    )

    assert result["success"] is False
    assert "max_iterations (3)" in result["error"]
    assert result["iterations"] == 3
    assert len(model.calls) == 3
    assert "sorry" in result["final_answer"].lower()
    assert "still working" in result["final_answer"]
    # Every tool call in the history has an answer, so the thread can continue.
    answered = {m.tool_call_id for m in result["messages"] if isinstance(m, ToolMessage)}
    requested = {
        c["id"] for m in result["messages"] if isinstance(m, AIMessage) for c in m.tool_calls
    }
    assert requested == answered
    assert len(result["tool_results"]) == 2  # the third request was never executed


async def test_recursion_limit_ends_cleanly_instead_of_raising(scripted_model: Any) -> None:
    looping = [
        AIMessage("", tool_calls=[call("calculate", {"expression": "2"}, f"c{i}")])
        for i in range(20)
    ]
    result = await build_graph(model=scripted_model(*looping)).ainvoke(
        ask("loop"), {"recursion_limit": 7}, context=Context(max_iterations=50)
    )
    assert result["success"] is False
    assert "recursion limit" in result["error"]


async def test_tool_exception_goes_back_to_the_model_and_is_recorded(scripted_model: Any) -> None:
    @tool
    def look_up_order(order_id: str) -> str:
        """Look up an order by id.

        Args:
            order_id: The order id.
        """
        raise ToolException(f"order {order_id} not found; ids look like 'A-123'")

    model = scripted_model(
        AIMessage("", tool_calls=[call("look_up_order", {"order_id": "x"}, "c1")]),
        AIMessage("I could not find that order."),
    )
    result = await build_graph(model=model, tools=[look_up_order]).ainvoke(ask("order x?"))

    error_message = model.calls[1][-1]
    assert error_message.status == "error"
    assert "not found" in error_message.content
    assert result["tool_results"][0]["error_code"] == "tool_error"
    assert result["success"] is True


async def test_unknown_tool_and_invalid_arguments_are_model_errors(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage(
            "",
            tool_calls=[
                call("delete_everything", {}, "c1"),
                call("calculate", {"expr": "1+1"}, "c2"),
            ],
        ),
        AIMessage("Sorry."),
    )
    result = await build_graph(model=model).ainvoke(ask("do it"))

    by_id = {m.tool_call_id: m for m in model.calls[1] if isinstance(m, ToolMessage)}
    assert "calculate, get_current_time" in by_id["c1"].content
    assert "expression" in by_id["c2"].content  # names the missing field
    codes = {r["call_id"]: r["error_code"] for r in result["tool_results"]}
    assert codes == {"c1": "unknown_tool", "c2": "invalid_args"}


async def test_a_tool_bug_raises_instead_of_being_hidden(scripted_model: Any) -> None:
    @tool
    def broken_tool() -> str:
        """A tool with a bug."""
        raise KeyError("bug")

    model = scripted_model(AIMessage("", tool_calls=[call("broken_tool", {}, "c1")]))
    with pytest.raises(KeyError):
        await build_graph(model=model, tools=[broken_tool]).ainvoke(ask("go"))


async def test_parallel_tool_calls_run_concurrently(scripted_model: Any) -> None:
    first_started, second_started = asyncio.Event(), asyncio.Event()

    @tool
    async def first_step() -> str:
        """First half of a handshake."""
        first_started.set()
        await asyncio.wait_for(second_started.wait(), timeout=5)
        return "first done"

    @tool
    async def second_step() -> str:
        """Second half of a handshake."""
        second_started.set()
        await asyncio.wait_for(first_started.wait(), timeout=5)
        return "second done"

    model = scripted_model(
        AIMessage("", tool_calls=[call("first_step", {}, "a"), call("second_step", {}, "b")]),
        AIMessage("both done"),
    )
    # Run sequentially, each tool would wait for the other and time out with an error.
    result = await build_graph(model=model, tools=[first_step, second_step]).ainvoke(ask("go"))

    contents = sorted(
        unwrap_tool_output(m.content) for m in model.calls[1] if isinstance(m, ToolMessage)
    )
    assert contents == ["first done", "second done"]
    assert all(r["ok"] for r in result["tool_results"])


async def test_context_tool_subset_limits_what_the_model_sees_and_runs(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage("", tool_calls=[call("get_current_time", {}, "c1")]),
        AIMessage("ok"),
    )
    result = await build_graph(model=model).ainvoke(
        ask("time?"), context=Context(tools=("calculate",))
    )

    assert [t["function"]["name"] for t in model.bound_tools] == ["calculate"]
    assert result["tool_results"][0]["error_code"] == "unknown_tool"


async def test_same_thread_continues_the_conversation(scripted_model: Any) -> None:
    model = scripted_model(AIMessage("Nice to meet you, Ada."), AIMessage("Your name is Ada."))
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}

    await graph.ainvoke(ask("I am Ada."), config)
    result = await graph.ainvoke(ask("What is my name?"), config)

    assert result["final_answer"] == "Your name is Ada."
    assert result["iterations"] == 1  # counted per user message, not per thread
    assert [m.content for m in model.calls[1] if isinstance(m, HumanMessage)] == [
        "I am Ada.",
        "What is my name?",
    ]
    assert result["usage"]["scripted"]["calls"] == 2


async def test_missing_credentials_fail_with_one_clear_sentence() -> None:
    with pytest.raises(ModelConfigurationError, match="set OPENAI_API_KEY"):
        await build_graph().ainvoke(ask("hi"))


def test_sync_invoke_works_without_context(scripted_model: Any) -> None:
    model = scripted_model(
        AIMessage("", tool_calls=[call("calculate", {"expression": "2**10"}, "c1")]),
        AIMessage("1024"),
    )
    result = build_graph(model=model).invoke(ask("2^10?"))
    assert result["final_answer"] == "1024"
    assert result["tool_results"][0]["ok"] is True
