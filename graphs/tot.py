"""Tree of thoughts: breadth-limited search over reasoning steps, scored by the model.

From the problem (the root), each frontier node is expanded into k candidate thoughts (one
structured call per frontier node, all frontier nodes concurrently via `Send`); every candidate
is scored 0-10 by a structured value judgment (one call each, concurrently); the best b of the
level stay in the beam and are expanded next. The search ends at depth d, or as soon as a
thought scores at least `Context.tot_score_threshold`; then one call solves the problem along
the best path. The whole search tree (id, parent, thought, score, depth, kept) is in state.

Model calls, with k candidates, beam b and depth d (no early stop, the model proposing k
thoughts every time): (k + 1)·(1 + b·(d − 1)) + 1, i.e. 31 with the defaults k=5, b=2, d=3.
A threshold hit at depth j stops after (k + 1)·(1 + b·(j − 1)) + 1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NotRequired, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command, Overwrite, Send
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from nodes.context import Context, context_of
from nodes.finish import budget_stop, load_price_table, make_finish_run, stopped_outcome
from nodes.memory_nodes import recall_for  # memory: the user's memories, when memory_enabled
from nodes.model import ModelOverride
from nodes.prompts.tot import (
    TOT_EVALUATE_PROMPT,
    TOT_EXPAND_PROMPT,
    TOT_SOLVE_PROMPT,
    TOT_STEP_TEMPLATE,
    TOT_SYSTEM_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY
from nodes.state import RunAccounting, RunClockChannel, RunOutcome, start_clock
from nodes.structured import ask_structured
from nodes.thoughts import (
    ROOT_ID,
    ThoughtNode,
    best_node,
    child_id,
    level,
    merge_tree_nodes,
    path_to,
    select_beam,
)
from nodes.tracing import traced

logger = logging.getLogger(__name__)


class SearchSettingsError(ValueError):
    """The search cannot run with these settings (k, b or d below 1)."""


# --- structured outputs -------------------------------------------------------------------


class ThoughtProposals(BaseModel):
    """Candidate next steps for a partial solution."""

    thoughts: list[str] = Field(
        min_length=1, description="Distinct candidate next steps, one concrete step each."
    )


class ThoughtValue(BaseModel):
    """A value judgment of one candidate step."""

    score: float = Field(ge=0.0, le=10.0, description="0 = dead end, 10 = certainly right.")
    reason: str = Field(description="Why this score.")


class Solution(BaseModel):
    """The final answer reached along the chosen path."""

    answer: str = Field(description="The final answer to the problem.")
    explanation: str = Field(description="How the chosen steps lead to it.")


# --- state -------------------------------------------------------------------------------


class ToTInput(TypedDict):
    """What a caller sends: the problem to solve."""

    problem: str
    """The problem; the root of the search tree."""


class ToTOutput(RunOutcome, RunAccounting):
    """What the search reports."""

    problem: str
    tree: NotRequired[Annotated[list[ThoughtNode], merge_tree_nodes]]
    """Every node of the search tree: id, parent, thought, depth, score, kept, reason."""
    best_path: NotRequired[list[str]]
    """The thoughts, root to leaf, the solution followed."""
    best_score: NotRequired[float | None]
    depth_reached: NotRequired[int]
    stop_reason: NotRequired[str]
    """`threshold` (a thought scored high enough), `max_depth`, or `budget` (a run limit;
    `error` says which)."""
    explanation: NotRequired[str]


class ToTState(ToTOutput, RunClockChannel):
    """Full state of the tree-of-thoughts graph."""


class ExpandTask(TypedDict):
    """`Send` payload: expand one frontier node."""

    problem: str
    node: ThoughtNode
    path: list[str]


class EvaluateTask(TypedDict):
    """`Send` payload: score one candidate thought."""

    problem: str
    node: ThoughtNode
    path: list[str]


# --- helpers -----------------------------------------------------------------------------


def render_path(thoughts: Sequence[str]) -> str:
    """Steps as prompt text."""
    if not thoughts:
        return "(no steps yet)"
    return "\n".join(
        TOT_STEP_TEMPLATE.format(index=i, thought=t) for i, t in enumerate(thoughts, 1)
    )


def _check_settings(ctx: Context) -> None:
    for name in ("tot_candidates", "tot_beam_width", "tot_max_depth"):
        value = getattr(ctx, name)
        if value < 1:
            raise SearchSettingsError(f"{name} must be >= 1, got {value!r}")


def _expand_sends(
    problem: str, tree: Sequence[ThoughtNode], frontier: Sequence[ThoughtNode]
) -> list[Send]:
    return [
        Send(
            "expand",
            ExpandTask(
                problem=problem,
                node=node,
                path=[n["thought"] for n in path_to(tree, node["id"])],
            ),
        )
        for node in frontier
    ]


# --- graph -------------------------------------------------------------------------------


def build_graph(
    *,
    model: ModelOverride = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[ToTState, Context, ToTInput, ToTOutput]:
    """Compile the tree-of-thoughts graph.

    Args:
        model: Chat model object or id (or role→model mapping: proposals and the solution use
            `worker`, scoring uses `judge`) used instead of the context's model settings.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
    """

    async def start_search(
        state: ToTState, runtime: Runtime[Context]
    ) -> Command[Literal["expand", "finish_run"]]:
        """Plant the root (the problem) and expand it.

        Reads `problem`; writes `tree` (reset), `depth_reached` and `run_clock`; a budget too
        small for one level and the solution ends the run at once.
        """
        ctx = context_of(runtime)
        _check_settings(ctx)
        root = ThoughtNode(
            id=ROOT_ID, parent=None, thought=state["problem"], depth=0, score=None, kept=True
        )
        clock = start_clock(state)
        await load_price_table(ctx)
        update: dict[str, Any] = {
            **clock,
            "tree": Overwrite([root]),
            "depth_reached": 0,
            "error": None,
        }
        stop = budget_stop({**state, **clock}, ctx, model_calls=_level_calls(ctx, 1) + 1)
        if stop:
            return Command(update={**update, **stopped_outcome(stop)}, goto="finish_run")
        return Command(update=update, goto=_expand_sends(state["problem"], [root], [root]))

    async def expand(task: ExpandTask, runtime: Runtime[Context]) -> Command[Literal["evaluate"]]:
        """Propose k candidate thoughts below one frontier node, then score each concurrently.

        Reads the `Send` payload; writes the new `tree` nodes and `usage`.
        """
        ctx = context_of(runtime)
        parent = task["node"]
        depth = parent["depth"] + 1
        # memory: parallel expansions recall without counting accesses (solve counts one).
        memory = await recall_for(task["problem"], ctx, runtime.store, touch=False)
        proposals = await ask_structured(
            ThoughtProposals,
            [
                SystemMessage(TOT_SYSTEM_PROMPT + memory.text),
                HumanMessage(
                    TOT_EXPAND_PROMPT.format(
                        problem=task["problem"],
                        path=render_path(task["path"]),
                        k=ctx.tot_candidates,
                        depth=depth,
                        max_depth=ctx.tot_max_depth,
                    )
                ),
            ],
            role="worker",
            context=ctx,
            model=model,
        )
        thoughts = proposals.value.thoughts[: ctx.tot_candidates]
        if len(thoughts) < ctx.tot_candidates:
            logger.info("expected %d thoughts, got %d", ctx.tot_candidates, len(thoughts))
        children = [
            ThoughtNode(
                id=child_id(parent["id"], i),
                parent=parent["id"],
                thought=thought,
                depth=depth,
                score=None,
                kept=False,
            )
            for i, thought in enumerate(thoughts)
        ]
        return Command(
            update={"tree": children, "usage": proposals.usage, **memory.update},
            goto=[
                Send("evaluate", EvaluateTask(problem=task["problem"], node=c, path=task["path"]))
                for c in children
            ],
        )

    async def evaluate(task: EvaluateTask, runtime: Runtime[Context]) -> dict[str, Any]:
        """Score one candidate thought (0-10) with a structured value judgment.

        Reads the `Send` payload; writes the scored `tree` node and `usage`.
        """
        node = task["node"]
        value = await ask_structured(
            ThoughtValue,
            [
                SystemMessage(TOT_SYSTEM_PROMPT),
                HumanMessage(
                    TOT_EVALUATE_PROMPT.format(
                        problem=task["problem"],
                        path=render_path(task["path"]),
                        thought=node["thought"],
                    )
                ),
            ],
            role="judge",
            context=context_of(runtime),
            model=model,
        )
        scored: ThoughtNode = {**node, "score": value.value.score, "reason": value.value.reason}
        return {"tree": [scored], "usage": value.usage}

    async def select(
        state: ToTState, runtime: Runtime[Context]
    ) -> Command[Literal["expand", "solve"]]:
        """Keep the best b thoughts of the newest level; stop on a high score or at depth d.

        Reads `tree`; writes `tree` (kept flags), `depth_reached`, `stop_reason`.
        """
        ctx = context_of(runtime)
        tree = state.get("tree", [])
        depth = max(n["depth"] for n in tree)
        candidates = level(tree, depth)
        beam = select_beam(candidates, ctx.tot_beam_width)
        kept_ids = {n["id"] for n in beam}
        marked: list[ThoughtNode] = [{**n, "kept": n["id"] in kept_ids} for n in candidates]
        top = beam[0]["score"] or 0.0
        runtime.stream_writer(
            {"event": "tot_level", "depth": depth, "kept": sorted(kept_ids), "best_score": top}
        )
        update: dict[str, Any] = {"tree": marked, "depth_reached": depth}
        if top >= ctx.tot_score_threshold:
            logger.info(
                "thought %s scored %.1f >= %.1f: stopping",
                beam[0]["id"],
                top,
                ctx.tot_score_threshold,
            )
            return Command(update={**update, "stop_reason": "threshold"}, goto="solve")
        if depth >= ctx.tot_max_depth:
            return Command(update={**update, "stop_reason": "max_depth"}, goto="solve")
        merged = merge_tree_nodes(tree, marked)
        kept = [n for n in marked if n["kept"]]
        # The next level must fit the budget with the solving call still to come.
        stop = budget_stop(state, ctx, model_calls=_level_calls(ctx, len(kept)) + 1)
        if stop:
            return Command(update={**update, "stop_reason": "budget", "error": stop}, goto="solve")
        return Command(update=update, goto=_expand_sends(state["problem"], merged, kept))

    async def solve(state: ToTState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Solve the problem along the best path found.

        Reads `tree`; writes `best_path`, `best_score`, `final_answer`, `explanation`,
        `success`, `error`, `usage`.
        """
        tree = state.get("tree", [])
        deepest = max(n["depth"] for n in tree)
        leaf = best_node([n for n in level(tree, deepest) if n["kept"]])
        path = [n["thought"] for n in path_to(tree, leaf["id"])] if leaf else []
        budget_reason = state.get("error") if state.get("stop_reason") == "budget" else None
        if budget_stop(state, context_of(runtime), model_calls=1):
            return {
                "best_path": path,
                "best_score": leaf["score"] if leaf else None,
                **stopped_outcome(
                    budget_reason or "max_model_calls reached before solving",
                    render_path(path[1:]) if len(path) > 1 else None,
                ),
            }
        memory = await recall_for(state["problem"], context_of(runtime), runtime.store)  # memory
        solution = await ask_structured(
            Solution,
            [
                SystemMessage(TOT_SYSTEM_PROMPT + memory.text),
                HumanMessage(
                    TOT_SOLVE_PROMPT.format(problem=state["problem"], path=render_path(path))
                ),
            ],
            role="worker",
            context=context_of(runtime),
            model=model,
        )
        return {
            "best_path": path,
            "best_score": leaf["score"] if leaf else None,
            "final_answer": solution.value.answer,
            "explanation": solution.value.explanation,
            "success": budget_reason is None,
            "error": f"{budget_reason}; solved along the best path so far"
            if budget_reason
            else None,
            "usage": solution.usage,
            **memory.update,
        }

    builder = StateGraph(
        ToTState, context_schema=Context, input_schema=ToTInput, output_schema=ToTOutput
    )
    builder.add_node("start_search", start_search)
    # add_node's overloads only type state-shaped inputs; this node takes a Send payload.
    builder.add_node(
        "expand",
        cast(Any, expand),
        input_schema=ExpandTask,
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
    )
    # add_node's overloads only type state-shaped inputs; this node takes a Send payload.
    builder.add_node(
        "evaluate",
        cast(Any, evaluate),
        input_schema=EvaluateTask,
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
    )
    builder.add_node("select", select)
    builder.add_node("solve", solve, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_edge(START, "start_search")
    # All evaluations of one level are `Send`s of the same step: select runs once after them.
    builder.add_edge("evaluate", "select")
    builder.add_node(
        "finish_run",
        make_finish_run(model=model, iterations=lambda s: int(s.get("depth_reached") or 0)),
    )
    builder.add_edge("solve", "finish_run")
    builder.add_edge("finish_run", END)
    return traced(
        builder.compile(name="tot", checkpointer=checkpointer, store=store), pattern="tot"
    )


def _level_calls(ctx: Context, frontier: int) -> int:
    """Model calls one more level costs: one expansion and k scorings per frontier node."""
    return frontier * (1 + ctx.tot_candidates)


def input_from_text(text: str) -> dict[str, Any]:
    """`weft run tot "problem"` input."""
    return {"problem": text}


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()

__all__ = [
    "SearchSettingsError",
    "Solution",
    "ThoughtProposals",
    "ThoughtValue",
    "ToTInput",
    "ToTOutput",
    "ToTState",
    "build_graph",
    "graph",
    "input_from_text",
]
