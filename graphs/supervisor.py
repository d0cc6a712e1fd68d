"""Supervisor: a routing model delegates to worker agents (or whole teams) until it can answer.

Each step the supervisor returns a structured `SupervisorDecision` — one worker with
instructions, several workers in parallel (one `Send` each), or FINISH with the answer. Workers
are ReAct subgraphs (`nodes.agent.build_agent`) with their own tool subset and prompt, or any
compiled graph, e.g. another supervisor (a nested team, depth bounded by `max_depth`). A worker
receives only its instructions plus the context its spec allows (`none`, `last_result`,
`full_summary`); its transcript stays in its own subgraph, so the supervisor's history holds
the user's messages and the final answers only, and tool-call history stays valid.

Guards, all per request: `Context.supervisor_max_handoffs`, the ping-pong guard
(`Context.supervisor_ping_pong_window`), and with `Context.supervisor_router="capability"` a
deterministic capability/least-load router instead of the model (see nodes/supervision.py).

Model calls, model router: one supervisor call per step (handoff steps + 1 to FINISH) plus each
worker's ReAct calls (one per iteration). Capability router: one call to tag the request (none
when the caller passes `capabilities`) plus the workers' calls.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_store, get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command, Send
from typing_extensions import TypedDict

from nodes.agent import build_agent
from nodes.context import Context, context_of
from nodes.finish import (
    budget_stop,
    child_accounting,
    child_limits,
    load_price_table,
    make_finish_run,
)
from nodes.memory_nodes import recall_for  # memory: the user's memories, when memory_enabled
from nodes.model import ModelOverride, message_text
from nodes.prompts.supervision import (
    CAPABILITY_ANALYSIS_PROMPT,
    CAPABILITY_ANSWER_SECTION,
    CAPABILITY_INSTRUCTIONS,
    SUPERVISOR_PARTIAL,
    SUPERVISOR_PROGRESS_PROMPT,
    SUPERVISOR_STOPPED_MESSAGE,
    SUPERVISOR_SYSTEM_PROMPT,
    SUPERVISOR_WORKER_LINE,
    WORKER_SYSTEM_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import (
    ModelUsage,
    RunAccounting,
    RunClockChannel,
    RunOutcome,
    add_usage,
    start_clock,
)
from nodes.structured import ask_structured
from nodes.supervision import (
    FINISH,
    MAX_TEAM_DEPTH,
    CapabilityError,
    Delegation,
    Handoff,
    TeamDepthError,
    WorkerSpec,
    add_handoffs,
    capability_route,
    capability_schema,
    declared_capabilities,
    handoff_limit_error,
    handoff_message,
    handoffs_in_turn,
    ping_pong_error,
    ping_pong_pair,
    progress_text,
    routing_schema,
    steps_of,
    validate_workers,
)
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

logger = logging.getLogger(__name__)

DEFAULT_WORKERS: tuple[WorkerSpec, ...] = (
    WorkerSpec(
        name="analyst",
        description="Does arithmetic and numeric analysis with a calculator.",
        system_prompt="You are a careful numeric analyst. Compute with the calculator; never "
        "do arithmetic in your head.",
        tools=("calculate",),
        capabilities=("math",),
        context="none",
    ),
    WorkerSpec(
        name="clock",
        description="Tells the current date and time in any IANA timezone.",
        system_prompt="You are a timekeeper. Look the time up with your clock tool.",
        tools=("get_current_time",),
        capabilities=("time",),
        context="none",
    ),
    WorkerSpec(
        name="writer",
        description="Writes the final polished reply from the teammates' results; no tools.",
        system_prompt="You are a concise writer. Turn your teammates' results into a clear "
        "reply; do not invent facts.",
        tools=(),
        capabilities=("writing",),
        context="full_summary",
    ),
)

# Nesting depth of every compiled team (1 = a supervisor over plain workers), with the chain
# of team names that reaches it, so an over-deep team can be named in the error.
_TEAM_DEPTHS: weakref.WeakKeyDictionary[Any, tuple[int, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary()
)


class SupervisorInput(TypedDict):
    """What a caller sends: the conversation (usually one new user message)."""

    messages: Annotated[list[AnyMessage], add_messages]
    capabilities: NotRequired[list[str]]
    """Required capability tags, in work order, for the capability router (optional: the
    router otherwise asks the model once to tag the request)."""


class SupervisorOutput(RunOutcome, RunAccounting):
    """What the supervisor reports: the answer, outcome, usage and the handoff log."""

    messages: Annotated[list[AnyMessage], add_messages]
    handoffs: NotRequired[Annotated[list[Handoff], add_handoffs]]
    """Every handoff: worker, instructions, context policy, router, result, success, error."""


class SupervisorState(SupervisorOutput, RunClockChannel):
    """Full supervisor state."""

    capabilities: NotRequired[list[str]]
    """Caller-supplied capability tags (capability router)."""
    required_capabilities: NotRequired[dict[str, Any]]
    """The capability router's tags for the current request: `{turn, tags, source}`."""


