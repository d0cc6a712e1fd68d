"""Pure supervisor helpers: worker spec validation, routing schema, guards, capability router."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from nodes.supervision import (
    FINISH,
    CapabilityChoice,
    CapabilityError,
    Handoff,
    WorkerSpec,
    WorkerSpecError,
    capability_route,
    capability_schema,
    handoff_limit_error,
    handoff_message,
    ping_pong_error,
    ping_pong_pair,
    progress_text,
    routing_schema,
    steps_of,
    validate_workers,
)


def worker(name: str, *caps: str, **kwargs: Any) -> WorkerSpec:
    return WorkerSpec(name=name, description=f"{name} things", capabilities=caps, **kwargs)


def handoff(worker: str, step: int, result: str = "r", success: bool = True) -> Handoff:
    return Handoff(
        turn=0,
        step=step,
        worker=worker,
        instructions=f"do {worker}",
        context_policy="none",
        router="model",
        result=result,
        success=success,
        error=None if success else "boom",
    )


# --- worker specs ---------------------------------------------------------------------------


def test_valid_workers_pass() -> None:
    validate_workers([worker("a", tools=("calculate",)), worker("b", tools=())], ["calculate"])


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ([], "at least one worker"),
        ([worker("a"), worker("a")], "duplicate worker name 'a'"),
        ([worker("FINISH")], "'FINISH' is reserved"),
        ([worker("two words")], "must start with a letter"),
        ([WorkerSpec(name="a", description=" ")], "'description' must say"),
        ([worker("a", tools=("search",))], "unknown tool(s) 'search' in 'tools'; available: calc"),
        ([worker("a", context="everything")], "must be one of none, last_result, full_summary"),
        ([worker("a", tools=("calc",), graph=object())], "brings its own tools"),
    ],
)
def test_invalid_workers_are_named_with_the_field(workers: list[WorkerSpec], message: str) -> None:
    with pytest.raises(WorkerSpecError) as caught:
        validate_workers(workers, ["calc"])
    assert message in str(caught.value)


# --- routing schema ---------------------------------------------------------------------------


def test_routing_schema_constrains_workers_and_keeps_its_name() -> None:
    schema = routing_schema(["research", "write"])
    assert schema.__name__ == "SupervisorDecision"
    json_schema = schema.model_json_schema()
    assert json_schema["properties"]["next"]["enum"] == ["research", "write", FINISH]
    decision = schema.model_validate(
        {
            "next": "research",
            "instructions": "find it",
            "parallel": [{"worker": "write", "instructions": "draft"}],
        }
    )
    assert [(d.worker, d.instructions) for d in decision.delegations()] == [
        ("research", "find it"),
        ("write", "draft"),
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"next": "ghost", "instructions": "x"}, "next"),
        ({"next": FINISH}, "'answer' must hold the final answer"),
        ({"next": "research", "instructions": " "}, "'instructions' for worker 'research'"),
        (
            {
                "next": "research",
                "instructions": "x",
                "parallel": [{"worker": "research", "instructions": "y"}],
            },
            "repeated: research",
        ),
        (
            {"next": FINISH, "answer": "a", "parallel": [{"worker": "write", "instructions": "y"}]},
            "'parallel' must be empty",
        ),
    ],
)
def test_routing_schema_rejects_inconsistent_decisions(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        routing_schema(["research", "write"]).model_validate(payload)


def test_finish_has_no_delegations() -> None:
    decision = routing_schema(["a"]).model_validate({"next": FINISH, "answer": "done"})
    assert decision.delegations() == []


def test_capability_schema_only_accepts_declared_tags() -> None:
    schema = capability_schema(["math", "time"])
    assert schema.model_validate({"capabilities": ["time", "math"]})
    with pytest.raises(ValidationError):
        schema.model_validate({"capabilities": ["poetry"]})
    with pytest.raises(ValidationError):
        schema.model_validate({"capabilities": []})


# --- guards -----------------------------------------------------------------------------------


def test_handoff_limit_counts_every_parallel_handoff() -> None:
    assert handoff_limit_error(2, 1, 3) is None
    error = handoff_limit_error(2, 2, 3)
    assert error is not None and "max_handoffs (3)" in error and "2 more" in error


@pytest.mark.parametrize(
    ("steps", "proposed", "window", "expected"),
    [
        ([["a"], ["b"], ["a"]], ["b"], 4, ("a", "b")),
        ([["b"], ["a"]], ["b"], 3, ("b", "a")),
        ([["a"], ["b"], ["a"]], ["c"], 4, None),
        ([["a"], ["b"]], ["a"], 4, None),  # too short to be a pattern
        ([["a"], ["b", "c"], ["a"]], ["b"], 4, None),  # a parallel step breaks it
        ([["a"], ["a"], ["a"]], ["a"], 4, None),  # repeating one worker is not ping-pong
        ([["a"], ["b"], ["a"]], ["b"], 0, None),  # disabled
        ([["x"], ["a"], ["b"], ["a"]], ["b"], 4, ("a", "b")),  # only the tail counts
    ],
)
def test_ping_pong_detection(
    steps: list[list[str]], proposed: list[str], window: int, expected: tuple[str, str] | None
) -> None:
    assert ping_pong_pair(steps, proposed, window) == expected


def test_ping_pong_window_must_be_meaningful() -> None:
    with pytest.raises(ValueError, match="must be 0 \\(off\\) or >= 3, got 2"):
        ping_pong_pair([["a"]], ["b"], 2)


def test_ping_pong_error_names_both_workers_and_the_pattern() -> None:
    assert "'a' and 'b' (a → b → a → b)" in ping_pong_error(("a", "b"), 4)


def test_steps_group_parallel_handoffs() -> None:
    log = [handoff("a", 0), handoff("b", 0), handoff("c", 1)]
    assert steps_of(log) == [["a", "b"], ["c"]]


# --- capability router --------------------------------------------------------------------------


TEAM = [
    worker("mathematician", "math"),
    worker("mathematician2", "math"),
    worker("generalist", "math", "writing"),
    worker("clock", "time"),
]


def test_capability_router_prefers_widest_coverage() -> None:
    choice = capability_route(["math", "writing"], [], TEAM, {})
    assert choice == CapabilityChoice(worker="generalist", tags=("math", "writing"))


def test_capability_router_breaks_ties_by_least_load_then_order() -> None:
    assert capability_route(["math"], [], TEAM[:2], {}) == CapabilityChoice(
        "mathematician", ("math",)
    )
    assert capability_route(["math"], [], TEAM[:2], {"mathematician": 1}) == CapabilityChoice(
        "mathematician2", ("math",)
    )


def test_capability_router_follows_tag_order_and_finishes() -> None:
    first = capability_route(["time", "math"], [], TEAM, {})
    assert first == CapabilityChoice("clock", ("time",))
    second = capability_route(["time", "math"], ["time"], TEAM, {"clock": 1})
    assert second == CapabilityChoice("mathematician", ("math",))
    assert capability_route(["time", "math"], ["time", "math"], TEAM, {}) is None


def test_capability_router_names_undeclared_tags() -> None:
    with pytest.raises(CapabilityError, match="'poetry'; declared tags: math, writing, time"):
        capability_route(["poetry"], [], TEAM, {})
    with pytest.raises(CapabilityError, match="at least one"):
        capability_route([], [], TEAM, {})


# --- handoff context ------------------------------------------------------------------------


def test_handoff_context_policies() -> None:
    prior = [
        handoff("a", 0, "first"),
        handoff("b", 1, "broken", success=False),
        handoff("c", 2, "third"),
    ]
    none = handoff_message("none", "Do X.", "the request", prior)
    assert "Do X." in none and "<results>" not in none and "the request" not in none

    last = handoff_message("last_result", "Do X.", "the request", prior)
    assert '<result worker="c">third</result>' in last
    assert "first" not in last and "the request" not in last

    full = handoff_message("full_summary", "Do X.", "the request", prior)
    assert "<request>\nthe request\n</request>" in full
    assert "first" in full and "third" in full
    assert "broken" not in full  # a failed result is not passed on as data


def test_progress_text_shows_status_and_results() -> None:
    text = progress_text([handoff("a", 0, "42"), handoff("b", 0, "", success=False)])
    assert 'step="1" worker="a" status="succeeded"' in text
    assert 'worker="b" status="failed: boom"' in text
    assert "<result>42</result>" in text
    assert "no worker has been asked" in progress_text([])
