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

Patterns without the agent loop's steps (planner, supervisor, debate, ToT, refine) call
`recall_for(query, ctx, store)` inside their own decision node and append `.text` to the
system prompt. Memories are rendered by `render_memories`: procedural memories the user or an
operator saved go into `<memory_instructions>` (to follow), everything else into
`<memories>` (background data); every line is escaped so a stored memory cannot close or
forge either block.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from memory.manager import (
    KINDS,
    InvalidMemoryError,
    MemoryManager,
    MemoryUnavailableError,
    RecallResult,
    prompt_safe,
)
from memory.manager import manager_for as user_manager
from memory.tokens import load_tokenizer
from nodes.context import Context, context_of
from nodes.model import message_text
from nodes.prompts.memory import (
    EPISODE_CONTENT,
    MEMORY_CONTEXT_PROMPT,
    MEMORY_INSTRUCTIONS_PROMPT,
)

logger = logging.getLogger(__name__)

DEGRADED_MEMORY = "memory"
EPISODE_TEXT_CHARS = 400
"""Task and outcome are cut to this many characters in an episode (memories stay short)."""
SUCCESS_IMPORTANCE = 0.4
FAILURE_IMPORTANCE = 0.6
"""Failed episodes rank a little higher: they carry the lessons."""


MEMORY_TOOL_NAMES = ("save_memory", "search_memory")
MEMORY_ERRORS: tuple[type[Exception], ...] = (MemoryUnavailableError, InvalidMemoryError)
"""What memory calls raise for store trouble or an unusable user/org id: callers degrade."""
ESCAPE_FOR_PROMPT = prompt_safe
"""Escape model- or store-provided text for a tagged prompt block (memory.manager.prompt_safe)."""


def manager_for(
    store: BaseStore,
    context: Context,
    embeddings: Embeddings | None = None,
    *,
    agent: str | None = None,
) -> MemoryManager:
    """A MemoryManager for the run's user and org (see `memory.manager.manager_for`)."""
    return user_manager(store, context.user_id, embeddings, org_id=context.org_id, agent=agent)


def memory_available(context: Context, store: BaseStore | None) -> bool:
    """Memory is on for this run and the graph has a store to keep it in."""
    return context.memory_enabled and store is not None


def render_memories(result: RecallResult) -> str:
    """The prompt text for recalled memories ('' when none): instructions, then data.

    Each memory is one escaped line (`Memory.line`), so a stored `</memories>` cannot end the
    block early and a stored newline cannot add a forged memory line.
    """
    parts = []
    if result.instructions:
        lines = "\n".join(m.line() for m in result.instructions)
        parts.append(MEMORY_INSTRUCTIONS_PROMPT.format(instructions=lines))
    if result.data:
        lines = "\n".join(m.line() for m in result.data)
        parts.append(MEMORY_CONTEXT_PROMPT.format(memories=lines))
    return "".join(parts)


@dataclass(frozen=True)
class RecalledMemories:
    """What `recall_for` found: prompt text to append, and whether memory failed."""

    text: str = ""
    """`render_memories` output, '' when memory is off or nothing matched."""
    count: int = 0
    tokens: int = 0
    """Tokens of the recalled memory lines (the budget counts these)."""
    skipped: int = 0
    """Memories ranked high enough but too long for the remaining budget."""
    degraded: bool = False
    """True when memory was on but the store was missing or failed."""

    @property
    def update(self) -> dict[str, Any]:
        """The state update to return alongside: `{"degraded": ["memory"]}` or `{}`."""
        return {"degraded": [DEGRADED_MEMORY]} if self.degraded else {}