FINISH_RUN = "finish_run"


def _handoffs_this_turn(state: Any) -> int:
    turn = _current_turn(state["messages"])
    return len(handoffs_in_turn(state.get("handoffs") or [], turn))


def team_depth(graph: Any) -> int:
    """How many levels of supervisors `graph` contains (0 for a plain agent or other graph)."""
    return _TEAM_DEPTHS.get(graph, (0, ()))[0]


def _current_turn(messages: Sequence[AnyMessage]) -> int:
    return max(0, sum(1 for m in messages if isinstance(m, HumanMessage)) - 1)


def _latest_request(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message.content)
    return ""


def _conversation(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    # Only user turns and earlier final answers: a caller-seeded tool call without its result
    # would make the supervisor's request invalid.
    return [
        m
        for m in messages
        if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls)
    ]


def _worker_lines(workers: Sequence[WorkerSpec]) -> str:
    return "\n".join(
        SUPERVISOR_WORKER_LINE.format(
            name=spec.name,
            description=spec.description,
            capabilities=f" (capabilities: {', '.join(spec.capabilities)})"
            if spec.capabilities
            else "",
        )
        for spec in workers
    )


def _stopped(reason: str, done: Sequence[Handoff]) -> dict[str, Any]:
    partial = ""
    results = [h for h in done if h["success"]]
    if results:
        partial = SUPERVISOR_PARTIAL.format(
            results="\n".join(f"- {h['worker']}: {h['result']}" for h in results)
        )
    answer = SUPERVISOR_STOPPED_MESSAGE.format(reason=reason, partial=partial).strip()
    logger.info("supervisor stopped: %s", reason)
    get_stream_writer()({"event": "supervisor_stopped", "reason": reason})
    return {
        "messages": [AIMessage(answer)],
        "final_answer": answer,
        "success": False,
        "error": reason,
    }


def _finished(answer: str) -> dict[str, Any]:
    return {
        "messages": [AIMessage(answer)],
        "final_answer": answer,
        "success": True,
        "error": None,
    }


def _guard(ctx: Context, done: Sequence[Handoff], proposed: Sequence[str]) -> str | None:
    limit = handoff_limit_error(len(done), len(proposed), ctx.supervisor_max_handoffs)
    if limit is not None:
        return limit
    pair = ping_pong_pair(steps_of(done), proposed, ctx.supervisor_ping_pong_window)
    if pair is not None:
        return ping_pong_error(pair, ctx.supervisor_ping_pong_window)
    return None


def _sends(
    state: SupervisorState,
    workers: dict[str, WorkerSpec],
    delegations: Sequence[Delegation],
    *,
    turn: int,
    done: Sequence[Handoff],
    router: str,
    capabilities: Sequence[str] = (),
    budget: dict[str, Any] | None = None,
) -> list[Send]:
    step = max((h["step"] for h in done), default=-1) + 1
    request = _latest_request(state["messages"])
    writer = get_stream_writer()
    sends = []
    for delegation in delegations:
        spec = workers[delegation.worker]
        writer({"event": "handoff", "step": step, "worker": spec.name, "router": router})
        task = {
            "turn": turn,
            "step": step,
            "worker": spec.name,
            "instructions": delegation.instructions,
            "context_policy": spec.context,
            "router": router,
            "capabilities": list(capabilities),
            "message": handoff_message(spec.context, delegation.instructions, request, done),
            "budget": dict(budget or {}),
        }
        sends.append(Send(spec.name, task))
    return sends


