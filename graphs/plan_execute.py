"""Planner-executor: plan a task graph, run it eagerly in parallel, replan on failure, answer.

    planner ─▶ validate_plan ─▶ [review_plan] ─▶ execute ─▶ synthesize
        ▲            │  ▲                          │
        └─problems───┘  └──── replanner ◀─failure──┘

- `planner` returns a typed `Plan` (tasks with id, description, `depends_on`, a tool subset,
  or one direct tool call). `validate_plan` checks it before anything runs (duplicate ids, self
  and unknown dependencies, unknown tools, cycles with the exact cycle named) and sends the
  problems back, at most `Context.max_plan_attempts` plans per phase; then the run stops.
- `review_plan` (when `Context.review_plan`) pauses with `interrupt()`: resume with
  `{"action": "approve"}` or `{"action": "edit", "tasks": [...]}` (re-validated).
- `execute` runs every pending task as soon as its own dependencies completed, at most
  `Context.max_concurrency` at once. A task is a ReAct sub-agent (`nodes.agent.build_agent`,
  role "worker", agent name `task_worker`) or a single direct tool call (`task_tool`,
  `nodes.tool_call`: the same tool gate, approval gate and executor as the agent loop). Either
  way the task's tools are its plan-time allow-list (`plan_tools`), fixed by the planner
  before any tool output is read: another tool is denied as `not_in_plan`. A call that needs
  review pauses its task (one `interrupt()` per task; parallel tasks pause side by side, so
  answer `{interrupt_id: answer}` or see `nodes.approval.resume_value`). A failed task cancels
  its dependents; `replanner` then sees the completed results, the failures and the remaining
  tasks and revises only the remainder (at most `Context.max_replans` times).
- `synthesize` writes the answer citing task ids.

Task status in state: a task record goes from `pending` straight to its final status; while a
round runs, `running` exists only as the `task_started` stream event. The parent's `tasks`
channel can change only when `execute` returns, and `execute` deliberately runs a whole round
in one super-step (see below); writing `running` into state would mean ending the super-step
at every task start, which is the wave/one-step-per-task design this avoids.

Model calls: 1 planner call per plan attempt, each task's worker calls (none for a direct tool
task), 1 replanner call per revision attempt and 1 synthesizer call; a valid first plan of n
direct-tool tasks costs exactly 2.

Why the functional API for `execute`: a LangGraph super-step waits for all of its tasks, so
one `Send` per ready task would run the plan in waves, not eagerly. Instead `execute` invokes a
small `@entrypoint` graph. The entrypoint calls one `@task` per plan task *up front, in
topological order*, and each task first awaits its own dependencies (an `EagerScheduler` with
asyncio events) and then a concurrency slot. LangGraph persists each `@task`'s return value
through the checkpointer the moment it finishes, keyed by the task's call position; because
the call order depends only on the plan (never on timing), a run that crashes or is
interrupted mid-plan replays finished tasks from the checkpoint on resume and runs only the
rest. When one task crashes or pauses (`interrupt()` in a tool), tasks already running finish
(so their results are saved) and nothing new starts until the resume. The alternative (one
super-step per finished task) is eager only if work outlives its super-step, and spends one
super-step per task against the recursion limit. Saving needs a checkpointer and the default
`durability="async"` (or "sync"); with "exit" nothing is saved before the run ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.errors import GraphInterrupt
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.managed import RemainingSteps
from langgraph.pregel import Pregel
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command, interrupt
from pydantic import ValidationError
from typing_extensions import TypedDict

from nodes.agent import build_agent
from nodes.context import Context, context_of
from nodes.finish import (
    budget_stop,
    child_limits,
    load_price_table,
    make_finish_run,
    stopped_outcome,
)
from nodes.memory_nodes import recall_for  # memory: the user's memories for the planner
from nodes.model import ModelOverride, message_text
from nodes.planning import (
    EagerScheduler,
    FinalAnswer,
    Plan,
    PlannedTask,
    PlanRevision,
    TaskRecord,
    TaskStatus,
    plan_problems,
    records_from_plan,
    topological_order,
)
from nodes.prompts.planning import (
    PLAN_PROBLEMS_PROMPT,
    PLANNER_SYSTEM_PROMPT,
    PLANNER_USER_PROMPT,
    PLANNING_FAILED_MESSAGE,
    REPLANNER_SYSTEM_PROMPT,
    REPLANNER_USER_PROMPT,
    SYNTHESIZER_PROMPT,
    WORKER_SYSTEM_PROMPT,
    WORKER_TASK_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import (
    ModelUsage,
    RunAccounting,
    RunClockChannel,
    RunOutcome,
    ToolResult,
    add_usage,
    start_clock,
)
from nodes.structured import ask_structured
from nodes.tool_call import build_tool_call_graph
from nodes.tool_gate import PolicyRef
from nodes.tool_node import allowed_tool_names
from nodes.tracing import traced

logger = logging.getLogger(__name__)

Author = Literal["planner", "replanner", "human"]
WORKER_AGENT = "task_worker"
"""Agent name of every task's worker (key of `Context.agent_policies`, audit `agent`)."""
DIRECT_CALL_AGENT = "task_tool"
"""Agent name of direct tool-call tasks."""

