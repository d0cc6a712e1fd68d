"""Per-run budgets as pure functions: what was spent, which limits it breaks, why the run stops.

Nothing here touches a graph; the agent loop (or any pattern) calls `spend_of(...)` and
`stop_reason(...)` before each model or tool step and, when a reason comes back, routes to its
`finalize` step with `success=False` and `error=reason`.

Limits compose: every limit that is set is checked, and all breaches are reported in the fixed
order of `LIMITS` (the first one is the stop reason). Cost comes from a `PriceTable` the caller
configures (a mapping or a JSON/YAML file) — no prices live in this code; models missing from
the table make the cost unknown, which `stop_reason` reports instead of guessing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LIMITS = (
    "max_iterations",
    "max_model_calls",
    "max_tool_calls",
    "max_tokens",
    "max_cost_usd",
    "max_wall_time_s",
)
"""Every budget, in the order breaches are reported."""

_SPENT_BY_LIMIT = {
    "max_iterations": "iterations",
    "max_model_calls": "model_calls",
    "max_tool_calls": "tool_calls",
    "max_tokens": "tokens",
    "max_cost_usd": "cost_usd",
    "max_wall_time_s": "wall_time_s",
}


class PriceTableError(ValueError):
    """A price table entry is malformed (missing or negative prices, unknown keys)."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens for one model."""

    input_per_1m: float
    output_per_1m: float


@dataclass(frozen=True)
class PriceTable:
    """Prices by model id (the keys of the `usage` channel, e.g. 'openai:gpt-4.1-mini')."""

    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """Build from `{model: {"input_per_1m": x, "output_per_1m": y}}`.

        Raises:
            PriceTableError: Naming the model and field at fault.
        """
        prices: dict[str, ModelPrice] = {}
        for model, entry in data.items():
            unknown = sorted(set(entry) - {"input_per_1m", "output_per_1m"})
            if unknown:
                raise PriceTableError(
                    f"price for {model!r}: unknown key(s) {unknown}; expected "
                    "'input_per_1m' and 'output_per_1m'"
                )
            values = []
            for key in ("input_per_1m", "output_per_1m"):
                value = entry.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise PriceTableError(
                        f"price for {model!r}: {key!r} must be a number >= 0, got {value!r}"
                    )
                values.append(float(value))
            prices[model] = ModelPrice(*values)
        return cls(prices)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Load a JSON or YAML price table."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, Mapping):
            raise PriceTableError(f"{path}: a price table must be a mapping of model -> prices")
        return cls.from_mapping(data)

    def price_of(self, model: str) -> ModelPrice | None:
        """The model's price; a bare name also matches its 'openai:' id and vice versa."""
        if model in self.prices:
            return self.prices[model]
        bare = model.partition(":")[2] or model
        for key, price in self.prices.items():
            if (key.partition(":")[2] or key) == bare:
                return price
        return None


@dataclass(frozen=True)
class Cost:
    """Cost of some usage: `usd` over priced models, and the models without a price."""

    usd: float
    unpriced_models: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """True when every model used has a price."""
        return not self.unpriced_models


def cost_of(usage: Mapping[str, Mapping[str, Any]] | None, prices: PriceTable) -> Cost:
    """Cost of a `usage` channel value ({model: {input_tokens, output_tokens, ...}})."""
    total = 0.0
    unpriced: list[str] = []
    for model, counts in (usage or {}).items():
        price = prices.price_of(model)
        if price is None:
            if counts.get("input_tokens", 0) or counts.get("output_tokens", 0):
                unpriced.append(model)
            continue
        total += counts.get("input_tokens", 0) * price.input_per_1m / 1_000_000
        total += counts.get("output_tokens", 0) * price.output_per_1m / 1_000_000
    return Cost(round(total, 10), tuple(sorted(unpriced)))


@dataclass(frozen=True)
class Budget:
    """Per-run limits; None means unlimited. Compose by setting several."""

    max_iterations: int | None = None
    max_model_calls: int | None = None
    max_tool_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_time_s: float | None = None

    def __post_init__(self) -> None:
        for name in LIMITS:
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValueError(f"budget {name!r} must be a number > 0 or None, got {value!r}")

    @classmethod
    def from_context(cls, context: Any) -> Budget:
        """Read the limits a Context defines (fields it lacks are unlimited)."""
        return cls(**{name: getattr(context, name, None) for name in LIMITS})

    @property
    def active(self) -> tuple[str, ...]:
        """The limits that are set."""
        return tuple(name for name in LIMITS if getattr(self, name) is not None)


