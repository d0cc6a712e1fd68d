"""Pipeline: fixed stages in order, each output checked before the next stage starts.

`build_pipeline(stages, ...)` compiles any list of `StageSpec`s (nodes/pipelines.py);
`build_graph(...)` is the ready-made research pipeline: research (a ReAct sub-agent with tools)
→ analyse → write → review. An invalid stage output stops the run at that stage with
`failed_stage`, `error` and every earlier `stage_outputs` in the checkpoint; fix the stage's input
(or an earlier output) with `update_state` and resume, and only the failed stage and the ones after
it run again (`resume_pipeline` does both steps). With `Context.pipeline_review_after` the run
pauses after the named stages for a human to approve, edit, retry or stop.

Model calls (research pipeline): research makes one per sub-agent iteration (1 when it answers
without tools, 1 + rounds of tool calls otherwise), then analyse, write and review one each:
4 for a run without tools. A stage re-run after a fix costs that stage's calls again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NotRequired

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import interrupt
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from nodes.agent import build_agent
from nodes.context import Context, context_of
from nodes.finish import (
    budget_stop,
    child_context,
    load_price_table,
    make_finish_run,
    stopped_outcome,
    with_metrics,
)
from nodes.model import ModelOverride
from nodes.pipelines import (
    PipelineView,
    ReviewAnswerError,
    StageContext,
    StageResult,
    StageSpec,
    StageValidationError,
    all_of,
    check_stage_list,
    default_input,
    require_model,
    require_non_empty,
    review_wanted,
    run_stage,
    validate_output,
)
from nodes.prompts.pipeline import (
    ANALYSE_SYSTEM_PROMPT,
    ANALYSE_USER_PROMPT,
    RESEARCH_SYSTEM_PROMPT,
    RESEARCH_TASK_PROMPT,
    REVIEW_SYSTEM_PROMPT,
    REVIEW_USER_PROMPT,
    WRITE_SYSTEM_PROMPT,
    WRITE_USER_PROMPT,
)
from nodes.resilience import model_retry_for
from nodes.state import RunAccounting, RunClockChannel, RunOutcome, pause_credit, start_clock
from nodes.structured import StructuredOutputError, ask_structured
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

logger = logging.getLogger(__name__)

REVIEW_ACTIONS = ("approve", "edit", "retry", "stop")


class PipelineInput(TypedDict):
    """What a caller sends."""

    task: str
    """The request the pipeline works on."""
    data: NotRequired[dict[str, Any]]
    """Structured input for the stages (e.g. the ETL example's CSV text)."""


class PipelineOutput(RunOutcome, RunAccounting):
    """What a pipeline reports."""

    stage_outputs: NotRequired[dict[str, Any]]
    """Output of every completed stage, by stage name (plain JSON data)."""
    completed_stages: NotRequired[list[str]]
    """Stages that finished with a valid output, in order."""
    failed_stage: NotRequired[str | None]
    """The stage whose output was invalid; the run stopped there. None otherwise."""
    rejected_output: NotRequired[Any]
    """The invalid output of `failed_stage`, for the human who fixes the run."""


class PipelineState(PipelineInput, PipelineOutput, RunClockChannel):
    """Full pipeline state."""

    stage_inputs: NotRequired[dict[str, Any]]
    """Human overrides: a stage listed here gets this input instead of its input transform."""
    review_pending: NotRequired[str | None]
    """Stage whose output waits for human review (set when the context asks for one)."""


class ReviewAnswer(BaseModel):
    """A human's answer at the review gate (also accepted as a bare action string)."""

    action: Literal["approve", "edit", "retry", "stop"] = "approve"
    output: Any = None
    """The replacement output for `edit` (validated like the stage's own output)."""
    input: Any = None
    """For `retry`: the input to run the stage with (default: the same input again)."""
    reason: str | None = None
    """For `stop`: why, reported as the run's error."""


def input_from_text(text: str) -> dict[str, Any]:
    """The CLI's input for a pipeline: the text is the task."""
    return {"task": text}


def _plain_stage_outputs(state: PipelineState) -> dict[str, Any]:
    return dict(state.get("stage_outputs") or {})


def _make_stage_node(
    spec: StageSpec, previous: str | None, model: ModelOverride
) -> Callable[..., Any]:
    async def stage_node(
        state: PipelineState, config: RunnableConfig, runtime: Runtime[Context]
    ) -> dict[str, Any]:
        ctx = context_of(runtime)
        outputs = _plain_stage_outputs(state)
        stop = budget_stop(state, ctx)
        if stop:
            last = _last_output_as_text(outputs) if outputs else None
            stopped = {
                "failed_stage": spec.name,
                "rejected_output": None,
                **stopped_outcome(f"{stop} before stage {spec.name!r}", last),
            }
            return with_metrics(state, stopped, ctx, iterations=_stages_done)
        overrides = state.get("stage_inputs") or {}
        if spec.name in overrides:
            stage_input = overrides[spec.name]
        else:
            view = PipelineView(
                task=state["task"],
                data=state.get("data") or {},
                outputs=outputs,
                previous=outputs.get(previous) if previous else state["task"],
            )
            stage_input = (spec.input_transform or default_input)(view)
        writer = get_stream_writer()
        writer({"event": "stage_started", "stage": spec.name})
        # A stage's sub-agents get what is left of the budget; only the pipeline's own answer
        # passes the output guardrail.
        child = dataclasses.replace(child_context(ctx, state), output_guardrail="off")
        stage_ctx = StageContext(
            stage=spec.name, context=child, model=model, config=config, store=runtime.store
        )
        try:
            result = await run_stage(spec, stage_input, stage_ctx)
            problem = validate_output(spec, result.output)
        except (StageValidationError, StructuredOutputError) as exc:
            # A model that cannot produce the stage's schema is an invalid output too.
            result, problem = StageResult(output=None), str(exc)
        accounting: dict[str, Any] = {"usage": result.usage, "tool_results": result.tool_results}
        if problem:
            logger.info("pipeline stopped at stage %s: invalid output", spec.name)
            writer({"event": "stage_failed", "stage": spec.name, "error": problem})
            failed = {
                **accounting,
                "failed_stage": spec.name,
                "rejected_output": result.output,
                "error": f"stage {spec.name!r} produced an invalid output: {problem}",
                "success": False,
                "final_answer": None,
            }
            # The failed stage stays the last node run, so `update_state` on the thread (as
            # this stage) resumes here; it reports the run's metrics itself.
            return with_metrics(state, failed, ctx, iterations=_stages_done)
        writer({"event": "stage_completed", "stage": spec.name})
        completed = [s for s in state.get("completed_stages") or [] if s != spec.name]
        return {
            **accounting,
            "stage_outputs": {**outputs, spec.name: result.output},
            "completed_stages": [*completed, spec.name],
            "failed_stage": None,
            "rejected_output": None,
            "error": None,
            "success": None,
            "review_pending": spec.name
            if review_wanted(spec.name, ctx.pipeline_review_after)
            else None,
        }

    stage_node.__name__ = spec.name
    return stage_node


def _stages_done(state: Mapping[str, Any]) -> int:
    return len(state.get("completed_stages") or [])


async def _prepare(state: PipelineState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Start a fresh run for a new request: clear the previous run's stage bookkeeping.

    Reads nothing but the input; writes the stage keys, the outcome and `run_clock`.
    """
    await load_price_table(context_of(runtime))
    return {
        **start_clock(state),
        "stage_outputs": {},
        "completed_stages": [],
        "stage_inputs": {},
        "failed_stage": None,
        "rejected_output": None,
        "review_pending": None,
        "final_answer": None,
        "success": None,
        "error": None,
    }


def _coerce_review(answer: Any) -> ReviewAnswer:
    if isinstance(answer, str):
        answer = {"action": answer.strip().lower()}
    elif answer is True:
        answer = {"action": "approve"}
    if not isinstance(answer, Mapping) or answer.get("action", "approve") not in REVIEW_ACTIONS:
        raise ReviewAnswerError(
            f"review answer {answer!r} not understood; expected one of "
            f"{', '.join(map(repr, REVIEW_ACTIONS))} or a mapping with 'action' "
            "(and 'output' for edit, 'input' for retry, 'reason' for stop)"
        )
    return ReviewAnswer.model_validate(dict(answer))


def _make_review_gate(stages: Sequence[StageSpec]) -> Callable[..., Any]:
    by_name = {s.name: s for s in stages}

    async def review_gate(state: PipelineState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Pause for a human verdict on the stage that just finished.

        Reads `review_pending`, `stage_outputs`; writes them (edit/retry) or the outcome (stop).
        """
        if not state.get("review_pending"):
            return {}
        # The reviewer's time does not count against the run's wall-time budget.
        update = {**await decide(state), **pause_credit(runtime)}
        if update.get("success") is False:  # stopped or an invalid edit: the run ends here
            return with_metrics(state, update, context_of(runtime), iterations=_stages_done)
        return update

    async def decide(state: PipelineState) -> dict[str, Any]:
        stage = state.get("review_pending")
        if not stage:
            return {}
        outputs = _plain_stage_outputs(state)
        answer = _coerce_review(
            interrupt(
                {
                    "kind": "pipeline_review",
                    "stage": stage,
                    "output": outputs.get(stage),
                    "actions": list(REVIEW_ACTIONS),
                    "hint": "answer 'approve', {'action': 'edit', 'output': ...}, "
                    "{'action': 'retry', 'input': ...} or {'action': 'stop', 'reason': ...}",
                }
            )
        )
        if answer.action == "approve":
            return {"review_pending": None}
        if answer.action == "stop":
            reason = answer.reason or "no reason given"
            return {
                "review_pending": None,
                "success": False,
                "error": f"stopped by the reviewer after stage {stage!r}: {reason}",
            }
        if answer.action == "retry":
            inputs = dict(state.get("stage_inputs") or {})
            if answer.input is not None:
                inputs[stage] = answer.input
            return {
                "review_pending": None,
                "stage_inputs": inputs,
                "stage_outputs": {k: v for k, v in outputs.items() if k != stage},
                "completed_stages": [s for s in state.get("completed_stages") or [] if s != stage],
            }
        problem = validate_output(by_name[stage], answer.output)
        if problem:
            return {
                "review_pending": None,
                "failed_stage": stage,
                "rejected_output": answer.output,
                "success": False,
                "error": f"the reviewer's edit of stage {stage!r} is invalid: {problem}",
            }
        return {"review_pending": None, "stage_outputs": {**outputs, stage: answer.output}}

    return review_gate


def _make_finish(answer_from: Callable[[Mapping[str, Any]], str]) -> Callable[..., Any]:
    async def finish(state: PipelineState) -> dict[str, Any]:
        """Report the pipeline's answer. Reads `stage_outputs`; writes the outcome."""
        return {
            "final_answer": answer_from(_plain_stage_outputs(state)),
            "success": True,
            "error": None,
        }

    return finish


def _last_output_as_text(outputs: Mapping[str, Any]) -> str:
    last = list(outputs.values())[-1] if outputs else None
    return last if isinstance(last, str) else json.dumps(last, ensure_ascii=False, indent=2)


def build_pipeline(
    stages: Sequence[StageSpec],
    *,
    name: str = "pipeline",
    model: ModelOverride = None,
    answer_from: Callable[[Mapping[str, Any]], str] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[PipelineState, Context, PipelineInput, PipelineOutput]:
    """Compile a pipeline from stage specs, run in the given order.

    Args:
        stages: The stages, in order (unique lower snake_case names).
        name: The compiled graph's name (its graph id when served).
        model: Passed to every function stage as `StageContext.model`.
        answer_from: Builds `final_answer` from `stage_outputs` (default: the last output,
            as text).
        checkpointer: Saver for threads; needed to resume after a failed stage.
        store: Long-term store; function stages see it as `StageContext.store`.

    Raises:
        PipelineSpecError: when the stage list is empty or has duplicate names.
    """
    stages = list(stages)
    check_stage_list(stages)
    names = [s.name for s in stages]

    def next_stage(state: PipelineState) -> str:
        if state.get("failed_stage"):
            return END
        done = set(state.get("completed_stages") or [])
        return next((n for n in names if n not in done), "finish")

    def after_stage(state: PipelineState) -> str:
        if state.get("review_pending") and not state.get("failed_stage"):
            return "review_gate"
        return next_stage(state)

    def after_review(state: PipelineState) -> str:
        return END if state.get("success") is False else next_stage(state)

    builder = StateGraph(
        PipelineState,
        context_schema=Context,
        input_schema=PipelineInput,
        output_schema=PipelineOutput,
    )
    builder.add_node("prepare", _prepare)
    previous: str | None = None
    for spec in stages:
        builder.add_node(
            spec.name,
            _make_stage_node(spec, previous, model),
            # No node timeout: a stage may be user code of any duration.
            retry_policy=model_retry_for(spec.run),
        )
        previous = spec.name
    builder.add_node("review_gate", _make_review_gate(stages))
    builder.add_node("finish", _make_finish(answer_from or _last_output_as_text))
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", next_stage, [names[0]])
    following = [*names[1:], "finish"]
    for spec, after in zip(stages, following, strict=True):
        # The self edge is the resume path: after a fix the failed stage runs again.
        builder.add_conditional_edges(
            spec.name, after_stage, [spec.name, after, "review_gate", END]
        )
    # A review may approve (next stage), ask for a retry (same stage) or stop.
    builder.add_conditional_edges("review_gate", after_review, [*names, "finish", END])
    builder.add_node("finish_run", make_finish_run(model=model, iterations=_stages_done))
    builder.add_edge("finish", "finish_run")
    builder.add_edge("finish_run", END)
    return traced(
        builder.compile(name=name, checkpointer=checkpointer, store=store), pattern="pipeline"
    )


async def resume_pipeline(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    config: RunnableConfig,
    *,
    stage_inputs: Mapping[str, Any] | None = None,
    updates: Mapping[str, Any] | None = None,
    context: Context | None = None,
) -> dict[str, Any]:
    """Resume a pipeline that stopped at a failed stage, after fixing its input.

    Equivalent to `graph.aupdate_state(config, {..., "failed_stage": None}, as_node=<failed
    stage>)` followed by `graph.ainvoke(None, config)`: the failed stage runs again with the
    fixed input and the earlier stages are not repeated.

    Args:
        graph: A pipeline compiled with a checkpointer.
        config: The thread's config (`{"configurable": {"thread_id": ...}}`).
        stage_inputs: Inputs to use instead of the stages' input transforms, by stage name.
        updates: Any other state keys to change (e.g. a corrected earlier `stage_outputs`).
        context: The run settings for the resumed part.

    Raises:
        ValueError: when the thread has no failed stage to resume from.
    """
    snapshot = await graph.aget_state(config)
    failed = snapshot.values.get("failed_stage")
    if not failed:
        raise ValueError(
            f"thread {config.get('configurable', {}).get('thread_id')!r} has no failed stage "
            f"to resume from (completed: {snapshot.values.get('completed_stages')!r})"
        )
    values: dict[str, Any] = dict(updates or {})
    if stage_inputs:
        values["stage_inputs"] = {**(snapshot.values.get("stage_inputs") or {}), **stage_inputs}
    values.update({"failed_stage": None, "rejected_output": None, "error": None, "success": None})
    await graph.aupdate_state(config, values, as_node=failed)
    result: dict[str, Any] = await graph.ainvoke(None, config, context=context)
    return result


# --- the ready-made research pipeline -------------------------------------------------------


class Analysis(BaseModel):
    """Key findings extracted from research notes."""

    findings: list[str] = Field(description="Key findings that answer the task, one per item.")
    gaps: list[str] = Field(
        default_factory=list, description="What the notes leave unknown or uncertain."
    )


class Report(BaseModel):
    """The written report."""

    title: str = Field(description="A short title.")
    body: str = Field(description="The report text, in Markdown.")


class ReportReview(BaseModel):
    """The reviewer's verdict on a report."""

    approved: bool = Field(description="True only if the report can be sent as is.")
    issues: list[str] = Field(
        default_factory=list, description="Concrete problems to fix; empty when approved."
    )


def _research_input(view: PipelineView) -> dict[str, Any]:
    return {"messages": [HumanMessage(RESEARCH_TASK_PROMPT.format(task=view.task))]}


def _research_output(result: Any) -> dict[str, Any]:
    return {
        "notes": result.get("final_answer") or "",
        "success": bool(result.get("success")),
        "error": result.get("error"),
    }


def _research_ok(output: Any) -> str | None:
    if not output.get("success"):
        return f"the research agent did not finish: {output.get('error')!r}"
    return require_non_empty("notes")(output)


def _analyse_input(view: PipelineView) -> dict[str, Any]:
    return {"task": view.task, "notes": view.outputs["research"]["notes"]}


def _write_input(view: PipelineView) -> dict[str, Any]:
    return {"task": view.task, **view.outputs["analyse"]}


def _review_input(view: PipelineView) -> dict[str, Any]:
    return {
        "task": view.task,
        "findings": view.outputs["analyse"]["findings"],
        "report": view.outputs["write"],
    }


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "(none)"


async def _analyse(stage_input: Mapping[str, Any], stage: StageContext) -> StageResult:
    answer = await ask_structured(
        Analysis,
        [
            SystemMessage(ANALYSE_SYSTEM_PROMPT),
            HumanMessage(
                ANALYSE_USER_PROMPT.format(task=stage_input["task"], notes=stage_input["notes"])
            ),
        ],
        role="agent",
        context=stage.context,
        model=stage.model,
    )
    return StageResult(output=answer.value, usage=answer.usage)


async def _write(stage_input: Mapping[str, Any], stage: StageContext) -> StageResult:
    answer = await ask_structured(
        Report,
        [
            SystemMessage(WRITE_SYSTEM_PROMPT),
            HumanMessage(
                WRITE_USER_PROMPT.format(
                    task=stage_input["task"],
                    findings=_bullets(stage_input.get("findings") or []),
                    gaps=_bullets(stage_input.get("gaps") or []),
                )
            ),
        ],
        role="agent",
        context=stage.context,
        model=stage.model,
    )
    return StageResult(output=answer.value, usage=answer.usage)


async def _review(stage_input: Mapping[str, Any], stage: StageContext) -> StageResult:
    report = stage_input["report"]
    answer = await ask_structured(
        ReportReview,
        [
            SystemMessage(REVIEW_SYSTEM_PROMPT),
            HumanMessage(
                REVIEW_USER_PROMPT.format(
                    task=stage_input["task"],
                    findings=_bullets(stage_input.get("findings") or []),
                    report=f"# {report['title']}\n\n{report['body']}",
                )
            ),
        ],
        role="judge",
        context=stage.context,
        model=stage.model,
    )
    return StageResult(output=answer.value, usage=answer.usage)


def _review_approved(output: Any) -> str | None:
    if output.get("approved"):
        return None
    return f"the reviewer rejected the report: {'; '.join(output.get('issues') or []) or '?'}"


def _report_answer(outputs: Mapping[str, Any]) -> str:
    report = outputs["write"]
    return f"# {report['title']}\n\n{report['body']}"


def research_stages(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    policy: PolicyRef | None = None,
) -> list[StageSpec]:
    """The research pipeline's stages: research → analyse → write → review.

    The research stage's agent is named `research_agent` (its `Context.agent_policies` key).
    """
    agent = build_agent(
        tools=tools,
        model=model,
        role="worker",
        system_prompt=RESEARCH_SYSTEM_PROMPT,
        name="research_agent",
        policy=policy,
    )
    return [
        StageSpec(
            "research",
            agent,
            input_transform=_research_input,
            output_transform=_research_output,
            output_validator=_research_ok,
            description="A ReAct sub-agent collects facts with its tools.",
        ),
        StageSpec(
            "analyse",
            _analyse,
            input_transform=_analyse_input,
            output_validator=all_of(require_model(Analysis), require_non_empty("findings")),
            description="Extract the key findings and open questions.",
        ),
        StageSpec(
            "write",
            _write,
            input_transform=_write_input,
            output_validator=all_of(require_model(Report), require_non_empty("title", "body")),
            description="Write the report from the findings.",
        ),
        StageSpec(
            "review",
            _review,
            input_transform=_review_input,
            output_validator=all_of(require_model(ReportReview), _review_approved),
            description="Approve the report or list what to fix.",
        ),
    ]


def build_graph(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[PipelineState, Context, PipelineInput, PipelineOutput]:
    """Compile the research pipeline (research → analyse → write → review).

    Args:
        model: Chat model object or id (or role→model mapping) for every stage.
        tools: Tools of the research sub-agent (default: the built-in starter tools).
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
        policy: Tool policy of the research sub-agent; default per run:
            `Context.agent_policies["research_agent"]`, else `Context.policy`.
    """
    return build_pipeline(
        research_stages(model=model, tools=tools, policy=policy),
        name="pipeline",
        model=model,
        answer_from=_report_answer,
        checkpointer=checkpointer,
        store=store,
    )


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
