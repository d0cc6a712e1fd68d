"""Tool execution shared by every pattern: runs only what the gates allowed, safely.

For each tool call of the latest model reply, the executor:

1. looks up the gate verdict (`tool_gate` state key, written by `nodes/tool_gate.py` and
   resolved by `nodes/approval.py`); a call without one is gated here, fail-closed (a call
   that would need review is refused with `not_reviewed`, never run unreviewed);
2. answers refused calls with an error ToolMessage (`unknown_tool`, `not_in_plan`,
   `invalid_args`, `denied`, `rejected`, `expired`, `not_reviewed`) without running them;
3. applies a reviewer's edited arguments;
4. takes a slot from the tool's process-wide sliding-window rate limit (`rate_limited`);
5. runs the tool under its timeout (`timeout`; async tools are cancelled, a sync tool's thread
   is abandoned, since Python cannot kill a thread) with the call's idempotency key set
   (`tools.registry.current_idempotency_key()` = '<thread_id>:<tool_call_id>'), through the
   process-wide circuit breaker of its backend (`metadata["service"]`, else the tool itself;
   thresholds `Context.circuit_failure_threshold` / `circuit_reset_s`): transient failures
   and timeouts count, an open circuit refuses the call without running it (`circuit_open`);
   If the tool fails (`timeout`, `tool_error`, `circuit_open`) and declares a `fallback` tool,
   that tool is tried with the same arguments, provided the gate lets it run without review
   (run subset, plan, schema, policy); both attempts are recorded and the model is told who
   answered;
6. wraps the output as untrusted data (`<tool_output tool=... call_id=...>…</tool_output>`,
   with any delimiter inside the output neutralised) before the model sees it;
7. records `tool_results` (name, call id, ok / error code, duration), emits a `tool_called`
   custom stream event per attempt (`get_stream_writer()`: tool, call_id, ok, error_code,
   duration_ms) and writes a `tool_executed` audit line for every side-effecting
   (`write`/`irreversible`) call.

Errors the model can act on (`ToolException`, invalid arguments, an open circuit) come back as
error ToolMessages with code `tool_error` / `invalid_args` / `circuit_open`. Transient errors
(connection, timeout-like, 429/5xx) propagate, so the node's `TOOL_RETRY` retries the step;
any other exception is a bug and raises.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph.config import get_stream_writer
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest, ToolInvocationError
from langgraph.types import Command

from nodes.context import context_of
from nodes.prompts.approval import (
    EDITED_NOTE,
    FALLBACK_NOTE,
    NOT_REVIEWED_MESSAGE,
    RATE_LIMITED_MESSAGE,
    TIMEOUT_MESSAGE,
    TOOL_OUTPUT_WRAPPER,
    UNKNOWN_TOOL_MESSAGE,
)
from nodes.resilience import CircuitBreaker, CircuitOpenError, breaker_for, tool_service
from nodes.state import ToolResult
from nodes.tool_gate import GateVerdict, ToolGate, awrite_audit, run_ids, write_audit
from tools.registry import (
    RATE_LIMITER,
    ToolRegistry,
    ToolSpec,
    idempotency_key,
    reset_idempotency_key,
    set_idempotency_key,
)

logger = logging.getLogger(__name__)

FALLBACK_ON = frozenset({"timeout", "tool_error", "circuit_open"})
"""Failure codes after which a tool's declared `fallback` is tried."""

ToolOutcome = ToolMessage | Command[Any]

_DELIMITER = re.compile(r"<(/?)(tool_output)", re.IGNORECASE)


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
    return UNKNOWN_TOOL_MESSAGE.format(tool=name, allowed=", ".join(allowed) or "(none)")


