"""Context parsing and defaults."""

from __future__ import annotations

import pytest

from nodes.context import Context, context_from_mapping, context_of, parse_context_assignments


def test_cli_assignments_are_converted_to_field_types() -> None:
    ctx = parse_context_assignments(
        [
            "max_iterations=4",
            "temperature=0.5",
            "tools=calculate, get_current_time",
            "judge_model=none",
        ]
    )
    assert ctx.max_iterations == 4
    assert ctx.temperature == 0.5
    assert ctx.tools == ("calculate", "get_current_time")
    assert ctx.judge_model is None


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("max_iterations=lots", "'max_iterations' expects int, got 'lots'"),
        ("max_iteration=3", "unknown context field 'max_iteration'; valid fields: "),
        ("max_iterations", "not of the form key=value"),
    ],
)
def test_bad_assignments_name_the_field_and_expectation(pair: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_context_assignments([pair])


def test_role_models_fall_back_to_the_default_model() -> None:
    ctx = Context(model="openai:base", judge_model="openai:judge")
    assert ctx.model_for("planner") == "openai:base"
    assert ctx.model_for("judge") == "openai:judge"
    assert ctx.model_for("critic") == "openai:judge"


def test_context_of_handles_missing_and_dict_contexts() -> None:
    class FakeRuntime:
        context = None

    assert context_of(FakeRuntime()) == Context()  # type: ignore[arg-type]
    FakeRuntime.context = {"max_iterations": 2, "tools": ["calculate"]}  # type: ignore[assignment]
    ctx = context_of(FakeRuntime())  # type: ignore[arg-type]
    assert ctx.max_iterations == 2 and ctx.tools == ("calculate",)
    with pytest.raises(ValueError, match="unknown context field"):
        context_from_mapping({"nope": 1})