def _make_supervisor(
    workers: Sequence[WorkerSpec], model: ModelOverride, team: str, guidance: str
) -> Any:
    by_name = {spec.name: spec for spec in workers}
    schema = routing_schema(list(by_name))
    system = SUPERVISOR_SYSTEM_PROMPT.format(
        team=team, workers=_worker_lines(workers), guidance=guidance
    )

    async def by_model(
        state: SupervisorState, ctx: Context, turn: int, done: list[Handoff]
    ) -> Command[Any]:
        # memory: routing knows what the user told earlier runs; only the turn's first
        # decision counts as an access.
        memory = await recall_for(
            _latest_request(state["messages"]), ctx, get_store(), touch=not done
        )
        prompt = [
            SystemMessage(system + memory.text),
            *_conversation(state["messages"]),
            HumanMessage(SUPERVISOR_PROGRESS_PROMPT.format(progress=progress_text(done))),
        ]
        decided = await ask_structured(schema, prompt, role="planner", context=ctx, model=model)
        decision = decided.value
        delegations = decision.delegations()
        if not delegations:
            update = {**_finished(decision.answer), "usage": decided.usage, **memory.update}
            return Command(goto=FINISH_RUN, update=update)
        spent = {**state, "usage": add_usage(state.get("usage"), decided.usage)}
        # Each worker makes at least one call, and the supervisor one more to answer.
        reason = _guard(ctx, done, [d.worker for d in delegations]) or budget_stop(
            spent, ctx, model_calls=len(delegations) + 1
        )
        if reason is not None:
            update = {**_stopped(reason, done), "usage": decided.usage, **memory.update}
            return Command(goto=FINISH_RUN, update=update)
        budget = child_limits(ctx, spent, share=len(delegations))
        sends = _sends(
            state, by_name, delegations, turn=turn, done=done, router="model", budget=budget
        )
        return Command(goto=sends, update={"usage": decided.usage, **memory.update})

    async def required_tags(
        state: SupervisorState, ctx: Context, turn: int
    ) -> tuple[list[str], dict[str, Any], dict[str, ModelUsage]]:
        plan = state.get("required_capabilities")
        if plan and plan["turn"] == turn:
            return list(plan["tags"]), {}, {}
        if state.get("capabilities"):
            tags = list(state["capabilities"])
            return tags, {"turn": turn, "tags": tags, "source": "caller"}, {}
        declared = declared_capabilities(workers)
        if not declared:
            raise CapabilityError(
                f"team {team!r}: the capability router needs workers that declare "
                "'capabilities'; none do"
            )
        prompt = CAPABILITY_ANALYSIS_PROMPT.format(
            request=_latest_request(state["messages"]), capabilities=", ".join(declared)
        )
        decided = await ask_structured(
            capability_schema(declared),
            [HumanMessage(prompt)],
            role="router",
            context=ctx,
            model=model,
        )
        tags = list(decided.value.capabilities)  # type: ignore[attr-defined]
        return tags, {"turn": turn, "tags": tags, "source": "model"}, decided.usage

    async def by_capability(
        state: SupervisorState, ctx: Context, turn: int, done: list[Handoff]
    ) -> Command[Any]:
        tags, plan, usage = await required_tags(state, ctx, turn)
        update: dict[str, Any] = {"usage": usage}
        if plan:
            update["required_capabilities"] = plan
        failed = [h for h in done if not h["success"]]
        if failed:
            reason = f"worker {failed[0]['worker']!r} failed: {failed[0]['error']}"
            return Command(goto=FINISH_RUN, update={**update, **_stopped(reason, done)})
        covered = [t for h in done for t in h.get("capabilities", [])]
        load = Counter(h["worker"] for h in done)
        try:
            choice = capability_route(tags, covered, workers, load)
        except CapabilityError as exc:
            return Command(goto=FINISH_RUN, update={**update, **_stopped(str(exc), done)})
        if choice is None:
            sections = [(h["worker"], h["result"]) for h in done]
            answer = (
                sections[0][1]
                if len(sections) == 1
                else "\n\n".join(
                    CAPABILITY_ANSWER_SECTION.format(worker=w, result=r) for w, r in sections
                )
            )
            return Command(goto=FINISH_RUN, update={**update, **_finished(answer)})
        spent = {**state, "usage": add_usage(state.get("usage"), usage)}
        stop = _guard(ctx, done, [choice.worker]) or budget_stop(spent, ctx, model_calls=1)
        if stop is not None:
            return Command(goto=FINISH_RUN, update={**update, **_stopped(stop, done)})
        instructions = CAPABILITY_INSTRUCTIONS.format(
            capabilities=", ".join(choice.tags), request=_latest_request(state["messages"])
        )
        delegation = Delegation(worker=choice.worker, instructions=instructions)
        sends = _sends(
            state,
            by_name,
            [delegation],
            turn=turn,
            done=done,
            router="capability",
            capabilities=choice.tags,
            budget=child_limits(ctx, spent),
        )
        return Command(goto=sends, update=update)

    async def supervisor(state: SupervisorState, runtime: Runtime[Context]) -> Command[Any]:
        """Decide the next handoff(s) or finish, within the routing guards.

        Reads `messages`, `handoffs`, `capabilities`; writes `usage` and, when done or
        stopped, `messages`, `final_answer`, `success`, `error`. Routes to workers by `Send`.
        """
        ctx = context_of(runtime)
        turn = _current_turn(state["messages"])
        done = handoffs_in_turn(state.get("handoffs") or [], turn)
        if ctx.supervisor_router not in ("model", "capability"):
            raise ValueError(
                f"context field 'supervisor_router' must be 'model' or 'capability', "
                f"got {ctx.supervisor_router!r}"
            )
        # The first step of a turn starts the run's clock; every step checks the budget.
        clock = {} if done else start_clock(state)
        await load_price_table(ctx)
        current: SupervisorState = {**state, **clock}  # type: ignore[typeddict-item]
        stop = budget_stop(current, ctx)
        if stop is not None:
            return Command(goto=FINISH_RUN, update={**clock, **_stopped(stop, done)})
        route = by_capability if ctx.supervisor_router == "capability" else by_model
        command = await route(current, ctx, turn, done)
        return Command(goto=command.goto, update={**clock, **(command.update or {})})

    return supervisor


