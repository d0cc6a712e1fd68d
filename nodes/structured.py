"""Structured model decisions: every routing, planning and judging step goes through here.

`ask_structured(Schema, messages, role=..., context=..., model=...)` calls the role's model with
`with_structured_output(Schema, include_raw=True)`, re-asks once with the validation error when
the reply does not fit the schema, and returns the parsed object plus a `usage` update.

The model comes from the gateway (`nodes.model.resolve_model`), so the schema is bound to the
fallback model too, and an open circuit, the rate limit and the deterministic-call cache apply
as for any other call; `usage` goes to the model that answered (zero tokens on a cache hit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel

from nodes.context import Context, ModelRole
from nodes.model import ModelOverride, resolve_model
from nodes.state import ModelUsage, add_usage, usage_update

logger = logging.getLogger(__name__)

SchemaT = TypeVar("SchemaT", bound=BaseModel)

# fields: {schema}, {error}; used by ask_structured when a reply does not fit the schema
SCHEMA_RETRY_PROMPT = (
    "Your last reply did not match the required {schema} schema: {error}. "
    "Reply again with only a valid {schema}."
)


class StructuredOutputError(RuntimeError):
    """The model did not produce a valid instance of the schema within the allowed attempts."""


@dataclass(frozen=True)
class StructuredAnswer(Generic[SchemaT]):
    """A parsed decision and the usage it cost (ready for the `usage` channel)."""

    value: SchemaT
    usage: dict[str, ModelUsage]


async def ask_structured(
    schema: type[SchemaT],
    messages: Sequence[AnyMessage],
    *,
    role: ModelRole,
    context: Context,
    model: ModelOverride = None,
    attempts: int = 2,
) -> StructuredAnswer[SchemaT]:
    """Ask the role's model for a `schema` instance.

    Raises:
        StructuredOutputError: naming the schema, the model and the last validation error.
    """
    chat_model, model_id = resolve_model(role, context, model)
    # Decisions are JSON for the graph, not tokens for the user: keeping them out of the
    # `messages` stream also avoids langchain-openai streaming the parsed object inside
    # message chunks, which Pydantic warns about on every structured call.
    runnable = chat_model.with_structured_output(schema, include_raw=True).with_config(
        tags=[TAG_NOSTREAM]
    )
    conversation = list(messages)
    usage: dict[str, ModelUsage] = {}
    error: Any = None
    for _ in range(max(1, attempts)):
        # include_raw=True always returns the {"raw", "parsed", "parsing_error"} mapping.
        result: dict[str, Any] = await runnable.ainvoke(conversation)
        raw = result.get("raw")
        usage = add_usage(usage, usage_update(model_id, getattr(raw, "usage_metadata", None)))
        parsed = result.get("parsed")
        if isinstance(parsed, schema):
            return StructuredAnswer(value=parsed, usage=usage)
        error = result.get("parsing_error") or "no structured reply"
        logger.info("model %s returned an invalid %s; re-asking", model_id, schema.__name__)
        conversation = [
            *conversation,
            AIMessage(content=str(getattr(raw, "content", "")) or "(empty reply)"),
            HumanMessage(SCHEMA_RETRY_PROMPT.format(schema=schema.__name__, error=error)),
        ]
    raise StructuredOutputError(
        f"model {model_id!r} did not return a valid {schema.__name__} after {attempts} "
        f"attempt(s): {error}"
    )
