"""Pure helpers of the router graph: the intent schema, validation and the fallback rule."""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from pydantic import BaseModel, Field, create_model

__all__ = [
    "RESERVED_NODE_NAMES",
    "RouterConfigurationError",
    "choose_route",
    "classification_view",
    "intent_lines",
    "intent_schema",
    "validate_intents",
]

RESERVED_NODE_NAMES = frozenset({"classify", "__start__", "__end__"})
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RouterConfigurationError(ValueError):
    """The declared intents cannot be routed (bad name, empty set, unknown fallback)."""


def validate_intents(names: Sequence[str], fallback: str) -> None:
    """Check the declared intent names and the fallback.

    Raises:
        RouterConfigurationError: naming the offending value and the valid options.
    """
    if not names:
        raise RouterConfigurationError("the router needs at least one intent, got none")
    for name in names:
        if not _NAME.match(name) or keyword.iskeyword(name) or name in RESERVED_NODE_NAMES:
            raise RouterConfigurationError(
                f"intent name {name!r} must be snake_case (letters, digits, '_') and not one of "
                f"{sorted(RESERVED_NODE_NAMES)}"
            )
    if fallback not in names:
        raise RouterConfigurationError(
            f"fallback intent {fallback!r} is not declared; declared intents: {', '.join(names)}"
        )


def intent_schema(names: Sequence[str]) -> type[BaseModel]:
    """An `IntentDecision` schema whose `intent` can only be one of `names`."""
    intent_type: Any = Literal[tuple(names)]
    return create_model(
        "IntentDecision",
        __doc__="Which declared intent the latest request belongs to.",
        intent=(intent_type, Field(description="One of the declared intents.")),
        confidence=(float, Field(ge=0.0, le=1.0, description="Confidence it is right, 0-1.")),
        reason=(str, Field(description="One sentence: why this intent.")),
    )


def choose_route(intent: str, confidence: float, threshold: float, fallback: str) -> str:
    """The handler to run: the classified intent, or the fallback when confidence < threshold."""
    return intent if confidence >= threshold else fallback


def classification_view(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The conversation as the classifier sees it: user turns and plain assistant replies.

    Tool calls and tool results are left out: they are the specialists' working notes, and a
    request carrying unanswered or foreign tool calls would be invalid for the classifier.
    """
    view: list[AnyMessage] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            view.append(message)
        elif isinstance(message, AIMessage) and not message.tool_calls and message.content:
            view.append(AIMessage(content=message.content))
    return view


def intent_lines(descriptions: Mapping[str, str], template: str) -> str:
    """The declared intents as prompt lines, in declaration order."""
    return "\n".join(template.format(name=n, description=d) for n, d in descriptions.items())
