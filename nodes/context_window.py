"""Short-term memory: what the model sees of a thread, and summarising old turns.

- `model_window(messages, budget)`: the newest messages that fit `budget` tokens (real token
  counts), keeping the system message and never splitting a tool call from its results.
- `model_input(system_prompt, state, context)`: the agent loop's model input: the system
  prompt extended with recalled memories and the running summary, then the window.
- `make_summarize(...)`: a node that folds older turns into the running summary (extending
  it) and removes them from the checkpointed state with `RemoveMessage`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from memory.manager import prompt_safe
from memory.tokens import count_message_tokens
from nodes.context import Context, ModelRole, context_of
from nodes.model import ModelOverride, message_text, resolve_model
from nodes.prompts.memory import (
    SUMMARIZE_REQUEST_PROMPT,
    SUMMARIZE_SYSTEM_PROMPT,
    SUMMARY_CONTEXT_PROMPT,
)
from nodes.state import ContextWindowRecord, usage_update

logger = logging.getLogger(__name__)

SUMMARIZER_KEY = "summarizer"
"""Key of a `model=` mapping that gives summarisation its own model."""


@dataclass(frozen=True)
class WindowStats:
    """What `model_input` sent for the current model call."""

    tokens: int
    window_tokens: int
    trimmed_messages: int


# Set by `model_input` and read by `context_window_record` within the same model-node run
# (parallel branches run in copied contexts, so they never see each other's value).
_LAST_WINDOW: ContextVar[WindowStats | None] = ContextVar("weft_last_window", default=None)


def model_window(
    messages: Sequence[BaseMessage], budget: int, *, token_counter: Any = count_message_tokens
) -> list[BaseMessage]:
    """The newest messages that fit `budget` tokens.

    Keeps a leading system message; the kept part starts at a user message so tool calls
    stay with their results. When even the latest user turn does not fit, it starts at the
    newest assistant message that fits; when nothing fits, the latest message alone is kept
    (the provider then reports the overflow).
    """
    messages = list(messages)
    if token_counter(messages) <= budget:
        return messages
    for start_on in ("human", ("human", "ai")):
        kept = trim_messages(
            messages,
            max_tokens=budget,
            token_counter=token_counter,
            strategy="last",
            include_system=True,
            start_on=start_on,
            allow_partial=False,
        )
        if any(not isinstance(m, SystemMessage) for m in kept):
            return kept
    head = [messages[0]] if isinstance(messages[0], SystemMessage) else []
    logger.warning("the latest message alone exceeds the %d-token window", budget)
    return [*head, messages[-1]]


def input_budget(context: Context) -> int:
    """Tokens the model input may take: the window minus the reply reserve (at least 256)."""
    return max(context.context_window_tokens - context.reserve_output_tokens, 256)


def model_input(
    system_prompt: str, state: Mapping[str, Any], context: Context
) -> list[BaseMessage]:
    """System prompt (+ memories, + running summary) followed by the fitting window.

    `memory_context` is already rendered (`nodes.memory_nodes.render_memories`). The summary
    is model-written from turns that may quote tool output, so its markup is escaped too:
    it cannot close `<conversation_summary>` and speak as the system prompt.
    """
    system = system_prompt
    if state.get("memory_context"):
        system += state["memory_context"]
    if state.get("summary"):
        summary = "\n".join(prompt_safe(line) for line in str(state["summary"]).splitlines())
        system += SUMMARY_CONTEXT_PROMPT.format(summary=summary)
    messages: list[BaseMessage] = [SystemMessage(system), *state["messages"]]
    budget = input_budget(context)
    window = model_window(messages, budget)
    _LAST_WINDOW.set(
        WindowStats(
            tokens=count_message_tokens(window),
            window_tokens=context.context_window_tokens,
            trimmed_messages=len(messages) - len(window),
        )
    )
    return window


def context_window_record(model_id: str, response: Any) -> list[ContextWindowRecord]:
    """The `context_windows` update for the model call just made (empty if none measured).

    Prefers the provider's input-token count; falls back to the local count.
    """
    stats = _LAST_WINDOW.get()
    if stats is None:
        return []
    usage = getattr(response, "usage_metadata", None) or {}
    tokens = int(usage.get("input_tokens") or 0) or stats.tokens
    return [
        ContextWindowRecord(
            model=model_id,
            input_tokens=tokens,
            window_tokens=stats.window_tokens,
            utilisation=round(tokens / max(stats.window_tokens, 1), 4),
            trimmed_messages=stats.trimmed_messages,
        )
    ]


def summary_cut(messages: Sequence[AnyMessage], keep_tokens: int) -> int:
    """Index splitting `messages` into (to fold, to keep).

    The kept part starts at a user message and is the longest such suffix within
    `keep_tokens`, but always holds at least the latest user turn. 0 means nothing to fold.
    """
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if not starts:
        return 0
    for index in starts:
        if index > 0 and count_message_tokens(messages[index:]) <= keep_tokens:
            return index
    return starts[-1]


def transcript(messages: Sequence[AnyMessage]) -> str:
    """Readable lines for the summariser (`User:`, `Assistant:`, `Tool <name>:`)."""
    lines = []
    for message in messages:
        text = message_text(message.content).strip()
        if isinstance(message, HumanMessage):
            lines.append(f"User: {text}")
        elif isinstance(message, ToolMessage):
            lines.append(f"Tool {message.name or 'result'}: {text}")
        elif isinstance(message, AIMessage):
            calls = ", ".join(c["name"] for c in message.tool_calls)
            lines.append(f"Assistant: {text}" + (f" [called {calls}]" if calls else ""))
    return "\n".join(lines)


def needs_summary(messages: Sequence[Any], ctx: Context) -> bool:
    """Whether the thread has outgrown `Context.summarize_after_tokens` (None: never)."""
    threshold = ctx.summarize_after_tokens
    return threshold is not None and count_message_tokens(messages) > threshold


def make_summarize(*, model: ModelOverride = None, role: ModelRole = "agent") -> Any:
    """The `summarize` node.

    When the thread's messages exceed `Context.summarize_after_tokens`, folds all but the most
    recent `summary_keep_tokens` (whole turns) into `summary` with one model call, passing
    the previous summary so it is extended rather than replaced, and removes the folded
    messages from state. A `model=` mapping may name a `"summarizer"` model.

    Reads `messages`, `summary`; writes `messages` (RemoveMessage), `summary`, `usage`.
    """
    spec: ModelOverride = model
    if isinstance(model, Mapping) and SUMMARIZER_KEY in model:
        spec = model[SUMMARIZER_KEY]

    async def summarize(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = context_of(runtime)
        messages = state.get("messages") or []
        if not needs_summary(messages, ctx):
            return {}
        cut = summary_cut(messages, ctx.summary_keep_tokens)
        if cut <= 0:
            return {}
        folded = messages[:cut]
        chat_model, model_id = resolve_model(role, ctx, spec)
        reply = await chat_model.ainvoke(
            [
                SystemMessage(SUMMARIZE_SYSTEM_PROMPT),
                HumanMessage(
                    SUMMARIZE_REQUEST_PROMPT.format(
                        summary=state.get("summary") or "(no summary yet)",
                        transcript=transcript(folded),
                    )
                ),
            ]
        )
        logger.info("summarised %d messages into the running summary", len(folded))
        get_stream_writer()({"event": "summarized", "messages_folded": len(folded)})
        return {
            "summary": message_text(reply.content).strip(),
            "messages": [RemoveMessage(id=m.id) for m in folded if m.id],
            "usage": usage_update(model_id, getattr(reply, "usage_metadata", None)),
        }

    return summarize
