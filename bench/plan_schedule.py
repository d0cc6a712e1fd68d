"""Makespan of the planner-executor's eager scheduler versus a wave schedule and the lower bound.

Each task of a DAG is a direct tool call to `sleep_for`, which sleeps the task's scripted
latency (asyncio, so tasks overlap for real). Per DAG:

- eager: the real `plan_execute` graph (scripted planner and synthesizer, so no provider),
  measured from the first task start to the last task end, as recorded by the tool itself;
- core: the scheduler alone (`nodes.planning.run_eager`) without the graph around it, so
  eager minus core is LangGraph's per-task overhead (nested graph runs, tool node);
- waves: the same latencies run level by level (`nodes.planning.run_waves`), each level
  starting only when the previous one has finished, with the same concurrency bound;
- critical path: the longest dependency chain, a lower bound for any schedule (printed with
  total work / max_concurrency, the other lower bound, for wide DAGs).

    python bench/plan_schedule.py [--runs 3] [--scale 1.0] [--max-concurrency 5] [--seed 7]

Prints each makespan and the ratios eager/critical-path and waves/critical-path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool, tool

from graphs.plan_execute import build_graph
from nodes.context import Context
from nodes.offline import ScriptedChatModel
from nodes.planning import (
    PlannedTask,
    SimpleTask,
    TaskStatus,
    critical_path,
    run_eager,
    run_waves,
)

Dag = list[tuple[str, float, tuple[str, ...]]]

# Short chains behind long siblings: a wave schedule makes every chain wait for the slowest
# task of each level, while the eager scheduler lets each chain run at its own pace.
HAND_MADE: Dag = [
    ("a", 0.10, ()),
    ("c", 0.40, ()),
    ("d", 0.05, ()),
    ("b", 0.30, ("a",)),
    ("f", 0.10, ("c",)),
    ("g", 0.30, ("d",)),
    ("e", 0.10, ("b",)),
    ("h", 0.10, ("g",)),
    ("i", 0.20, ("e", "f")),
]


def random_dag(n: int, seed: int) -> Dag:
    """A layered random DAG: each task depends on 0-2 earlier tasks; latencies 20-300 ms."""
    rng = random.Random(seed)
    dag: Dag = []
    for i in range(n):
        earlier = [name for name, _, _ in dag]
        deps = tuple(sorted(rng.sample(earlier, k=min(len(earlier), rng.choice([0, 1, 1, 2])))))
        dag.append((f"t{i}", round(rng.uniform(0.02, 0.30), 3), deps))
    return dag


def scaled(dag: Dag, scale: float) -> Dag:
    return [(name, latency * scale, deps) for name, latency, deps in dag]


def as_plan(dag: Dag) -> list[PlannedTask]:
    return [
        PlannedTask(
            id=name,
            description=f"wait {latency:.3f}s",
            depends_on=list(deps),
            tool="sleep_for",
            tool_args=json.dumps({"task": name, "seconds": latency}),
        )
        for name, latency, deps in dag
    ]


def timed_sleep_tool(spans: dict[str, tuple[float, float]]) -> BaseTool:
    @tool
    async def sleep_for(task: str, seconds: float) -> str:
        """Wait for the given time, standing in for real work.

        Args:
            task: Id of the task doing the work.
            seconds: How long the work takes.
        """
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        spans[task] = (started, time.perf_counter())
        return f"{task} done"

    return sleep_for


def makespan(spans: dict[str, tuple[float, float]]) -> float:
    return max(end for _, end in spans.values()) - min(start for start, _ in spans.values())


async def eager_makespan(dag: Dag, max_concurrency: int) -> float:
    spans: dict[str, tuple[float, float]] = {}
    plan = {"tasks": [t.model_dump() for t in as_plan(dag)]}
    model = ScriptedChatModel(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {
                    "match": {"schema": "FinalAnswer"},
                    "replies": [{"json": {"answer": "done", "cited_task_ids": []}}],
                },
            ]
        }
    )
    graph = build_graph(model=model, tools=[timed_sleep_tool(spans)])
    result = await graph.ainvoke(
        {"request": "run the benchmark DAG"},
        {"recursion_limit": 100},
        context=Context(max_concurrency=max_concurrency),
    )
    if not result.get("success"):
        raise RuntimeError(f"benchmark run failed: {result.get('error')}")
    return makespan(spans)


async def core_makespan(dag: Dag, max_concurrency: int) -> float:
    spans: dict[str, tuple[float, float]] = {}
    tasks = [SimpleTask(name, deps, sleeper(spans, name, latency)) for name, latency, deps in dag]
    await run_eager(tasks, max_concurrency=max_concurrency)
    return makespan(spans)


def sleeper(spans: dict[str, tuple[float, float]], name: str, latency: float) -> Any:
    async def run() -> TaskStatus:
        started = time.perf_counter()
        await asyncio.sleep(latency)
        spans[name] = (started, time.perf_counter())
        return "completed"

    return run


async def wave_makespan(dag: Dag, max_concurrency: int) -> float:
    spans: dict[str, tuple[float, float]] = {}

    tasks = [SimpleTask(name, deps, sleeper(spans, name, latency)) for name, latency, deps in dag]
    await run_waves(tasks, max_concurrency=max_concurrency)
    return makespan(spans)


async def measure(name: str, dag: Dag, runs: int, max_concurrency: int) -> None:
    bound = critical_path(as_plan(dag), {n: latency for n, latency, _ in dag})
    await eager_makespan(dag, max_concurrency)  # warm-up: first-use imports and loading
    eager = statistics.median([await eager_makespan(dag, max_concurrency) for _ in range(runs)])
    core = statistics.median([await core_makespan(dag, max_concurrency) for _ in range(runs)])
    waves = statistics.median([await wave_makespan(dag, max_concurrency) for _ in range(runs)])
    work = sum(latency for _, latency, _ in dag) / max_concurrency
    print(  # noqa: T201
        f"{name:<22} {len(dag):>5} {bound:>10.3f} {work:>8.3f} {eager:>9.3f} {core:>8.3f} "
        f"{waves:>9.3f} {eager / bound:>9.2f} {waves / bound:>9.2f}"
    )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per DAG (median reported)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every latency")
    parser.add_argument("--max-concurrency", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7, help="seed of the random DAGs")
    args = parser.parse_args(argv)
    print(  # noqa: T201
        f"{'DAG':<22} {'tasks':>5} {'critical s':>10} {'work/k s':>8} {'eager s':>9} "
        f"{'core s':>8} {'waves s':>9} {'eager/cp':>9} {'waves/cp':>9}"
    )
    dags = {
        "hand-made (9)": HAND_MADE,
        f"random 20 (seed {args.seed})": random_dag(20, args.seed),
        f"random 40 (seed {args.seed + 1})": random_dag(40, args.seed + 1),
    }
    for name, dag in dags.items():
        await measure(name, scaled(dag, args.scale), args.runs, args.max_concurrency)
    print(  # noqa: T201
        f"max_concurrency={args.max_concurrency}. critical = longest dependency chain; work/k = "
        "total latency / max_concurrency; any schedule needs at least the larger of the two."
    )


if __name__ == "__main__":
    asyncio.run(main())
