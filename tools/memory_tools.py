"""Tools that let an agent manage its own long-term memory.

The store, the user and the org come from the run (`ToolRuntime`: the graph's store,
`Context.user_id` and `Context.org_id`), never from the model's arguments, so a model cannot
read or write another user's memories. Everything `save_memory` stores is marked
`source="agent"`: a model may have been steered by untrusted tool output, so what it saves is
shown to later runs as background data, never as standing instructions (memory/manager.py).
Both tools answer with an error the model can act on when memory is off or the store is
unavailable.

Policy: writes go only to the run's own user namespace, so the default policy allows
`save_memory` without review; every call is still audited (tools/policies/default.yaml).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.prebuilt import ToolRuntime

from memory.manager import (
    AGENT_SOURCE,
    InvalidMemoryError,
    MemoryManager,
    MemoryUnavailableError,
    manager_for,
)

logger = logging.getLogger(__name__)

MAX_SEARCH_RESULTS = 20


def _manager(runtime: ToolRuntime[Any, Any]) -> MemoryManager:
    from nodes.context import context_of

    ctx = context_of(runtime)  # type: ignore[arg-type]
    if not ctx.memory_enabled:
        raise ToolException("Error: long-term memory is turned off for this run; do not retry.")
    if runtime.store is None:
        raise ToolException("Error: no memory store is available in this run; do not retry.")
    try:
        return manager_for(runtime.store, ctx.user_id, org_id=ctx.org_id)
    except InvalidMemoryError as exc:
        raise ToolException(
            f"Error: memory cannot be used in this run ({exc}); do not retry."
        ) from None


@tool(parse_docstring=True)
async def save_memory(
    content: str,
    runtime: ToolRuntime[Any, Any],
    kind: Literal["semantic", "episodic", "procedural"] = "semantic",
    importance: float = 0.5,
) -> str:
    """Remember something about the user or the task for future conversations.

    Args:
        content: One self-contained statement, e.g. "The user prefers metric units".
        kind: semantic for facts and preferences, procedural for instructions on how to do a
            task, episodic for what happened.
        importance: From 0 (trivial) to 1 (essential).
    """
    if not 0.0 <= importance <= 1.0:
        raise ToolException(f"Error: 'importance' must be 0-1, got {importance}. Retry.")
    if not content.strip():
        raise ToolException("Error: 'content' is empty. Retry with the statement to remember.")
    try:
        memory = await _manager(runtime).remember(
            content, kind=kind, importance=importance, source=AGENT_SOURCE
        )
    except MemoryUnavailableError:
        raise ToolException(
            "Error: memory is unavailable right now; continue without it."
        ) from None
    return f"Saved ({memory.kind} memory {memory.id})."


@tool(parse_docstring=True)
async def search_memory(query: str, runtime: ToolRuntime[Any, Any], k: int = 5) -> str:
    """Search what you remember about the user and past tasks.

    Args:
        query: What to look for, in plain words.
        k: How many memories to return (1-20).
    """
    if not 1 <= k <= MAX_SEARCH_RESULTS:
        raise ToolException(f"Error: 'k' must be 1-{MAX_SEARCH_RESULTS}, got {k}. Retry.")
    try:
        result = await _manager(runtime).recall(query, k=k)
    except MemoryUnavailableError:
        raise ToolException(
            "Error: memory is unavailable right now; continue without it."
        ) from None
    return json.dumps(
        [{"kind": m.kind, "content": m.content} for m in result.memories], ensure_ascii=False
    )


save_memory.metadata = {
    "side_effect": "write",
    # It writes only the run's own user's memory namespace (never another user's, never the
    # outside world), so approval_mode="risky" does not stop every save; policy and audit apply.
    "risky": False,
    "idempotent": True,
    "timeout_s": 15.0,
    "rate_limit": None,
    "fallback": None,
}
save_memory.tags = ["memory"]
search_memory.metadata = {
    "side_effect": "read",
    "idempotent": True,
    "timeout_s": 15.0,
    "rate_limit": None,
    "fallback": None,
}
search_memory.tags = ["memory"]


def memory_tools() -> list[BaseTool]:
    """`save_memory` and `search_memory`."""
    return [save_memory, search_memory]
