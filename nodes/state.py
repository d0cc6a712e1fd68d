"""State channels every pattern shares, and their reducers.

Each pattern's state is a TypedDict that includes these keys; reducers are small pure functions
so that parallel branches (Send fan-out, parallel tool calls) merge without losing updates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.checkpoint.base.id import UUID as CheckpointUUID
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class ModelUsage(TypedDict):
    """Token usage of one model, summed over its calls."""

    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_hits: NotRequired[int]
    """Calls answered from the response cache (counted in `calls`, with zero tokens)."""


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
        summed = ModelUsage(
            calls=base["calls"] + usage.get("calls", 0),
            input_tokens=base["input_tokens"] + usage.get("input_tokens", 0),
            output_tokens=base["output_tokens"] + usage.get("output_tokens", 0),
            total_tokens=base["total_tokens"] + usage.get("total_tokens", 0),
        )
        hits = base.get("cache_hits", 0) + usage.get("cache_hits", 0)
        if hits:
            summed["cache_hits"] = hits
        merged[model] = summed
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


class ToolMetrics(TypedDict):
    """Calls and errors of one tool in a run."""

    calls: int
    errors: int


class RunMetrics(TypedDict):
    """What one run (one invocation, resumes included) did and spent; see nodes/finish.py."""

    completed: bool
    """True when the run reached its goal (`success`)."""
    stopped_by: str | None
    """The budget that ended the run early (e.g. `max_tool_calls`), else None."""
    iterations: int
    """The pattern's own loop count (agent turns, rounds, drafts, trials, handoffs, tasks)."""
    model_calls: int
    cache_hits: int
    tool_calls: int
    tool_errors: int
    tools: dict[str, ToolMetrics]
    models: dict[str, ModelUsage]
    """Calls and tokens in/out per model id, for this run only."""
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """From `Context.price_table`; None when a model used has no price (or no table is set)."""
    wall_time_s: float
    """Seconds since the run started, not counting time paused on interrupts."""
    paused_s: float
    """Seconds the run waited on humans (interrupts)."""
    interrupts: int
    max_context_utilisation: float | None
    """Highest tokens-sent / context-window ratio of the run's agent-loop model calls."""
    degraded: list[str]


def merge_degraded(current: list[str] | None, update: list[str] | None) -> list[str]:
    """Union of degraded capabilities, first-seen order, no duplicates."""
    return list(dict.fromkeys([*(current or []), *(update or [])]))


class DegradedChannel(TypedDict):
    """Capabilities a run went without (every pattern's output has it via RunAccounting)."""

    degraded: NotRequired[Annotated[list[str], merge_degraded]]
    """Capabilities that failed and were skipped, e.g. `["memory"]`; the run still finished."""


class RunAccounting(DegradedChannel):
    """Keys every pattern carries for usage accounting and metrics."""

    usage: NotRequired[Annotated[dict[str, ModelUsage], add_usage]]
    """Tokens and calls per model id, summed over the thread."""
    tool_results: NotRequired[Annotated[list[ToolResult], add_tool_results]]
    """One record per tool call: name, call id, ok/error code, duration."""
    metrics: NotRequired[RunMetrics]
    """What the latest run did and spent (written by the `finish_run` step)."""


class RunClock(TypedDict):
    """When the current run started and what the thread had used by then.

    Budgets and metrics count from here, so a second message on a thread gets a fresh budget.
    """

    started_at: float
    """`time.time()` when the run started."""
    paused_s: float
    """Time spent waiting on interrupts, which the wall-time budget does not count."""
    interrupts: int
    usage_at_start: dict[str, ModelUsage]
    tool_calls_at_start: int


def merge_run_clock(current: RunClock | None, update: dict[str, Any] | None) -> RunClock | None:
    """A start (an update with `started_at`) replaces the clock; other updates add pauses.

    Pause updates look like `{"paused_s": 12.5, "interrupts": 1}` and may come from parallel
    branches, so they add up instead of overwriting each other.
    """
    if not update:
        return current
    if "started_at" in update:
        return RunClock(
            started_at=float(update["started_at"]),
            paused_s=float(update.get("paused_s", 0.0)),
            interrupts=int(update.get("interrupts", 0)),
            usage_at_start=dict(update.get("usage_at_start") or {}),
            tool_calls_at_start=int(update.get("tool_calls_at_start", 0)),
        )
    if current is None:
        return None  # a pause credit before any start has nothing to extend
    return RunClock(
        **{
            **current,
            "paused_s": current["paused_s"] + float(update.get("paused_s", 0.0)),
            "interrupts": current["interrupts"] + int(update.get("interrupts", 0)),
        }
    )


def combine_clock_updates(*updates: dict[str, Any]) -> dict[str, Any]:
    """Several `run_clock` channel updates from one node as one (a start, then pauses).

    A node's update dict can hold the key once, so a node that starts the clock and also
    credits a sub-run's pause must fold them together; the fold is what the reducer would do.
    """
    clocks = [u["run_clock"] for u in updates if u.get("run_clock")]
    if not clocks:
        return {}
    if "started_at" not in clocks[0]:
        paused = sum(float(c.get("paused_s", 0.0)) for c in clocks)
        return {
            "run_clock": {
                "paused_s": paused,
                "interrupts": sum(c.get("interrupts", 0) for c in clocks),
            }
        }
    folded: RunClock | None = None
    for clock in clocks:
        folded = merge_run_clock(folded, clock)
    return {"run_clock": dict(folded or {})}


