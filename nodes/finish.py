"""How every run starts its clock, checks its budgets and ends: the `finish_run` step.

A *run* is one invocation of a graph (a resume of a paused run continues it). Budgets
(`Context.max_model_calls`, `max_tool_calls`, `max_tokens`, `max_cost_usd`, `max_wall_time_s`)
count from the run's start, so the second message on a thread gets a fresh budget:

- `start_clock(state)` snapshots what the thread had used (`usage`, `tool_results`) and the time;
  patterns write it in their first step, the agent loop on the first model call of a turn.
- `budget_stop(state, ctx)` is the check a pattern makes before each model or tool step; a
  reason means: stop now, through the pattern's finalize step, with `success=False`.
- `child_context(ctx, state)` gives a sub-agent what is left of each limit, so a worker can
  never spend the parent's whole budget twice.
- `pause_credit(runtime)` is what a node that called `interrupt()` adds after it resumes, so the
  time a human took to answer is not counted as wall time.

`make_finish_run()` is the last step of every graph before END: it applies the output
guardrail (top-level graphs only; `Context.output_guardrail`) and writes `metrics`
(`nodes.state.RunMetrics`) for the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from langgraph._internal._runnable import RunnableCallable
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from nodes.budgets import LIMITS, Budget, PriceTable, Spend, budget_event, cost_of, stopped_by
from nodes.budgets import stop_reason as budget_stop_reason
from nodes.context import Context, ModelRole, context_of
from nodes.guardrails import GuardrailRules, output_guardrail_steps
from nodes.model import ModelOverride
from nodes.prompts import AGENT_STOPPED_MESSAGE
from nodes.state import (
    ModelUsage,
    RunMetrics,
    ToolMetrics,
    ToolResult,
    add_usage,
    clock_of,
    merge_run_clock,
    subtract_usage,
    wall_time_of,
)

logger = logging.getLogger(__name__)

RUN_LIMITS = tuple(name for name in LIMITS if name != "max_iterations")
"""Run-wide limits; `max_iterations` bounds each agent loop and is checked by the loop itself."""

def run_usage(state: Mapping[str, Any]) -> dict[str, ModelUsage]:
    """Usage of this run only (the `usage` channel counts the whole thread)."""
    return subtract_usage(state.get("usage"), clock_of(state)["usage_at_start"])


def run_tool_results(state: Mapping[str, Any]) -> list[ToolResult]:
    """Tool-call records of this run only."""
    results: list[ToolResult] = list(state.get("tool_results") or [])
    return results[clock_of(state)["tool_calls_at_start"] :]


_PRICE_TABLES: dict[str, tuple[int, PriceTable]] = {}
"""Price tables by path, with the file's mtime when read."""


