"""`weft eval` checks and trial metrics, on hand-made final states."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from evals.checks import builtin_failures, evaluate, python_failure, state_at
from evals.outcome import TrialOutcome, final_answer_of, trial_metrics
from evals.suite import Expectations
from nodes.budgets import PriceTable

USAGE = {
    "openai:gpt-4.1-mini": {
        "calls": 2,
        "input_tokens": 300,
        "output_tokens": 50,
        "total_tokens": 350,
    }
}
STATE: dict[str, Any] = {
    "final_answer": "17.5% of 2,480 is 434.",
    "success": True,
    "error": None,
    "iterations": 2,
    "usage": USAGE,
    "tool_results": [
        {
            "tool": "calculate",
            "call_id": "c1",
            "ok": False,
            "error_code": "tool_error",
            "duration_ms": 1.0,
        },
        {"tool": "calculate", "call_id": "c2", "ok": True, "error_code": None, "duration_ms": 1.0},
    ],
    "verdict": {"decision": "managed", "votes": [3, 1]},
    "messages": [HumanMessage("hi"), AIMessage("the last word")],
}
PRICES = PriceTable.from_mapping({"gpt-4.1-mini": {"input_per_1m": 1.0, "output_per_1m": 2.0}})


def outcome(values: dict[str, Any] | None = None, **kwargs: Any) -> TrialOutcome:
    values = STATE if values is None else values
    return TrialOutcome(values, trial_metrics(values, kwargs.pop("prices", None)), **kwargs)


def checks_failing(expect: dict[str, Any], result: TrialOutcome | None = None) -> list[str]:
    failures = builtin_failures(Expectations(**expect), result or outcome())
    return [f"{f.check}: {f.reason}" for f in failures]


def test_state_fallback_metrics_count_tools_tokens_and_price() -> None:
    metrics = trial_metrics(STATE, PRICES)
    assert metrics.source == "state"
    assert (metrics.iterations, metrics.model_calls) == (2, 2)
    assert (metrics.tool_calls, metrics.tool_errors) == (2, 1)
    assert metrics.tools == {"calculate": {"calls": 2, "errors": 1}}
    assert (metrics.input_tokens, metrics.output_tokens, metrics.total_tokens) == (300, 50, 350)
    assert metrics.cost_usd == pytest.approx(300 * 1.0 / 1e6 + 50 * 2.0 / 1e6)


def test_the_metrics_channel_wins_when_present() -> None:
    values = {
        **STATE,
        "metrics": {
            "completed": True,
            "iterations": 7,
            "model_calls": 1,
            "tool_calls": 3,
            "tool_errors": 0,
            "tools": {"search_web": {"calls": 3, "errors": 0}},
            "models": {
                "openai:gpt-4.1-mini": {
                    "calls": 1,
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "total_tokens": 15,
                }
            },
            "cost_usd": 0.5,
        },
    }
    metrics = trial_metrics(values)
    assert metrics.source == "metrics"
    assert (metrics.iterations, metrics.tool_calls, metrics.total_tokens) == (7, 3, 15)
    assert metrics.cost_usd == 0.5, "without --prices the run's own cost is used"
    assert trial_metrics(values, PRICES).cost_usd == pytest.approx(10 / 1e6 + 10 / 1e6)


def test_cost_is_unknown_without_prices_or_for_an_unpriced_model() -> None:
    assert trial_metrics(STATE).cost_usd is None
    other = PriceTable.from_mapping({"gpt-5": {"input_per_1m": 1.0, "output_per_1m": 1.0}})
    metrics = trial_metrics(STATE, other)
    assert metrics.cost_usd is None
    assert metrics.unpriced_models == ("openai:gpt-4.1-mini",)


def test_graphs_without_iterations_report_none() -> None:
    assert trial_metrics({"final_answer": "x"}).iterations is None
    assert checks_failing(
        {"max_iterations": 3}, outcome({"final_answer": "x", "success": True})
    ) == ["max_iterations: this graph reports no iterations"]


def test_final_answer_falls_back_to_the_last_message() -> None:
    assert final_answer_of(STATE) == "17.5% of 2,480 is 434."
    assert final_answer_of({"messages": STATE["messages"]}) == "the last word"
    assert final_answer_of({}) is None


def test_completed_needs_an_ended_successful_run() -> None:
    assert outcome().completed
    assert not outcome({**STATE, "success": False}).completed
    assert not outcome(error="RuntimeError: boom").completed
    assert not outcome(waiting=({"kind": "plan_review"},)).completed
    assert not outcome({**STATE, "metrics": {"completed": False}}).completed


def test_every_check_passes_on_a_matching_state() -> None:
    expect = {
        "success": True,
        "final_answer_contains": ["434", "2,480"],
        "final_answer_matches": r"\b434\.$",
        "tool_called": ["calculate"],
        "tool_not_called": ["get_current_time"],
        "max_iterations": 2,
        "max_tool_errors": 1,
        "max_model_calls": 2,
        "max_tokens": 350,
        "state": {"verdict.decision": "managed", "verdict.votes.-1": 1, "iterations": 2},
    }
    assert checks_failing(expect) == []


def test_each_failed_check_says_what_was_expected_and_found() -> None:
    expect = {
        "success": False,
        "final_answer_contains": "435",
        "final_answer_matches": "^Tokyo",
        "tool_called": "get_current_time",
        "tool_not_called": "calculate",
        "max_iterations": 1,
        "max_tool_errors": 0,
        "max_model_calls": 1,
        "max_tokens": 100,
        "state": {"verdict.decision": "build", "verdict.nope": 1},
    }
    assert checks_failing(expect) == [
        "success: expected False, got True",
        "final_answer_contains: '435' not in '17.5% of 2,480 is 434.'",
        "final_answer_matches: /^Tokyo/ not found in '17.5% of 2,480 is 434.'",
        "tool_called: 'get_current_time' never called (called: calculate)",
        "tool_not_called: 'calculate' called 2 time(s)",
        "max_iterations: 2 > 1",
        "max_tool_errors: 1 > 0",
        "max_model_calls: 2 > 1",
        "max_tokens: 350 > 100",
        "state.verdict.decision: expected 'build', got 'managed'",
        "state.verdict.nope: verdict has no 'nope' (keys: decision, votes)",
    ]


def test_a_run_that_did_not_finish_fails_the_run_check_and_says_why() -> None:
    crashed = outcome({}, error="InternalServerError: scripted LLM: no rule matches")
    assert checks_failing({}, crashed) == [
        "run: the run did not finish: InternalServerError: scripted LLM: no rule matches",
        "success: expected True, got None",
    ]
    paused = outcome({**STATE}, waiting=({"kind": "plan_review"},))
    assert checks_failing({}, paused) == [
        "run: the run is paused on 1 interrupt(s) and the scenario's 'resume' has no answer left"
    ]


def test_a_failed_run_quotes_its_error_in_the_success_check() -> None:
    stopped = outcome({**STATE, "success": False, "error": "max_tool_calls (1) reached"})
    assert checks_failing({}, stopped) == [
        "success: expected True, got False (max_tool_calls (1) reached)"
    ]
    assert checks_failing({"success": False}, stopped) == []


def test_state_paths_walk_keys_indices_and_attributes() -> None:
    assert state_at(STATE, "messages.-1.content") == "the last word"
    assert state_at(STATE, "tool_results.0.tool") == "calculate"
    with pytest.raises(LookupError, match=r"tool_results has no '5' \(a list of 2\)"):
        state_at(STATE, "tool_results.5")
    with pytest.raises(LookupError, match=r"the state has no 'nope' \(keys: final_answer"):
        state_at(STATE, "nope")
    with pytest.raises(LookupError, match=r"final_answer has no 'x' \(str\)"):
        state_at(STATE, "final_answer.x")


def passes(state: dict[str, Any]) -> None:
    assert state["success"]


def fails_with_reason(state: dict[str, Any]) -> str:
    return f"answer was {state['final_answer']!r}"


def fails_assertion(state: dict[str, Any]) -> None:
    # An explicit raise: pytest rewrites `assert` in test modules and lengthens the message.
    if state["iterations"] <= 5:
        raise AssertionError("too few iterations")


def returns_false(state: dict[str, Any]) -> bool:
    return False


async def async_passes(state: dict[str, Any]) -> bool:
    return True


def returns_a_number(state: dict[str, Any]) -> int:
    return 3


@pytest.mark.anyio
async def test_python_checks_pass_or_fail_with_a_reason() -> None:
    here = __name__
    assert await python_failure(f"{here}:passes", STATE) is None
    assert await python_failure(f"{here}:async_passes", STATE) is None
    failure = await python_failure(f"{here}:fails_with_reason", STATE)
    assert failure is not None and failure.reason.endswith("answer was '17.5% of 2,480 is 434.'")
    failure = await python_failure(f"{here}:fails_assertion", STATE)
    assert failure is not None and failure.reason == f"{here}:fails_assertion: too few iterations"
    failure = await python_failure(f"{here}:returns_false", STATE)
    assert failure is not None and failure.reason == f"{here}:returns_false returned False"
    with pytest.raises(TypeError, match="must return None, a bool or a reason string, got int"):
        await python_failure(f"{here}:returns_a_number", STATE)


@pytest.mark.anyio
async def test_evaluate_appends_the_python_check_after_the_builtin_ones() -> None:
    expect = Expectations(final_answer_contains=["435"], python=f"{__name__}:returns_false")
    failures = await evaluate(expect, outcome())
    assert [f.check for f in failures] == ["final_answer_contains", "python"]