# 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch.
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def start_clock(state: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The `run_clock` update that starts a run: the time and what the thread used so far."""
    return {
        "run_clock": {
            "started_at": time.time() if now is None else now,
            "paused_s": 0.0,
            "interrupts": 0,
            "usage_at_start": dict(state.get("usage") or {}),
            "tool_calls_at_start": len(state.get("tool_results") or []),
        }
    }


def clock_of(state: Mapping[str, Any]) -> RunClock:
    """The run's clock; a state without one (e.g. an old checkpoint) starts counting now."""
    clock: RunClock | None = state.get("run_clock")
    if clock is None:
        started = merge_run_clock(None, start_clock(state)["run_clock"])
        assert started is not None  # a start update always yields a clock
        return started
    return clock


def wall_time_of(clock: RunClock, *, now: float | None = None) -> float:
    """Seconds the run has been working: elapsed minus time paused on interrupts."""
    elapsed = (time.time() if now is None else now) - clock["started_at"]
    return max(0.0, elapsed - clock["paused_s"])


def checkpoint_time(checkpoint_id: str | None) -> float | None:
    """Unix time a LangGraph checkpoint was created, from its (UUIDv6) id; None if unknown."""
    if not checkpoint_id:
        return None
    try:
        uid = CheckpointUUID(checkpoint_id)
    except ValueError:
        return None
    if uid.version != 6:
        return None
    return (uid.time - _UUID_EPOCH_OFFSET) / 1e7


def pause_credit(runtime: Any, *, now: float | None = None) -> dict[str, Any]:
    """The `run_clock` update a node adds after `interrupt()` returned a human's answer.

    On resume the node runs again from the checkpoint taken when it first started, so the time
    since that checkpoint is (to within the node's own start-up) the time spent waiting.
    """
    info = getattr(runtime, "execution_info", None)
    asked_at = checkpoint_time(getattr(info, "checkpoint_id", None))
    current = time.time() if now is None else now
    paused = max(0.0, current - asked_at) if asked_at is not None else 0.0
    return {"run_clock": {"paused_s": paused, "interrupts": 1}}


class RunClockChannel(TypedDict):
    """The run clock channel alone, for states that use `stop_reason` for something else."""

    run_clock: NotRequired[Annotated[RunClock | None, merge_run_clock]]


class RunTracking(RunClockChannel):
    """Internal per-run bookkeeping every pattern's full state includes (not in outputs)."""

    stop_reason: NotRequired[str | None]
    """Why the run is stopping early (a budget, a guard); read by the pattern's finalize step."""


# --- memory and context window (nodes/memory_nodes.py, nodes/context_window.py) ---


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


class MemoryChannels(DegradedChannel):
    """Keys the memory and context-window steps of the agent loop read and write."""

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


def subtract_usage(
    total: dict[str, ModelUsage] | None, earlier: dict[str, ModelUsage] | None
) -> dict[str, ModelUsage]:
    """Usage since `earlier` (a snapshot of the same channel); models without use are dropped."""
    before = earlier or {}
    result: dict[str, ModelUsage] = {}
    for model, usage in (total or {}).items():
        base = before.get(model)
        diff = ModelUsage(
            calls=usage["calls"] - (base["calls"] if base else 0),
            input_tokens=usage["input_tokens"] - (base["input_tokens"] if base else 0),
            output_tokens=usage["output_tokens"] - (base["output_tokens"] if base else 0),
            total_tokens=usage["total_tokens"] - (base["total_tokens"] if base else 0),
        )
        hits = usage.get("cache_hits", 0) - (base.get("cache_hits", 0) if base else 0)
        if hits:
            diff["cache_hits"] = hits
        if diff["calls"] or diff["total_tokens"]:
            result[model] = diff
    return result


CACHE_HIT_KEY = "weft_cache_hit"
"""Set (True) in a reply's `usage_metadata` by the response cache (`nodes/response_cache.py`)."""
ANSWERED_BY_KEY = "weft_model_id"
"""Set in a reply's `usage_metadata` by the model gateway (`nodes/model.py`): the model id that
actually answered, which differs from the requested one when the fallback model answered."""


def usage_update(model_id: str, usage_metadata: Any) -> dict[str, ModelUsage]:
    """Turn a message's `usage_metadata` into a one-call `usage` channel update.

    The gateway's marks win over `model_id`: usage goes to the model that answered
    (`ANSWERED_BY_KEY`), and a cached reply (`CACHE_HIT_KEY`) costs zero tokens.
    """
    meta = usage_metadata or {}
    model_id = str(meta.get(ANSWERED_BY_KEY) or model_id)
    if meta.get(CACHE_HIT_KEY):
        return {
            model_id: ModelUsage(
                calls=1, input_tokens=0, output_tokens=0, total_tokens=0, cache_hits=1
            )
        }
    input_tokens = int(meta.get("input_tokens", 0) or 0)
    output_tokens = int(meta.get("output_tokens", 0) or 0)
    total = int(meta.get("total_tokens", 0) or 0) or input_tokens + output_tokens
    return {
        model_id: ModelUsage(
            calls=1, input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total
        )
    }
