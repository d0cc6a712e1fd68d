"""Reflexion: try, evaluate, reflect on the failure in words, and try again with the lesson.

recall → actor (a ReAct sub-agent with tools) → evaluate → pass: done | fail: reflect → actor …,
up to `Context.reflexion_max_trials` attempts. The evaluator is either a check function given to
`build_graph(check=...)` (tests, a tool result, any deterministic check) or a rubric judged by a
structured model call (the input's `rubric`, or a default one). Each reflection is a structured
call producing a lesson; when memory is on (`Context.memory_enabled` and a store), lessons are
saved through `MemoryManager` as procedural memories of the run's user scoped to Reflexion, and
recalled into the actor's prompt on later runs (nodes/critique.py). A failing store never fails
the run: it continues with the lessons of this run only and reports `degraded=["memory"]`.

Model calls, for t attempts: the actor's calls per attempt (1 without tools), plus 1 per attempt
for a rubric evaluator (0 with a check function), plus 1 reflection per failed attempt that is
followed by a retry — and one for the last failed attempt when memory can keep its lesson.
Example: fail then pass, no tools, rubric: 1 + 1 + 1 + 1 + 1 = 5 calls.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, NotRequired

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config, get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command
from typing_extensions import TypedDict

from nodes.agent import build_agent
from nodes.context import Context, context_of
from nodes.critique import Evaluation, Reflection, recall_lessons, remember_lesson
from nodes.finish import (
    budget_stop,
    child_accounting,
    child_context,
    load_price_table,
    make_finish_run,
    stopped_outcome,
)
from nodes.memory_nodes import (
    DEGRADED_MEMORY,
    ESCAPE_FOR_PROMPT,
    MEMORY_ERRORS,
    memory_available,
)
from nodes.model import ModelOverride
from nodes.prompts.reflection import (
    ACTOR_LESSONS_BLOCK,
    ACTOR_SYSTEM_PROMPT,
    ACTOR_TASK_PROMPT,
    DEFAULT_RUBRIC,
    EVALUATE_USER_PROMPT,
    EVALUATOR_SYSTEM_PROMPT,
    REFLECT_SYSTEM_PROMPT,
    REFLECT_USER_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import RunAccounting, RunOutcome, RunTracking, add_usage, start_clock
from nodes.structured import ask_structured
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

logger = logging.getLogger(__name__)

CheckResult = Evaluation | bool
CheckFunction = Callable[[str, str], CheckResult | Awaitable[CheckResult]]
"""`check(task, answer) -> Evaluation | bool` (sync or async): a deterministic evaluator."""


class Attempt(TypedDict):
    """One trial of the actor and its evaluation."""

    trial: int
    answer: str
    passed: NotRequired[bool | None]
    feedback: NotRequired[str | None]
    score: NotRequired[float | None]
    agent_error: NotRequired[str | None]
    """Set when the actor itself stopped early (e.g. its iteration limit)."""


class ReflexionInput(TypedDict):
    """What a caller sends."""

    task: str
    """The task to solve."""
    rubric: NotRequired[str | None]
    """What a correct answer must satisfy (for the model evaluator); a default rubric if
    omitted. Ignored when the graph was built with a check function."""


class ReflexionOutput(RunOutcome, RunAccounting):
    """What Reflexion reports."""

    attempts: NotRequired[list[Attempt]]
    """Every attempt with its evaluation, in order."""
    reflections: NotRequired[list[str]]
    """Lessons written during this run, in order."""
    recalled_reflections: NotRequired[list[str]]
    """Lessons recalled from long-term memory at the start of the run."""
    trials: NotRequired[int]
    """Attempts made."""


class ReflexionState(ReflexionInput, ReflexionOutput, RunTracking):
    """Full Reflexion state."""


def input_from_text(text: str) -> dict[str, Any]:
    """The CLI's input: the text is the task (default rubric)."""
    return {"task": text}


async def _run_check(check: CheckFunction, task: str, answer: str) -> Evaluation:
    outcome = check(task, answer)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    if isinstance(outcome, Evaluation):
        return outcome
    if isinstance(outcome, bool):
        feedback = "the check passed" if outcome else "the check failed"
        return Evaluation(passed=outcome, feedback=feedback)
    raise TypeError(
        f"check function returned {type(outcome).__name__}; expected Evaluation or bool"
    )