def _make_worker_node(spec: WorkerSpec, runnable: Any) -> Any:
    async def run_worker(task: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        """Run one handoff on a fresh worker thread and log its result.

        Reads the `Send` payload (instructions and the prepared handoff message); writes
        `handoffs`, `usage`, `tool_results`.
        """
        # The worker's own prompt and tool subset come from its spec, not the run's settings;
        # its budget is its share of what the run has left, and only the team's own answer
        # passes the output guardrail.
        ctx = dataclasses.replace(
            context_of(runtime),
            system_prompt=None,
            tools=None,
            output_guardrail="off",
            **task.get("budget", {}),
        )
        output = await runnable.ainvoke({"messages": [HumanMessage(task["message"])]}, context=ctx)
        answer = output.get("final_answer")
        if answer is None and output.get("messages"):
            answer = message_text(output["messages"][-1].content)
        success = output.get("success") is not False
        record = Handoff(
            turn=task["turn"],
            step=task["step"],
            worker=spec.name,
            instructions=task["instructions"],
            context_policy=task["context_policy"],
            router=task["router"],
            result=answer or "",
            success=success,
            error=None if success else str(output.get("error") or "the worker failed"),
        )
        if task.get("capabilities"):
            record["capabilities"] = list(task["capabilities"])
        if output.get("handoffs"):
            record["nested"] = list(output["handoffs"])
        get_stream_writer()(
            {"event": "handoff_done", "worker": spec.name, "step": task["step"], "ok": success}
        )
        return {"handoffs": [record], **child_accounting(output)}

    run_worker.__name__ = f"run_{spec.name}"
    return run_worker


def worker_agent(
    spec: WorkerSpec,
    tools: Sequence[BaseTool],
    model: ModelOverride,
    team: str,
    policy: PolicyRef | None = None,
) -> Any:
    """The runnable behind a worker: its compiled `graph`, or a ReAct agent built from the spec
    (its tool subset, persona in the team's worker framing, its model or the team's, its
    policy or the team's `policy`)."""
    if spec.graph is not None:
        return spec.graph
    names = [t.name for t in tools] if spec.tools is None else list(spec.tools)
    subset = [t for t in tools if t.name in names]
    # Braces in a persona are text, not fields: the agent loop formats the prompt with {now}.
    persona = spec.system_prompt.replace("{", "{{").replace("}", "}}")
    prompt = WORKER_SYSTEM_PROMPT.format(persona=persona, name=spec.name, team=team)
    return build_agent(
        tools=subset,
        model=spec.model if spec.model is not None else model,
        role=spec.role,
        system_prompt=prompt,
        name=spec.name,
        policy=spec.policy if spec.policy is not None else policy,
    )


def check_team_depth(
    team: str, nested: Sequence[Any], max_depth: int
) -> tuple[int, tuple[str, ...]]:
    """The depth of a team whose workers include the compiled graphs `nested`.

    Raises:
        TeamDepthError: naming the chain of teams when the depth exceeds `max_depth`.
    """
    deepest: tuple[int, tuple[str, ...]] = (0, ())
    for graph in nested:
        depth, chain = _TEAM_DEPTHS.get(graph, (0, ()))
        if depth > deepest[0]:
            deepest = (depth, chain)
    depth, chain = deepest[0] + 1, (team, *deepest[1])
    if depth > max_depth:
        raise TeamDepthError(
            f"team {team!r} nests teams {depth} levels deep ({' > '.join(chain)}); "
            f"the maximum is {max_depth} (max_depth)"
        )
    return depth, chain


def record_team_depth(graph: Any, depth: tuple[int, tuple[str, ...]]) -> None:
    """Remember a compiled team's depth so a team that nests it can check its own."""
    _TEAM_DEPTHS[graph] = depth


def build_graph(
    *,
    model: ModelOverride = None,
    workers: Sequence[WorkerSpec] | None = None,
    tools: Sequence[BaseTool] | None = None,
    name: str = "supervisor",
    team: str | None = None,
    guidance: str = "",
    max_depth: int = MAX_TEAM_DEPTH,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
    pattern: str = "supervisor",
) -> CompiledStateGraph[SupervisorState, Context, SupervisorInput, SupervisorOutput]:
    """Compile a supervisor team.

    Args:
        model: Chat model object or id for every role, or a role→model mapping (the supervisor
            uses `planner`, the capability tagger `router`, workers their spec's `role`); a
            worker spec's own `model` wins for that worker.
        workers: The team (default: `DEFAULT_WORKERS`, an analyst, a clock and a writer). A
            spec with `graph=` runs that compiled graph, e.g. another supervisor.
        tools: Tools the workers' `tools` names refer to (default: the built-in tools).
        name: The compiled graph's name (the graph id when served).
        team: The team's name in prompts and depth errors (default: `name`).
        guidance: Extra text for the supervisor's system prompt (e.g. a team spec's tasks).
        max_depth: Most levels of nested supervisors, counting this one (default 3).
        checkpointer: Saver for threads; leave None for the server, which supplies its own.
        store: Long-term store; leave None for the server, which supplies its own.
        policy: Tool policy for workers whose spec sets none (`WorkerSpec.policy` wins);
            default per run: `Context.agent_policies[<worker name>]`, else `Context.policy`.
        pattern: The `pattern:<name>` tag of its traces (`team` for compiled team specs).

    Raises:
        WorkerSpecError: a worker spec is invalid (named, with the expected value).
        TeamDepthError: nested teams exceed `max_depth`.
    """
    if tools is None:
        from tools import builtin_tools

        tools = builtin_tools()
    members = list(workers if workers is not None else DEFAULT_WORKERS)
    team_name = team or name
    validate_workers(members, [t.name for t in tools])
    nested = [spec.graph for spec in members if spec.graph is not None]
    depth = check_team_depth(team_name, nested, max_depth)
    builder = StateGraph(
        SupervisorState,
        context_schema=Context,
        input_schema=SupervisorInput,
        output_schema=SupervisorOutput,
    )
    builder.add_node(
        "supervisor",
        _make_supervisor(members, model, team_name, guidance),
        destinations=(*(spec.name for spec in members), FINISH_RUN),
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
    )
    for spec in members:
        runnable = worker_agent(spec, tools, model, team_name, policy)
        builder.add_node(spec.name, _make_worker_node(spec, runnable))
        builder.add_edge(spec.name, "supervisor")
    builder.add_node(
        FINISH_RUN,
        make_finish_run(model=model, role="planner", iterations=_handoffs_this_turn),
    )
    builder.add_edge(START, "supervisor")
    builder.add_edge(FINISH_RUN, END)
    compiled = traced(
        builder.compile(name=name, checkpointer=checkpointer, store=store), pattern=pattern
    )
    record_team_depth(compiled, depth)
    return compiled


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()

__all__ = [
    "DEFAULT_WORKERS",
    "FINISH",
    "SupervisorInput",
    "SupervisorOutput",
    "SupervisorState",
    "WorkerSpec",
    "build_graph",
    "check_team_depth",
    "graph",
    "record_team_depth",
    "team_depth",
    "worker_agent",
]
