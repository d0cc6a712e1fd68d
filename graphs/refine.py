"""Critic-refine: draft, score it with a structured critique, revise until it is good enough.

generate → critique → (average ≥ `Context.refine_threshold`: done) | (drafts =
`Context.refine_max_iterations`: stop with the best draft, success=false) | refine → critique …

The critic uses the `critic` role's model (`Context.judge_model`), the writer the default model.
Model calls: 2 per draft (write + critique): 2 when the first draft passes, at most
2 · refine_max_iterations (6 with the defaults).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, NotRequired

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command
from typing_extensions import TypedDict

from nodes.context import Context, context_of
from nodes.critique import Critique, ask_text, best_draft_index
from nodes.finish import budget_stop, load_price_table, make_finish_run
from nodes.memory_nodes import recall_for  # memory: the user's memories, when memory_enabled
from nodes.model import ModelOverride
from nodes.prompts.reflection import (
    CRITIC_SYSTEM_PROMPT,
    CRITIQUE_USER_PROMPT,
    GENERATE_SYSTEM_PROMPT,
    GENERATE_USER_PROMPT,
    REFINE_SYSTEM_PROMPT,
    REFINE_USER_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import RunAccounting, RunOutcome, RunTracking, add_usage, start_clock
from nodes.structured import ask_structured
from nodes.tracing import traced

logger = logging.getLogger(__name__)


class DraftRecord(TypedDict):
    """One draft and its critique."""

    iteration: int
    """1 for the first draft, +1 per refinement."""
    text: str
    scores: NotRequired[dict[str, int] | None]
    """The critic's 1-5 score per criterion (None until critiqued)."""
    average: NotRequired[float | None]
    suggestions: NotRequired[list[str]]


class RefineInput(TypedDict):
    """What a caller sends."""

    task: str
    """What to write (a question, a function to implement, a text to produce)."""


class RefineOutput(RunOutcome, RunAccounting):
    """What critic-refine reports."""

    drafts: NotRequired[list[DraftRecord]]
    """Every draft with its scores and suggestions, in order."""
    best_score: NotRequired[float | None]
    """Average score of the draft returned as `final_answer`."""
    iterations: NotRequired[int]
    """Drafts written."""


class RefineState(RefineInput, RefineOutput, RunTracking):
    """Full critic-refine state."""


def input_from_text(text: str) -> dict[str, Any]:
    """The CLI's input: the text is the task."""
    return {"task": text}


def _settings(
    ctx: Context, threshold: float | None, max_iterations: int | None
) -> tuple[float, int]:
    return (
        ctx.refine_threshold if threshold is None else threshold,
        max(1, ctx.refine_max_iterations if max_iterations is None else max_iterations),
    )