# Super-steps a repair or a replan needs to still end through `synthesize` (draft, validate,
# review, execute, synthesize, end); with fewer left we stop cleanly instead of letting
# LangGraph raise GraphRecursionError at the caller.
STEPS_TO_PLAN_AGAIN = 6
AfterValidation = Literal[
    "planner", "replanner", "review_plan", "execute", "synthesize", "finish_run"
]


class PlanExecuteInput(TypedDict):
    """What a caller sends: the request to plan for."""

    request: str
    """The user's request."""


class ReplanRecord(TypedDict):
    """One accepted revision of the remaining plan."""

    round: int
    """Execution round the revised tasks belong to (1 for the first replan)."""
    failed: list[str]
    """Ids of the failed tasks that triggered it."""
    rationale: str
    """The replanner's reason."""
    added: list[str]
    """Ids of the tasks of the revised remainder."""
    skipped: list[str]
    """Ids of pending tasks the revision dropped."""


class PlanExecuteOutput(RunOutcome, RunAccounting):
    """What the planner-executor reports."""

    tasks: NotRequired[list[TaskRecord]]
    """The plan with each task's status, result or error (every round)."""
    replans: NotRequired[list[ReplanRecord]]
    """Accepted revisions of the remaining plan, in order."""
    plan_problems: NotRequired[list[str]]
    """Problems of the last rejected plan (empty once a plan is accepted)."""
    plan_attempts: NotRequired[int]
    """Drafts in the latest planning (or replanning) phase; 1 when the first was valid."""
    citations: NotRequired[list[str]]
    """Task ids the final answer cites."""


class PlanExecuteState(PlanExecuteInput, PlanExecuteOutput, RunClockChannel):
    """Full state of the planner-executor."""

    draft: NotRequired[list[dict[str, Any]]]
    """Proposed tasks (PlannedTask dumps) waiting for `validate_plan`."""
    drafted_by: NotRequired[Author]
    """Who proposed `draft`; validation problems are sent back to them."""
    rationale: NotRequired[str]
    """The replanner's reason for the current draft."""
    round: NotRequired[int]
    """Current execution round: 0 for the first plan, +1 per accepted replan."""
    plan_id: NotRequired[str]
    """Random id of the plan accepted last; makes direct tasks' tool call ids (and so their
    idempotency keys) unique per plan on a thread."""
    remaining_steps: RemainingSteps


class TaskOutcome(TypedDict):
    """What running one task produced (the durable `@task` return value)."""

    id: str
    status: TaskStatus
    result: str | None
    error: str | None
    usage: dict[str, ModelUsage]
    tool_results: list[ToolResult]
    paused_s: NotRequired[float]
    """Time the task's worker waited on approvals (not counted as the run's wall time)."""
    interrupts: NotRequired[int]
    degraded: NotRequired[list[str]]


class PlanReviewError(ValueError):
    """A plan-review answer that is neither an approval nor an edit."""


def input_from_text(text: str) -> PlanExecuteInput:
    """`weft run plan_execute "..."` input."""
    return {"request": text}


# --- pure helpers ----------------------------------------------------------------------------


def drafted_tasks(state: PlanExecuteState) -> list[PlannedTask]:
    """The draft as PlannedTask objects."""
    return [PlannedTask.model_validate(t) for t in state.get("draft", [])]


