"""Long-term memory steps of the agent loop: `recall_memories` and `record_episode`.

Both are always in the graph and do nothing unless `Context.memory_enabled` is set, so a
graph's shape does not depend on run settings. A failing or missing store never fails the
run: the step is skipped and `degraded` gains `"memory"`.

Adding them (and `summarize`, nodes/context_window.py) to your own graph, as `build_agent`
does; the state needs `messages` and the `MemoryChannels` keys (nodes/state.py):

    add_memory_steps(builder, model=model)       # recall_memories, record_episode, summarize
    builder.add_edge(START, "recall_memories")
    builder.add_edge("recall_memories", "agent")  # your model node
    ...                                           # every finished path → "record_episode"
    builder.add_edge("record_episode", "summarize")
    builder.add_edge("summarize", END)

and build the model input with `nodes.context_window.model_input(...)` so recalled memories
and the running summary reach the model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from memory.manager import KINDS, MemoryManager, MemoryUnavailableError
from memory.manager import manager_for as user_manager
from memory.tokens import load_tokenizer
from nodes.context import Context, context_of
from nodes.model import message_text
from nodes.prompts.memory import EPISODE_CONTENT

logger = logging.getLogger(__name__)

DEGRADED_MEMORY = "memory"
EPISODE_TEXT_CHARS = 400
"""Task and outcome are cut to this many characters in an episode (memories stay short)."""
SUCCESS_IMPORTANCE = 0.4
FAILURE_IMPORTANCE = 0.6
"""Failed episodes rank a little higher: they carry the lessons."""


def manager_for(
    store: BaseStore, context: Context, embeddings: Embeddings | None = None
) -> MemoryManager:
    """A MemoryManager for the run's user (see `memory.manager.manager_for`)."""
    return user_manager(store, context.user_id, embeddings)


def latest_user_text(messages: Sequence[AnyMessage]) -> str:
    """Text of the newest user message ('' when there is none)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message.content)
    return ""


def _turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[index + 1 :])
    return list(messages)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EPISODE_TEXT_CHARS else text[: EPISODE_TEXT_CHARS - 1] + "…"


def make_recall_memories(*, embeddings: Embeddings | None = None) -> Any:
    """The `recall_memories` node (before the model).

    Reads `messages`; writes `memory_context` (the memories that fit
    `Context.memory_token_budget`, rendered one per line) and, on store failure, `degraded`.
    """

    async def recall_memories(
        state: Mapping[str, Any], runtime: Runtime[Context]
    ) -> dict[str, Any]:
        # The model node counts tokens synchronously; load the tokenizer here, off the loop.
        await load_tokenizer()
        ctx = context_of(runtime)
        if not ctx.memory_enabled:
            return {"memory_context": None} if state.get("memory_context") else {}
        if runtime.store is None:
            logger.warning("memory_enabled but the graph has no store: running without memory")
            return {"memory_context": None, "degraded": [DEGRADED_MEMORY]}
        query = latest_user_text(state.get("messages") or [])
        kinds = [k for k in ctx.memory_kinds if k in KINDS]
        try:
            result = await manager_for(runtime.store, ctx, embeddings).recall(
                query, kinds=kinds, k=ctx.recall_k, token_budget=ctx.memory_token_budget
            )
        except MemoryUnavailableError:
            return {"memory_context": None, "degraded": [DEGRADED_MEMORY]}
        get_stream_writer()(
            {
                "event": "memories_recalled",
                "count": len(result.memories),
                "tokens": result.tokens,
                "skipped": result.skipped,
            }
        )
        return {"memory_context": result.text() or None}

    return recall_memories


def make_record_episode(*, embeddings: Embeddings | None = None) -> Any:
    """The `record_episode` node (after the answer).

    Stores one episodic memory for the turn: task, outcome, success, tool calls, tokens and,
    for a failed run, the reason as a lesson. Reads `messages`, `final_answer`, `success`,
    `error`; writes nothing, or `degraded` on store failure.
    """

    async def record_episode(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = context_of(runtime)
        if not (ctx.memory_enabled and ctx.record_episodes):
            return {}
        if runtime.store is None:
            return {"degraded": [DEGRADED_MEMORY]}
        messages = state.get("messages") or []
        task = latest_user_text(messages)
        if not task.strip():
            return {}
        turn = _turn(messages)
        tools = [c["name"] for m in turn if isinstance(m, AIMessage) for c in m.tool_calls]
        tokens = sum(
            m.usage_metadata["total_tokens"]
            for m in turn
            if isinstance(m, AIMessage) and m.usage_metadata
        )
        success = state.get("success")
        outcome = state.get("final_answer") or ""
        content = EPISODE_CONTENT.format(
            task=_clip(task),
            outcome=_clip(outcome) or "(no answer)",
            status="succeeded" if success else "failed",
            tools=", ".join(dict.fromkeys(tools)) or "none",
        )
        lessons = [state["error"]] if state.get("error") else []
        try:
            await manager_for(runtime.store, ctx, embeddings).remember(
                content,
                kind="episodic",
                importance=SUCCESS_IMPORTANCE if success else FAILURE_IMPORTANCE,
                task=_clip(task),
                outcome=_clip(outcome),
                success=bool(success),
                tool_calls=tools,
                tokens=tokens,
                lessons=lessons,
            )
        except MemoryUnavailableError:
            return {"degraded": [DEGRADED_MEMORY]}
        return {}

    return record_episode


def add_memory_steps(
    builder: Any,
    *,
    model: Any = None,
    role: Any = "agent",
    embeddings: Embeddings | None = None,
) -> None:
    """Add the `recall_memories`, `record_episode` and `summarize` nodes to `builder`.

    The caller wires them: `START → recall_memories → <model node>` and every finished path
    `→ record_episode → summarize → END`. `model`/`role` choose the summariser (see
    `nodes.context_window.make_summarize`).
    """
    from nodes.context_window import make_summarize

    steps = {
        "recall_memories": make_recall_memories(embeddings=embeddings),
        "record_episode": make_record_episode(embeddings=embeddings),
        "summarize": make_summarize(model=model, role=role),
    }
    for name, node in steps.items():
        builder.add_node(name, with_sync_twin(node, name))


def with_sync_twin(afunc: Any, name: str) -> Any:
    """Wrap an async node so plain `graph.invoke(...)` works too.

    The sync twin runs the coroutine on a private event loop (in a worker thread when the
    calling thread already runs one), keeping the caller's context (config, stream writer).
    """
    import asyncio
    import concurrent.futures
    import contextvars

    from langgraph._internal._runnable import RunnableCallable

    def func(state: Mapping[str, Any], runtime: Runtime[Context]) -> Any:
        context = contextvars.copy_context()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return context.run(asyncio.run, afunc(state, runtime))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(context.run, asyncio.run, afunc(state, runtime)).result()

    return RunnableCallable(func, afunc, name=name)
