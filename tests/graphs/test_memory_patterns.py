"""Memory in the patterns outside the agent loop (`nodes.memory_nodes.recall_for`): a fact the
user saved earlier reaches the planner, the supervisor, the debaters, ToT and refine prompts
when `memory_enabled`, only for that user, and a failing store degrades instead of failing."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import BaseStore

from memory.manager import MemoryManager
from memory.testing import BrokenStore, fake_embeddings, in_memory_store
from nodes.context import Context

pytestmark = pytest.mark.anyio

FACT = "Alice's reports always go to the finance team in euros"
NAMES = ("Advocate", "Skeptic", "Pragmatist")


async def seeded() -> BaseStore:
    store = in_memory_store()
    await MemoryManager(store, "alice", embeddings=fake_embeddings()).remember(FACT)
    return store


def ctx(user: str, **kwargs: Any) -> Context:
    # Episodes off: these tests look at recall only, not what the runs record.
    return Context(user_id=user, memory_enabled=True, record_episodes=False, **kwargs)


def systems(model: Any, schema: str) -> list[str]:
    """The system prompt of every request for a structured `schema` call."""
    found = []
    for request in model.requests:
        choice = request.get("tool_choice")
        name = choice["function"]["name"] if isinstance(choice, dict) else None
        tools = request.get("tools") or []
        if name is None and choice == "required" and len(tools) == 1:
            name = tools[0]["function"]["name"]
        if name == schema:
            found.append(next(m["content"] for m in request["messages"] if m["role"] == "system"))
    return found


PLAN_SCRIPT = {
    "rules": [
        {
            "match": {"schema": "Plan"},
            "replies": [
                {
                    "json": {
                        "tasks": [
                            {
                                "id": "t1",
                                "description": "look up the time",
                                "depends_on": [],
                                "tool": "get_current_time",
                                "tool_args": {"timezone": "UTC"},
                            }
                        ]
                    }
                }
            ],
            "after_last": "repeat",
        },
        {
            "match": {"schema": "FinalAnswer"},
            "replies": [{"json": {"answer": "Sent to finance [t1]", "cited_task_ids": ["t1"]}}],
            "after_last": "repeat",
        },
    ]
}


async def test_the_planner_sees_the_users_memories(scripted_model: Any) -> None:
    from graphs.plan_execute import build_graph

    store = await seeded()
    model = scripted_model(script=PLAN_SCRIPT)
    graph = build_graph(model=model, store=store)
    request = {"request": "Prepare my finance report, where do reports go?"}

    alice = await graph.ainvoke(request, context=ctx("alice"))
    bob = await graph.ainvoke(request, context=ctx("bob"))
    off = await graph.ainvoke(request, context=Context(user_id="alice"))

    assert alice["success"] is True and alice.get("degraded", []) == []
    plan_prompts = systems(model, "Plan")
    assert len(plan_prompts) == 3
    assert "<memories>" in plan_prompts[0] and FACT in plan_prompts[0]
    assert FACT not in plan_prompts[1] and bob["success"] is True
    assert "<memories>" not in plan_prompts[2] and off["success"] is True


async def test_a_failing_store_degrades_the_plan_instead_of_failing(scripted_model: Any) -> None:
    from graphs.plan_execute import build_graph

    model = scripted_model(script=PLAN_SCRIPT)
    result = await build_graph(model=model, store=BrokenStore()).ainvoke(
        {"request": "Prepare my finance report"}, context=ctx("alice")
    )
    assert result["success"] is True
    assert result["degraded"] == ["memory"]


def vote_script() -> dict[str, Any]:
    return {
        "rules": [
            {
                "match": {"system": f"You are {name},", "schema": "DebaterReply"},
                "replies": [
                    {
                        "json": {
                            "answer": "euros",
                            "normalized_answer": "euros",
                            "reasoning": "remembered",
                            "confidence": 0.9,
                        }
                    }
                ],
                "after_last": "repeat",
            }
            for name in NAMES
        ]
    }


async def test_every_debater_sees_the_users_memories(scripted_model: Any) -> None:
    from graphs.debate import build_graph

    store = await seeded()
    model = scripted_model(script=vote_script())
    graph = build_graph(model=model, store=store)
    question = {"question": "Which currency do my finance reports use?"}

    alice = await graph.ainvoke(question, context=ctx("alice", debate_mode="vote"))
    await graph.ainvoke(question, context=ctx("bob", debate_mode="vote"))

    assert alice["final_answer"] and alice.get("degraded", []) == []
    prompts = systems(model, "DebaterReply")
    assert len(prompts) == 6
    assert all(FACT in p and "<memories>" in p for p in prompts[:3])
    assert not any(FACT in p for p in prompts[3:])
    # Parallel debaters do not count as accesses.
    (stored,) = await MemoryManager(store, "alice", embeddings=fake_embeddings()).list_memories(
        "semantic"
    )
    assert stored.access_count == 0


async def test_supervisor_tot_and_refine_see_the_users_memories(scripted_model: Any) -> None:
    from graphs.refine import build_graph as build_refine
    from graphs.supervisor import build_graph as build_supervisor
    from graphs.tot import build_graph as build_tot

    store = await seeded()
    finish = {
        "match": {"schema": "SupervisorDecision"},
        "replies": [{"json": {"next": "FINISH", "answer": "Finance, in euros."}}],
    }
    supervisor_model = scripted_model(script={"rules": [finish]})
    result = await build_supervisor(model=supervisor_model, store=store).ainvoke(
        {"messages": [{"role": "user", "content": "Where do my finance reports go?"}]},
        context=ctx("alice"),
    )
    assert result["final_answer"] == "Finance, in euros."
    (first,) = [r for r in supervisor_model.requests]
    system = next(m["content"] for m in first["messages"] if m["role"] == "system")
    assert FACT in system

    tot_model = scripted_model(
        script={
            "rules": [
                {
                    "match": {"schema": "ThoughtProposals"},
                    "replies": [{"json": {"thoughts": ["use euros"]}}],
                    "after_last": "repeat",
                },
                {
                    "match": {"schema": "ThoughtValue"},
                    "replies": [{"json": {"score": 10, "reason": "matches memory"}}],
                    "after_last": "repeat",
                },
                {
                    "match": {"schema": "Solution"},
                    "replies": [{"json": {"answer": "euros", "explanation": "remembered"}}],
                },
            ]
        }
    )
    solved = await build_tot(model=tot_model, store=store).ainvoke(
        {"problem": "Which currency for my finance reports?"},
        context=ctx("alice", tot_candidates=1, tot_beam_width=1, tot_max_depth=1),
    )
    assert solved["final_answer"] == "euros"
    assert FACT in systems(tot_model, "ThoughtProposals")[0]
    assert FACT in systems(tot_model, "Solution")[0]

    refine_model = scripted_model(
        script={
            "rules": [
                {
                    "match": {"schema": "Critique"},
                    "replies": [
                        {
                            "json": {
                                "correctness": 5,
                                "completeness": 5,
                                "clarity": 5,
                                "efficiency": 5,
                                "suggestions": [],
                            }
                        }
                    ],
                },
                {"match": {"system": "write"}, "replies": ["Report in euros."]},
            ]
        }
    )
    drafted = await build_refine(model=refine_model, max_iterations=1, store=store).ainvoke(
        {"task": "Draft my finance report"}, context=ctx("alice")
    )
    assert drafted["drafts"][0]["text"] == "Report in euros."
    first_system = next(
        m["content"] for m in refine_model.requests[0]["messages"] if m["role"] == "system"
    )
    assert FACT in first_system
