"""pass^k and the per-scenario and per-pattern aggregates of an eval run.

**pass^k** is the probability that k independent trials of a scenario *all* pass. From n trials
with c passes it is estimated as in tau-bench (Yao et al., 2024) with the unbiased estimator
C(c, k) / C(n, k); with n == k (the default: `weft eval -k K` runs K trials) that is simply 1
when all k passed and 0 otherwise. Run more trials than k (`--trials N`) for a smoother
estimate. A pattern's pass^k is the mean over its scenarios.

**pass rate** is c / n per scenario; `--min-pass-rate` is checked against it, scenario by
scenario. **completion rate** is the share of trials that ran to their end reporting success
(see `evals.outcome.TrialOutcome.completed`), whatever the checks said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import comb
from statistics import fmean
from typing import Any

from evals.checks import CheckFailure
from evals.outcome import TrialMetrics


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Probability that k trials drawn without replacement from n (c passing) all pass.

    Raises:
        ValueError: Unless 1 <= k <= n and 0 <= c <= n.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass^k needs 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"pass^k needs 0 <= c <= n passes, got c={c}, n={n}")
    return comb(c, k) / comb(n, k)


@dataclass(frozen=True)
class TrialRecord:
    """One trial of one case, as the runner recorded it."""

    case_id: str
    graph_id: str
    trial: int
    """1-based."""
    completed: bool
    failures: tuple[CheckFailure, ...]
    metrics: TrialMetrics
    duration_s: float
    final_answer: str | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when every check held."""
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the report."""
        return {
            "trial": self.trial,
            "passed": self.passed,
            "completed": self.completed,
            "failures": [f.as_dict() for f in self.failures],
            "error": self.error,
            "final_answer": self.final_answer,
            "duration_s": round(self.duration_s, 3),
            "metrics": self.metrics.as_dict(),
        }


@dataclass(frozen=True)
class ScenarioScore:
    """The trials of one case, scored."""

    case_id: str
    graph_id: str
    records: tuple[TrialRecord, ...]
    k: int

    @property
    def trials(self) -> int:
        """n: trials run."""
        return len(self.records)

    @property
    def passes(self) -> int:
        """c: trials whose checks all held."""
        return sum(r.passed for r in self.records)

    @property
    def pass_rate(self) -> float:
        """c / n."""
        return self.passes / self.trials

    @property
    def pass_hat_k(self) -> float:
        """See `pass_hat_k`."""
        return pass_hat_k(self.trials, self.passes, self.k)

    @property
    def failed_checks(self) -> Counter[str]:
        """How many trials failed each check."""
        return Counter(check for r in self.records for check in {f.check for f in r.failures})

    def meets(self, min_pass_rate: float) -> bool:
        """Whether the pass rate reaches `min_pass_rate` (with float tolerance)."""
        return self.pass_rate >= min_pass_rate - 1e-9

    def as_dict(self, min_pass_rate: float) -> dict[str, Any]:
        """JSON-able form for the report."""
        return {
            "id": self.case_id,
            "graph": self.graph_id,
            "trials": self.trials,
            "passes": self.passes,
            "pass_rate": round(self.pass_rate, 4),
            "pass_hat_k": round(self.pass_hat_k, 4),
            "meets_min_pass_rate": self.meets(min_pass_rate),
            "failed_checks": dict(self.failed_checks),
            "trial_results": [r.as_dict() for r in self.records],
        }


def _mean_or_none(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return fmean(known) if known else None


@dataclass(frozen=True)
class PatternSummary:
    """Every case of one graph, aggregated over all their trials."""

    graph_id: str
    scenarios: tuple[ScenarioScore, ...]
    records: tuple[TrialRecord, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(r for s in self.scenarios for r in s.records))

    @property
    def completion_rate(self) -> float:
        """Share of trials that completed."""
        return sum(r.completed for r in self.records) / len(self.records)

    @property
    def pass_rate(self) -> float:
        """Share of trials that passed."""
        return sum(r.passed for r in self.records) / len(self.records)

    @property
    def pass_hat_k(self) -> float:
        """Mean pass^k over the scenarios."""
        return fmean(s.pass_hat_k for s in self.scenarios)

    @property
    def mean_iterations(self) -> float | None:
        """Over the trials that report iterations; None when none does."""
        return _mean_or_none(r.metrics.iterations for r in self.records)

    @property
    def tool_calls(self) -> int:
        """All tool calls of all trials."""
        return sum(r.metrics.tool_calls for r in self.records)

    @property
    def tool_errors(self) -> int:
        """All failed tool calls of all trials."""
        return sum(r.metrics.tool_errors for r in self.records)

    @property
    def tool_error_rate(self) -> float | None:
        """tool errors / tool calls; None when no tool was called."""
        return self.tool_errors / self.tool_calls if self.tool_calls else None

    @property
    def total_tokens(self) -> int:
        """All tokens of all trials."""
        return sum(r.metrics.total_tokens for r in self.records)

    @property
    def mean_tokens(self) -> float:
        """Tokens per trial."""
        return self.total_tokens / len(self.records)

    @property
    def total_cost_usd(self) -> float | None:
        """None (unknown) as soon as one trial's cost is unknown."""
        costs = [r.metrics.cost_usd for r in self.records]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    @property
    def mean_cost_usd(self) -> float | None:
        """Cost per trial, or None when unknown."""
        total = self.total_cost_usd
        return None if total is None else total / len(self.records)

    @property
    def unpriced_models(self) -> list[str]:
        """Models the price table has no price for."""
        return sorted({m for r in self.records for m in r.metrics.unpriced_models})

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the report."""
        return {
            "graph": self.graph_id,
            "scenarios": len(self.scenarios),
            "trials": len(self.records),
            "completion_rate": round(self.completion_rate, 4),
            "pass_rate": round(self.pass_rate, 4),
            "pass_hat_k": round(self.pass_hat_k, 4),
            "mean_iterations": self.mean_iterations,
            "tool_calls": self.tool_calls,
            "tool_errors": self.tool_errors,
            "tool_error_rate": self.tool_error_rate,
            "total_tokens": self.total_tokens,
            "mean_tokens": self.mean_tokens,
            "total_cost_usd": self.total_cost_usd,
            "mean_cost_usd": self.mean_cost_usd,
            "unpriced_models": self.unpriced_models,
        }


@dataclass(frozen=True)
class EvalReport:
    """An eval run: every scenario scored and every pattern summarised."""

    k: int
    min_pass_rate: float
    scenarios: tuple[ScenarioScore, ...]
    suite_files: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[PatternSummary, ...]:
        """One summary per graph, in the suite's order."""
        order = list(dict.fromkeys(s.graph_id for s in self.scenarios))
        return tuple(
            PatternSummary(g, tuple(s for s in self.scenarios if s.graph_id == g)) for g in order
        )

    @property
    def ok(self) -> bool:
        """Every scenario reaches the minimum pass rate."""
        return all(s.meets(self.min_pass_rate) for s in self.scenarios)

    def as_dict(self) -> dict[str, Any]:
        """The JSON report (`weft eval --json FILE`)."""
        trials = sorted({s.trials for s in self.scenarios})
        return {
            "suite_files": list(self.suite_files),
            "k": self.k,
            "trials_per_scenario": trials[0] if len(trials) == 1 else trials,
            "pass_hat_k_estimator": "C(c,k)/C(n,k) over n trials with c passes (tau-bench)",
            "min_pass_rate": self.min_pass_rate,
            "ok": self.ok,
            "patterns": {p.graph_id: p.as_dict() for p in self.patterns},
            "scenarios": [s.as_dict(self.min_pass_rate) for s in self.scenarios],
        }


def score(
    records: Sequence[TrialRecord],
    *,
    k: int,
    min_pass_rate: float,
    suite_files: Sequence[str] = (),
) -> EvalReport:
    """Group trial records by case (in first-seen order) and score them."""
    order = list(dict.fromkeys((r.case_id, r.graph_id) for r in records))
    scenarios = tuple(
        ScenarioScore(
            case_id,
            graph_id,
            tuple(r for r in records if (r.case_id, r.graph_id) == (case_id, graph_id)),
            k,
        )
        for case_id, graph_id in order
    )
    return EvalReport(k, min_pass_rate, scenarios, tuple(suite_files))


__all__ = [
    "EvalReport",
    "PatternSummary",
    "ScenarioScore",
    "TrialRecord",
    "pass_hat_k",
    "score",
]
