"""Debate graph: structure, exact call counts, convergence early stop, vote mode, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.debate import DebaterSpec, DebateSettingsError, build_graph
from nodes.context import Context
from nodes.offline import ScriptedChatModel

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("debate.mmd")
QUESTION = "Is 1 a prime number?"
NAMES = ("Advocate", "Skeptic", "Pragmatist")


class TableEmbeddings(Embeddings):
    """Maps known texts to chosen vectors, so a test decides exactly how similar positions are.

    An unknown text raises, so a test cannot pass by embedding something it did not expect.
    """

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.seen: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen.append(list(texts))
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise KeyError(f"no test vector for {missing!r}")
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def position(answer: str, normalized: str, confidence: float = 0.7) -> dict[str, Any]:
    return {
        "json": {
            "answer": answer,
            "normalized_answer": normalized,
            "reasoning": f"because {answer}",
            "confidence": confidence,
        }
    }


def debater_rule(name: str, round_: int, reply: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{name} round {round_}",
        "match": {
            "system": f"You are {name},",
            "user": f"^Round {round_} ",
            "schema": "DebaterReply",
        },
        "replies": [reply],
    }


VERDICT = {
    "name": "verdict",
    "match": {"schema": "Verdict"},
    "replies": [
        {
            "json": {
                "decision": "No: 1 is not prime.",
                "rationale": "A prime has exactly two divisors.",
                "points_of_disagreement": [],
                "confidence": 0.95,
            }
        }
    ],
}

# Round 0 disagrees, round 1 agrees (wording differs), round 2 repeats the agreement.
ANSWERS = {
    ("Advocate", 0): "Yes, 1 is prime.",
    ("Skeptic", 0): "No, 1 is not prime.",
    ("Pragmatist", 0): "It depends on the convention.",
    ("Advocate", 1): "No - 1 has only one divisor.",
    ("Skeptic", 1): "No, I stand by it: 1 is not prime.",
    ("Pragmatist", 1): "No, by the modern definition.",
    ("Advocate", 2): "No, final.",
    ("Skeptic", 2): "No, final answer.",
    ("Pragmatist", 2): "No, agreed.",
}


def debate_script(rounds: int = 2, extra: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    rules = [
        debater_rule(name, r, position(ANSWERS[(name, r)], "no" if r else name.lower()))
        for r in range(rounds + 1)
        for name in NAMES
    ]
    return {"name": "debate-test", "rules": [*rules, VERDICT, *extra]}


def schema_names(model: ScriptedChatModel) -> list[str]:
    return [r["tools"][0]["function"]["name"] for r in model.requests]


def user_texts(model: ScriptedChatModel) -> list[str]:
    return [str(call[-1].content) for call in model.calls]


def embeddings_for(converge_at: int | None) -> TableEmbeddings:
    """Orthogonal vectors per debater before `converge_at`, one shared vector from it on."""
    table: dict[str, list[float]] = {}
    for (name, round_), text in ANSWERS.items():
        index = NAMES.index(name)
        if converge_at is not None and round_ >= converge_at:
            table[text] = [1.0, 0.1 * index, 0.0]
        else:
            table[text] = [1.0 if i == index else 0.0 for i in range(3)]
    return TableEmbeddings(table)


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_full_debate_makes_n_times_r_plus_one_plus_one_calls(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=debate_script())
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_convergence="off")
    )

    # 3 debaters x (2 rounds + opening) + 1 verdict
    assert len(model.calls) == 3 * (2 + 1) + 1
    assert result["usage"]["scripted"]["calls"] == 10
    assert schema_names(model).count("Verdict") == 1
    assert result["final_answer"] == "No: 1 is not prime."
    assert result["success"] is True and result["error"] is None
    assert result["verdict"]["confidence"] == 0.95
    assert result["verdict"]["points_of_disagreement"] == []
    assert result["rounds_completed"] == 3
    assert result["converged"] is False
    assert [(p["debater"], p["round"]) for p in result["positions"]] == [
        (name, r) for r in range(3) for name in NAMES
    ]
    assert {d["name"] for d in result["debaters"]} == set(NAMES)


async def test_each_debater_revises_against_the_others_latest_positions(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=debate_script())
    await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_convergence="off")
    )

    skeptic_round_2 = next(
        call
        for call in model.calls
        if "You are Skeptic," in str(call[0].content)
        and str(call[-1].content).startswith("Round 2")
    )
    prompt = str(skeptic_round_2[-1].content)
    others = prompt.split("<other_positions>")[1]
    own = prompt.split("<your_previous_position>")[1].split("</your_previous_position>")[0]
    assert ANSWERS[("Advocate", 1)] in others and ANSWERS[("Pragmatist", 1)] in others
    assert ANSWERS[("Skeptic", 1)] in own and ANSWERS[("Skeptic", 1)] not in others
    assert ANSWERS[("Advocate", 0)] not in prompt  # only the latest round is shown
    verdict_prompt = str(model.calls[-1][-1].content)
    assert all(ANSWERS[(name, 2)] in verdict_prompt for name in NAMES)


async def test_embedding_agreement_stops_the_debate_early(scripted_model: Any) -> None:
    model = scripted_model(script=debate_script())
    embeddings = embeddings_for(converge_at=1)
    result = await build_graph(model=model, embeddings=embeddings).ainvoke({"question": QUESTION})

    # Opening + one revision round, then the verdict: round 2 never runs.
    assert len(model.calls) == 3 * 2 + 1
    assert result["converged"] is True
    assert result["rounds_completed"] == 2
    assert not [p for p in result["positions"] if p["round"] == 2]
    first, second = result["assessments"]
    assert first["method"] == second["method"] == "embedding"
    assert first["agreement"] == pytest.approx(0.0)
    assert second["agreement"] >= 0.8
    assert [sorted(batch) for batch in embeddings.seen] == [
        sorted(ANSWERS[(n, r)] for n in NAMES) for r in (0, 1)
    ]
    assert result["final_answer"] == "No: 1 is not prime."


async def test_without_agreement_every_round_runs_and_is_assessed(scripted_model: Any) -> None:
    model = scripted_model(script=debate_script())
    result = await build_graph(model=model, embeddings=embeddings_for(None)).ainvoke(
        {"question": QUESTION}
    )

    assert len(model.calls) == 3 * 3 + 1
    assert result["converged"] is False
    # Measured between rounds only: after round 0 and round 1, not after the last.
    assert [a["round"] for a in result["assessments"]] == [0, 1]


async def test_threshold_is_a_context_setting(scripted_model: Any) -> None:
    model = scripted_model(script=debate_script())
    # Round-1 vectors are similar (cosine ~0.99) but not identical: a threshold of 1.0
    # refuses to call that agreement.
    result = await build_graph(model=model, embeddings=embeddings_for(converge_at=1)).ainvoke(
        {"question": QUESTION}, context=Context(debate_agreement_threshold=1.0)
    )
    assert result["converged"] is False
    assert len(model.calls) == 10


async def test_judge_convergence_check_stops_early_and_is_counted(scripted_model: Any) -> None:
    check = {
        "name": "convergence",
        "match": {"schema": "ConvergenceCheck"},
        "replies": [{"json": {"agreement": 0.9, "reason": "all say no"}}],
    }
    model = scripted_model(script=debate_script(extra=[check]))
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_convergence="judge")
    )

    # Opening round, one judge check (agrees), the verdict.
    assert schema_names(model) == ["DebaterReply"] * 3 + ["ConvergenceCheck", "Verdict"]
    assert result["converged"] is True
    assert result["assessments"] == [
        {"round": 0, "agreement": 0.9, "method": "judge", "reason": "all say no"}
    ]
    assert result["usage"]["scripted"]["calls"] == 5


async def test_judge_convergence_without_agreement_costs_one_check_per_round_gap(
    scripted_model: Any,
) -> None:
    check = {
        "match": {"schema": "ConvergenceCheck"},
        "replies": [{"json": {"agreement": 0.3, "reason": "still split"}}],
    }
    model = scripted_model(script=debate_script(extra=[check]))
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_convergence="judge")
    )
    # n(r+1) + 1 + r
    assert len(model.calls) == 3 * 3 + 1 + 2
    assert result["converged"] is False


async def test_debaters_of_a_round_run_concurrently() -> None:
    barrier = asyncio.Barrier(3)

    class RendezvousModel(ScriptedChatModel):
        async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kw: Any) -> Any:
            if str(messages[-1].content).startswith("Round 0"):
                # Sequential debaters would wait here forever: the test then fails on timeout.
                await asyncio.wait_for(barrier.wait(), timeout=5)
            return await super()._agenerate(messages, *args, **kw)

    model = RendezvousModel(script=debate_script(rounds=0))
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_rounds=0)
    )
    assert len(result["positions"]) == 3


async def test_each_debater_can_have_its_own_model(scripted_model: Any) -> None:
    shared = scripted_model(script=debate_script(rounds=0))
    own = scripted_model(script=debate_script(rounds=0), model_name="skeptic-model")
    debaters = [
        DebaterSpec("Advocate", "argue yes"),
        DebaterSpec("Skeptic", "argue no", model=own),
        DebaterSpec("Pragmatist", "be practical"),
    ]
    result = await build_graph(model=shared, debaters=debaters).ainvoke(
        {"question": QUESTION}, context=Context(debate_rounds=0)
    )

    assert len(own.calls) == 1 and "You are Skeptic," in str(own.calls[0][0].content)
    assert "argue no" in str(own.calls[0][0].content)
    assert len(shared.calls) == 3  # two debaters and the judge
    assert result["usage"]["skeptic-model"]["calls"] == 1
    assert result["usage"]["scripted"]["calls"] == 3


def vote_script(normalized: Sequence[str], extra: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    rules = [
        debater_rule(name, 0, position(f"{name} says {norm}", norm))
        for name, norm in zip(NAMES, normalized, strict=True)
    ]
    return {"rules": [*rules, *extra]}


async def test_vote_mode_majority_needs_no_judge(scripted_model: Any) -> None:
    model = scripted_model(script=vote_script(["No.", "no", "yes"]))
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_mode="vote")
    )

    assert len(model.calls) == 3
    assert result["vote"]["counts"] == {"no": 2, "yes": 1}
    assert result["vote"]["agreement"] == pytest.approx(2 / 3)
    assert result["vote"]["tie"] is False and result["vote"]["decided_by"] == "majority"
    assert result["final_answer"] == "Advocate says No."
    assert result["success"] is True
    assert result.get("verdict") is None


async def test_vote_mode_tie_goes_to_the_judge(scripted_model: Any) -> None:
    tie_break = {
        "match": {"schema": "TieBreak"},
        "replies": [{"json": {"choice": "maybe", "rationale": "conventions differ"}}],
    }
    model = scripted_model(script=vote_script(["yes", "no", "maybe"], extra=[tie_break]))
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(debate_mode="vote")
    )

    assert len(model.calls) == 4
    tie_request = model.requests[-1]
    choice_schema = tie_request["tools"][0]["function"]["parameters"]["properties"]["choice"]
    assert sorted(choice_schema["enum"]) == ["maybe", "no", "yes"]
    assert result["vote"]["tie"] is True and result["vote"]["decided_by"] == "judge"
    assert result["vote"]["rationale"] == "conventions differ"
    assert result["final_answer"] == "Pragmatist says maybe"


async def test_a_second_question_on_the_thread_starts_a_fresh_debate(scripted_model: Any) -> None:
    model = scripted_model(script=debate_script(rounds=0))
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    ctx = Context(debate_rounds=0)
    await graph.ainvoke({"question": QUESTION}, config, context=ctx)
    result = await graph.ainvoke({"question": QUESTION}, config, context=ctx)
    assert len(result["positions"]) == 3


async def test_too_few_debaters_is_a_settings_error(scripted_model: Any) -> None:
    with pytest.raises(DebateSettingsError, match="debate_debaters must be >= 2, got 1"):
        await build_graph(model=scripted_model("unused")).ainvoke(
            {"question": QUESTION}, context=Context(debate_debaters=1)
        )
    with pytest.raises(DebateSettingsError, match="'embedding', 'judge' or 'off', got 'words'"):
        await build_graph(model=scripted_model("unused")).ainvoke(
            {"question": QUESTION},
            context=Context(debate_convergence="words"),  # type: ignore[arg-type]
        )
    with pytest.raises(DebateSettingsError, match="repeated: \\['A'\\]"):
        build_graph(debaters=[DebaterSpec("A", "x"), DebaterSpec("A", "y")])


def test_input_from_text_builds_the_question() -> None:
    from graphs.debate import input_from_text

    assert input_from_text("Why?") == {"question": "Why?"}


async def test_debaters_use_the_worker_role_and_the_judge_the_judge_role(
    scripted_model: Any,
) -> None:
    workers = scripted_model(script=debate_script(rounds=0), model_name="worker-model")
    judge = scripted_model(script={"rules": [VERDICT]}, model_name="judge-model")
    result = await build_graph(model={"worker": workers, "judge": judge}).ainvoke(
        {"question": QUESTION}, context=Context(debate_rounds=0)
    )
    assert result["usage"]["worker-model"]["calls"] == 3
    assert result["usage"]["judge-model"]["calls"] == 1


async def test_a_call_budget_skips_rounds_that_do_not_fit_and_the_judge_rules(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=debate_script())
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION},
        context=Context(debate_convergence="off", max_model_calls=6),
    )

    # The opening round (3) fits; round 1 (3 more + the verdict) would not: the judge rules.
    assert len(model.calls) == 3 + 1
    assert result["rounds_completed"] == 1
    assert result["final_answer"] == "No: 1 is not prime."
    assert result["success"] is False
    assert result["error"].startswith("max_model_calls (6) reached: 3 used, 4 more needed")
    assert result["metrics"]["stopped_by"] == "max_model_calls"
    assert result["metrics"]["iterations"] == 1


async def test_a_budget_too_small_for_one_round_stops_before_any_call(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=debate_script())
    result = await build_graph(model=model).ainvoke(
        {"question": QUESTION}, context=Context(max_model_calls=2)
    )
    assert model.calls == []
    assert result["success"] is False
    assert result["error"] == "max_model_calls (2) reached: 0 used, 3 more needed"
