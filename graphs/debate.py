"""Debate and consensus: several debaters answer, revise against each other, and a judge rules.

Debate mode (default): N debaters with distinct personas answer independently (round 0), then
for up to R rounds each one reads the others' latest positions and revises; all debaters of a
round run concurrently (`Send`). Between rounds the agreement of the latest positions is
measured, by mean pairwise cosine similarity of their embeddings or by a structured judge call;
at `Context.debate_agreement_threshold` the debate stops early. A judge then returns a
structured verdict (decision, rationale, points of disagreement, confidence).

Vote mode: N independent answers, each with a model-normalised short form; a majority vote on
those gives the answer and an agreement score, and the judge is called only to break a tie.

Model calls, with n debaters and r rounds:
- debate, embedding or no convergence check: n·(r+1) + 1 (fewer on early stop: n·(k+1) + 1
  when the positions agree after round k); embeddings are extra, non-chat calls.
- debate, judge convergence check: n·(r+1) + 1 + r (one check between consecutive rounds).
- vote: n, plus 1 when the vote is tied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, cast

from langchain_core.embeddings import Embeddings
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Command, Overwrite, Send
from pydantic import BaseModel, Field, create_model
from typing_extensions import TypedDict

from nodes.context import Context, context_of
from nodes.debating import canonical_answer, mean_pairwise_similarity, tally_votes
from nodes.finish import budget_stop, load_price_table, make_finish_run, stopped_outcome
from nodes.memory_nodes import recall_for  # memory: the user's memories, when memory_enabled
from nodes.model import ModelConfigurationError, ModelOverride, ModelSpec, parse_model_id
from nodes.prompts.debate import (
    CONVERGENCE_CHECK_PROMPT,
    DEBATE_OPENING_PROMPT,
    DEBATE_REVISION_PROMPT,
    DEBATER_SYSTEM_PROMPT,
    JUDGE_SYSTEM_PROMPT,
    JUDGE_VERDICT_PROMPT,
    POSITION_TEMPLATE,
    TIE_BREAK_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY, on_model_failure
from nodes.state import RunAccounting, RunOutcome, RunTracking, add_usage, start_clock
from nodes.structured import ask_structured
from nodes.tracing import traced

logger = logging.getLogger(__name__)

MIN_DEBATERS = 2


class DebateSettingsError(ValueError):
    """The debate cannot run with these settings (too few debaters, unknown mode, ...)."""


@dataclass(frozen=True)
class DebaterSpec:
    """One debater: a name, the stance it argues from and, optionally, its own model.

    Attributes:
        name: Shown in prompts and in `positions` (unique within a debate).
        persona: The stance or expertise the debater argues from.
        model: A chat model object or id for this debater only; None uses the graph's model
            (or the context's `worker_model`/`model`).
    """

    name: str
    persona: str
    model: ModelSpec | None = None


DEFAULT_DEBATERS: tuple[DebaterSpec, ...] = (
    DebaterSpec("Advocate", "you build the strongest case for the most direct answer."),
    DebaterSpec("Skeptic", "you hunt for flaws, hidden assumptions and counter-examples."),
    DebaterSpec("Pragmatist", "you weigh practical trade-offs and what works in reality."),
    DebaterSpec("Analyst", "you reason from first principles, definitions and numbers."),
    DebaterSpec("Contrarian", "you seriously consider the unpopular alternative answer."),
)


# --- structured outputs -------------------------------------------------------------------


class DebaterReply(BaseModel):
    """One debater's position in one round."""

    answer: str = Field(description="Your full answer to the question.")
    normalized_answer: str = Field(
        description="The bare answer in as few words as possible, lowercase, no punctuation "
        "(e.g. 'yes', '42', 'paris'); equal answers must be written identically."
    )
    reasoning: str = Field(description="Why this answer; address the other debaters' points.")
    confidence: float = Field(ge=0.0, le=1.0, description="Your confidence in the answer, 0-1.")


class Verdict(BaseModel):
    """The judge's ruling on the debate."""

    decision: str = Field(description="The final answer to the question.")
    rationale: str = Field(description="Why this decision, weighing the debaters' arguments.")
    points_of_disagreement: list[str] = Field(
        description="Points on which the debaters still disagree (empty when none)."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in the decision, 0-1.")


class ConvergenceCheck(BaseModel):
    """How far the debaters' latest positions agree."""

    agreement: float = Field(
        ge=0.0, le=1.0, description="0 = opposed answers, 1 = the same answer in any wording."
    )
    reason: str = Field(description="What they agree and disagree on.")


def tie_break_schema(candidates: Sequence[str]) -> type[BaseModel]:
    """A `TieBreak` schema whose `choice` can only be one of the tied answers."""
    choice_type: Any = Literal[tuple(candidates)]
    return create_model(
        "TieBreak",
        __doc__="The judge's choice between tied answers.",
        choice=(choice_type, Field(description="Exactly one of the tied answers.")),
        rationale=(str, Field(description="Why this answer wins.")),
    )


# --- state -------------------------------------------------------------------------------


class DebaterProfile(TypedDict):
    """A debater as shown in state (models stay out of state)."""

    name: str
    persona: str


class Position(TypedDict):
    """One debater's position in one round."""

    debater: str
    round: int
    answer: str
    normalized_answer: str
    reasoning: str
    confidence: float


class RoundAssessment(TypedDict):
    """The agreement measured after a round."""

    round: int
    agreement: float
    method: str
    """`embedding` (mean pairwise cosine similarity) or `judge`."""
    reason: str


class VerdictRecord(TypedDict):
    """The judge's structured verdict."""

    decision: str
    rationale: str
    points_of_disagreement: list[str]
    confidence: float


class VoteRecord(TypedDict):
    """The outcome of vote mode."""

    counts: dict[str, int]
    """Votes per canonical normalised answer."""
    winners: list[str]
    agreement: float
    """Share of voters behind the winning answer, 0-1."""
    tie: bool
    decided_by: str
    """`majority`, or `judge` when the judge broke a tie."""
    rationale: NotRequired[str]


def add_positions(current: list[Position] | None, update: list[Position] | None) -> list[Position]:
    """Append the positions of concurrently running debaters."""
    return [*(current or []), *(update or [])]


def add_assessments(
    current: list[RoundAssessment] | None, update: list[RoundAssessment] | None
) -> list[RoundAssessment]:
    """Append one agreement measurement per assessed round."""
    return [*(current or []), *(update or [])]


class DebateInput(TypedDict):
    """What a caller sends: the question to debate."""

    question: str
    """The question the debaters answer."""


class DebateOutput(RunOutcome, RunAccounting):
    """What the debate reports."""

    question: str
    mode: NotRequired[str]
    """`debate` or `vote`."""
    debaters: NotRequired[list[DebaterProfile]]
    positions: NotRequired[Annotated[list[Position], add_positions]]
    """Every position of every round, in arrival order."""
    assessments: NotRequired[Annotated[list[RoundAssessment], add_assessments]]
    """Agreement measured between rounds."""
    rounds_completed: NotRequired[int]
    """Rounds run, the opening round included."""
    converged: NotRequired[bool]
    """True when the debate stopped early because the positions agreed."""
    verdict: NotRequired[VerdictRecord | None]
    vote: NotRequired[VoteRecord | None]


class DebateState(DebateOutput, RunTracking):
    """Full state of the debate graph."""


class DebaterTask(TypedDict):
    """What one debater receives for one round (the `Send` payload)."""

    question: str
    debater: DebaterProfile
    round: int
    rounds: int
    own_position: Position | None
    other_positions: list[Position]


# --- helpers -----------------------------------------------------------------------------


def debaters_for(specs: Sequence[DebaterSpec] | None, count: int) -> list[DebaterSpec]:
    """The debaters of a run: the given specs, else the first `count` default personas.

    Raises:
        DebateSettingsError: fewer than two debaters, or duplicate names.
    """
    if specs is None:
        if count < MIN_DEBATERS:
            raise DebateSettingsError(f"debate_debaters must be >= {MIN_DEBATERS}, got {count!r}")
        specs = [
            DEFAULT_DEBATERS[i]
            if i < len(DEFAULT_DEBATERS)
            else DebaterSpec(f"Debater {i + 1}", "you reason independently and carefully.")
            for i in range(count)
        ]
    names = [spec.name for spec in specs]
    if len(names) < MIN_DEBATERS:
        raise DebateSettingsError(f"a debate needs >= {MIN_DEBATERS} debaters, got {len(names)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DebateSettingsError(f"debater names must be unique; repeated: {duplicates!r}")
    return list(specs)


def latest_positions(positions: Sequence[Position]) -> list[Position]:
    """The positions of the latest round, one per debater, in arrival order."""
    if not positions:
        return []
    last = max(p["round"] for p in positions)
    return [p for p in positions if p["round"] == last]


def render_positions(positions: Sequence[Position]) -> str:
    """Positions as prompt text."""
    return "\n\n".join(
        POSITION_TEMPLATE.format(
            debater=p["debater"],
            answer=p["answer"],
            reasoning=p["reasoning"],
            confidence=p["confidence"],
        )
        for p in positions
    )


def _round_tasks(
    question: str,
    debaters: Sequence[DebaterProfile],
    round_: int,
    rounds: int,
    previous: Sequence[Position],
) -> list[Send]:
    by_name = {p["debater"]: p for p in previous}
    return [
        Send(
            "debate_turn",
            DebaterTask(
                question=question,
                debater=debater,
                round=round_,
                rounds=rounds,
                own_position=by_name.get(debater["name"]),
                other_positions=[p for p in previous if p["debater"] != debater["name"]],
            ),
        )
        for debater in debaters
    ]


def _load_embeddings(model_id: str) -> Embeddings:
    """OpenAI-compatible embeddings for `model_id`, honouring OPENAI_BASE_URL like chat models."""
    _, name = parse_model_id(model_id)
    api_key = os.environ.get("OPENAI_API_KEY") or None
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    if api_key is None and base_url is None:
        raise ModelConfigurationError(
            f"No credentials for embedding model {model_id!r}: set OPENAI_API_KEY (and "
            "OPENAI_BASE_URL for another OpenAI-compatible server), or use "
            "debate_convergence='judge'."
        )
    from langchain_openai import OpenAIEmbeddings

    # check_embedding_ctx_length=False: the token-length check downloads a tiktoken vocabulary
    # and assumes OpenAI's tokenizer, which other OpenAI-compatible servers do not share.
    return OpenAIEmbeddings(
        model=name,
        base_url=base_url,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
    )


# --- graph -------------------------------------------------------------------------------


def build_graph(
    *,
    model: ModelOverride = None,
    debaters: Sequence[DebaterSpec] | None = None,
    embeddings: Embeddings | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[DebateState, Context, DebateInput, DebateOutput]:
    """Compile the debate graph.

    Args:
        model: Chat model object or id (or role→model mapping: debaters use `worker`, the judge
            `judge`) used instead of the context's model settings.
        debaters: Debater specs (name, persona, optional model); default: the first
            `Context.debate_debaters` of `DEFAULT_DEBATERS`.
        embeddings: Embeddings used for `debate_convergence='embedding'`; default: an
            OpenAI-compatible model named by `Context.debate_embedding_model`.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
    """
    if debaters is not None:
        debaters_for(debaters, len(debaters))
    debater_models: dict[str, ModelSpec | None] = {d.name: d.model for d in debaters or ()}

    def model_for_debater(name: str) -> ModelOverride:
        own = debater_models.get(name)
        return own if own is not None else model

    def embedder(ctx: Context) -> Embeddings:
        return (
            embeddings if embeddings is not None else _load_embeddings(ctx.debate_embedding_model)
        )

    async def open_debate(
        state: DebateState, runtime: Runtime[Context]
    ) -> Command[Literal["debate_turn", "finish_run"]]:
        """Pick the debaters and send the question to all of them at once (round 0).

        Reads `question`; writes `debaters`, `mode`, `run_clock` and resets the per-run
        artifacts; a budget too small for one round ends the run at once.
        """
        ctx = context_of(runtime)
        if ctx.debate_mode not in ("debate", "vote"):
            raise DebateSettingsError(
                f"debate_mode must be 'debate' or 'vote', got {ctx.debate_mode!r}"
            )
        if ctx.debate_convergence not in ("embedding", "judge", "off"):
            raise DebateSettingsError(
                "debate_convergence must be 'embedding', 'judge' or 'off', got "
                f"{ctx.debate_convergence!r}"
            )
        if ctx.debate_rounds < 0:
            raise DebateSettingsError(f"debate_rounds must be >= 0, got {ctx.debate_rounds!r}")
        specs = debaters_for(debaters, ctx.debate_debaters)
        profiles = [DebaterProfile(name=s.name, persona=s.persona) for s in specs]
        rounds = ctx.debate_rounds if ctx.debate_mode == "debate" else 0
        clock = start_clock(state)
        await load_price_table(ctx)
        update: dict[str, Any] = {
            **clock,
            "stop_reason": None,
            "mode": ctx.debate_mode,
            "debaters": profiles,
            # A new question on the same thread starts a fresh debate.
            "positions": Overwrite([]),
            "assessments": Overwrite([]),
            "converged": False,
            "verdict": None,
            "vote": None,
        }
        stop = budget_stop({**state, **clock}, ctx, model_calls=len(profiles))
        if stop:
            return Command(update={**update, **stopped_outcome(stop)}, goto="finish_run")
        return Command(update=update, goto=_round_tasks(state["question"], profiles, 0, rounds, []))

    async def debate_turn(task: DebaterTask, runtime: Runtime[Context]) -> dict[str, Any]:
        """One debater states (round 0) or revises (later rounds) its position.

        Reads the `Send` payload; writes one `positions` entry and `usage`.
        """
        ctx = context_of(runtime)
        debater = task["debater"]
        if task["round"] == 0:
            prompt = DEBATE_OPENING_PROMPT.format(question=task["question"])
        else:
            own = task["own_position"]
            prompt = DEBATE_REVISION_PROMPT.format(
                question=task["question"],
                round=task["round"],
                rounds=task["rounds"],
                own_position=render_positions([own]) if own else "(none)",
                other_positions=render_positions(task["other_positions"]),
            )
        # memory: debaters argue knowing what the user told earlier runs; parallel turns do not
        # count as accesses (touch=False), so a debate does not inflate what gets promoted.
        memory = await recall_for(task["question"], ctx, runtime.store, touch=False)
        messages: list[AnyMessage] = [
            SystemMessage(DEBATER_SYSTEM_PROMPT.format(**debater) + memory.text),
            HumanMessage(prompt),
        ]
        reply = await ask_structured(
            DebaterReply,
            messages,
            role="worker",
            context=ctx,
            model=model_for_debater(debater["name"]),
        )
        value = reply.value
        position = Position(
            debater=debater["name"],
            round=task["round"],
            answer=value.answer,
            normalized_answer=value.normalized_answer,
            reasoning=value.reasoning,
            confidence=value.confidence,
        )
        return {"positions": [position], "usage": reply.usage, **memory.update}

    async def assess_round(
        state: DebateState, runtime: Runtime[Context]
    ) -> Command[Literal["debate_turn", "judge", "tally"]]:
        """After a round: tally (vote mode), stop on agreement, or start the next round.

        Reads `positions`, `debaters`; writes `rounds_completed`, `assessments`, `converged`.
        """
        ctx = context_of(runtime)
        latest = latest_positions(state.get("positions", []))
        round_ = latest[0]["round"] if latest else 0
        update: dict[str, Any] = {"rounds_completed": round_ + 1}
        runtime.stream_writer({"event": "debate_round_done", "round": round_})
        if state.get("mode") == "vote":
            return Command(update=update, goto="tally")
        if round_ >= ctx.debate_rounds:
            return Command(update=update, goto="judge")
        # Another round must fit the budget with the judge's call still to come; if it cannot,
        # measuring agreement is pointless.
        stop = budget_stop(state, ctx, model_calls=len(latest) + 1)
        if stop:
            return Command(update={**update, "stop_reason": stop}, goto="judge")
        if ctx.debate_convergence != "off":
            assessment, usage = await _measure_agreement(state["question"], latest, ctx)
            update["assessments"] = [assessment]
            if usage:
                update["usage"] = usage
            runtime.stream_writer(
                {"event": "debate_agreement", "round": round_, "agreement": assessment["agreement"]}
            )
            if assessment["agreement"] >= ctx.debate_agreement_threshold:
                logger.info(
                    "debate converged after round %d (agreement %.2f >= %.2f)",
                    round_,
                    assessment["agreement"],
                    ctx.debate_agreement_threshold,
                )
                return Command(update={**update, "converged": True}, goto="judge")
        spent = {**state, "usage": add_usage(state.get("usage"), update.get("usage"))}
        stop = budget_stop(spent, ctx, model_calls=len(latest) + 1)
        if stop:
            return Command(update={**update, "stop_reason": stop}, goto="judge")
        return Command(
            update=update,
            goto=_round_tasks(
                state["question"],
                state.get("debaters", []),
                round_ + 1,
                ctx.debate_rounds,
                latest,
            ),
        )

    async def _measure_agreement(
        question: str, latest: list[Position], ctx: Context
    ) -> tuple[RoundAssessment, dict[str, Any]]:
        round_ = latest[0]["round"] if latest else 0
        if ctx.debate_convergence == "embedding":
            vectors = await embedder(ctx).aembed_documents([p["answer"] for p in latest])
            score = mean_pairwise_similarity(vectors)
            return RoundAssessment(
                round=round_,
                agreement=score,
                method="embedding",
                reason=f"mean pairwise cosine similarity of {len(latest)} positions",
            ), {}
        check = await ask_structured(
            ConvergenceCheck,
            [
                SystemMessage(JUDGE_SYSTEM_PROMPT),
                HumanMessage(
                    CONVERGENCE_CHECK_PROMPT.format(
                        question=question, positions=render_positions(latest)
                    )
                ),
            ],
            role="judge",
            context=ctx,
            model=model,
        )
        return RoundAssessment(
            round=round_,
            agreement=check.value.agreement,
            method="judge",
            reason=check.value.reason,
        ), dict(check.usage)

    async def judge(state: DebateState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Rule on the debate with a structured verdict.

        Reads `question`, `positions`, `stop_reason`; writes `verdict`, `final_answer`,
        `success`, `error`. A run stopped by its budget still gets a ruling on the positions so
        far when one more call fits, else the most confident position.
        """
        ctx = context_of(runtime)
        latest = latest_positions(state.get("positions", []))
        stopped = state.get("stop_reason")
        cannot_judge = budget_stop(state, ctx, model_calls=1)
        if cannot_judge:
            best = max(latest, key=lambda p: p["confidence"], default=None)
            return stopped_outcome(stopped or cannot_judge, best["answer"] if best else None)
        ruling = await ask_structured(
            Verdict,
            [
                SystemMessage(JUDGE_SYSTEM_PROMPT),
                HumanMessage(
                    JUDGE_VERDICT_PROMPT.format(
                        question=state["question"], positions=render_positions(latest)
                    )
                ),
            ],
            role="judge",
            context=ctx,
            model=model,
        )
        verdict = VerdictRecord(**ruling.value.model_dump())  # type: ignore[typeddict-item]
        return {
            "verdict": verdict,
            "final_answer": verdict["decision"],
            "success": not stopped,
            "error": f"{stopped}; the judge ruled on the positions so far" if stopped else None,
            "usage": ruling.usage,
        }

    async def tally(state: DebateState) -> Command[Literal["break_tie", "finish_run"]]:
        """Majority vote over the normalised answers; a tie goes to the judge.

        Reads `positions`; writes `vote` and, without a tie, the final answer.
        """
        votes = latest_positions(state.get("positions", []))
        result = tally_votes([p["normalized_answer"] for p in votes])
        record = VoteRecord(
            counts=result.counts,
            winners=list(result.winners),
            agreement=result.agreement,
            tie=result.tie,
            decided_by="majority",
        )
        if result.tie:
            return Command(update={"vote": record}, goto="break_tie")
        return Command(
            update={
                "vote": record,
                "final_answer": _answer_for(votes, result.winners[0]),
                "success": True,
                "error": None,
            },
            goto="finish_run",
        )

    async def break_tie(state: DebateState, runtime: Runtime[Context]) -> dict[str, Any]:
        """The judge picks one of the tied answers (structured, restricted to the tie).

        Reads `vote`, `positions`; writes `vote`, `final_answer`, `success`, `error`.
        """
        vote = state["vote"]
        assert vote is not None  # tally routes here only after recording the vote
        votes = latest_positions(state.get("positions", []))
        stop = budget_stop(state, context_of(runtime), model_calls=1)
        if stop:
            return stopped_outcome(
                f"{stop}; tie between {', '.join(map(repr, vote['winners']))}",
                _answer_for(votes, vote["winners"][0]),
            )
        schema = tie_break_schema(vote["winners"])
        choice = await ask_structured(
            schema,
            [
                SystemMessage(JUDGE_SYSTEM_PROMPT),
                HumanMessage(
                    TIE_BREAK_PROMPT.format(
                        question=state["question"],
                        candidates=", ".join(repr(w) for w in vote["winners"]),
                        positions=render_positions(votes),
                    )
                ),
            ],
            role="judge",
            context=context_of(runtime),
            model=model,
        )
        picked = choice.value.model_dump()
        chosen = str(picked["choice"])
        return {
            "vote": {
                **vote,
                "decided_by": "judge",
                "rationale": str(picked["rationale"]),
            },
            "final_answer": _answer_for(votes, chosen),
            "success": True,
            "error": None,
            "usage": choice.usage,
        }

    builder = StateGraph(
        DebateState, context_schema=Context, input_schema=DebateInput, output_schema=DebateOutput
    )
    builder.add_node("open_debate", open_debate)
    # add_node's overloads only type state-shaped inputs; this node takes a Send payload.
    builder.add_node(
        "debate_turn",
        cast(Any, debate_turn),
        input_schema=DebaterTask,
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
    )
    builder.add_node(
        "assess_round", assess_round, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT
    )
    builder.add_node(
        "judge",
        judge,
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
        # A judge that stays unavailable (fallback model included): the majority decides.
        error_handler=on_model_failure("tally", update=lambda _state, _error: {}),
    )
    builder.add_node("tally", tally)
    builder.add_node("break_tie", break_tie, retry_policy=MODEL_RETRY, timeout=MODEL_NODE_TIMEOUT)
    builder.add_edge(START, "open_debate")
    # Every debater of a round is one `Send`; assess_round runs once when all have answered.
    builder.add_edge("debate_turn", "assess_round")
    builder.add_node(
        "finish_run",
        make_finish_run(model=model, iterations=lambda s: int(s.get("rounds_completed") or 0)),
    )
    builder.add_edge("judge", "finish_run")
    builder.add_edge("break_tie", "finish_run")
    builder.add_edge("finish_run", END)
    return traced(
        builder.compile(name="debate", checkpointer=checkpointer, store=store), pattern="debate"
    )


def _answer_for(positions: Sequence[Position], canonical: str) -> str:
    """The full answer of the first debater whose normalised answer is `canonical`."""
    for position in positions:
        if canonical_answer(position["normalized_answer"]) == canonical:
            return position["answer"]
    return canonical


def input_from_text(text: str) -> dict[str, Any]:
    """`weft run debate "question"` input."""
    return {"question": text}


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()

__all__ = [
    "DEFAULT_DEBATERS",
    "ConvergenceCheck",
    "DebateInput",
    "DebateOutput",
    "DebateSettingsError",
    "DebateState",
    "DebaterReply",
    "DebaterSpec",
    "Verdict",
    "build_graph",
    "debaters_for",
    "graph",
    "input_from_text",
    "latest_positions",
    "tally_votes",
]
