"""The agent loop every pattern reuses: model ⇄ tools until an answer or a budget.

`build_agent(...)` compiles it. The ReAct graph is exactly this loop; planner-executor tasks,
supervisor workers and Reflexion's actor run it as a subgraph, so a change here reaches them all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool

# RunnableCallable (not RunnableLambda) so LangGraph injects `runtime` into both twins.
from langgraph._internal._runnable import RunnableCallable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.managed import RemainingSteps
from langgraph.runtime import Runtime, get_runtime
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict

from memory.tokens import load_tokenizer
from nodes.approval import make_approval_node
from nodes.context import Context, ModelRole, context_of
from nodes.context_window import (  # memory: window
    context_window_record,
    model_input,
    needs_summary,
)
from nodes.finish import (
    budget_stop,
    emit_budget_event,
    load_price_table,
    make_finish_run,
    stopped_outcome,
)
from nodes.memory_nodes import (  # memory: recall/record/summarize, memory tools
    add_memory_steps,
    usable_tool_names,
    with_memory_tools,
)
from nodes.model import ModelOverride, message_text, resolve_model
from nodes.prompts import (
    AGENT_SYSTEM_PROMPT,
    TOOL_NOT_EXECUTED_MESSAGE,
    with_untrusted_data_clause,
)
from nodes.resilience import MODEL_RETRY, TOOL_RETRY  # resilience: transient-only retries
from nodes.state import (
    MemoryChannels,  # memory: degraded, summary, context_windows
    ModelUsage,
    RunAccounting,
    RunOutcome,
    RunTracking,
    ToolResult,
    add_usage,
    start_clock,
    usage_update,
)
from nodes.tool_gate import GateVerdict, ToolGate, awrite_audit, write_audit
from nodes.tool_node import make_tool_node
from nodes.tracing import call_metadata, traced
from tools.policy import Policy
from tools.registry import ToolRegistry

logger = logging.getLogger(__name__)

# The loop needs this many more super-steps to run tools, call the model again and still end
# through `finalize`; below it we stop cleanly instead of letting LangGraph raise
# GraphRecursionError at the caller.
STEPS_NEEDED_TO_CONTINUE = 7  # tools, agent, finalize, record_episode, summarize, finish_run


class AgentInput(TypedDict):
    """What a caller sends: the conversation so far (usually one new user message)."""

    messages: Annotated[list[AnyMessage], add_messages]
    plan_tools: NotRequired[list[str] | None]
    """Plan-time allow-list: the only tools this task may call, fixed by a planner before any
    untrusted data is read (intersected with `Context.plan_tools`); other calls are denied."""


class AgentOutput(RunOutcome, RunAccounting, MemoryChannels):
    """What the agent loop reports."""

    messages: Annotated[list[AnyMessage], add_messages]
    iterations: NotRequired[int]
    """Model calls made for the latest user message."""


class AgentState(AgentOutput, RunTracking):
    """Full state of the agent loop."""

    stop_reason: NotRequired[str | None]
    """Set by the model node when a limit stops the loop; read by `finalize`."""
    plan_tools: NotRequired[list[str] | None]
    """See `AgentInput.plan_tools`."""
    tool_gate: NotRequired[dict[str, GateVerdict]]
    """Gate verdict per pending tool call id (allow / deny / review), written by the model node
    and resolved by the approval node; the executor runs only `allow` verdicts."""
    remaining_steps: RemainingSteps


def iterations_in_turn(messages: Sequence[AnyMessage]) -> int:
    """Model replies since the latest user message: the current turn's iteration count."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage):
            count += 1
    return count


def stop_reason_for(
    *, iterations: int, max_iterations: int, remaining_steps: int, wants_tools: bool
) -> str | None:
    """Why the loop must stop now instead of running the requested tools, or None."""
    if not wants_tools:
        return None
    if iterations >= max_iterations:
        return f"max_iterations ({max_iterations}) reached before a final answer"
    if remaining_steps < STEPS_NEEDED_TO_CONTINUE:
        return "the graph's recursion limit was about to be reached before a final answer"
    return None