def completed_ids(records: Sequence[TaskRecord]) -> list[str]:
    """Ids of the tasks that completed (in any round)."""
    return [r["id"] for r in records if r["status"] == "completed"]


def latest_failures(records: Sequence[TaskRecord]) -> list[TaskRecord]:
    """Failed tasks of the most recent execution round (the ones a replan responds to)."""
    latest = max((r.get("round", 0) for r in records), default=0)
    return [r for r in records if r["status"] == "failed" and r.get("round", 0) == latest]


def revise_remaining(
    records: Sequence[TaskRecord], tasks: Sequence[PlannedTask], *, round_: int
) -> tuple[list[TaskRecord], list[str]]:
    """Replace the remaining (pending) part of the plan with `tasks`.

    Completed, failed and cancelled records stay as history, except that a new task reusing a
    cancelled id replaces it; pending records the revision drops become `skipped`. Returns the
    new records and the ids that were skipped.
    """
    new_ids = {t.id for t in tasks}
    kept: list[TaskRecord] = []
    skipped: list[str] = []
    for record in records:
        if record["id"] in new_ids:
            continue
        if record["status"] == "pending":
            kept.append({**record, "status": "skipped", "error": "dropped from the plan"})
            skipped.append(record["id"])
        else:
            kept.append(record)
    fresh = records_from_plan(tasks, round_=round_)
    return [*kept, *fresh], skipped


def parse_review(answer: Any) -> tuple[Literal["approve", "edit"], list[PlannedTask]]:
    """Read a plan-review resume value: "approve", {"action": "approve"} or an edit.

    Raises:
        PlanReviewError: naming the value received and the accepted shapes.
    """
    if answer == "approve" or answer is True:
        return "approve", []
    if isinstance(answer, Mapping):
        action = answer.get("action")
        if action == "approve":
            return "approve", []
        if action == "edit" and isinstance(answer.get("tasks"), list):
            try:
                return "edit", [PlannedTask.model_validate(t) for t in answer["tasks"]]
            except ValidationError as exc:
                raise PlanReviewError(f"edited tasks are not valid tasks: {exc}") from None
    raise PlanReviewError(
        f"unrecognised plan-review answer {answer!r}; expected 'approve', "
        "{'action': 'approve'} or {'action': 'edit', 'tasks': [...]}"
    )


def _tool_lines(tools: Sequence[BaseTool], names: Sequence[str]) -> str:
    by_name = {t.name: t for t in tools}
    firsts = {n: next(iter((by_name[n].description or "").strip().splitlines()), "") for n in names}
    lines = [f"- {n}: {first}" for n, first in firsts.items()]
    return "\n".join(lines) or "(none)"


def _bullets(problems: Sequence[str]) -> str:
    return "\n".join(f"- {p}" for p in problems)


def _describe(records: Sequence[TaskRecord], *, with_results: bool) -> str:
    lines = []
    for r in records:
        line = f"[{r['id']}] {r['description']}"
        if r["depends_on"]:
            line += f" (depends on {', '.join(r['depends_on'])})"
        if with_results and r.get("result") is not None:
            line += f"\n    result: {r['result']}"
        if r.get("error"):
            line += f"\n    {r['status']}: {r['error']}"
        lines.append(line)
    return "\n".join(lines) or "(none)"


def direct_call_id(record: TaskRecord, plan_id: str) -> str:
    """The tool call id of a direct task: unique per accepted plan, stable across resumes.

    The executor's idempotency key is '<thread_id>:<call id>', so a direct task `t1` of the
    next request on the same thread must not reuse the id of this one's `t1`.
    """
    return f"task_{record['id']}_{plan_id}" if plan_id else f"task_{record['id']}"


# --- the executor (functional API: durable per-task results) ---------------------------------


