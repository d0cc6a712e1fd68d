"""Overhead of weftgraph's ReAct loop versus a minimal hand-written LangGraph loop.

Both graphs run in one process with the same in-process scripted model doing N tool round
trips (a calculator call each). The minimal loop is a model node, `ToolNode` and
`tools_condition`; ours adds, on every call, what the library is for: the policy gate with an
audit line per decision, budget checks, context-window trimming, usage and tool records,
untrusted-output wrapping, breakers, metrics.

    python bench/react_overhead.py [--runs 30] [--n 1 10 50] [--latency-ms 0 50]

For each model latency (0 ms measures the machinery alone; a few tens of ms is a fast real
model) it prints the median per-run time of each loop and the ratio ours/minimal (the
foundation issue's target is <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from graphs.react import build_graph
from nodes.context import Context
from nodes.offline import ScriptedChatModel
from tools import builtin_tools


def scripted_replies(round_trips: int, latency_s: float = 0.0) -> list[dict[str, Any]]:
    """N calculator calls, then a final answer; each reply takes `latency_s`."""
    calls = [
        {
            "tool_calls": [
                {"name": "calculate", "args": {"expression": f"{i} * 3"}, "id": f"c{i}"}
            ],
            "delay": latency_s,
        }
        for i in range(round_trips)
    ]
    return [*calls, {"content": "done", "delay": latency_s}]


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
    make_graph: Callable[[Any], Any],
    round_trips: int,
    runs: int,
    latency_s: float,
    **invoke_kwargs: Any,
) -> float:
    """Median seconds per run; each run gets a fresh model so the script restarts."""
    samples = []
    limit = {"recursion_limit": 4 * round_trips + 10}
    for _ in range(runs + 2):  # two warm-up runs
        model = ScriptedChatModel(replies=scripted_replies(round_trips, latency_s))
        graph = make_graph(model)
        started = time.perf_counter()
        result = await graph.ainvoke({"messages": [HumanMessage("go")]}, limit, **invoke_kwargs)
        samples.append(time.perf_counter() - started)
        assert result["messages"][-1].content == "done"
    return statistics.median(samples[2:])


async def main(ns: Sequence[int], runs: int, latencies_ms: Sequence[float]) -> None:
    rows = []
    for latency_ms in latencies_ms:
        latency_s = latency_ms / 1000
        for n in ns:
            # Fewer runs when the model is slow: the medians settle quickly then.
            count = runs if latency_ms == 0 else max(5, runs // 5)
            minimal = await time_runs(build_minimal, n, count, latency_s)
            ours = await time_runs(
                lambda model: build_graph(model=model),
                n,
                count,
                latency_s,
                context=Context(max_iterations=n + 5),
            )
            rows.append((latency_ms, n, minimal, ours))
    header = f"{'latency':>8} {'N':>4} {'minimal ms':>12} {'weftgraph ms':>13} {'ratio':>7}"
    print(header)  # noqa: T201
    for latency_ms, n, minimal, ours in rows:
        print(  # noqa: T201
            f"{latency_ms:>6g}ms {n:>4} {minimal * 1000:>12.2f} {ours * 1000:>13.2f} "
            f"{ours / minimal:>7.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="+",
        default=[0, 50],
        help="model latency per call (0 = the loops' own overhead)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.n, args.runs, args.latency_ms))