@dataclass(frozen=True)
class Spend:
    """What a run has used so far."""

    iterations: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    unpriced_models: tuple[str, ...] = ()


def spend_of(
    values: Mapping[str, Any],
    *,
    prices: PriceTable | None = None,
    started_at: float | None = None,
    now: float | None = None,
) -> Spend:
    """Spend from a state's shared channels (`usage`, `tool_results`, `iterations`).

    `started_at`/`now` are timestamps from the same clock (e.g. `time.time()`); without them the
    wall time is 0.
    """
    usage: Mapping[str, Mapping[str, Any]] = values.get("usage") or {}
    cost = cost_of(usage, prices or PriceTable())
    wall = 0.0 if started_at is None or now is None else max(0.0, now - started_at)
    return Spend(
        iterations=int(values.get("iterations") or 0),
        model_calls=sum(int(u.get("calls", 0)) for u in usage.values()),
        tool_calls=len(values.get("tool_results") or []),
        tokens=sum(int(u.get("total_tokens", 0)) for u in usage.values()),
        cost_usd=cost.usd,
        wall_time_s=wall,
        unpriced_models=cost.unpriced_models,
    )


@dataclass(frozen=True)
class Breach:
    """One limit that is used up."""

    limit: str
    allowed: float
    used: float

    def describe(self) -> str:
        """Reason text for `error`, e.g. "max_model_calls (5) reached: 5 used"."""
        return f"{self.limit} ({_fmt(self.allowed)}) reached: {_fmt(self.used)} used"


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def breaches(budget: Budget, spend: Spend) -> list[Breach]:
    """Every set limit that `spend` has reached, in `LIMITS` order (empty: within budget).

    A limit is reached when the used amount is >= the allowed amount: the next call would go
    over it, so the run stops before making it.
    """
    found = []
    for name in budget.active:
        allowed = float(getattr(budget, name))
        used = float(getattr(spend, _SPENT_BY_LIMIT[name]))
        if used >= allowed or math.isclose(used, allowed):
            found.append(Breach(name, allowed, used))
    return found


def stop_reason(budget: Budget, spend: Spend) -> str | None:
    """Why the run must stop now (the first breach, others appended), or None.

    A cost limit with unpriced models stops the run as well: spending on, blind to the cost,
    is what a cost limit exists to prevent.
    """
    reasons = [b.describe() for b in breaches(budget, spend)]
    cost_breached = any(r.startswith("max_cost_usd") for r in reasons)
    if budget.max_cost_usd is not None and spend.unpriced_models and not cost_breached:
        reasons.append(
            f"max_cost_usd ({_fmt(budget.max_cost_usd)}) cannot be enforced: no price for "
            f"{', '.join(spend.unpriced_models)}; add them to the price table"
        )
    return "; ".join(reasons) or None


def remaining(budget: Budget, spend: Spend) -> dict[str, float]:
    """What is left of each set limit (never negative), e.g. for a 'budget used' event."""
    return {
        name: max(0.0, float(getattr(budget, name)) - float(getattr(spend, _SPENT_BY_LIMIT[name])))
        for name in budget.active
    }


def budget_event(budget: Budget, spend: Spend) -> dict[str, Any]:
    """A progress event for `get_stream_writer()`: what is spent and what is left per limit."""
    return {
        "event": "budget_used",
        "spent": {_SPENT_BY_LIMIT[name]: getattr(spend, _SPENT_BY_LIMIT[name]) for name in LIMITS},
        "remaining": remaining(budget, spend),
    }


def stopped_by(reason: str | None, limits: Iterable[str] = LIMITS) -> str | None:
    """The limit name a stop reason starts with (for metrics), or None."""
    if not reason:
        return None
    return next((name for name in limits if reason.startswith(name)), None)


__all__ = [
    "LIMITS",
    "Breach",
    "Budget",
    "Cost",
    "ModelPrice",
    "PriceTable",
    "PriceTableError",
    "Spend",
    "breaches",
    "budget_event",
    "cost_of",
    "remaining",
    "spend_of",
    "stop_reason",
    "stopped_by",
]