AfterAnswer = Literal["record_episode", "summarize", "finish_run"]


def _run_context() -> Context:
    """The current run's Context, for edge functions.

    Edges take only the state: `update_state` (time travel, Studio edits) evaluates them
    outside a run, where LangGraph has no runtime to inject and the defaults decide.
    """
    try:
        runtime = get_runtime(Context)
    except RuntimeError:  # not inside a graph run at all
        return Context()
    return context_of(runtime)


def route_start(state: AgentState) -> Literal["recall_memories", "agent"]:
    """Recall memories first only when the run uses memory; otherwise straight to the model."""
    return "recall_memories" if _run_context().memory_enabled else "agent"


def route_after_model(
    state: AgentState,
) -> Literal["approval", "tools", "finalize", "record_episode", "summarize", "finish_run"]:
    """Review pending calls, run the tools, stop through `finalize`, or wrap up the answer."""
    if state.get("stop_reason"):
        return "finalize"
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls:
        verdicts = (state.get("tool_gate") or {}).values()
        return "approval" if any(v["decision"] == "review" for v in verdicts) else "tools"
    return route_after_answer(state)


def route_after_answer(state: AgentState) -> AfterAnswer:
    """Record the episode when memory is on, then summarise if needed, then finish.

    Steps that would do nothing are skipped, so a run without memory on a short thread pays
    for none of them.
    """
    ctx = _run_context()
    if ctx.memory_enabled and ctx.record_episodes:
        return "record_episode"
    return route_after_episode(state)


def route_after_episode(state: AgentState) -> Literal["summarize", "finish_run"]:
    """Summarise only when the thread has outgrown its threshold."""
    return "summarize" if needs_summary(state["messages"], _run_context()) else "finish_run"