def build_graph(
    *,
    model: ModelOverride = None,
    threshold: float | None = None,
    max_iterations: int | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[RefineState, Context, RefineInput, RefineOutput]:
    """Compile the critic-refine graph.

    Args:
        model: Chat model object or id, or a role→model mapping (`{"critic": ..., "agent":
            ...}`) overriding the context's models.
        threshold: Average score that ends the loop; overrides `Context.refine_threshold`.
        max_iterations: Most drafts; overrides `Context.refine_max_iterations`.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
    """

    async def generate(state: RefineState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Write the first draft (and start the run's clock).

        Reads `task`; writes `drafts`, `iterations`, `usage`, `run_clock`.
        """
        started = time.time()
        await load_price_table(context_of(runtime))
        # memory: the first draft already knows the user's preferences (memory_enabled).
        memory = await recall_for(state["task"], context_of(runtime), runtime.store)
        text, usage = await ask_text(
            [
                SystemMessage(GENERATE_SYSTEM_PROMPT + memory.text),
                HumanMessage(GENERATE_USER_PROMPT.format(task=state["task"])),
            ],
            role="agent",
            context=context_of(runtime),
            model=model,
        )
        return {
            **start_clock(state, now=started),
            "stop_reason": None,
            "drafts": [DraftRecord(iteration=1, text=text)],
            "iterations": 1,
            "usage": usage,
            **memory.update,
        }

    async def critique(
        state: RefineState, runtime: Runtime[Context]
    ) -> Command[Literal["refine", "finish"]]:
        """Score the latest draft and decide: done, give up, or refine.

        Reads `task`, `drafts`; writes `drafts` (scores of the latest) and `usage`.
        """
        ctx = context_of(runtime)
        limit_score, limit_drafts = _settings(ctx, threshold, max_iterations)
        stop = budget_stop(state, ctx)
        if stop:
            return Command(goto="finish", update={"stop_reason": stop})
        drafts = list(state["drafts"])
        latest = drafts[-1]
        answer = await ask_structured(
            Critique,
            [
                SystemMessage(CRITIC_SYSTEM_PROMPT),
                HumanMessage(CRITIQUE_USER_PROMPT.format(task=state["task"], draft=latest["text"])),
            ],
            role="critic",
            context=ctx,
            model=model,
        )
        verdict = answer.value
        drafts[-1] = DraftRecord(
            iteration=latest["iteration"],
            text=latest["text"],
            scores=verdict.scores,
            average=verdict.average,
            suggestions=list(verdict.suggestions),
        )
        get_stream_writer()(
            {"event": "critique", "iteration": latest["iteration"], "average": verdict.average}
        )
        done = verdict.average >= limit_score or latest["iteration"] >= limit_drafts
        update: dict[str, Any] = {"drafts": drafts, "usage": answer.usage}
        if not done:
            # Budgets are checked before the revision too, with this critique's usage counted.
            spent = {**state, "usage": add_usage(state.get("usage"), answer.usage)}
            update["stop_reason"] = budget_stop(spent, ctx)
        return Command(
            goto="finish" if done or update.get("stop_reason") else "refine", update=update
        )

    async def refine(state: RefineState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Revise the latest draft with the critique's suggestions.

        Reads `task`, `drafts`; writes `drafts`, `iterations`, `usage`.
        """
        latest = state["drafts"][-1]
        scores = ", ".join(f"{k}={v}" for k, v in (latest.get("scores") or {}).items())
        suggestions = "\n".join(f"- {s}" for s in latest.get("suggestions") or []) or "(none)"
        text, usage = await ask_text(
            [
                SystemMessage(REFINE_SYSTEM_PROMPT),
                HumanMessage(
                    REFINE_USER_PROMPT.format(
                        task=state["task"],
                        draft=latest["text"],
                        scores=scores,
                        suggestions=suggestions,
                    )
                ),
            ],
            role="agent",
            context=context_of(runtime),
            model=model,
        )
        iteration = latest["iteration"] + 1
        return {
            "drafts": [*state["drafts"], DraftRecord(iteration=iteration, text=text)],
            "iterations": iteration,
            "usage": usage,
        }

    async def finish(state: RefineState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Return the best draft; success when it reached the threshold.

        Reads `drafts`; writes `final_answer`, `success`, `error`, `best_score`.
        """
        limit_score, _ = _settings(context_of(runtime), threshold, max_iterations)
        drafts = state["drafts"]
        best = drafts[best_draft_index([d.get("average") for d in drafts]) or 0]
        score = best.get("average")
        if state.get("stop_reason"):
            return {
                "final_answer": best["text"],
                "success": False,
                "error": f"{state['stop_reason']}; returning the best draft so far "
                f"(iteration {best['iteration']}, average {score})",
                "best_score": score,
            }
        if score is not None and score >= limit_score:
            return {
                "final_answer": best["text"],
                "success": True,
                "error": None,
                "best_score": score,
            }
        logger.info("critic-refine stopped after %d drafts below the threshold", len(drafts))
        return {
            "final_answer": best["text"],
            "success": False,
            "error": (
                f"quality threshold {limit_score} not reached after {len(drafts)} draft(s); "
                f"returning the best draft (iteration {best['iteration']}, average {score})"
            ),
            "best_score": score,
        }

    builder = StateGraph(
        RefineState, context_schema=Context, input_schema=RefineInput, output_schema=RefineOutput
    )
    builder.add_node("generate", generate, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("critique", critique, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("refine", refine, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_node("finish", finish)
    builder.add_node("finish_run", make_finish_run(model=model))
    builder.add_edge(START, "generate")
    builder.add_edge("generate", "critique")
    builder.add_edge("refine", "critique")
    builder.add_edge("finish", "finish_run")
    builder.add_edge("finish_run", END)
    return traced(
        builder.compile(name="refine", checkpointer=checkpointer, store=store), pattern="refine"
    )


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
