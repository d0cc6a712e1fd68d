"""Reflexion's lessons in long-term memory (nodes/critique.py over MemoryManager)."""

from __future__ import annotations

import pytest

from memory.manager import MemoryManager, memory_key
from memory.testing import fake_embeddings, in_memory_store
from nodes.context import Context
from nodes.critique import LESSON_AGENT, recall_lessons, remember_lesson

pytestmark = pytest.mark.anyio


def ctx(user: str) -> Context:
    return Context(user_id=user, memory_enabled=True)


async def test_lessons_are_agent_scoped_procedural_memories() -> None:
    store = in_memory_store()
    memory = await remember_lesson(
        store, context=ctx("u"), lesson="Check  the UNITS.", task="t", importance=0.4
    )
    again = await remember_lesson(
        store, context=ctx("u"), lesson="check the units.", task="t2", importance=0.2
    )

    assert memory.id == again.id == memory_key("procedural", "check the units.", LESSON_AGENT)
    assert memory.id != memory_key("procedural", "check the units.")  # not the user-wide key
    items = await store.asearch(("memories", "u", "procedural", LESSON_AGENT))
    assert len(items) == 1
    assert items[0].value["importance"] == 0.4 and items[0].value["task"] == "t2"
    assert items[0].value["source"] == "reflexion"


async def test_recall_ranks_by_the_task_and_limits_and_stays_with_the_user() -> None:
    store = in_memory_store()
    for lesson, value in [
        ("convert the units first", 0.5),
        ("cite sources", 0.6),
        ("round money to cents", 0.5),
    ]:
        await remember_lesson(store, context=ctx("u"), lesson=lesson, task="t", importance=value)
    await remember_lesson(
        store, context=ctx("other"), lesson="foreign units", task="t", importance=1.0
    )

    assert await recall_lessons(store, context=ctx("u"), task="which units?", limit=1) == [
        "convert the units first"
    ]
    assert len(await recall_lessons(store, context=ctx("u"), task="t", limit=2)) == 2
    assert await recall_lessons(store, context=ctx("u"), task="t", limit=0) == []
    assert await recall_lessons(store, context=ctx("other"), task="units", limit=5) == [
        "foreign units"
    ]


async def test_lessons_are_not_another_agents_procedures() -> None:
    store = in_memory_store()
    await remember_lesson(store, context=ctx("u"), lesson="reflexion only", task="t", importance=1)
    plain = MemoryManager(store, "u", embeddings=fake_embeddings())
    other = MemoryManager(store, "u", agent="planner", embeddings=fake_embeddings())
    assert (await plain.recall("reflexion only")).memories == []
    assert (await other.recall("reflexion only")).memories == []
    # Erasure still covers them.
    assert await plain.forget_all() == 1