def build_executor(
    tools: Sequence[BaseTool],
    *,
    model: ModelOverride = None,
    policy: PolicyRef | None = None,
) -> Pregel[Any, Any, Any, Any]:
    """The `@entrypoint` graph that runs one round of pending tasks eagerly.

    Input: `{"request", "tasks": [pending TaskRecord...], "completed": {id: result},
    "max_concurrency", "plan_id"}`. Output: `{"outcomes": {id: TaskOutcome}}`.

    Workers and direct calls are built over all of `tools` and receive the task's tools as
    `plan_tools`, the allow-list the planner fixed before any tool output was read: the model
    sees only those, and a call to any other tool is denied as `not_in_plan` (and audited).
    Their agent names, for `Context.agent_policies` and audit records, are `task_worker` and
    `task_tool`.
    """
    worker = build_agent(
        tools=tools,
        model=model,
        role="worker",
        system_prompt=WORKER_SYSTEM_PROMPT,
        name=WORKER_AGENT,
        policy=policy,
    )
    direct_call = build_tool_call_graph(tools, policy=policy, name=DIRECT_CALL_AGENT)

    async def run_worker(record: TaskRecord, prompt: str, ctx: Context) -> TaskOutcome:
        result = await worker.ainvoke(
            {"messages": [HumanMessage(prompt)], "plan_tools": list(record["tools"])},
            context=ctx,
        )
        ok = bool(result.get("success"))
        metrics = result.get("metrics") or {}
        return TaskOutcome(
            id=record["id"],
            status="completed" if ok else "failed",
            result=result.get("final_answer") if ok else None,
            error=None if ok else str(result.get("error") or "the worker did not finish"),
            usage=result.get("usage") or {},
            tool_results=result.get("tool_results") or [],
            paused_s=float(metrics.get("paused_s") or 0.0),
            interrupts=int(metrics.get("interrupts") or 0),
            degraded=list(result.get("degraded") or []),
        )

    async def run_direct(record: TaskRecord, plan_id: str, ctx: Context) -> TaskOutcome:
        name = str(record["tool"])
        call = {"name": name, "args": record["tool_args"], "id": direct_call_id(record, plan_id)}
        # The task description is the "stated reason" a reviewer sees for this call.
        request = AIMessage(
            f"Task {record['id']}: {record['description']}",
            tool_calls=[{**call, "type": "tool_call"}],
        )
        result = await direct_call.ainvoke(
            {"messages": [request], "plan_tools": [name]}, context=ctx
        )
        reply = result["messages"][-1]
        text = message_text(reply.content)
        ok = getattr(reply, "status", "success") != "error"
        return TaskOutcome(
            id=record["id"],
            status="completed" if ok else "failed",
            result=text if ok else None,
            error=None if ok else text,
            usage={},
            tool_results=result.get("tool_results") or [],
        )

    @task
    async def plan_task(
        record: TaskRecord,
        request: str,
        scheduler: EagerScheduler,
        results: Mapping[str, str],
        plan_id: str,
        ctx: Context,
    ) -> TaskOutcome:
        writer = get_stream_writer()
        blocked = await scheduler.ready(record["id"])
        if blocked is not None:
            status = scheduler.statuses.get(blocked)
            writer({"event": "task_finished", "task_id": record["id"], "status": "cancelled"})
            return TaskOutcome(
                id=record["id"],
                status="cancelled",
                result=None,
                error=f"dependency {blocked!r} {status}",
                usage={},
                tool_results=[],
            )
        async with scheduler.slot(record["id"]):
            writer({"event": "task_started", "task_id": record["id"], "status": "running"})
            if record["tool"]:
                outcome = await run_direct(record, plan_id, ctx)
            else:
                dependencies = "\n".join(
                    f"[{d}] {results.get(d, '(none)')}" for d in record["depends_on"]
                )
                prompt = WORKER_TASK_PROMPT.format(
                    task_id=record["id"],
                    description=record["description"],
                    request=request,
                    dependencies=dependencies or "(none)",
                )
                outcome = await run_worker(record, prompt, ctx)
        writer({"event": "task_finished", "task_id": record["id"], "status": outcome["status"]})
        return outcome

    @entrypoint(context_schema=Context)
    async def execute_plan(payload: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = context_of(runtime)
        records: list[TaskRecord] = payload["tasks"]
        completed: dict[str, str] = dict(payload["completed"])
        by_id = {r["id"]: r for r in records}
        scheduler = EagerScheduler(
            {r["id"]: [d for d in r["depends_on"] if d in by_id] for r in records},
            max_concurrency=int(payload["max_concurrency"]),
            prior={task_id: "completed" for task_id in completed},
        )
        results = dict(completed)
        # Calling every task up front in a timing-independent order keeps each task's
        # checkpoint identity stable across a crash and resume (see the module docstring).
        futures: dict[asyncio.Future[TaskOutcome], str] = {
            asyncio.ensure_future(
                plan_task(
                    by_id[i],
                    payload["request"],
                    scheduler,
                    results,
                    str(payload.get("plan_id") or ""),
                    ctx,
                )
            ): i
            for i in topological_order(records)
        }
        outcomes: dict[str, TaskOutcome] = {}
        pending, abandoned = set(futures), set()
        paused: list[GraphInterrupt] = []
        crashed: list[BaseException] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: futures[f]):
                    try:
                        outcome: TaskOutcome = future.result()
                    except GraphInterrupt as exc:
                        paused.append(exc)
                    except Exception as exc:  # a bug or an outage: re-raised below
                        logger.info("task %r crashed: %r", futures[future], exc)
                        crashed.append(exc)
                    else:
                        outcomes[outcome["id"]] = outcome
                        if outcome["status"] == "completed" and outcome["result"] is not None:
                            results[outcome["id"]] = outcome["result"]
                        scheduler.finish(outcome["id"], outcome["status"])
                if paused or crashed:
                    # Start nothing new, but let running tasks finish so their results are
                    # saved and not redone on resume; tasks not started simply run then.
                    idle = {f for f in pending if futures[f] not in scheduler.running}
                    abandoned |= idle
                    pending -= idle
        finally:
            for future in pending | abandoned:
                future.cancel()
        if crashed:
            raise crashed[0]
        if paused:
            # Each paused task already reported its own interrupts; repeating them here would
            # list every one twice in `__interrupt__` (same id). An empty GraphInterrupt still
            # pauses the entrypoint, so the resume re-enters it.
            raise GraphInterrupt(())
        return {"outcomes": outcomes}

    return execute_plan


