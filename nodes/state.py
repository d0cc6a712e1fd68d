"""State channels every pattern shares, and their reducers.

Each pattern's state is a TypedDict that includes these keys; reducers are small pure functions
so that parallel branches (Send fan-out, parallel tool calls) merge without losing updates.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class ModelUsage(TypedDict):
    """Token usage of one model, summed over its calls."""

    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int


class ToolResult(TypedDict):
    """One executed (or refused) tool call, for metrics."""

    tool: str
    call_id: str
    ok: bool
    error_code: str | None
    """`None` when ok; otherwise e.g. `unknown_tool`, `invalid_args`, `tool_error`."""
    duration_ms: float


def add_usage(
    current: dict[str, ModelUsage] | None, update: dict[str, ModelUsage] | None
) -> dict[str, ModelUsage]:
    """Sum per-model token usage; never mutates either argument."""
    merged: dict[str, ModelUsage] = {k: ModelUsage(**v) for k, v in (current or {}).items()}
    for model, usage in (update or {}).items():
        base = merged.get(model) or ModelUsage(
            calls=0, input_tokens=0, output_tokens=0, total_tokens=0
        )
        merged[model] = ModelUsage(
            calls=base["calls"] + usage.get("calls", 0),
            input_tokens=base["input_tokens"] + usage.get("input_tokens", 0),
            output_tokens=base["output_tokens"] + usage.get("output_tokens", 0),
            total_tokens=base["total_tokens"] + usage.get("total_tokens", 0),
        )
    return merged


def add_tool_results(
    current: list[ToolResult] | None, update: list[ToolResult] | None
) -> list[ToolResult]:
    """Append tool-call records in arrival order."""
    return [*(current or []), *(update or [])]


def total_tokens(usage: dict[str, ModelUsage] | None) -> int:
    """Total tokens over all models."""
    return sum(u["total_tokens"] for u in (usage or {}).values())


class MessagesState(TypedDict):
    """The conversation: LangChain messages merged by id (`add_messages`)."""

    messages: Annotated[list[AnyMessage], add_messages]


class RunAccounting(TypedDict):
    """Keys every pattern carries for usage accounting and metrics."""

    usage: NotRequired[Annotated[dict[str, ModelUsage], add_usage]]
    """Tokens and calls per model id, summed over the thread."""
    tool_results: NotRequired[Annotated[list[ToolResult], add_tool_results]]
    """One record per tool call: name, call id, ok/error code, duration."""


# --- memory and context window (nodes/memory_nodes.py, nodes/context_window.py) ---


def merge_degraded(current: list[str] | None, update: list[str] | None) -> list[str]:
    """Union of degraded capabilities, first-seen order, no duplicates."""
    return list(dict.fromkeys([*(current or []), *(update or [])]))


CONTEXT_WINDOW_HISTORY = 50
"""Records kept in `context_windows`; an unbounded list would grow every checkpoint."""


class ContextWindowRecord(TypedDict):
    """How full the model's context window was for one model call."""

    model: str
    input_tokens: int
    """Tokens sent (the provider's count when it reports one, else tiktoken's)."""
    window_tokens: int
    utilisation: float
    """input_tokens / window_tokens."""
    trimmed_messages: int
    """Messages of the thread left out of this call to fit the window."""


def add_context_windows(
    current: list[ContextWindowRecord] | None, update: list[ContextWindowRecord] | None
) -> list[ContextWindowRecord]:
    """Append per-call records, keeping the latest `CONTEXT_WINDOW_HISTORY` (bounded state)."""
    return [*(current or []), *(update or [])][-CONTEXT_WINDOW_HISTORY:]


class DegradedChannel(TypedDict):
    """`degraded` for patterns that recall memories outside the agent loop (`recall_for`)."""

    degraded: NotRequired[Annotated[list[str], merge_degraded]]
    """Capabilities that failed and were skipped, e.g. `["memory"]`; the run still finished."""


class MemoryChannels(TypedDict):
    """Keys the memory and context-window steps of the agent loop read and write."""

    degraded: NotRequired[Annotated[list[str], merge_degraded]]
    """Capabilities that failed and were skipped, e.g. `["memory"]`; the run still finished."""
    memory_context: NotRequired[str | None]
    """Recalled memories for the current turn, already rendered for the prompt."""
    summary: NotRequired[str | None]
    """Running summary of the turns removed from `messages`."""
    context_windows: NotRequired[Annotated[list[ContextWindowRecord], add_context_windows]]
    """One record per model call: tokens sent versus the model's window."""


class RunOutcome(TypedDict):
    """What every pattern reports when it finishes."""

    final_answer: NotRequired[str | None]
    """The answer for the user; on failure, the best partial answer and an apology."""
    success: NotRequired[bool | None]
    """True when the pattern reached its goal; False when it stopped early."""
    error: NotRequired[str | None]
    """Why the run stopped early (e.g. which budget ran out); None on success."""


def usage_update(model_id: str, usage_metadata: Any) -> dict[str, ModelUsage]:
    """Turn a message's `usage_metadata` into a one-call `usage` channel update."""
    meta = usage_metadata or {}
    input_tokens = int(meta.get("input_tokens", 0) or 0)
    output_tokens = int(meta.get("output_tokens", 0) or 0)
    total = int(meta.get("total_tokens", 0) or 0) or input_tokens + output_tokens
    return {
        model_id: ModelUsage(
            calls=1, input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total
        )
    }
