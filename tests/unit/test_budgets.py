"""Budgets as pure functions: spend from state, each limit stopping with the right reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nodes.budgets import (
    LIMITS,
    Budget,
    PriceTable,
    PriceTableError,
    Spend,
    breaches,
    budget_event,
    cost_of,
    remaining,
    spend_of,
    stop_reason,
    stopped_by,
)

PRICES = PriceTable.from_mapping(
    {
        "openai:big": {"input_per_1m": 2.0, "output_per_1m": 8.0},
        "small": {"input_per_1m": 0.1, "output_per_1m": 0.4},
    }
)


def _values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iterations": 3,
        "usage": {
            "openai:big": {
                "calls": 2,
                "input_tokens": 1000,
                "output_tokens": 500,
                "total_tokens": 1500,
            },
            "openai:small": {
                "calls": 1,
                "input_tokens": 2000,
                "output_tokens": 0,
                "total_tokens": 2000,
            },
        },
        "tool_results": [{"tool": "calculate", "ok": True}] * 4,
    }
    values.update(overrides)
    return values


def test_spend_is_read_from_the_shared_channels() -> None:
    spend = spend_of(_values(), prices=PRICES, started_at=100.0, now=112.5)
    assert spend == Spend(
        iterations=3,
        model_calls=3,
        tool_calls=4,
        tokens=3500,
        cost_usd=pytest.approx(0.0062),
        wall_time_s=12.5,  # type: ignore[arg-type]
    )


def test_cost_uses_only_the_configured_table_and_names_unpriced_models() -> None:
    usage = {"openai:unknown": {"input_tokens": 10, "output_tokens": 1}, "openai:big": {}}
    cost = cost_of(usage, PRICES)
    assert cost.usd == 0 and cost.unpriced_models == ("openai:unknown",) and not cost.known
    assert cost_of(usage, PriceTable()).unpriced_models == ("openai:unknown",)


@pytest.mark.parametrize(
    ("limit", "allowed", "reason"),
    [
        ("max_iterations", 3, "max_iterations (3) reached: 3 used"),
        ("max_model_calls", 3, "max_model_calls (3) reached: 3 used"),
        ("max_tool_calls", 2, "max_tool_calls (2) reached: 4 used"),
        ("max_tokens", 3000, "max_tokens (3000) reached: 3500 used"),
        ("max_cost_usd", 0.005, "max_cost_usd (0.005) reached: 0.0062 used"),
        ("max_wall_time_s", 10, "max_wall_time_s (10) reached: 12.5 used"),
    ],
)
def test_each_budget_stops_the_run_with_its_reason(limit: str, allowed: float, reason: str) -> None:
    spend = spend_of(_values(), prices=PRICES, started_at=0.0, now=12.5)
    assert stop_reason(Budget(**{limit: allowed}), spend) == reason
    assert stopped_by(reason) == limit
    roomy = {limit: allowed * 100}
    assert stop_reason(Budget(**roomy), spend) is None


def test_limits_compose_and_report_every_breach_in_a_fixed_order() -> None:
    spend = spend_of(_values(), prices=PRICES, started_at=0.0, now=30.0)
    budget = Budget(max_wall_time_s=20, max_tool_calls=4, max_tokens=10_000)
    assert [b.limit for b in breaches(budget, spend)] == ["max_tool_calls", "max_wall_time_s"]
    reason = stop_reason(budget, spend)
    assert reason is not None and reason.startswith("max_tool_calls (4) reached")
    assert "max_wall_time_s (20) reached" in reason
    assert remaining(budget, spend) == {
        "max_tool_calls": 0.0,
        "max_tokens": 6500.0,
        "max_wall_time_s": 0.0,
    }


def test_a_cost_limit_without_prices_stops_instead_of_guessing() -> None:
    spend = spend_of(_values(), prices=PriceTable())
    reason = stop_reason(Budget(max_cost_usd=100.0), spend)
    assert reason is not None and "cannot be enforced" in reason
    assert "openai:big, openai:small" in reason
    assert stop_reason(Budget(max_tokens=10**6), spend) is None


def test_no_limits_means_never_stop() -> None:
    assert Budget().active == ()
    assert stop_reason(Budget(), Spend(model_calls=10**9)) is None
    assert stopped_by(None) is None


def test_budget_values_are_validated() -> None:
    with pytest.raises(ValueError, match=r"'max_tokens' must be a number > 0 or None, got 0"):
        Budget(max_tokens=0)
    with pytest.raises(ValueError, match="max_cost_usd"):
        Budget(max_cost_usd=-1.0)


def test_budget_from_context_reads_only_the_fields_it_has() -> None:
    class Ctx:
        max_iterations = 7
        max_cost_usd = 0.5

    budget = Budget.from_context(Ctx())
    assert budget.active == ("max_iterations", "max_cost_usd")
    assert set(LIMITS) >= set(budget.active)


def test_price_table_from_file_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m": {"input_per_1m": 1, "output_per_1m": 2}}))
    table = PriceTable.from_file(path)
    assert table.price_of("openai:m") is not None and table.price_of("other") is None
    yaml_path = tmp_path / "prices.yaml"
    yaml_path.write_text("m:\n  input_per_1m: 1\n  output_per_1m: 2\n")
    assert PriceTable.from_file(yaml_path) == table
    with pytest.raises(PriceTableError, match=r"'m': 'output_per_1m' must be a number >= 0"):
        PriceTable.from_mapping({"m": {"input_per_1m": 1, "output_per_1m": -2}})
    with pytest.raises(PriceTableError, match="unknown key"):
        PriceTable.from_mapping({"m": {"input": 1}})


def test_budget_event_for_progress_streams() -> None:
    spend = Spend(model_calls=2, tokens=100)
    event = budget_event(Budget(max_model_calls=5), spend)
    assert event["event"] == "budget_used"
    assert event["spent"]["model_calls"] == 2 and event["spent"]["tokens"] == 100
    assert event["remaining"] == {"max_model_calls": 3.0}


def test_the_example_price_table_prices_the_default_model() -> None:
    from pathlib import Path

    from nodes.context import DEFAULT_MODEL

    example = Path(__file__).resolve().parents[2] / "examples" / "prices.yaml"
    price = PriceTable.from_file(example).price_of(DEFAULT_MODEL)
    assert price is not None and price.input_per_1m > 0 and price.output_per_1m > 0
