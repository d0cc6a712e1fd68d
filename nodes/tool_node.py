"""Tool execution shared by every pattern: a `ToolNode` that times and records each call.

Errors the model can act on (unknown tool, invalid arguments, `ToolException`) come back to it
as error `ToolMessage`s and are recorded in `tool_results`; any other exception is a bug and
raises. The run's tool subset (`Context.tools`) is enforced here as well as at binding time, so
a model that names a tool it was not given cannot run it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest, ToolInvocationError
from langgraph.types import Command

from nodes.context import context_of
from nodes.state import ToolResult

logger = logging.getLogger(__name__)

ToolOutcome = ToolMessage | Command[Any]


def allowed_tool_names(requested: Iterable[str] | None, available: Sequence[str]) -> list[str]:
    """The run's tool subset: `requested` names that exist, or every available tool.

    Raises ValueError naming unknown tools and listing the available ones.
    """
    if not requested:
        return list(available)
    requested = list(requested)
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise ValueError(
            f"unknown tool(s) {', '.join(map(repr, unknown))} in context 'tools'; "
            f"available: {', '.join(available) or '(none)'}"
        )
    return requested


def unknown_tool_message(name: str, allowed: Sequence[str]) -> str:
    """Error text for the model when it calls a tool it does not have."""
    return (
        f"Error: there is no tool named {name!r}. "
        f"Available tools: {', '.join(allowed) or '(none)'}. Call one of those instead."
    )


def _record(call: dict[str, Any], started: float, error_code: str | None) -> ToolResult:
    return ToolResult(
        tool=str(call.get("name", "")),
        call_id=str(call.get("id", "")),
        ok=error_code is None,
        error_code=error_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _error_message(call: dict[str, Any], content: str) -> ToolMessage:
    return ToolMessage(
        content=content, name=call.get("name"), tool_call_id=call["id"], status="error"
    )


def _recorded(result: ToolOutcome, call: dict[str, Any], started: float) -> Command[Any]:
    if isinstance(result, Command):
        # A tool that returns its own Command keeps it; we only add the record alongside.
        return Command(
            graph=result.graph,
            goto=result.goto,
            update=_merge_update(result.update, _record(call, started, None)),
        )
    code = "tool_error" if result.status == "error" else None
    return Command(update={"messages": [result], "tool_results": [_record(call, started, code)]})


def _merge_update(update: Any, record: ToolResult) -> Any:
    if isinstance(update, dict):
        return {**update, "tool_results": [*update.get("tool_results", []), record]}
    return update


def _refusal(request: ToolCallRequest, allowed: Sequence[str]) -> Command[Any] | None:
    call = request.tool_call
    if call["name"] in allowed:
        return None
    logger.info("refused call to unknown or unselected tool %r", call["name"])
    message = _error_message(call, unknown_tool_message(call["name"], allowed))
    return Command(
        update={
            "messages": [message],
            "tool_results": [_record(call, time.perf_counter(), "unknown_tool")],
        }
    )


def _failure(call: dict[str, Any], started: float, exc: Exception) -> Command[Any]:
    if isinstance(exc, ToolInvocationError):
        code, text = "invalid_args", exc.message
    else:
        code, text = "tool_error", f"Error: {exc}"
    logger.info("tool %r failed (%s)", call["name"], code)
    return Command(
        update={
            "messages": [_error_message(call, text)],
            "tool_results": [_record(call, started, code)],
        }
    )


def make_tool_node(tools: Sequence[BaseTool], *, name: str = "tools") -> ToolNode:
    """A `ToolNode` over `tools` that enforces the run's subset and records every call."""
    available = [t.name for t in tools]

    def allowed_for(request: ToolCallRequest) -> list[str]:
        return allowed_tool_names(context_of(request.runtime).tools, available)

    async def arecord(
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolOutcome]],
    ) -> ToolOutcome:
        if (refusal := _refusal(request, allowed_for(request))) is not None:
            return refusal
        started = time.perf_counter()
        try:
            result = await execute(request)
        except (ToolException, ToolInvocationError) as exc:
            return _failure(request.tool_call, started, exc)
        return _recorded(result, request.tool_call, started)

    def record(
        request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolOutcome]
    ) -> ToolOutcome:
        if (refusal := _refusal(request, allowed_for(request))) is not None:
            return refusal
        started = time.perf_counter()
        try:
            result = execute(request)
        except (ToolException, ToolInvocationError) as exc:
            return _failure(request.tool_call, started, exc)
        return _recorded(result, request.tool_call, started)

    # handle_tool_errors=False lets model-actionable errors reach our wrappers, which classify
    # them; anything else propagates because it is a bug, not something the model can fix.
    return ToolNode(
        list(tools),
        name=name,
        handle_tool_errors=False,
        wrap_tool_call=record,
        awrap_tool_call=arecord,
    )