def wrap_untrusted(tool: str, call_id: str, content: str) -> str:
    """Wrap tool output in delimiters the model is told to treat as data.

    Any `<tool_output`/`</tool_output` inside the output is escaped so the output cannot close
    its own block and pose as instructions outside it.
    """
    safe = _DELIMITER.sub(lambda m: f"&lt;{m.group(1)}{m.group(2)}", content)
    return TOOL_OUTPUT_WRAPPER.format(tool=tool, call_id=call_id, content=safe)


def unwrap_tool_output(content: str) -> str:
    """The text inside a `<tool_output>` block (or `content` unchanged when not wrapped)."""
    match = re.fullmatch(r"(?s)(?:.*?\n)?<tool_output [^>]*>\n(.*)\n</tool_output>", content)
    return match.group(1) if match else content


def _record(call: Mapping[str, Any], started: float, error_code: str | None) -> ToolResult:
    return ToolResult(
        tool=str(call.get("name", "")),
        call_id=str(call.get("id", "")),
        ok=error_code is None,
        error_code=error_code,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _error_message(call: Mapping[str, Any], content: str) -> ToolMessage:
    return ToolMessage(
        content=content, name=call.get("name"), tool_call_id=call["id"], status="error"
    )


def _refused(call: Mapping[str, Any], code: str, text: str) -> Command[Any]:
    return Command(
        update={
            "messages": [_error_message(call, text)],
            "tool_results": [_record(call, time.perf_counter(), code)],
        }
    )


def _wrapped(message: ToolMessage, call: Mapping[str, Any], note: str | None) -> ToolMessage:
    content = message.content
    name, call_id = str(call.get("name", "")), str(call.get("id", ""))
    if isinstance(content, str):
        text = wrap_untrusted(name, call_id, content)
        new_content: Any = f"{note}\n{text}" if note else text
    else:
        opening, closing = wrap_untrusted(name, call_id, "\x00").split("\x00")
        blocks = [
            {"type": "text", "text": wrap_untrusted(name, call_id, b)[len(opening) : -len(closing)]}
            if isinstance(b, str)
            else b
            for b in content
        ]
        new_content = [
            *([{"type": "text", "text": note}] if note else []),
            {"type": "text", "text": opening.rstrip("\n")},
            *blocks,
            {"type": "text", "text": closing.lstrip("\n")},
        ]
    return message.model_copy(update={"content": new_content})


def _outcome(
    result: ToolOutcome, call: Mapping[str, Any], started: float, note: str | None
) -> tuple[Command[Any], str | None]:
    if isinstance(result, Command):
        # A tool that returns its own Command keeps it; we only add the record alongside.
        update = result.update
        if isinstance(update, dict):
            update = {
                **update,
                "tool_results": [*update.get("tool_results", []), _record(call, started, None)],
            }
        return Command(graph=result.graph, goto=result.goto, update=update), None
    code = "tool_error" if result.status == "error" else None
    message = _wrapped(result, call, note)
    return Command(
        update={"messages": [message], "tool_results": [_record(call, started, code)]}
    ), code


def _failure(call: Mapping[str, Any], started: float, exc: Exception) -> tuple[Command[Any], str]:
    if isinstance(exc, ToolInvocationError):
        code, text = "invalid_args", exc.message
    else:
        code = "circuit_open" if isinstance(exc, CircuitOpenError) else "tool_error"
        text = wrap_untrusted(str(call.get("name")), str(call.get("id")), f"Error: {exc}")
    logger.info("tool %r failed (%s)", call.get("name"), code)
    return Command(
        update={
            "messages": [_error_message(call, text)],
            "tool_results": [_record(call, started, code)],
        }
    ), code


def _timed_out(call: Mapping[str, Any], started: float, spec: ToolSpec) -> Command[Any]:
    logger.info("tool %r timed out after %s s", spec.name, spec.timeout_s)
    text = TIMEOUT_MESSAGE.format(tool=spec.name, timeout=spec.timeout_s)
    return Command(
        update={
            "messages": [_error_message(call, text)],
            "tool_results": [_record(call, started, "timeout")],
        }
    )


class _Executor:
    """The per-call logic shared by the sync and async wrappers."""

    def __init__(self, gate: ToolGate) -> None:
        self.gate = gate
        self.registry = gate.registry

    def verdict(self, request: ToolCallRequest) -> tuple[GateVerdict, list[dict[str, Any]]]:
        call = request.tool_call
        state = request.state if isinstance(request.state, Mapping) else {}
        call_id = str(call["id"])
        verdict = (state.get("tool_gate") or {}).get(call_id)
        if verdict is not None and verdict["tool"] == call["name"]:
            return verdict, []
        # Fail closed: a call that bypassed the gate is gated now; it cannot be reviewed here.
        verdicts, records = self.gate.decide(
            [call],
            ctx=context_of(cast(Any, request.runtime)),
            plan=state.get("plan_tools"),
            config=request.runtime.config,
        )
        verdict = verdicts[call_id]
        if verdict["decision"] == "review":
            verdict = GateVerdict(
                call_id=call_id,
                tool=call["name"],
                decision="deny",
                code="not_reviewed",
                message=NOT_REVIEWED_MESSAGE.format(tool=call["name"]),
                rule_id=verdict["rule_id"],
            )
        return verdict, records

    def prepare(
        self, request: ToolCallRequest, verdict: GateVerdict
    ) -> tuple[ToolCallRequest, ToolSpec, Command[Any] | None, str]:
        """Apply edits and the rate limit; returns a refusal instead when one applies."""
        call = request.tool_call
        spec = self.registry.spec(call["name"])
        if "args" in verdict:
            request = request.override(tool_call={**call, "args": verdict["args"]})
        key = idempotency_key(run_ids(request.runtime.config)["thread_id"], str(call["id"]))
        if spec.rate_limit is not None:
            wait = RATE_LIMITER.acquire(spec.name, spec.rate_limit)
            if wait is not None:
                logger.info("tool %r rate limited (%s)", spec.name, spec.rate_limit)
                text = RATE_LIMITED_MESSAGE.format(
                    tool=spec.name, limit=spec.rate_limit, wait=max(wait, 1.0)
                )
                return request, spec, _refused(call, "rate_limited", text), key
        return request, spec, None, key

    def fallback(
        self, request: ToolCallRequest, spec: ToolSpec
    ) -> tuple[ToolCallRequest, ToolSpec, GateVerdict, list[dict[str, Any]]] | None:
        """The fallback call for a failed one, if the tool names one the gate lets run as is.

        The fallback gets the same arguments and passes the same gate (run subset, plan,
        schema, policy); one that would need a review is not used, since nobody reviews it.
        """
        if spec.fallback is None or spec.fallback not in self.registry:
            return None
        call = request.tool_call
        state = request.state if isinstance(request.state, Mapping) else {}
        fb_call = {**call, "name": spec.fallback}
        verdicts, records = self.gate.decide(
            [fb_call],
            ctx=context_of(cast(Any, request.runtime)),
            plan=state.get("plan_tools"),
            reason=f"fallback for {spec.name!r}",
            config=request.runtime.config,
        )
        verdict = verdicts[str(call["id"])]
        if verdict["decision"] != "allow":
            logger.info(
                "fallback %r for %r not allowed (%s)",
                spec.fallback,
                spec.name,
                verdict["code"] or verdict["decision"],
            )
            return None
        fb_spec = self.registry.spec(spec.fallback)
        fb_request = request.override(tool_call=cast(Any, fb_call), tool=fb_spec.tool)
        if (
            fb_spec.rate_limit is not None
            and RATE_LIMITER.acquire(fb_spec.name, fb_spec.rate_limit) is not None
        ):
            return None
        logger.info("tool %r failed; trying fallback %r", spec.name, fb_spec.name)
        return fb_request, fb_spec, verdict, records

    def execution_record(
        self,
        request: ToolCallRequest,
        spec: ToolSpec,
        verdict: GateVerdict,
        key: str,
        code: str | None,
    ) -> list[dict[str, Any]]:
        if not spec.risky:
            return []
        call = request.tool_call
        return [
            {
                "event": "tool_executed",
                **run_ids(request.runtime.config),
                "agent": self.gate.agent,
                "tool": spec.name,
                "call_id": call["id"],
                "args": call.get("args") or {},
                "side_effect": spec.side_effect,
                "idempotency_key": key,
                "decision": "executed",
                "outcome": code or "ok",
                "rule_id": verdict["rule_id"],
                "reviewer": verdict.get("reviewer"),
            }
        ]


def _note(verdict: GateVerdict) -> str | None:
    if "args" not in verdict:
        return verdict.get("note")
    return EDITED_NOTE.format(args=json.dumps(verdict["args"], ensure_ascii=False, default=str))


def make_tool_node(
    tools: Sequence[BaseTool], *, name: str = "tools", gate: ToolGate | None = None
) -> ToolNode:
    """A `ToolNode` over `tools` that runs only gate-approved calls, safely (see module doc).

    Args:
        tools: The agent's tools.
        name: Node name.
        gate: The agent's ToolGate (policy and registry); by default one over `tools` that
            follows `Context.policy`.
    """
    executor = _Executor(gate or ToolGate(ToolRegistry(tools)))

    async def arun(
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolOutcome]],
    ) -> ToolOutcome:
        verdict, records = executor.verdict(request)
        if verdict["decision"] != "allow":
            await awrite_audit(records)
            return _refused(request.tool_call, str(verdict["code"]), str(verdict["message"]))
        request, spec, refusal, key = executor.prepare(request, verdict)
        if refusal is not None:
            await awrite_audit(records)
            return refusal
        command, code = await _aexecute(execute, request, spec, key, _note(verdict))
        records += executor.execution_record(request, spec, verdict, key, code)
        if code in FALLBACK_ON and (backup := executor.fallback(request, spec)) is not None:
            fb_request, fb_spec, fb_verdict, fb_records = backup
            fb_command, fb_code = await _aexecute(
                execute, fb_request, fb_spec, key, _fallback_note(spec, code)
            )
            records += [
                *fb_records,
                *executor.execution_record(fb_request, fb_spec, fb_verdict, key, fb_code),
            ]
            command = _after_fallback(command, fb_command)
        await awrite_audit(records)
        return command

    def run(
        request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolOutcome]
    ) -> ToolOutcome:
        verdict, records = executor.verdict(request)
        if verdict["decision"] != "allow":
            write_audit(records)
            return _refused(request.tool_call, str(verdict["code"]), str(verdict["message"]))
        request, spec, refusal, key = executor.prepare(request, verdict)
        if refusal is not None:
            write_audit(records)
            return refusal
        command, code = _execute(execute, request, spec, key, _note(verdict))
        records += executor.execution_record(request, spec, verdict, key, code)
        if code in FALLBACK_ON and (backup := executor.fallback(request, spec)) is not None:
            fb_request, fb_spec, fb_verdict, fb_records = backup
            fb_command, fb_code = _execute(
                execute, fb_request, fb_spec, key, _fallback_note(spec, code)
            )
            records += [
                *fb_records,
                *executor.execution_record(fb_request, fb_spec, fb_verdict, key, fb_code),
            ]
            command = _after_fallback(command, fb_command)
        write_audit(records)
        return command

    # handle_tool_errors=False lets model-actionable errors reach our wrappers, which classify
    # them; anything else propagates because it is a bug, not something the model can fix.
    return ToolNode(
        list(tools),
        name=name,
        handle_tool_errors=False,
        wrap_tool_call=run,
        awrap_tool_call=arun,
    )


