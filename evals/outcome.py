"""What one trial produced: the final state, normalised metrics, and how the run ended.

Metrics come from the `metrics` output channel (`nodes.state.RunMetrics`, written by each
graph's `finish_run` step) when the final state has it, and otherwise from the shared
`usage`/`tool_results`/`iterations` channels (`graphs.cli_inspect.metrics_summary`), so a
graph that stops before its finish step (a crash, a timeout, an unanswered interrupt) is still
accounted for. Cost is priced with the eval's own price table when one is given (`--prices`),
else taken from the run's `metrics.cost_usd` (priced by `Context.price_table`); with neither it
is unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphs.cli_inspect import metrics_summary
from nodes.budgets import PriceTable, cost_of


@dataclass(frozen=True)
class TrialMetrics:
    """One trial's accounting, the same shape whichever source it came from."""

    source: Literal["metrics", "state"]
    """`metrics` (the graph's own output channel) or `state` (computed from shared channels)."""
    iterations: int | None
    """The pattern's loop count; None when neither source reports one."""
    model_calls: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    tools: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per tool: {"calls": n, "errors": m}."""
    models: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Per model id: the `usage` record (calls, input_tokens, output_tokens, total_tokens)."""
    cost_usd: float | None = None
    """None when unknown (no price table, or a model without a price)."""
    unpriced_models: tuple[str, ...] = ()

    @property
    def input_tokens(self) -> int:
        """Prompt tokens over all models."""
        return sum(int(u.get("input_tokens", 0)) for u in self.models.values())

    @property
    def output_tokens(self) -> int:
        """Completion tokens over all models."""
        return sum(int(u.get("output_tokens", 0)) for u in self.models.values())

    @property
    def total_tokens(self) -> int:
        """All tokens over all models."""
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the report."""
        return {
            "source": self.source,
            "iterations": self.iterations,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "tool_errors": self.tool_errors,
            "tools": {name: dict(counts) for name, counts in self.tools.items()},
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "models": {name: dict(counts) for name, counts in self.models.items()},
            "cost_usd": self.cost_usd,
            "unpriced_models": list(self.unpriced_models),
        }


def _price(
    models: Mapping[str, Mapping[str, Any]], prices: PriceTable | None, reported: Any
) -> tuple[float | None, tuple[str, ...]]:
    if prices is not None:
        cost = cost_of(models, prices)
        return (cost.usd if cost.known else None), cost.unpriced_models
    if isinstance(reported, int | float) and not isinstance(reported, bool):
        return float(reported), ()
    return None, ()


def trial_metrics(values: Mapping[str, Any], prices: PriceTable | None = None) -> TrialMetrics:
    """Normalised metrics of a final state (see the module docstring for the sources)."""
    reported = values.get("metrics")
    if isinstance(reported, Mapping):
        models = dict(reported.get("models") or {})
        tools = dict(reported.get("tools") or {})
        cost, unpriced = _price(models, prices, reported.get("cost_usd"))
        iterations = reported.get("iterations")
        return TrialMetrics(
            source="metrics",
            iterations=iterations if isinstance(iterations, int) else None,
            model_calls=int(reported.get("model_calls") or 0),
            tool_calls=int(reported.get("tool_calls") or 0),
            tool_errors=int(reported.get("tool_errors") or 0),
            tools=tools,
            models=models,
            cost_usd=cost,
            unpriced_models=unpriced,
        )
    summary = metrics_summary(dict(values))
    usage: dict[str, Mapping[str, int]] = dict(values.get("usage") or {})
    tools = summary["tool_calls"]
    cost, unpriced = _price(usage, prices, None)
    iterations = summary["iterations"]
    return TrialMetrics(
        source="state",
        iterations=iterations if isinstance(iterations, int) else None,
        model_calls=summary["model_calls"],
        tool_calls=sum(t["calls"] for t in tools.values()),
        tool_errors=sum(t["errors"] for t in tools.values()),
        tools=tools,
        models=usage,
        cost_usd=cost,
        unpriced_models=unpriced,
    )


def final_answer_of(values: Mapping[str, Any]) -> str | None:
    """The run's answer: `final_answer`, else the text of the last message (as `weft run`)."""
    answer = values.get("final_answer")
    if answer is not None:
        return str(answer)
    messages = values.get("messages") or []
    if messages:
        from nodes.model import message_text

        return message_text(getattr(messages[-1], "content", None))
    return None


@dataclass(frozen=True)
class TrialOutcome:
    """How one trial ended.

    A trial *completed* when the graph reached its end on its own, reporting `success` True
    (`metrics.completed`), without raising, timing out or waiting on an interrupt no answer was
    scripted for. Whether it *passed* is up to the scenario's checks (a scenario may expect a
    budget stop, `success: false`).
    """

    values: Mapping[str, Any]
    metrics: TrialMetrics
    error: str | None = None
    """Why the run did not finish: the exception it raised, or the timeout."""
    waiting: tuple[Any, ...] = ()
    """Interrupt payloads the run is still paused on (the scenario's `resume` ran out)."""

    @property
    def final_answer(self) -> str | None:
        """See `final_answer_of`."""
        return final_answer_of(self.values)

    @property
    def completed(self) -> bool:
        """See the class docstring."""
        if self.error is not None or self.waiting:
            return False
        reported = self.values.get("metrics")
        if isinstance(reported, Mapping) and isinstance(reported.get("completed"), bool):
            return bool(reported["completed"])
        return self.values.get("success") is True


__all__ = ["TrialMetrics", "TrialOutcome", "final_answer_of", "trial_metrics"]