# --- graph -----------------------------------------------------------------------------------


def build_graph(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[PlanExecuteState, Context, PlanExecuteInput, PlanExecuteOutput]:
    """Compile the planner-executor graph.

    Args:
        model: A chat model object or id for every role, or a role→model mapping ("planner"
            plans, replans and synthesizes; "worker" runs tasks).
        tools: Tools tasks may use (default: the built-in starter tools); `Context.tools`
            narrows them per run.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
        policy: Tool policy for every task (workers and direct calls). Default, per run:
            `Context.agent_policies["task_worker"]` / `["task_tool"]`, else `Context.policy`.
    """
    if tools is None:
        from tools import builtin_tools

        tools = builtin_tools()
    tools = list(tools)
    executor = build_executor(tools, model=model, policy=policy)

    def available(ctx: Context) -> list[str]:
        return allowed_tool_names(ctx.tools, [t.name for t in tools])

    async def planner(state: PlanExecuteState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Draft the plan, or repair the last draft when validation found problems.

        Reads `request`, `draft`, `plan_problems`; writes `draft`, `drafted_by`,
        `plan_attempts`, `usage`.
        """
        ctx = context_of(runtime)
        # A fresh planning phase (not a repair) starts the run's clock.
        fresh = _attempt_number(state, "planner") == 1
        clock = start_clock(state) if fresh else {}
        await load_price_table(ctx)
        # memory: what the user told earlier runs shapes the plan (off unless memory_enabled);
        # a repair attempt recalls again without counting another access.
        memory = await recall_for(
            state["request"], ctx, runtime.store, touch=not state.get("plan_problems")
        )
        system = PLANNER_SYSTEM_PROMPT.format(tools=_tool_lines(tools, available(ctx)))
        messages: list[AnyMessage] = [
            SystemMessage(system + memory.text),
            HumanMessage(PLANNER_USER_PROMPT.format(request=state["request"])),
        ]
        messages += _repair_turn(state, "planner")
        answer = await ask_structured(Plan, messages, role="planner", context=ctx, model=model)
        return {
            **clock,
            "draft": [t.model_dump() for t in answer.value.tasks],
            "drafted_by": "planner",
            "plan_attempts": _attempt_number(state, "planner"),
            "usage": answer.usage,
            **memory.update,
        }

    async def replanner(state: PlanExecuteState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Revise the remaining plan after failures.

        Reads `tasks`, `request`, `draft`, `plan_problems`; writes `draft`, `drafted_by`,
        `rationale`, `plan_attempts`, `usage`.
        """
        ctx = context_of(runtime)
        records = state.get("tasks", [])
        messages: list[AnyMessage] = [
            SystemMessage(REPLANNER_SYSTEM_PROMPT.format(tools=_tool_lines(tools, available(ctx)))),
            HumanMessage(
                REPLANNER_USER_PROMPT.format(
                    request=state["request"],
                    completed=_describe(
                        [r for r in records if r["status"] == "completed"], with_results=True
                    ),
                    failed=_describe(latest_failures(records), with_results=False),
                    remaining=_describe(
                        [r for r in records if r["status"] in ("pending", "cancelled")],
                        with_results=False,
                    ),
                )
            ),
        ]
        messages += _repair_turn(state, "replanner")
        answer = await ask_structured(
            PlanRevision, messages, role="planner", context=ctx, model=model
        )
        return {
            "draft": [t.model_dump() for t in answer.value.tasks],
            "drafted_by": "replanner",
            "rationale": answer.value.rationale,
            "plan_attempts": _attempt_number(state, "replanner"),
            "usage": answer.usage,
        }

    def validate_plan(
        state: PlanExecuteState, runtime: Runtime[Context]
    ) -> Command[AfterValidation]:
        """Accept the draft into `tasks`, or send its exact problems back to its author.

        Reads `draft`, `drafted_by`, `tasks`, `plan_attempts`; writes `tasks`,
        `plan_problems`, `replans`, `round` (or the failure outcome).
        """
        ctx = context_of(runtime)
        author = state.get("drafted_by", "planner")
        records = state.get("tasks", [])
        draft = drafted_tasks(state)
        problems = plan_problems(
            draft,
            available_tools=available(ctx),
            completed_ids=completed_ids(records),
            allow_empty=author == "replanner",
        )
        if problems:
            logger.info("plan by %s rejected: %d problem(s)", author, len(problems))
            if author == "human":
                return Command(goto="review_plan", update={"plan_problems": problems})
            attempts = state.get("plan_attempts", 0)
            # A repair must leave a call for the answer (the replanner's path synthesizes).
            over_budget = budget_stop(state, ctx, model_calls=2 if author == "replanner" else 1)
            if attempts >= ctx.max_plan_attempts:
                reason = f"no valid plan after {attempts} attempt(s) by the {author}"
            elif state["remaining_steps"] < STEPS_TO_PLAN_AGAIN:
                reason = f"the graph's recursion limit was reached while the {author} planned"
            elif over_budget:
                reason = f"{over_budget} while the {author} planned"
            else:
                return Command(goto=author, update={"plan_problems": problems})
            return _give_up_planning(state, author, problems, reason)
        if author == "replanner" and not draft:
            return Command(goto="synthesize", update=_record_replan(state, [], "dropped")[1])
        round_, update = (
            _record_replan(state, draft, "replaced")
            if author == "replanner"
            else (state.get("round", 0), {})
        )
        tasks, _ = revise_remaining(records, draft, round_=round_)
        get_stream_writer()(
            {"event": "plan_accepted", "by": author, "task_ids": [t.id for t in draft]}
        )
        goto: Literal["review_plan", "execute"] = (
            "review_plan" if ctx.review_plan and author != "human" else "execute"
        )
        return Command(
            goto=goto,
            update={
                **update,
                "tasks": tasks,
                "plan_problems": [],
                "plan_id": uuid.uuid4().hex[:12],
            },
        )

    def _record_replan(
        state: PlanExecuteState, draft: Sequence[PlannedTask], how: str
    ) -> tuple[int, dict[str, Any]]:
        records = state.get("tasks", [])
        round_ = state.get("round", 0) + 1
        _, skipped = revise_remaining(records, draft, round_=round_)
        replan = ReplanRecord(
            round=round_,
            failed=[r["id"] for r in latest_failures(records)],
            rationale=state.get("rationale", ""),
            added=[t.id for t in draft],
            skipped=skipped,
        )
        logger.info("replan %d accepted (%s remaining plan)", round_, how)
        return round_, {"replans": [*state.get("replans", []), replan], "round": round_}

    async def review_plan(
        state: PlanExecuteState,
    ) -> Command[Literal["execute", "validate_plan", "review_plan"]]:
        """Pause for a human to approve or edit the pending tasks.

        Resume with "approve", {"action": "approve"} or {"action": "edit", "tasks": [...]}.
        Reads `tasks`, `plan_problems`; writes `draft`/`drafted_by` on an edit.
        """
        pending = [r for r in state.get("tasks", []) if r["status"] == "pending"]
        answer = interrupt(
            {
                "kind": "plan_review",
                "tasks": pending,
                "problems": state.get("plan_problems", []),
                "resume_with": [
                    "approve",
                    {"action": "edit", "tasks": "[{id, description, depends_on, tools, ...}]"},
                ],
            }
        )
        try:
            action, edited = parse_review(answer)
        except PlanReviewError as exc:
            return Command(goto="review_plan", update={"plan_problems": [str(exc)]})
        if action == "approve":
            return Command(goto="execute", update={"plan_problems": []})
        return Command(
            goto="validate_plan",
            update={"draft": [t.model_dump() for t in edited], "drafted_by": "human"},
        )

    async def execute(
        state: PlanExecuteState, runtime: Runtime[Context]
    ) -> Command[Literal["replanner", "synthesize"]]:
        """Run the pending tasks eagerly; on failure, replan while `max_replans` allows.

        Reads `tasks`, `request`, `replans`; writes `tasks`, `usage`, `tool_results`, `error`.
        """
        ctx = context_of(runtime)
        records = state.get("tasks", [])
        pending = [r for r in records if r["status"] == "pending"]
        workers = [r for r in pending if not r["tool"]]
        direct = len(pending) - len(workers)
        # The round must fit: a call for every worker, the direct tool calls, and one call left
        # for the synthesis; the workers then share the rest.
        stop = budget_stop(state, ctx, model_calls=len(workers) + 1, tool_calls=direct)
        if stop:
            skipped = [
                {**r, "status": "skipped", "error": stop} if r["status"] == "pending" else r
                for r in records
            ]
            return Command(goto="synthesize", update={"tasks": skipped, "error": stop})
        output = await executor.ainvoke(
            {
                "request": state["request"],
                "tasks": pending,
                "completed": {
                    r["id"]: r.get("result") or "" for r in records if r["status"] == "completed"
                },
                "max_concurrency": ctx.max_concurrency,
                "plan_id": state.get("plan_id", ""),
            },
            context=_task_context(ctx, state, workers=len(workers), direct=direct),
        )
        outcomes: dict[str, TaskOutcome] = output["outcomes"]
        usage: dict[str, ModelUsage] = {}
        tool_results: list[ToolResult] = []
        degraded: list[str] = []
        paused, interrupts = 0.0, 0
        updated: list[TaskRecord] = []
        for record in records:
            outcome = outcomes.get(record["id"])
            if outcome is None:
                updated.append(record)
                continue
            usage = add_usage(usage, outcome["usage"])
            tool_results += outcome["tool_results"]
            degraded += outcome.get("degraded") or []
            paused += outcome.get("paused_s", 0.0)
            interrupts += outcome.get("interrupts", 0)
            updated.append(
                {
                    **record,
                    "status": outcome["status"],
                    "result": outcome["result"],
                    "error": outcome["error"],
                }
            )
        failed = [o["id"] for o in outcomes.values() if o["status"] == "failed"]
        update: dict[str, Any] = {
            "tasks": updated,
            "usage": usage,
            "tool_results": tool_results,
            "error": None,
        }
        if degraded:
            update["degraded"] = degraded
        if interrupts:  # the workers' approval waits are not the run's working time
            update["run_clock"] = {"paused_s": paused, "interrupts": interrupts}
        if not failed:
            return Command(goto="synthesize", update=update)
        spent = {
            **state,
            "usage": add_usage(state.get("usage"), usage),
            "tool_results": [*(state.get("tool_results") or []), *tool_results],
        }
        over_budget = budget_stop(spent, ctx, model_calls=2)  # the replan, then the synthesis
        names = ", ".join(map(repr, failed))
        if len(state.get("replans", [])) >= ctx.max_replans:
            update["error"] = (
                f"task(s) {names} failed and no replans are left (max_replans={ctx.max_replans})"
            )
        elif state["remaining_steps"] < STEPS_TO_PLAN_AGAIN:
            update["error"] = f"task(s) {names} failed and the graph's recursion limit is near"
        elif over_budget:
            update["error"] = f"{over_budget}; task(s) {names} failed and cannot be replanned"
        else:
            return Command(goto="replanner", update=update)
        return Command(goto="synthesize", update=update)

    async def synthesize(state: PlanExecuteState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Write the final answer from the task results, citing task ids.

        Reads `request`, `tasks`, `error`; writes `final_answer`, `citations`, `success`,
        `usage`.
        """
        ctx = context_of(runtime)
        records = state.get("tasks", [])
        stop = budget_stop(state, ctx)
        if stop:
            done = [r for r in records if r["status"] == "completed"]
            partial = _describe(done, with_results=True) if done else None
            return stopped_outcome(f"{stop} before the synthesis", partial)
        prompt = SYNTHESIZER_PROMPT.format(
            request=state["request"], results=_describe(records, with_results=True)
        )
        answer = await ask_structured(
            FinalAnswer, [HumanMessage(prompt)], role="planner", context=ctx, model=model
        )
        known = {r["id"] for r in records}
        return {
            "final_answer": answer.value.answer,
            "citations": [i for i in answer.value.cited_task_ids if i in known],
            "success": not state.get("error"),
            "usage": answer.usage,
        }

    builder = StateGraph(
        PlanExecuteState,
        context_schema=Context,
        input_schema=PlanExecuteInput,
        output_schema=PlanExecuteOutput,
    )
    builder.add_node("planner", planner, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("validate_plan", validate_plan)
    builder.add_node("review_plan", review_plan)
    builder.add_node("execute", execute)
    builder.add_node("replanner", replanner, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("synthesize", synthesize, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "validate_plan")
    builder.add_edge("replanner", "validate_plan")
    builder.add_node(
        "finish_run", make_finish_run(model=model, role="planner", iterations=_tasks_run)
    )
    builder.add_edge("synthesize", "finish_run")
    builder.add_edge("finish_run", END)
    compiled = builder.compile(name="plan_execute", checkpointer=checkpointer, store=store)
    return traced(compiled, pattern="plan_execute")


def _task_context(ctx: Context, state: PlanExecuteState, *, workers: int, direct: int) -> Context:
    """The context a round's tasks run with: each worker's share of what the run has left,
    after the direct calls and the synthesis call are set aside; no output guardrail."""
    # Limits are positive: a round only starts when it fits (see `execute`), so 1 is the
    # smallest share there is.
    reserved = dataclasses.replace(
        ctx,
        max_model_calls=None if ctx.max_model_calls is None else max(1, ctx.max_model_calls - 1),
        max_tool_calls=None if ctx.max_tool_calls is None else max(1, ctx.max_tool_calls - direct),
    )
    share = child_limits(reserved, state, share=max(1, workers))
    return dataclasses.replace(ctx, output_guardrail="off", **share)


def _tasks_run(state: Any) -> int:
    return sum(1 for r in state.get("tasks") or [] if r["status"] in ("completed", "failed"))


def _attempt_number(state: PlanExecuteState, author: Author) -> int:
    """1 for a fresh planning phase; one more when repairing this author's rejected draft."""
    repairing = bool(state.get("plan_problems")) and state.get("drafted_by") == author
    return state.get("plan_attempts", 0) + 1 if repairing else 1


def _repair_turn(state: PlanExecuteState, author: Author) -> list[AnyMessage]:
    """The rejected draft and its problems, when the last draft was this author's."""
    problems = state.get("plan_problems") or []
    if not problems or state.get("drafted_by") != author:
        return []
    return [
        AIMessage(json.dumps({"tasks": state.get("draft", [])}, ensure_ascii=False)),
        HumanMessage(PLAN_PROBLEMS_PROMPT.format(problems=_bullets(problems))),
    ]


def _give_up_planning(
    state: PlanExecuteState, author: Author, problems: list[str], reason: str
) -> Command[AfterValidation]:
    error = f"{reason}: {'; '.join(problems)}"
    if author == "planner":
        answer = PLANNING_FAILED_MESSAGE.format(problems=_bullets(problems))
        return Command(
            goto="finish_run",
            update={
                "plan_problems": problems,
                "final_answer": answer,
                "success": False,
                "error": error,
            },
        )
    # The replanner gave up: answer from what completed, and say the rest was not run.
    records = [
        {**r, "status": "skipped", "error": "no valid revised plan"}
        if r["status"] == "pending"
        else r
        for r in state.get("tasks", [])
    ]
    return Command(
        goto="synthesize", update={"plan_problems": problems, "tasks": records, "error": error}
    )


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