def _read_price_table(path: Path) -> PriceTable:
    """Read (or re-read, when the file changed) a price table. Blocking file I/O."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(
            f"context field 'price_table': cannot read {str(path)!r} ({exc.strerror}); "
            "expected a JSON or YAML file of {model: {input_per_1m, output_per_1m}}"
        ) from None
    cached = _PRICE_TABLES.get(str(path))
    if cached is not None and cached[0] == mtime:
        return cached[1]
    table = PriceTable.from_file(path)
    _PRICE_TABLES[str(path)] = (mtime, table)
    return table


async def load_price_table(ctx: Context) -> None:
    """Read the run's price table in a worker thread (re-read when the file changed).

    Async steps that start a run await it, so budget checks and metrics on the event loop
    find the table in memory and never touch the disk.
    """
    if ctx.price_table:
        await asyncio.to_thread(_read_price_table, Path(ctx.price_table).expanduser())


def price_table_for(ctx: Context) -> PriceTable:
    """The run's price table (`Context.price_table`): from memory once `load_price_table` (or
    an earlier call) has read it, else read now."""
    if not ctx.price_table:
        return PriceTable()
    path = Path(ctx.price_table).expanduser()
    cached = _PRICE_TABLES.get(str(path))
    return cached[1] if cached is not None else _read_price_table(path)


def run_spend(
    state: Mapping[str, Any],
    ctx: Context,
    *,
    now: float | None = None,
) -> Spend:
    """What this run has spent so far."""
    usage = run_usage(state)
    cost = cost_of(usage, price_table_for(ctx)) if ctx.max_cost_usd is not None else None
    return Spend(
        model_calls=sum(u["calls"] for u in usage.values()),
        tool_calls=len(run_tool_results(state)),
        tokens=sum(u["total_tokens"] for u in usage.values()),
        cost_usd=cost.usd if cost else 0.0,
        wall_time_s=wall_time_of(clock_of(state), now=now),
        unpriced_models=cost.unpriced_models if cost else (),
    )


def run_budget(ctx: Context) -> Budget:
    """The run-wide limits the context sets (`max_iterations` excluded, see RUN_LIMITS)."""
    return Budget(**{name: getattr(ctx, name) for name in RUN_LIMITS})


def budget_stop(
    state: Mapping[str, Any],
    ctx: Context,
    *,
    now: float | None = None,
    tool_calls: int | None = None,
    model_calls: int | None = None,
) -> str | None:
    """Why the run must stop before its next step, or None to go on.

    Before a model call, leave the counts None: a limit already reached stops the run, except
    `max_tool_calls` (the model may still answer without tools). Before running tools, pass
    `tool_calls` (the number requested): they must fit in `max_tool_calls`. Before a step that
    makes several model calls at once (a debate round), pass `model_calls`: they must fit in
    `max_model_calls`.
    """
    budget = run_budget(ctx)
    if not budget.active:
        return None
    spend = run_spend(state, ctx, now=now)
    # Tool calls are judged by what is about to run, below, not by what has run.
    reason = budget_stop_reason(dataclasses.replace(budget, max_tool_calls=None), spend)
    tool_limit, call_limit = budget.max_tool_calls, budget.max_model_calls
    if reason is None and tool_calls and tool_limit is not None:
        if spend.tool_calls + tool_calls > tool_limit:
            reason = (
                f"max_tool_calls ({tool_limit}) reached: {spend.tool_calls} used, "
                f"{tool_calls} more requested"
            )
    if reason is None and model_calls and call_limit is not None:
        if spend.model_calls + model_calls > call_limit:
            reason = (
                f"max_model_calls ({call_limit}) reached: {spend.model_calls} used, "
                f"{model_calls} more needed"
            )
    if reason:
        logger.info("budget stop: %s", reason)
    return reason


def stopped_outcome(reason: str, partial: str | None = None) -> dict[str, Any]:
    """The outcome keys of a run that stopped early: an apology with the best partial answer.

    `reason` is the stop reason (e.g. a budget's); it becomes `error`, and its limit name is
    what the user reads.
    """
    limit = reason.split(" reached")[0] if " reached" in reason else reason
    partial = (partial or "").strip()
    answer = AGENT_STOPPED_MESSAGE.format(
        limit=limit, partial=f"Here is what I had so far: {partial}" if partial else ""
    ).strip()
    return {"final_answer": answer, "success": False, "error": reason}


def emit_budget_event(state: Mapping[str, Any], ctx: Context) -> None:
    """Send a `budget_used` progress event when the run has limits (what is spent and left)."""
    budget = run_budget(ctx)
    if not budget.active:
        return
    try:
        writer = get_stream_writer()
    except RuntimeError:  # outside a graph run
        return
    writer(budget_event(budget, run_spend(state, ctx)))


def child_limits(
    ctx: Context, state: Mapping[str, Any], *, share: int = 1, now: float | None = None
) -> dict[str, Any]:
    """What is left of each set run limit, split `share` ways, as Context field values.

    For sub-agents: parallel children split the counts (calls, tokens, cost) but each gets the
    whole remaining wall time, since they run at the same time. A limit already used up gives
    the smallest positive value, so the child stops at its first check; parents should call
    `budget_stop` before starting children anyway. Plain values, so the result can travel in a
    `Send` payload.
    """
    budget = run_budget(ctx)
    if not budget.active:
        return {}
    spend = run_spend(state, ctx, now=now)
    used = {
        "max_model_calls": spend.model_calls,
        "max_tool_calls": spend.tool_calls,
        "max_tokens": spend.tokens,
        "max_cost_usd": spend.cost_usd,
        "max_wall_time_s": spend.wall_time_s,
    }
    parts = max(1, share)
    left: dict[str, Any] = {}
    for name in budget.active:
        allowed = getattr(ctx, name)
        remaining = allowed - used[name]
        if name != "max_wall_time_s":
            remaining = remaining / parts
        if isinstance(allowed, int):
            left[name] = max(1, int(remaining))
        else:
            left[name] = max(1e-6, float(remaining))
    return left


def child_context(
    ctx: Context, state: Mapping[str, Any], *, share: int = 1, now: float | None = None
) -> Context:
    """`ctx` with each run limit reduced to this child's part of what is left (`child_limits`)."""
    left = child_limits(ctx, state, share=share, now=now)
    return dataclasses.replace(ctx, **left) if left else ctx


def child_accounting(output: Mapping[str, Any]) -> dict[str, Any]:
    """The parent-state update that carries a finished sub-run's spending up.

    Usage, tool results and degraded capabilities merge into the parent's channels, and the
    time the child waited on humans is credited to the parent's clock too.
    """
    update: dict[str, Any] = {
        "usage": output.get("usage") or {},
        "tool_results": output.get("tool_results") or [],
    }
    if output.get("degraded"):
        update["degraded"] = list(output["degraded"])
    metrics = output.get("metrics") or {}
    if metrics.get("interrupts"):
        update["run_clock"] = {
            "paused_s": float(metrics.get("paused_s", 0.0)),
            "interrupts": int(metrics["interrupts"]),
        }
    return update


def _tool_metrics(results: list[ToolResult]) -> dict[str, ToolMetrics]:
    by_tool: dict[str, ToolMetrics] = {}
    for result in results:
        entry = by_tool.setdefault(result["tool"], ToolMetrics(calls=0, errors=0))
        entry["calls"] += 1
        entry["errors"] += 0 if result["ok"] else 1
    return by_tool


def metrics_of(
    state: Mapping[str, Any],
    ctx: Context,
    *,
    iterations: int | None = None,
    now: float | None = None,
) -> RunMetrics:
    """The run's metrics from the shared channels (pure; `finish_run` writes them)."""
    clock = clock_of(state)
    usage = run_usage(state)
    results = run_tool_results(state)
    tools = _tool_metrics(results)
    prices = price_table_for(ctx)
    cost = cost_of(usage, prices)
    model_calls = sum(u["calls"] for u in usage.values())
    windows = list(state.get("context_windows") or [])
    # The records are bounded per thread; this run's are the last ones, one per loop call.
    recent = windows[-model_calls:] if model_calls else []
    utilisation = max((w["utilisation"] for w in recent), default=None)
    if iterations is None:
        iterations = int(state.get("iterations") or 0)
    return RunMetrics(
        completed=state.get("success") is True,
        stopped_by=stopped_by(state.get("error"), RUN_LIMITS + ("max_iterations",)),
        iterations=iterations,
        model_calls=model_calls,
        cache_hits=sum(u.get("cache_hits", 0) for u in usage.values()),
        tool_calls=len(results),
        tool_errors=sum(t["errors"] for t in tools.values()),
        tools=tools,
        models=usage,
        input_tokens=sum(u["input_tokens"] for u in usage.values()),
        output_tokens=sum(u["output_tokens"] for u in usage.values()),
        cost_usd=cost.usd if cost.known and prices.prices else None,
        wall_time_s=round(wall_time_of(clock, now=now), 3),
        paused_s=round(clock["paused_s"], 3),
        interrupts=clock["interrupts"],
        max_context_utilisation=round(utilisation, 4) if utilisation is not None else None,
        degraded=list(state.get("degraded") or []),
    )


def with_metrics(
    state: Mapping[str, Any],
    update: dict[str, Any],
    ctx: Context,
    *,
    iterations: Callable[[Mapping[str, Any]], int] | None = None,
) -> dict[str, Any]:
    """`update` plus the run's `metrics`, computed as if `update` were already applied.

    For a step that ends a run itself (e.g. a failed pipeline stage, which stays the last node
    so that `update_state` on the thread resumes from it).
    """
    merged: dict[str, Any] = {**state, **update}
    if "usage" in update:
        merged["usage"] = add_usage(state.get("usage"), update["usage"])
    if "tool_results" in update:
        merged["tool_results"] = [*(state.get("tool_results") or []), *update["tool_results"]]
    if "run_clock" in update:
        merged["run_clock"] = merge_run_clock(state.get("run_clock"), update["run_clock"])
    count = iterations(merged) if iterations else None
    metrics = metrics_of(merged, ctx, iterations=count)
    logger.debug("run metrics: %s", metrics)
    return {**update, "metrics": metrics}


def make_finish_run(
    *,
    guardrail: GuardrailRules | None | bool = True,
    model: ModelOverride = None,
    role: ModelRole = "agent",
    iterations: Callable[[Mapping[str, Any]], int] | None = None,
    name: str = "finish_run",
) -> RunnableCallable:
    """The step every graph takes last: output guardrail, then the run's `metrics`.

    Args:
        guardrail: True (default rules), a `GuardrailRules` for this graph, or False for graphs
            whose answer is not shown to a user (sub-agents). The mode is per run
            (`Context.output_guardrail`, default off).
        model: Model override for the guardrail's revise mode.
        role: Which context model writes guardrail revisions.
        iterations: How to count this pattern's loop iterations from its state (default: the
            `iterations` key).
        name: The node's name.

    Reads the shared channels; writes `metrics` and whatever the guardrail changes
    (`final_answer`, `messages`, `usage`, and `success`/`error` when a reviewer rejects).
    """
    steps = None
    if guardrail is not False:
        rules = guardrail if isinstance(guardrail, GuardrailRules) else None
        steps = output_guardrail_steps(rules, model=model, role=role)

    def conclude(
        state: Mapping[str, Any], runtime: Runtime[Context], update: dict[str, Any]
    ) -> dict[str, Any]:
        return with_metrics(state, update, context_of(runtime), iterations=iterations)

    async def afinish(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        await load_price_table(context_of(runtime))
        update = await steps[1](state, runtime) if steps else {}
        return conclude(state, runtime, update)

    def finish(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        update = steps[0](state, runtime) if steps else {}
        return conclude(state, runtime, update)

    return RunnableCallable(finish, afinish, name=name)


__all__ = [
    "RUN_LIMITS",
    "budget_stop",
    "child_accounting",
    "child_context",
    "child_limits",
    "emit_budget_event",
    "load_price_table",
    "make_finish_run",
    "metrics_of",
    "price_table_for",
    "run_budget",
    "run_spend",
    "run_tool_results",
    "run_usage",
    "stopped_outcome",
    "with_metrics",
]