def _lessons_block(lessons: Sequence[str]) -> str:
    if not lessons:
        return ""
    # Lessons are model-written and may quote tool output: one escaped line each.
    lines = "\n".join(f"- {ESCAPE_FOR_PROMPT(x)}" for x in lessons)
    return ACTOR_LESSONS_BLOCK.format(reflections=lines)


def build_graph(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    check: CheckFunction | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[ReflexionState, Context, ReflexionInput, ReflexionOutput]:
    """Compile the Reflexion graph.

    Args:
        model: Chat model object or id, or a role→model mapping (`agent` for the actor,
            `judge` for the rubric evaluator and the reflections).
        tools: The actor's tools (default: the built-in starter tools).
        check: Deterministic evaluator `check(task, answer) -> Evaluation | bool` (sync or
            async) used instead of the rubric model call.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store for lessons, used when `Context.memory_enabled` (None for the
            server, which brings its own).
        policy: Tool policy of the actor; default per run:
            `Context.agent_policies["reflexion_actor"]`, else `Context.policy`.
    """
    actor_agent = build_agent(
        tools=tools,
        model=model,
        system_prompt=ACTOR_SYSTEM_PROMPT,
        name="reflexion_actor",
        policy=policy,
    )

    async def recall(state: ReflexionState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Start a run: recall the user's past lessons. Reads `task`; resets the run's keys."""
        ctx = context_of(runtime)
        await load_price_table(ctx)
        lessons: list[str] = []
        degraded: dict[str, Any] = {}
        if ctx.memory_enabled and runtime.store is None:
            degraded = {"degraded": [DEGRADED_MEMORY]}
        elif memory_available(ctx, runtime.store):
            assert runtime.store is not None
            try:
                lessons = await recall_lessons(
                    runtime.store, context=ctx, task=state["task"], limit=ctx.reflexion_recall_limit
                )
            except MEMORY_ERRORS as exc:
                logger.warning("reflexion runs without past lessons: %s", exc)
                degraded = {"degraded": [DEGRADED_MEMORY]}
        return {
            **degraded,
            **start_clock(state),
            "stop_reason": None,
            "recalled_reflections": lessons,
            "reflections": [],
            "attempts": [],
            "trials": 0,
            "final_answer": None,
            "success": None,
            "error": None,
        }

    async def actor(state: ReflexionState, runtime: Runtime[Context]) -> dict[str, Any]:
        """One attempt by the ReAct sub-agent, with every lesson so far in its prompt.

        Reads `task`, `recalled_reflections`, `reflections`; writes `attempts`, `trials`,
        `usage`, `tool_results`.
        """
        # A lesson recalled from memory and re-learnt in this run is shown once.
        lessons = list(
            dict.fromkeys(
                [*(state.get("recalled_reflections") or []), *(state.get("reflections") or [])]
            )
        )
        prompt = ACTOR_TASK_PROMPT.format(task=state["task"], lessons=_lessons_block(lessons))
        trial = (state.get("trials") or 0) + 1
        get_stream_writer()({"event": "trial_started", "trial": trial})
        # The node's own config: the sub-agent shares the run's store and callbacks; its
        # context is the run's, with what is left of the budget and no output guardrail.
        child = dataclasses.replace(
            child_context(context_of(runtime), state), output_guardrail="off"
        )
        result = await actor_agent.ainvoke(
            {"messages": [HumanMessage(prompt)]}, get_config(), context=child
        )
        attempt = Attempt(
            trial=trial,
            answer=result.get("final_answer") or "",
            agent_error=None if result.get("success") else result.get("error"),
        )
        return {
            "attempts": [*(state.get("attempts") or []), attempt],
            "trials": trial,
            **child_accounting(result),
        }

    async def evaluate(
        state: ReflexionState, runtime: Runtime[Context]
    ) -> Command[Literal["reflect", "finish"]]:
        """Judge the latest attempt with the check function or the rubric.

        Reads `task`, `rubric`, `attempts`; writes `attempts` (the verdict) and `usage`.
        """
        ctx = context_of(runtime)
        attempts = list(state["attempts"])
        latest = attempts[-1]
        usage: dict[str, Any] = {}
        stop = None if check is not None else budget_stop(state, ctx)
        if stop:
            return Command(goto="finish", update={"stop_reason": stop})
        if check is not None:
            verdict = await _run_check(check, state["task"], latest["answer"])
        else:
            answer = await ask_structured(
                Evaluation,
                [
                    SystemMessage(EVALUATOR_SYSTEM_PROMPT),
                    HumanMessage(
                        EVALUATE_USER_PROMPT.format(
                            task=state["task"],
                            rubric=state.get("rubric") or DEFAULT_RUBRIC,
                            answer=latest["answer"],
                        )
                    ),
                ],
                role="judge",
                context=ctx,
                model=model,
            )
            verdict, usage = answer.value, answer.usage
        attempts[-1] = Attempt(
            **{
                **latest,
                "passed": verdict.passed,
                "feedback": verdict.feedback,
                "score": verdict.score,
            }
        )
        get_stream_writer()(
            {"event": "evaluated", "trial": latest["trial"], "passed": verdict.passed}
        )
        retry_left = latest["trial"] < max(1, ctx.reflexion_max_trials)
        # A failure still teaches something worth keeping when memory can carry it forward.
        keeps = memory_available(ctx, runtime.store)
        wants_reflection = not verdict.passed and (retry_left or keeps)
        return Command(
            goto="reflect" if wants_reflection else "finish",
            update={"attempts": attempts, "usage": usage},
        )

    async def reflect(
        state: ReflexionState, runtime: Runtime[Context]
    ) -> Command[Literal["actor", "finish"]]:
        """Turn the failure into a lesson, keep it in memory, and retry if trials remain.

        Reads `task`, `attempts`, `reflections`; writes `reflections` and `usage`.
        """
        ctx = context_of(runtime)
        latest = state["attempts"][-1]
        earlier = state.get("reflections") or []
        stop = budget_stop(state, ctx)
        if stop:
            return Command(goto="finish", update={"stop_reason": stop})
        answer = await ask_structured(
            Reflection,
            [
                SystemMessage(REFLECT_SYSTEM_PROMPT),
                HumanMessage(
                    REFLECT_USER_PROMPT.format(
                        task=state["task"],
                        answer=latest["answer"],
                        feedback=latest.get("feedback") or latest.get("agent_error") or "",
                        previous="\n".join(f"- {x}" for x in earlier) or "(none)",
                    )
                ),
            ],
            role="judge",
            context=ctx,
            model=model,
        )
        lesson = answer.value.lesson.strip()
        update: dict[str, Any] = {"reflections": [*earlier, lesson], "usage": answer.usage}
        if memory_available(ctx, runtime.store) and lesson:
            assert runtime.store is not None
            try:
                await remember_lesson(
                    runtime.store,
                    context=ctx,
                    lesson=lesson,
                    task=state["task"],
                    importance=answer.value.importance,
                )
            except MEMORY_ERRORS as exc:
                logger.warning("reflexion lesson not kept: %s", exc)
                update["degraded"] = [DEGRADED_MEMORY]
        retry_left = latest["trial"] < max(1, ctx.reflexion_max_trials)
        if retry_left:
            spent = {**state, "usage": add_usage(state.get("usage"), answer.usage)}
            update["stop_reason"] = budget_stop(spent, ctx)
        retry = retry_left and not update.get("stop_reason")
        return Command(goto="actor" if retry else "finish", update=update)

    async def finish(state: ReflexionState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Report the passing attempt, or the last one with why it failed.

        Reads `attempts`; writes `final_answer`, `success`, `error`.
        """
        attempts = state["attempts"]
        latest = attempts[-1]
        if latest.get("passed"):
            return {"final_answer": latest["answer"], "success": True, "error": None}
        if state.get("stop_reason"):
            return stopped_outcome(
                f"{state['stop_reason']} after {len(attempts)} trial(s)", latest["answer"]
            )
        logger.info("reflexion gave up after %d attempts", len(attempts))
        return {
            "final_answer": latest["answer"],
            "success": False,
            "error": (
                f"no attempt passed the evaluation in {len(attempts)} trial(s); last feedback: "
                f"{latest.get('feedback')!r}"
            ),
        }

    builder = StateGraph(
        ReflexionState,
        context_schema=Context,
        input_schema=ReflexionInput,
        output_schema=ReflexionOutput,
    )
    builder.add_node("recall", recall)
    builder.add_node("actor", actor)
    builder.add_node("evaluate", evaluate, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("reflect", reflect, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("finish", finish)
    builder.add_node(
        "finish_run",
        make_finish_run(model=model, iterations=lambda s: int(s.get("trials") or 0)),
    )
    builder.add_edge(START, "recall")
    builder.add_edge("recall", "actor")
    builder.add_edge("actor", "evaluate")
    builder.add_edge("finish", "finish_run")
    builder.add_edge("finish_run", END)
    compiled = builder.compile(name="reflexion", checkpointer=checkpointer, store=store)
    return traced(compiled, pattern="reflexion")


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