def _breaker(request: ToolCallRequest, spec: ToolSpec) -> CircuitBreaker:
    ctx = context_of(cast(Any, request.runtime))
    return breaker_for(
        tool_service(spec.name, spec.tool.metadata),
        failure_threshold=ctx.circuit_failure_threshold,
        reset_timeout_s=ctx.circuit_reset_s,
    )


def _announce(command: Command[Any]) -> Command[Any]:
    """One `tool_called` progress event per record the attempt produced."""
    update = command.update if isinstance(command.update, dict) else {}
    writer = get_stream_writer()
    for record in update.get("tool_results", []):
        writer({"event": "tool_called", **record})
    return command


def _announce_raised(call: Mapping[str, Any], started: float, exc: BaseException) -> None:
    # The step fails (and TOOL_RETRY may run it again): no record reaches state, but the
    # progress stream still shows the attempt.
    logger.info("tool %r raised %s", call.get("name"), type(exc).__name__)
    get_stream_writer()(
        {"event": "tool_called", **_record(call, started, "raised"), "error": type(exc).__name__}
    )


async def _aexecute(
    execute: Callable[[ToolCallRequest], Awaitable[ToolOutcome]],
    request: ToolCallRequest,
    spec: ToolSpec,
    key: str,
    note: str | None,
) -> tuple[Command[Any], str | None]:
    call, started = request.tool_call, time.perf_counter()
    breaker = _breaker(request, spec)
    token = set_idempotency_key(key)
    try:
        with breaker.guard(neutral=(ToolInvocationError,)):
            result = await asyncio.wait_for(execute(request), timeout=spec.timeout_s)
        command, code = _outcome(result, call, started, note)
    except TimeoutError:
        command, code = _timed_out(call, started, spec), "timeout"
    except (ToolException, ToolInvocationError) as exc:
        command, code = _failure(call, started, exc)
    except Exception as exc:
        _announce_raised(call, started, exc)
        raise
    finally:
        reset_idempotency_key(token)
    return _announce(command), code