async def recall_for(
    query: str,
    context: Context,
    store: BaseStore | None,
    *,
    agent: str | None = None,
    embeddings: Embeddings | None = None,
    touch: bool = True,
) -> RecalledMemories:
    """Recall the run's user's memories for `query`, ready for a prompt.

    The reusable recall step for nodes that build their own prompts (planner, supervisor,
    debaters, ...): honours `Context.memory_enabled`, `memory_kinds`, `recall_k` and
    `memory_token_budget`, and never raises for store trouble (`degraded` instead). Nodes
    that recall more than once per run pass `touch=False` after the first call so access
    counts stay one per run.

        memory = await recall_for(state["request"], ctx, runtime.store)
        messages = [SystemMessage(PLANNER_SYSTEM_PROMPT + memory.text), ...]
        return {..., **memory.update}
    """
    if not context.memory_enabled:
        return RecalledMemories()
    if store is None:
        logger.warning("memory_enabled but the graph has no store: running without memory")
        return RecalledMemories(degraded=True)
    await load_tokenizer()
    kinds = [k for k in context.memory_kinds if k in KINDS]
    try:
        result = await manager_for(store, context, embeddings, agent=agent).recall(
            query,
            kinds=kinds,
            k=context.recall_k,
            token_budget=context.memory_token_budget,
            touch=touch,
        )
    except MemoryUnavailableError:
        return RecalledMemories(degraded=True)
    except InvalidMemoryError as exc:
        # A user or org id the store cannot hold (e.g. empty): a configuration problem of
        # this run, reported once, not a reason to fail the user's request.
        logger.warning("memory skipped: %s", exc)
        return RecalledMemories(degraded=True)
    return RecalledMemories(
        text=render_memories(result),
        count=len(result.memories),
        tokens=result.tokens,
        skipped=result.skipped,
    )


def with_memory_tools(tools: Sequence[BaseTool]) -> list[BaseTool]:
    """`tools` plus `save_memory`/`search_memory` (unless a tool of that name is there).

    For the agent loop's registry; `usable_tool_names` then hides them from the model on runs
    without memory.
    """
    from tools.memory_tools import memory_tools

    names = {t.name for t in tools}
    return [*tools, *(t for t in memory_tools() if t.name not in names)]


def usable_tool_names(
    names: Sequence[str], context: Context, store: BaseStore | None
) -> list[str]:
    """`names` without the memory tools when memory is off or the graph has no store."""
    if memory_available(context, store):
        return list(names)
    return [n for n in names if n not in MEMORY_TOOL_NAMES]


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


def make_recall_memories(
    *, embeddings: Embeddings | None = None, agent: str | None = None
) -> Any:
    """The `recall_memories` node (before the model).

    Reads `messages`; writes `memory_context` (the memories that fit
    `Context.memory_token_budget`, rendered by `render_memories`) and, on store failure,
    `degraded`. `agent` names the loop for agent-scoped procedural memories.
    """

    async def recall_memories(
        state: Mapping[str, Any], runtime: Runtime[Context]
    ) -> dict[str, Any]:
        # The model node counts tokens synchronously; load the tokenizer here, off the loop.
        await load_tokenizer()
        ctx = context_of(runtime)
        if not ctx.memory_enabled:
            return {"memory_context": None} if state.get("memory_context") else {}
        query = latest_user_text(state.get("messages") or [])
        memory = await recall_for(query, ctx, runtime.store, agent=agent, embeddings=embeddings)
        if memory.degraded:
            return {"memory_context": None, **memory.update}
        get_stream_writer()(
            {
                "event": "memories_recalled",
                "count": memory.count,
                "tokens": memory.tokens,
                "skipped": memory.skipped,
            }
        )
        return {"memory_context": memory.text or None}

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
                source="episode",
                importance=SUCCESS_IMPORTANCE if success else FAILURE_IMPORTANCE,
                task=_clip(task),
                outcome=_clip(outcome),
                success=bool(success),
                tool_calls=tools,
                tokens=tokens,
                lessons=lessons,
            )
        except (MemoryUnavailableError, InvalidMemoryError):
            return {"degraded": [DEGRADED_MEMORY]}
        return {}

    return record_episode


def add_memory_steps(
    builder: Any,
    *,
    model: Any = None,
    role: Any = "agent",
    embeddings: Embeddings | None = None,
    agent: str | None = None,
) -> None:
    """Add the `recall_memories`, `record_episode` and `summarize` nodes to `builder`.

    The caller wires them: `START → recall_memories → <model node>` and every finished path
    `→ record_episode → summarize → END`. `model`/`role` choose the summariser (see
    `nodes.context_window.make_summarize`); `agent` scopes procedural recall to that agent.
    """
    from nodes.context_window import make_summarize

    steps = {
        "recall_memories": make_recall_memories(embeddings=embeddings, agent=agent),
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
