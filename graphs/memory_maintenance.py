"""Memory maintenance: de-duplicate, consolidate old episodes into insights, promote, prune.

find_users → deduplicate → consolidate → promote → prune → report. Runs over every user
with memories in the store, in every organisation (narrowed by `user_ids` / `org_ids`),
typically on a schedule with the server's cron. The rules are deterministic and documented
in `memory/maintenance.py`; the only model call is `consolidate`: one structured call per
user with at least `min_episodes` old, unconsolidated episodes (role `planner`). A failing
store ends the run with `degraded=["memory"]` and success=false instead of raising.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from memory.maintenance import (
    MaintenancePolicy,
    MemoryOwner,
    deduplicate,
    episodes_to_consolidate,
    mark_consolidated,
    memory_users,
    promote,
    prune,
    sweep_store_ttl,
)
from memory.manager import MemoryManager, MemoryUnavailableError, manager_for
from nodes.context import Context, context_of
from nodes.finish import make_finish_run
from nodes.model import ModelOverride
from nodes.prompts.memory import CONSOLIDATE_EPISODES_PROMPT
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import (
    RunAccounting,
    RunClockChannel,
    RunOutcome,
    add_usage,
    merge_degraded,
    start_clock,
)
from nodes.structured import ask_structured
from nodes.tracing import traced

logger = logging.getLogger(__name__)

REPORT_KEYS = ("users", "deduplicated", "episodes_consolidated", "insights", "promoted", "pruned")


def add_counts(current: dict[str, int] | None, update: dict[str, int] | None) -> dict[str, int]:
    """Sum per-step counts."""
    merged = dict(current or {})
    for key, value in (update or {}).items():
        merged[key] = merged.get(key, 0) + value
    return merged


class Insight(BaseModel):
    """One durable insight drawn from past episodes."""

    content: str = Field(description="A self-contained fact or lesson, one sentence.")
    importance: float = Field(ge=0, le=1, description="0 trivial … 1 essential.")


class Insights(BaseModel):
    """Insights drawn from a user's past episodes (may be empty)."""

    insights: list[Insight] = Field(default_factory=list)


class MaintenanceInput(TypedDict):
    """What a caller (or a cron job) sends; every key is optional."""

    user_ids: NotRequired[list[str] | None]
    """Users to maintain (in any organisation); default: every user with memories."""
    org_ids: NotRequired[list[str] | None]
    """Organisations to maintain; default: every org, and the users outside any org."""
    dedup_threshold: NotRequired[float]
    """Cosine similarity at which two memories count as duplicates (default 0.92)."""
    episode_age_days: NotRequired[float]
    """Episodes older than this are consolidated (default 7)."""
    stale_days: NotRequired[float]
    """Low-importance memories not accessed for this long are pruned (default 30)."""


class MaintenanceOutput(RunOutcome, RunAccounting):
    """What the maintenance run reports."""

    report: NotRequired[Annotated[dict[str, int], add_counts]]
    """Counts per step: users, deduplicated, episodes_consolidated, insights, promoted, pruned."""
    degraded: NotRequired[Annotated[list[str], merge_degraded]]
    """`["memory"]` when the store failed."""


class MaintenanceState(MaintenanceInput, MaintenanceOutput, RunClockChannel):
    """Full state of the maintenance graph."""

    users: NotRequired[list[list[str | None]]]
    """The `[user_id, org_id]` pairs this run maintains (found by `find_users`)."""


def _policy(state: MaintenanceState) -> MaintenancePolicy:
    defaults = MaintenancePolicy()
    return MaintenancePolicy(
        dedup_threshold=state.get("dedup_threshold", defaults.dedup_threshold),
        episode_age_days=state.get("episode_age_days", defaults.episode_age_days),
        stale_days=state.get("stale_days", defaults.stale_days),
    )


def _failed(error: MemoryUnavailableError) -> dict[str, Any]:
    return {"degraded": ["memory"], "success": False, "error": str(error)}