def _execute(
    execute: Callable[[ToolCallRequest], ToolOutcome],
    request: ToolCallRequest,
    spec: ToolSpec,
    key: str,
    note: str | None,
) -> tuple[Command[Any], str | None]:
    call, started = request.tool_call, time.perf_counter()
    breaker = _breaker(request, spec)
    token = set_idempotency_key(key)
    try:
        with breaker.guard(neutral=(ToolInvocationError,)):
            result = _call_with_timeout(execute, request, spec.timeout_s)
        command, code = _outcome(result, call, started, note)
    except FutureTimeout:
        command, code = _timed_out(call, started, spec), "timeout"
    except (ToolException, ToolInvocationError) as exc:
        command, code = _failure(call, started, exc)
    except Exception as exc:
        _announce_raised(call, started, exc)
        raise
    finally:
        reset_idempotency_key(token)
    return _announce(command), code


def _fallback_note(spec: ToolSpec, code: str | None) -> str:
    return FALLBACK_NOTE.format(tool=spec.name, code=code, fallback=spec.fallback)


def _after_fallback(primary: Command[Any], backup: Command[Any]) -> Command[Any]:
    """The fallback's answer, with the primary's failure kept in `tool_results`."""
    failed = primary.update.get("tool_results", []) if isinstance(primary.update, dict) else []
    update = backup.update
    if isinstance(update, dict):
        update = {**update, "tool_results": [*failed, *update.get("tool_results", [])]}
    return Command(graph=backup.graph, goto=backup.goto, update=update)


def _call_with_timeout(
    execute: Callable[[ToolCallRequest], ToolOutcome], request: ToolCallRequest, timeout: float
) -> ToolOutcome:
    # A thread of its own: a hung sync tool keeps running, but the run moves on at the deadline.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weft-tool")
    try:
        context = contextvars.copy_context()
        return pool.submit(context.run, execute, request).result(timeout=timeout)
    finally:
        pool.shutdown(wait=False)


__all__ = [
    "allowed_tool_names",
    "make_tool_node",
    "unknown_tool_message",
    "unwrap_tool_output",
    "wrap_untrusted",
]
