"""Run clock, run-scoped spend, budget checks, child budgets and metrics (nodes/finish.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.checkpoint.base.id import uuid6

from nodes.context import Context
from nodes.finish import budget_stop, child_context, metrics_of, price_table_for, run_usage
from nodes.state import (
    ModelUsage,
    ToolResult,
    checkpoint_time,
    combine_clock_updates,
    merge_run_clock,
    pause_credit,
    start_clock,
    subtract_usage,
    wall_time_of,
)


def usage(calls: int, tokens_in: int, tokens_out: int) -> ModelUsage:
    return ModelUsage(
        calls=calls,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        total_tokens=tokens_in + tokens_out,
    )


def tool_result(name: str, ok: bool = True) -> ToolResult:
    return ToolResult(
        tool=name, call_id=name, ok=ok, error_code=None if ok else "tool_error", duration_ms=1.0
    )


def run_state(
    *, before: dict[str, Any], after: dict[str, Any], started_at: float = 1000.0
) -> dict[str, Any]:
    """A thread that had `before` when the run started and has `after` now."""
    clock = start_clock(before, now=started_at)["run_clock"]
    return {**after, "run_clock": merge_run_clock(None, clock)}


def test_a_start_replaces_the_clock_and_pauses_add_up() -> None:
    first = merge_run_clock(None, start_clock({}, now=10.0)["run_clock"])
    paused = merge_run_clock(first, {"paused_s": 2.5, "interrupts": 1})
    paused = merge_run_clock(paused, {"paused_s": 1.5, "interrupts": 1})
    assert paused is not None
    assert (paused["paused_s"], paused["interrupts"]) == (4.0, 2)
    restarted = merge_run_clock(paused, start_clock({}, now=50.0)["run_clock"])
    assert restarted is not None
    assert (restarted["started_at"], restarted["paused_s"], restarted["interrupts"]) == (50, 0, 0)
    assert merge_run_clock(None, {"paused_s": 1.0}) is None
    assert first is not None and first["paused_s"] == 0.0  # inputs are never mutated


def test_wall_time_leaves_out_pauses() -> None:
    clock = merge_run_clock(None, {**start_clock({}, now=100.0)["run_clock"], "paused_s": 30.0})
    assert clock is not None
    assert wall_time_of(clock, now=145.0) == 15.0


def test_subtract_usage_keeps_only_what_this_run_used() -> None:
    earlier = {"a": usage(2, 100, 10), "b": usage(1, 50, 5)}
    total = {"a": usage(5, 400, 40), "b": usage(1, 50, 5), "c": usage(1, 10, 1)}
    assert subtract_usage(total, earlier) == {"a": usage(3, 300, 30), "c": usage(1, 10, 1)}


def test_spend_counts_from_the_start_of_the_run_not_the_thread() -> None:
    before = {"usage": {"m": usage(4, 1000, 100)}, "tool_results": [tool_result("x")] * 3}
    after = {
        "usage": {"m": usage(6, 1500, 150)},
        "tool_results": [tool_result("x")] * 3 + [tool_result("y", ok=False)],
    }
    state = run_state(before=before, after=after)
    assert run_usage(state) == {"m": usage(2, 500, 50)}
    ctx = Context(max_model_calls=3, max_tool_calls=2)
    assert budget_stop(state, ctx, now=1000.0) is None  # 2 of 3 calls, 1 of 2 tools
    assert budget_stop(state, Context(max_model_calls=2), now=1000.0) == (
        "max_model_calls (2) reached: 2 used"
    )


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (Context(max_tokens=550), "max_tokens (550) reached: 550 used"),
        (Context(max_wall_time_s=5), "max_wall_time_s (5) reached: 7 used"),
        (Context(max_tokens=10_000, max_model_calls=2), "max_model_calls (2) reached: 2 used"),
    ],
)
def test_each_limit_stops_with_its_reason(ctx: Context, expected: str) -> None:
    state = run_state(before={}, after={"usage": {"m": usage(2, 500, 50)}}, started_at=1000.0)
    assert budget_stop(state, ctx, now=1007.0) == expected


def test_requested_tool_calls_must_fit_the_limit() -> None:
    state = run_state(before={}, after={"tool_results": [tool_result("t")]})
    ctx = Context(max_tool_calls=3)
    assert budget_stop(state, Context(max_tool_calls=1), now=1000.0) is None  # may still answer
    assert budget_stop(state, ctx, now=1000.0, tool_calls=2) is None
    assert budget_stop(state, ctx, now=1000.0, tool_calls=3) == (
        "max_tool_calls (3) reached: 1 used, 3 more requested"
    )


def test_cost_needs_a_price_for_every_model(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai:m": {"input_per_1m": 2.0, "output_per_1m": 8.0}}))
    state = run_state(before={}, after={"usage": {"m": usage(1, 500_000, 100_000)}})
    # 0.5M in at $2 + 0.1M out at $8 = $1.80
    assert budget_stop(state, Context(max_cost_usd=2.0, price_table=str(prices))) is None
    assert budget_stop(state, Context(max_cost_usd=1.5, price_table=str(prices))) == (
        "max_cost_usd (1.5) reached: 1.8 used"
    )
    unpriced = run_state(before={}, after={"usage": {"other": usage(1, 10, 1)}})
    reason = budget_stop(unpriced, Context(max_cost_usd=1.0, price_table=str(prices)))
    assert reason is not None and "no price for other" in reason


def test_a_missing_price_table_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'price_table'.*cannot read"):
        price_table_for(Context(price_table=str(tmp_path / "missing.yaml")))


def test_no_limits_means_no_checks() -> None:
    state = run_state(before={}, after={"usage": {"m": usage(999, 10**9, 10**9)}})
    assert budget_stop(state, Context(), now=10**9) is None


def test_a_child_gets_what_is_left_of_each_limit() -> None:
    state = run_state(
        before={},
        after={"usage": {"m": usage(3, 400, 100)}, "tool_results": [tool_result("t")] * 2},
        started_at=1000.0,
    )
    ctx = Context(max_model_calls=5, max_tool_calls=2, max_tokens=800, max_wall_time_s=60)
    child = child_context(ctx, state, now=1040.0)
    assert (child.max_model_calls, child.max_tokens) == (2, 300)
    assert child.max_tool_calls == 1  # used up: the smallest limit, so the child stops at once
    assert child.max_wall_time_s == pytest.approx(20.0)
    assert child_context(Context(), state) == Context()


def test_checkpoint_time_reads_uuid6_ids() -> None:
    before = __import__("time").time()
    stamp = checkpoint_time(str(uuid6()))
    assert stamp is not None and abs(stamp - before) < 60
    assert checkpoint_time("not-a-uuid") is None
    assert checkpoint_time("6ba7b810-9dad-41d1-80b4-00c04fd430c8") is None  # v4: no time
    assert checkpoint_time(None) is None


def test_pause_credit_is_the_time_since_the_interrupted_step_began() -> None:
    checkpoint_id = str(uuid6())
    asked_at = checkpoint_time(checkpoint_id)
    assert asked_at is not None
    runtime = SimpleNamespace(execution_info=SimpleNamespace(checkpoint_id=checkpoint_id))
    credit = pause_credit(runtime, now=asked_at + 42.0)["run_clock"]
    assert credit["interrupts"] == 1
    assert credit["paused_s"] == pytest.approx(42.0)
    assert pause_credit(None)["run_clock"]["paused_s"] == 0.0


def test_metrics_summarise_the_run(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("m:\n  input_per_1m: 1.0\n  output_per_1m: 2.0\n")
    before = {"usage": {"m": usage(1, 1000, 100)}, "tool_results": [tool_result("old")]}
    after = {
        "usage": {"m": {**usage(4, 4000, 400), "cache_hits": 1}},
        "tool_results": [tool_result("old"), tool_result("a"), tool_result("a", ok=False)],
        "context_windows": [{"utilisation": 0.9}] * 5
        + [{"utilisation": u} for u in (0.2, 0.1, 0.3)],
        "success": False,
        "error": "max_tool_calls (2) reached: 2 used",
        "degraded": ["memory"],
        "iterations": 3,
    }
    state = run_state(before=before, after=after, started_at=1000.0)
    metrics = metrics_of(state, Context(price_table=str(prices)), now=1012.5)
    assert metrics["completed"] is False
    assert metrics["stopped_by"] == "max_tool_calls"
    assert (metrics["model_calls"], metrics["cache_hits"], metrics["iterations"]) == (3, 1, 3)
    assert metrics["tools"] == {"a": {"calls": 2, "errors": 1}}
    assert (metrics["tool_calls"], metrics["tool_errors"]) == (2, 1)
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (3000, 300)
    assert metrics["cost_usd"] == pytest.approx(3000 / 1e6 + 300 * 2 / 1e6)
    assert metrics["wall_time_s"] == 12.5
    # Only this run's three loop calls count, not the thread's earlier 0.9 ones.
    assert metrics["max_context_utilisation"] == 0.3
    assert metrics["degraded"] == ["memory"]
    assert metrics_of(state, Context(), now=1012.5)["cost_usd"] is None  # no price table


def test_a_start_and_a_pause_from_one_node_fold_into_one_update() -> None:
    start = start_clock({}, now=100.0)
    pause = {"run_clock": {"paused_s": 7.5, "interrupts": 1}}
    folded = combine_clock_updates(start, pause)["run_clock"]
    assert (folded["started_at"], folded["paused_s"], folded["interrupts"]) == (100.0, 7.5, 1)
    both_pauses = combine_clock_updates(pause, pause)["run_clock"]
    assert both_pauses == {"paused_s": 15.0, "interrupts": 2}
    assert combine_clock_updates({}, {"usage": {}}) == {}


@pytest.mark.anyio
async def test_price_tables_are_read_off_the_loop_then_served_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from nodes.budgets import PriceTable
    from nodes.finish import load_price_table

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input_per_1m": 1.0, "output_per_1m": 2.0}}))
    ctx = Context(price_table=str(prices))
    await load_price_table(ctx)

    def no_io(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("file I/O after the table was loaded")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "stat", no_io)
        patched.setattr(PriceTable, "from_file", no_io)
        assert price_table_for(ctx).price_of("m") is not None

    prices.write_text(json.dumps({"m": {"input_per_1m": 5.0, "output_per_1m": 5.0}}))
    os.utime(prices, ns=(prices.stat().st_mtime_ns + 10**9,) * 2)
    await load_price_table(ctx)  # a changed file is read again at the next run's start
    price = price_table_for(ctx).price_of("m")
    assert price is not None and price.input_per_1m == 5.0
