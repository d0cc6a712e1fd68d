"""Overhead of weftgraph's ReAct loop versus a minimal hand-written LangGraph loop.

Both graphs run in one process with the same in-process scripted model doing N tool round
trips (a calculator call each), so the difference is the loop's own machinery: usage
accounting, tool-call records, the run's tool subset, the iteration guard.

    python bench/react_overhead.py [--runs 30] [--n 1 10 50]

Prints the median per-run time of each and the ratio ours/minimal (target: <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from graphs.react import build_graph
from nodes.context import Context
from nodes.offline import ScriptedChatModel
from tools import builtin_tools


def scripted_replies(round_trips: int) -> list[AIMessage]:
    calls = [
        AIMessage(
            "",
            tool_calls=[
                {"name": "calculate", "args": {"expression": f"{i} * 3"}, "id": f"c{i}"}
            ],
        )
        for i in range(round_trips)
    ]
    return [*calls, AIMessage("done")]


def build_minimal(model: Any) -> Any:
    """The smallest correct tool loop: model node, ToolNode, tools_condition."""
    tools = builtin_tools()
    bound = model.bind_tools(tools)

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", call_model)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile()


async def time_runs(
    make_graph: Callable[[Any], Any], round_trips: int, runs: int, **invoke_kwargs: Any
) -> float:
    """Median seconds per run; each run gets a fresh model so the script restarts."""
    samples = []
    limit = {"recursion_limit": 4 * round_trips + 10}
    for _ in range(runs + 2):  # two warm-up runs
        graph = make_graph(ScriptedChatModel(replies=scripted_replies(round_trips)))
        started = time.perf_counter()
        result = await graph.ainvoke(
            {"messages": [HumanMessage("go")]}, limit, **invoke_kwargs
        )
        samples.append(time.perf_counter() - started)
        assert result["messages"][-1].content == "done"
    return statistics.median(samples[2:])


async def main(ns: Sequence[int], runs: int) -> None:
    rows = []
    for n in ns:
        minimal = await time_runs(build_minimal, n, runs)
        ours = await time_runs(
            lambda model: build_graph(model=model), n, runs,
            context=Context(max_iterations=n + 5),
        )
        rows.append((n, minimal, ours))
    print(f"{'N':>4} {'minimal ms':>12} {'weftgraph ms':>13} {'ratio':>7}")  # noqa: T201
    for n, minimal, ours in rows:
        print(f"{n:>4} {minimal * 1000:>12.2f} {ours * 1000:>13.2f} {ours / minimal:>7.2f}")  # noqa: T201


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    asyncio.run(main(args.n, args.runs))