def build_graph(
    *,
    model: ModelOverride = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[MaintenanceState, Context, MaintenanceInput, MaintenanceOutput]:
    """Compile the memory maintenance graph.

    Args:
        model: Chat model object or id (or role→model mapping) for the consolidation call.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: The memory store (None for the server, which brings its own).
    """

    def managers(runtime: Runtime[Context], state: MaintenanceState) -> list[MemoryManager]:
        assert runtime.store is not None  # find_users stops the run without a store
        return [
            manager_for(runtime.store, str(user), org_id=org)
            for user, org in state.get("users", [])
        ]

    async def find_users(state: MaintenanceState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Pick the users to maintain (and start the run's clock).

        Reads `user_ids`, `org_ids`; writes `users`, `report`, `run_clock`.
        """
        clock = start_clock(state)
        if runtime.store is None:
            return {
                **clock,
                "degraded": ["memory"],
                "success": False,
                "error": "no store configured",
            }
        try:
            owners = await memory_users(runtime.store)
        except MemoryUnavailableError as exc:
            return {**clock, **_failed(exc)}
        owners = selected_owners(owners, state.get("user_ids"), state.get("org_ids"))
        return {
            **clock,
            "users": [[o.user_id, o.org_id] for o in owners],
            "report": {"users": len(owners)},
        }

    async def dedup_step(state: MaintenanceState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Merge near-duplicate memories. Writes `report.deduplicated`."""
        try:
            removed = [await deduplicate(m, _policy(state)) for m in managers(runtime, state)]
        except MemoryUnavailableError as exc:
            return _failed(exc)
        return {"report": {"deduplicated": sum(removed)}}

    async def consolidate(state: MaintenanceState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Turn old episodes into semantic insights (one model call per user that has them).

        Writes `report.episodes_consolidated`, `report.insights`, `usage`.
        """
        ctx = context_of(runtime)
        policy = _policy(state)
        usage: dict[str, Any] = {}
        episodes_done = insights_saved = 0
        try:
            for manager in managers(runtime, state):
                episodes = await episodes_to_consolidate(manager, policy)
                if not episodes:
                    continue
                listing = "\n\n".join(e.content for e in episodes)
                answer = await ask_structured(
                    Insights,
                    [HumanMessage(CONSOLIDATE_EPISODES_PROMPT.format(episodes=listing))],
                    role="planner",
                    context=ctx,
                    model=model,
                )
                usage = dict(add_usage(usage, answer.usage))
                for insight in answer.value.insights:
                    await manager.remember(
                        insight.content,
                        kind="semantic",
                        importance=insight.importance,
                        source="consolidation",
                        from_episodes=[e.id for e in episodes],
                    )
                await mark_consolidated(manager, episodes, policy)
                episodes_done += len(episodes)
                insights_saved += len(answer.value.insights)
                get_stream_writer()(
                    {
                        "event": "episodes_consolidated",
                        "user": manager.user_id,
                        "episodes": len(episodes),
                        "insights": len(answer.value.insights),
                    }
                )
        except MemoryUnavailableError as exc:
            return {**_failed(exc), "usage": usage}
        return {
            "report": {"episodes_consolidated": episodes_done, "insights": insights_saved},
            "usage": usage,
        }

    async def promote_step(state: MaintenanceState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Raise the importance of often-recalled memories. Writes `report.promoted`."""
        try:
            counts = [await promote(m, _policy(state)) for m in managers(runtime, state)]
        except MemoryUnavailableError as exc:
            return _failed(exc)
        return {"report": {"promoted": sum(counts)}}

    async def prune_step(state: MaintenanceState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Delete expired and stale low-importance memories. Writes `report.pruned`."""
        assert runtime.store is not None
        try:
            swept = await sweep_store_ttl(runtime.store)
            counts = [await prune(m, _policy(state)) for m in managers(runtime, state)]
        except MemoryUnavailableError as exc:
            return _failed(exc)
        return {"report": {"pruned": swept + sum(counts)}}

    def report(state: MaintenanceState) -> dict[str, Any]:
        """Summarise the run. Writes `final_answer`, `success`, `error`, `report`."""
        counts = {key: state.get("report", {}).get(key, 0) for key in REPORT_KEYS}
        text = ", ".join(f"{key}={value}" for key, value in counts.items())
        if state.get("success") is False:
            return {"final_answer": f"Memory maintenance stopped: {state.get('error')} ({text})"}
        return {"final_answer": f"Memory maintenance done: {text}", "success": True, "error": None}

    builder = StateGraph(
        MaintenanceState,
        context_schema=Context,
        input_schema=MaintenanceInput,
        output_schema=MaintenanceOutput,
    )
    builder.add_node("find_users", find_users)
    builder.add_node("deduplicate", dedup_step)
    builder.add_node(
        "consolidate", consolidate, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT
    )
    builder.add_node("promote", promote_step)
    builder.add_node("prune", prune_step)
    builder.add_node("report", report)
    builder.add_edge(START, "find_users")
    builder.add_conditional_edges("find_users", after_find_users)
    builder.add_conditional_edges("deduplicate", after_deduplicate)
    builder.add_conditional_edges("consolidate", after_consolidate)
    builder.add_conditional_edges("promote", after_promote)
    builder.add_node(
        "finish_run",
        make_finish_run(guardrail=False, iterations=lambda s: len(s.get("users") or [])),
    )
    builder.add_edge("prune", "report")
    builder.add_edge("report", "finish_run")
    builder.add_edge("finish_run", END)
    compiled = builder.compile(name="memory_maintenance", checkpointer=checkpointer, store=store)
    return traced(compiled, pattern="memory_maintenance")


def after_find_users(state: MaintenanceState) -> Literal["deduplicate", "report"]:
    """De-duplicate next, unless the store failed."""
    return "report" if state.get("success") is False else "deduplicate"


def after_deduplicate(state: MaintenanceState) -> Literal["consolidate", "report"]:
    """Consolidate next, unless the store failed."""
    return "report" if state.get("success") is False else "consolidate"


def after_consolidate(state: MaintenanceState) -> Literal["promote", "report"]:
    """Promote next, unless the store failed."""
    return "report" if state.get("success") is False else "promote"


def after_promote(state: MaintenanceState) -> Literal["prune", "report"]:
    """Prune next, unless the store failed."""
    return "report" if state.get("success") is False else "prune"


def selected_owners(
    owners: list[MemoryOwner], user_ids: list[str] | None, org_ids: list[str] | None
) -> list[MemoryOwner]:
    """`owners` narrowed to `user_ids` (any org) and `org_ids` (None/empty: no narrowing)."""
    return [
        o
        for o in owners
        if (not user_ids or o.user_id in user_ids) and (not org_ids or o.org_id in org_ids)
    ]


def input_from_text(text: str) -> dict[str, Any]:
    """`weft run memory_maintenance "alice,bob"`: the users to maintain (empty: all)."""
    users = [u.strip() for u in text.split(",") if u.strip()]
    return {"user_ids": users} if users else {}


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
