"""Pure helpers of the router graph: intent validation, the intent schema, the fallback rule."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import ValidationError

from nodes.routing import (
    RouterConfigurationError,
    choose_route,
    classification_view,
    intent_schema,
    validate_intents,
)


def test_intent_schema_accepts_only_declared_intents() -> None:
    schema = intent_schema(["refund", "general"])
    assert schema.__name__ == "IntentDecision"
    assert schema(intent="refund", confidence=0.5, reason="r").model_dump()["intent"] == "refund"
    with pytest.raises(ValidationError):
        schema(intent="billing", confidence=0.5, reason="r")
    with pytest.raises(ValidationError):
        schema(intent="refund", confidence=1.5, reason="r")


def test_low_confidence_routes_to_the_fallback() -> None:
    assert choose_route("refund", 0.7, 0.5, "general") == "refund"
    assert choose_route("refund", 0.5, 0.5, "general") == "refund"
    assert choose_route("refund", 0.49, 0.5, "general") == "general"


@pytest.mark.parametrize(
    ("names", "fallback", "message"),
    [
        ([], "general", "at least one intent"),
        (["Refund"], "Refund", "'Refund' must be snake_case"),
        (["classify", "general"], "general", "'classify'"),
        (
            ["refund"],
            "general",
            "fallback intent 'general' is not declared; declared intents: refund",
        ),
    ],
)
def test_bad_declarations_name_the_problem(names: list[str], fallback: str, message: str) -> None:
    with pytest.raises(RouterConfigurationError, match=message):
        validate_intents(names, fallback)


def test_classifier_sees_no_tool_traffic() -> None:
    call = {"name": "look_up_order", "args": {}, "id": "c1", "type": "tool_call"}
    messages = [
        HumanMessage("where is A-1?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("shipped", tool_call_id="c1"),
        AIMessage("It shipped."),
        HumanMessage("refund it"),
    ]
    view = classification_view(messages)
    assert [type(m).__name__ for m in view] == ["HumanMessage", "AIMessage", "HumanMessage"]
    assert view[1].content == "It shipped."
