"""Per-run budgets and metrics in the agent loop (ReAct): each limit ends the run cleanly."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs.react import build_graph
from nodes.agent import build_agent
from nodes.context import Context

pytestmark = pytest.mark.anyio


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def calc(expression: str, call_id: str, tokens: int = 100) -> dict[str, Any]:
    """A scripted reply asking for one calculation, with a known token count."""
    return {
        "content": "Let me compute.",
        "tool_calls": [{"name": "calculate", "args": {"expression": expression}, "id": call_id}],
        "usage": {"prompt_tokens": tokens - 10, "completion_tokens": 10},
    }


def answer(text: str, tokens: int = 100) -> dict[str, Any]:
    return {"content": text, "usage": {"prompt_tokens": tokens - 10, "completion_tokens": 10}}


def never_done(n: int) -> list[dict[str, Any]]:
    """A model that keeps asking for tools (n replies)."""
    return [calc(f"{i}+1", f"c{i}") for i in range(n)]


def thread(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


@pytest.mark.parametrize(
    ("ctx", "expected_error", "model_calls", "tool_calls"),
    [
        (Context(max_model_calls=2), "max_model_calls (2) reached: 2 used", 2, 1),
        (
            Context(max_tool_calls=2),
            "max_tool_calls (2) reached: 2 used, 1 more requested",
            3,
            2,
        ),
        (Context(max_tokens=250), "max_tokens (250) reached: 300 used", 3, 2),
    ],
)
async def test_each_budget_ends_the_run_through_finalize(
    scripted_model: Any, ctx: Context, expected_error: str, model_calls: int, tool_calls: int
) -> None:
    model = scripted_model(*never_done(6))
    result = await build_graph(model=model).ainvoke(ask("count forever"), context=ctx)

    assert result["success"] is False
    assert result["error"] == expected_error
    limit = expected_error.split(" reached")[0]
    assert result["final_answer"].startswith(
        f"I'm sorry — I could not finish this request within the limit of {limit}"
    )
    assert result["metrics"]["stopped_by"] == expected_error.split(" ")[0]
    assert result["metrics"]["model_calls"] == model_calls == len(model.calls)
    assert result["metrics"]["tool_calls"] == tool_calls
    # The history stays valid: every requested tool call has an answer.
    asked = {c["id"] for m in result["messages"] if isinstance(m, AIMessage) for c in m.tool_calls}
    answered = {m.tool_call_id for m in result["messages"] if isinstance(m, ToolMessage)}
    assert asked == answered


async def test_budgets_compose_and_the_first_limit_reached_stops(scripted_model: Any) -> None:
    model = scripted_model(*never_done(6))
    ctx = Context(max_model_calls=5, max_tool_calls=1, max_tokens=10_000)
    result = await build_graph(model=model).ainvoke(ask("go"), context=ctx)
    assert result["error"].startswith("max_tool_calls (1) reached")
    assert len(model.calls) == 2


async def test_an_answer_within_budget_succeeds_even_when_the_limit_is_then_reached(
    scripted_model: Any,
) -> None:
    model = scripted_model(calc("2+2", "c1"), answer("4"))
    result = await build_graph(model=model).ainvoke(ask("2+2?"), context=Context(max_tokens=200))
    assert result["success"] is True and result["final_answer"] == "4"
    assert result["metrics"]["completed"] is True and result["metrics"]["stopped_by"] is None


async def test_cost_limit_uses_the_price_table(scripted_model: Any, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    # 1M tokens cost $1000 here, so each 100-token reply costs 0.09 + 0.01 = $0.10.
    prices.write_text(json.dumps({"scripted": {"input_per_1m": 1000, "output_per_1m": 1000}}))
    model = scripted_model(*never_done(6))
    ctx = Context(max_cost_usd=0.25, price_table=str(prices))
    result = await build_graph(model=model).ainvoke(ask("go"), context=ctx)
    assert result["error"] == "max_cost_usd (0.25) reached: 0.3 used"
    assert result["metrics"]["cost_usd"] == pytest.approx(0.3)


async def test_a_cost_limit_without_prices_stops_instead_of_spending_blind(
    scripted_model: Any,
) -> None:
    model = scripted_model(*never_done(3))
    result = await build_graph(model=model).ainvoke(ask("go"), context=Context(max_cost_usd=1.0))
    assert result["success"] is False
    assert "cannot be enforced: no price for scripted" in result["error"]
    assert len(model.calls) == 1


async def test_wall_time_limit_stops_a_slow_run(scripted_model: Any) -> None:
    @tool
    async def wait_a_moment() -> str:
        """Wait a little, then report."""
        await asyncio.sleep(0.3)
        return "waited"

    reply = {"tool_calls": [{"name": "wait_a_moment", "args": {}}]}
    model = scripted_model(reply, reply, reply)
    agent = build_agent(tools=[wait_a_moment], model=model)
    result = await agent.ainvoke(ask("wait"), context=Context(max_wall_time_s=0.2))
    assert result["error"].startswith("max_wall_time_s (0.2) reached")
    assert len(model.calls) == 1  # the tool ran once; the next model call was not made


async def test_each_run_on_a_thread_gets_a_fresh_budget(scripted_model: Any) -> None:
    model = scripted_model(calc("1+1", "a1"), answer("2"), calc("2+2", "b1"), answer("4"))
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    ctx = Context(max_model_calls=2)
    first = await graph.ainvoke(ask("1+1?"), thread("fresh"), context=ctx)
    second = await graph.ainvoke(ask("2+2?"), thread("fresh"), context=ctx)
    assert first["success"] is True and second["success"] is True
    assert second["usage"]["scripted"]["calls"] == 4  # the thread's total
    assert second["metrics"]["model_calls"] == 2  # this run's
    assert second["metrics"]["tools"] == {"calculate": {"calls": 1, "errors": 0}}


async def test_time_waiting_for_approval_is_not_wall_time(scripted_model: Any) -> None:
    @tool
    def post_note(text: str) -> str:
        """Post a note to the team board."""
        return f"posted {text!r}"

    post_note.metadata = {"side_effect": "write", "timeout_s": 5.0}
    model = scripted_model(
        {"tool_calls": [{"name": "post_note", "args": {"text": "hi"}, "id": "n1"}]},
        answer("Posted."),
    )
    graph = build_agent(tools=[post_note], model=model, checkpointer=InMemorySaver())
    ctx = Context(max_wall_time_s=1.0)
    paused = await graph.ainvoke(ask("post hi"), thread("wait"), context=ctx)
    assert "__interrupt__" in paused
    time.sleep(1.2)  # the reviewer takes longer than the whole run may work
    result = await graph.ainvoke(Command(resume="approve"), thread("wait"), context=ctx)
    assert result["success"] is True, result["error"]
    assert result["metrics"]["interrupts"] == 1
    assert result["metrics"]["paused_s"] >= 1.2
    assert result["metrics"]["wall_time_s"] < 1.0


async def test_budget_events_reach_the_custom_stream(scripted_model: Any) -> None:
    model = scripted_model(calc("1+1", "c1"), answer("2"))
    events = [
        data
        async for mode, data in build_graph(model=model).astream(
            ask("1+1?"), context=Context(max_model_calls=5), stream_mode=["custom", "updates"]
        )
        if mode == "custom" and data.get("event") == "budget_used"
    ]
    assert [e["spent"]["model_calls"] for e in events] == [1, 2]
    assert [e["remaining"]["max_model_calls"] for e in events] == [4, 3]


async def test_metrics_report_tools_tokens_and_context_use(scripted_model: Any) -> None:
    model = scripted_model(calc("1/0", "c1", tokens=40), answer("undefined", tokens=60))
    result = await build_graph(model=model).ainvoke(ask("1/0?"))
    metrics = result["metrics"]
    assert metrics["completed"] is True
    assert metrics["iterations"] == 2
    assert metrics["tools"] == {"calculate": {"calls": 1, "errors": 1}}
    assert (metrics["tool_calls"], metrics["tool_errors"]) == (1, 1)
    assert metrics["models"]["scripted"]["total_tokens"] == 100
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (80, 20)
    assert metrics["max_context_utilisation"] is not None
    assert metrics["interrupts"] == 0 and metrics["degraded"] == []