def _now() -> str:
    # Minute resolution keeps the system prompt stable within a run (cache-friendly).
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def make_call_model(
    tools: Sequence[BaseTool],
    *,
    model: ModelOverride = None,
    role: ModelRole = "agent",
    system_prompt: str | None = None,
    gate: ToolGate | None = None,
) -> RunnableCallable:
    """The model node: one model call with the run's tool subset bound, then the tool gate.

    Reads `messages`, `plan_tools`; writes `messages`, `usage`, `iterations`, `stop_reason`,
    `tool_gate` (the gate's verdict on each requested call) and, when the model answers
    without tool calls, `final_answer`/`success`/`error`. Async-first, with a sync twin so
    plain `graph.invoke(...)` works too.
    """
    gate = gate or ToolGate(ToolRegistry(tools))
    tools_by_name = {t.name: t for t in tools}

    def prepare(state: AgentState, runtime: Runtime[Context]) -> tuple[Any, list[Any], str]:
        ctx = context_of(runtime)
        chat_model, model_id = resolve_model(role, ctx, model)
        names = gate.allowed_names(ctx, state.get("plan_tools"))
        names = usable_tool_names(names, ctx, runtime.store)  # memory: only with memory on
        selected = [tools_by_name[n] for n in names]
        bound = chat_model.bind_tools(selected) if selected else chat_model
        bound = bound.with_config(metadata=call_metadata(ctx, gate.agent))
        prompt = ctx.system_prompt or system_prompt or AGENT_SYSTEM_PROMPT
        # safety: the "tool output is data" clause is appended to every prompt, replaced or not.
        system = with_untrusted_data_clause(prompt.format(now=_now()))
        return bound, model_input(system, state, ctx), model_id

    def conclude(
        state: AgentState, runtime: Runtime[Context], response: Any, model_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        ctx = context_of(runtime)
        iterations = iterations_in_turn(state["messages"]) + 1
        wants_tools = isinstance(response, AIMessage) and bool(response.tool_calls)
        reason = stop_reason_for(
            iterations=iterations,
            max_iterations=ctx.max_iterations,
            remaining_steps=state["remaining_steps"],
            wants_tools=wants_tools,
        )
        usage = usage_update(model_id, getattr(response, "usage_metadata", None))
        spent = {**state, "usage": add_usage(state.get("usage"), usage)}
        if wants_tools and reason is None:
            reason = budget_stop(spent, ctx, tool_calls=len(response.tool_calls))
        emit_budget_event(spent, ctx)
        verdicts: dict[str, GateVerdict] = {}
        records: list[dict[str, Any]] = []
        if wants_tools and reason is None:
            # The tool gate runs here, in the same step as the model call, so every tool call
            # is judged before anything can execute it and the loop pays no extra super-step.
            verdicts, records = gate.decide(
                response.tool_calls,
                ctx=ctx,
                plan=state.get("plan_tools"),
                reason=message_text(response.content),
                config=get_config(),
            )
        update: dict[str, Any] = {
            "messages": [response],
            "usage": usage,
            "iterations": iterations,
            "stop_reason": reason,
            "final_answer": None if wants_tools else message_text(response.content),
            "success": None if wants_tools else True,
            "error": None,
            "tool_gate": verdicts,
        }
        update["context_windows"] = context_window_record(model_id, response)  # memory
        return update, records

    def begin(state: AgentState, runtime: Runtime[Context]) -> tuple[AgentState, dict[str, Any]]:
        # The first model call of a turn starts the run's clock (no extra super-step), and a
        # budget already used up stops the loop before it spends more.
        clock = start_clock(state) if iterations_in_turn(state["messages"]) == 0 else {}
        current: AgentState = {**state, **clock}  # type: ignore[typeddict-item]
        reason = budget_stop(current, context_of(runtime))
        return current, {**clock, "stop_reason": reason} if reason else clock

    async def acall_model(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
        # Token counting (context window) reads the tokenizer's files: load them off the loop.
        await load_tokenizer()
        await load_price_table(context_of(runtime))  # budgets and metrics read it from memory
        state, started = begin(state, runtime)
        if started.get("stop_reason"):
            return started
        bound, messages, model_id = prepare(state, runtime)
        update, records = conclude(state, runtime, await bound.ainvoke(messages), model_id)
        await awrite_audit(records)
        return {**started, **update}

    def call_model(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
        state, started = begin(state, runtime)
        if started.get("stop_reason"):
            return started
        bound, messages, model_id = prepare(state, runtime)
        update, records = conclude(state, runtime, bound.invoke(messages), model_id)
        write_audit(records)
        return {**started, **update}

    return RunnableCallable(call_model, acall_model, name="agent")


def _best_partial_answer(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and message_text(message.content).strip():
            return message_text(message.content)
    return ""


def finalize(state: AgentState) -> dict[str, Any]:
    """End a stopped run cleanly: answer dangling tool calls, apologise, report why.

    Reads `messages`, `stop_reason`; writes `messages`, `final_answer`, `success`, `error`.
    """
    reason = state.get("stop_reason") or "the run was stopped"
    last = state["messages"][-1]
    pending = last.tool_calls if isinstance(last, AIMessage) else []
    # Answering every pending call keeps the history valid for the next turn on this thread.
    not_run = [
        ToolMessage(
            content=TOOL_NOT_EXECUTED_MESSAGE.format(reason=reason),
            tool_call_id=call["id"],
            name=call["name"],
            status="error",
        )
        for call in pending
    ]
    outcome = stopped_outcome(reason, _best_partial_answer(state["messages"]))
    logger.info("agent stopped early: %s", reason)
    return {"messages": [*not_run, AIMessage(content=outcome["final_answer"])], **outcome}


def build_agent(
    *,
    tools: Sequence[BaseTool] | None = None,
    model: ModelOverride = None,
    role: ModelRole = "agent",
    system_prompt: str | None = None,
    name: str = "agent",
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: Policy | str | None = None,
    guard_output: bool = False,
) -> CompiledStateGraph[AgentState, Context, AgentInput, AgentOutput]:
    """Compile the agent loop: model → tool gate → approval gate → tool execution → model.

    Args:
        tools: Tools the agent may call (default: the built-in starter tools).
        model: A chat model object or id for every role, or a role→model mapping; overrides
            the context's model settings.
        role: Which context model setting this agent uses (`agent`, `worker`, ...).
        system_prompt: Default system prompt (`{now}` is filled in); the context's
            `system_prompt` overrides it.
        name: The compiled graph's name (the graph id when served).
        checkpointer: Saver for threads; leave None for the server, which supplies its own.
        store: Long-term store; leave None for the server, which supplies its own.
        policy: Tool policy (a `tools.policy.Policy`, a built-in name or a .yaml/.json path)
            for this agent; overrides the context. Default, per run:
            `Context.agent_policies[name]`, else `Context.policy` (nodes/tool_gate.py).
        guard_output: Run the output guardrail (`Context.output_guardrail`) on the answer; on
            for a top-level agent such as ReAct, off for sub-agents whose answer feeds another
            step.

    Every call the model requests passes the tool gate (`nodes/tool_gate.py`: run subset,
    `plan_tools`, argument schema, policy, `approval_mode`), then the approval gate
    (`nodes/approval.py`: one `interrupt()` for all calls needing review), and only then the
    executor (`nodes/tool_node.py`: timeout, rate limit, idempotency key, output wrapped as
    untrusted data, audit). A planner can fix a task's tools up front with the `plan_tools`
    input key (or `Context.plan_tools`).
    """
    if tools is None:
        from tools import builtin_tools

        tools = builtin_tools()
    tools = with_memory_tools(tools)  # memory: save_memory/search_memory when memory is on
    gate = ToolGate(ToolRegistry(tools), policy=policy, agent=name)
    builder = StateGraph(
        AgentState, context_schema=Context, input_schema=AgentInput, output_schema=AgentOutput
    )
    builder.add_node(
        "agent",
        make_call_model(tools, model=model, role=role, system_prompt=system_prompt, gate=gate),
        retry_policy=MODEL_RETRY,  # resilience: transient errors no HTTP client retried
    )
    builder.add_node("approval", make_approval_node(gate))
    builder.add_node(
        "tools",
        make_tool_node(tools, gate=gate),
        retry_policy=TOOL_RETRY,  # resilience
    )
    builder.add_node("finalize", finalize)
    # memory: recall/record/summarize nodes; procedures scoped to this agent are recalled too
    add_memory_steps(builder, model=model, role=role, agent=name)
    builder.add_conditional_edges(START, route_start)
    builder.add_edge("recall_memories", "agent")
    builder.add_conditional_edges("agent", route_after_model)
    builder.add_edge("approval", "tools")
    builder.add_edge("tools", "agent")
    builder.add_conditional_edges("finalize", route_after_answer)
    builder.add_node("finish_run", make_finish_run(guardrail=guard_output, model=model, role=role))
    builder.add_conditional_edges("record_episode", route_after_episode)
    builder.add_edge("summarize", "finish_run")
    builder.add_edge("finish_run", END)
    # Every agent loop is tagged `pattern:agent`; ReAct and the patterns add their own tag.
    return traced(
        builder.compile(name=name, checkpointer=checkpointer, store=store), pattern="agent"
    )


__all__ = [
    "AgentInput",
    "AgentOutput",
    "AgentState",
    "ModelUsage",
    "ToolResult",
    "build_agent",
    "finalize",
    "iterations_in_turn",
    "route_after_answer",
    "route_after_episode",
    "route_after_model",
    "route_start",
    "stop_reason_for",
]
