"""pass^k and the aggregates of `weft eval`."""

from __future__ import annotations

from math import comb
from typing import Any

import pytest

from evals.checks import CheckFailure
from evals.outcome import TrialMetrics
from evals.scoring import TrialRecord, pass_hat_k, score


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 2, 1, 0.5),  # pass^1 is the pass rate
        (4, 3, 2, 3 / 6),  # C(3,2)/C(4,2)
        (5, 4, 3, 4 / 10),  # C(4,3)/C(5,3)
        (8, 2, 3, 0.0),  # fewer passes than k: no k-subset passes
        (3, 3, 3, 1.0),  # n == k: all of k ...
        (3, 2, 3, 0.0),  # ... or nothing
    ],
)
def test_pass_hat_k_is_the_tau_bench_estimator(n: int, c: int, k: int, expected: float) -> None:
    assert pass_hat_k(n, c, k) == pytest.approx(expected)
    assert pass_hat_k(n, c, k) == pytest.approx(comb(c, k) / comb(n, k))


def test_pass_hat_k_never_exceeds_pass_rate_and_falls_with_k() -> None:
    values = [pass_hat_k(10, 7, k) for k in range(1, 11)]
    assert values[0] == pytest.approx(0.7)
    assert all(later <= earlier for earlier, later in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(("n", "c", "k"), [(2, 1, 3), (2, 1, 0), (2, 3, 1), (2, -1, 1)])
def test_pass_hat_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass\\^k needs"):
        pass_hat_k(n, c, k)


def metrics(**kwargs: Any) -> TrialMetrics:
    base: dict[str, Any] = {
        "source": "state",
        "iterations": None,
        "models": {"m": {"calls": 1, "input_tokens": 80, "output_tokens": 20}},
        "cost_usd": 0.01,
    }
    return TrialMetrics(**{**base, **kwargs})


def record(case: str, graph: str, trial: int, *, passed: bool = True, **kwargs: Any) -> TrialRecord:
    failures = () if passed else (CheckFailure("final_answer_contains", "'x' not in 'y'"),)
    return TrialRecord(
        case_id=case,
        graph_id=graph,
        trial=trial,
        completed=kwargs.pop("completed", True),
        failures=failures,
        metrics=kwargs.pop("metrics", metrics()),
        duration_s=0.1,
    )


def test_scores_group_trials_by_scenario_and_pattern() -> None:
    records = [
        record("a", "react", 1, metrics=metrics(iterations=2, tool_calls=4, tool_errors=1)),
        record("a", "react", 2, metrics=metrics(iterations=4, tool_calls=4, tool_errors=0)),
        record("b", "react", 1),
        record("b", "react", 2, passed=False, completed=False),
        record("c", "debate", 1),
        record("c", "debate", 2, metrics=metrics(cost_usd=None, unpriced_models=("m",))),
    ]
    report = score(records, k=2, min_pass_rate=1.0, suite_files=["s.yaml"])
    a, b, c = report.scenarios
    assert (a.passes, a.trials, a.pass_hat_k) == (2, 2, 1.0)
    assert (b.passes, b.pass_rate, b.pass_hat_k) == (1, 0.5, 0.0)
    assert b.failed_checks == {"final_answer_contains": 1}
    assert not report.ok, "scenario b is below the minimum pass rate"
    react, debate = report.patterns
    assert react.graph_id == "react" and len(react.scenarios) == 2
    assert react.completion_rate == 0.75
    assert react.pass_rate == 0.75
    assert react.pass_hat_k == 0.5  # mean of 1.0 and 0.0
    assert react.mean_iterations == 3.0  # only the trials that report iterations
    assert (react.tool_calls, react.tool_errors, react.tool_error_rate) == (8, 1, 1 / 8)
    assert (react.total_tokens, react.mean_tokens) == (400, 100.0)
    assert react.mean_cost_usd == pytest.approx(0.01)
    assert debate.tool_error_rate is None, "no tool calls: no rate"
    assert debate.mean_cost_usd is None and debate.unpriced_models == ["m"]
    assert debate.mean_iterations is None


def test_the_threshold_is_the_pass_rate_of_each_scenario() -> None:
    records = [record("a", "react", 1), record("a", "react", 2, passed=False)]
    assert score(records, k=1, min_pass_rate=0.5).ok
    assert not score(records, k=1, min_pass_rate=0.51).ok


def test_the_json_report_has_patterns_scenarios_and_trials() -> None:
    records = [record("a", "react", 1), record("a", "react", 2, passed=False)]
    data = score(records, k=2, min_pass_rate=1.0, suite_files=["s.yaml"]).as_dict()
    assert data["ok"] is False and data["k"] == 2 and data["trials_per_scenario"] == 2
    assert data["patterns"]["react"]["pass_hat_k"] == 0.0
    (scenario,) = data["scenarios"]
    assert scenario["meets_min_pass_rate"] is False
    assert scenario["trial_results"][1]["failures"] == [
        {"check": "final_answer_contains", "reason": "'x' not in 'y'"}
    ]
    assert scenario["trial_results"][0]["metrics"]["total_tokens"] == 100
