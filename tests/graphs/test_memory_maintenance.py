"""memory_maintenance graph: structure, a scripted run over two users, pruning of consolidated
episodes, org users, the store's TTL sweep, store failure."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore

from graphs.memory_maintenance import build_graph
from memory.manager import MemoryManager
from memory.testing import BrokenStore, fake_embeddings, in_memory_store, qdrant_memory_store

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("memory_maintenance.mmd")
NOW = datetime.now(UTC)

INSIGHTS = {
    "rules": [
        {
            "match": {"schema": "Insights"},
            "replies": [
                {
                    "json": {
                        "insights": [
                            {
                                "content": "The user deploys on Tuesdays after tests pass",
                                "importance": 0.8,
                            }
                        ]
                    }
                }
            ],
        }
    ]
}


def mm(store: BaseStore, user: str, days_ago: float = 0) -> MemoryManager:
    then = NOW - timedelta(days=days_ago)
    return MemoryManager(store, user, embeddings=fake_embeddings(), clock=lambda: then)


async def seed(store: BaseStore) -> dict[str, str]:
    alice_now, alice_old = mm(store, "alice"), mm(store, "alice", days_ago=10)
    ids: dict[str, str] = {}
    first = await alice_now.remember("The user prefers dark mode", importance=0.5)
    second = await alice_now.remember("The user prefers dark mode!", importance=0.7)
    await alice_now.update(replace(first, access_count=1))
    await alice_now.update(replace(second, importance=0.7, access_count=2))
    ids["dup_keep"], ids["dup_drop"] = second.id, first.id
    for day in ("Monday", "Tuesday", "Wednesday"):
        await alice_old.remember(
            f"Task: deploy on {day}\nOutcome (succeeded): deployed", kind="episodic"
        )
    popular = await alice_now.remember("Use the staging cluster first", kind="procedural")
    await alice_now.update(replace(popular, access_count=6))
    ids["popular"] = popular.id
    stale = await mm(store, "alice", days_ago=40).remember("a trivial note", importance=0.1)
    ids["stale"] = stale.id
    expired = await mm(store, "alice", days_ago=2).remember("temp", ttl_minutes=60)
    ids["expired"] = expired.id
    bob = await mm(store, "bob").remember("Bob prefers light mode")
    ids["bob"] = bob.id
    return ids


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("make_store", [in_memory_store, qdrant_memory_store])
async def test_maintenance_dedups_consolidates_promotes_and_prunes(
    scripted_model: Any, make_store: Any
) -> None:
    store = make_store()
    ids = await seed(store)
    model = scripted_model(script=INSIGHTS)

    result = await build_graph(model=model, store=store).ainvoke({})

    assert result["success"] is True, result.get("error")
    assert result["report"] == {
        "users": 2,
        "deduplicated": 1,
        "episodes_consolidated": 3,
        "insights": 1,
        "promoted": 2,  # the merged duplicate (3 accesses) and the popular procedure (6)
        "pruned": 2,  # the stale note and the expired memory
    }
    assert len(model.calls) == 1
    alice = mm(store, "alice")
    semantic = {m.id: m for m in await alice.list_memories("semantic")}
    assert ids["dup_drop"] not in semantic and ids["stale"] not in semantic
    assert ids["expired"] not in semantic
    kept = semantic[ids["dup_keep"]]
    assert (kept.access_count, kept.importance) == (3, pytest.approx(0.8))
    insight = next(m for m in semantic.values() if m.extra.get("source") == "consolidation")
    assert insight.content == "The user deploys on Tuesdays after tests pass"
    assert len(insight.extra["from_episodes"]) == 3
    episodes = await alice.list_memories("episodic")
    assert all(e.extra["consolidated"] and e.importance <= 0.2 for e in episodes)
    popular = await alice.get(ids["popular"])
    assert popular is not None and popular.importance == pytest.approx(0.7)
    assert [m.id for m in await mm(store, "bob").list_memories("semantic")] == [ids["bob"]]

    again = await build_graph(model=model, store=store).ainvoke({})
    assert again["report"]["episodes_consolidated"] == 0  # nothing consolidated twice
    assert again["report"]["promoted"] == 0
    assert len(model.calls) == 1


async def test_user_ids_limit_the_run(scripted_model: Any) -> None:
    store = in_memory_store()
    await seed(store)
    result = await build_graph(model=scripted_model(script=INSIGHTS), store=store).ainvoke(
        {"user_ids": ["bob"]}
    )
    assert result["report"]["users"] == 1
    assert result["report"]["deduplicated"] == 0


async def test_a_failing_store_reports_degraded_memory(scripted_model: Any) -> None:
    model = scripted_model()
    result = await build_graph(model=model, store=BrokenStore()).ainvoke({})
    assert result["success"] is False
    assert result["degraded"] == ["memory"]
    assert "store unreachable" in result["error"]
    assert result["final_answer"].startswith("Memory maintenance stopped")
    assert model.calls == []


async def test_without_a_store_the_run_says_so(scripted_model: Any) -> None:
    result = await build_graph(model=scripted_model()).ainvoke({})
    assert result["success"] is False and result["error"] == "no store configured"


async def test_consolidated_episodes_are_pruned_once_stale(scripted_model: Any) -> None:
    store = in_memory_store()
    await seed(store)
    model = scripted_model(script=INSIGHTS)
    first = await build_graph(model=model, store=store).ainvoke({})
    assert first["report"]["episodes_consolidated"] == 3
    episodes = await mm(store, "alice").list_memories("episodic")
    assert len(episodes) == 3 and all(e.importance == 0.2 for e in episodes)  # = prune_below

    # Ten days untouched: stale for a 5-day horizon. Before the fix `importance < prune_below`
    # never matched them (they sit exactly at the threshold) and they were kept for good.
    again = await build_graph(model=model, store=store).ainvoke({"stale_days": 5})
    assert again["report"]["pruned"] == 3
    assert await mm(store, "alice").list_memories("episodic") == []
    insights = await mm(store, "alice").list_memories("semantic")
    assert any(m.extra.get("source") == "consolidation" for m in insights)


async def test_maintenance_covers_org_users_and_can_be_narrowed_to_an_org(
    scripted_model: Any,
) -> None:
    store = in_memory_store()
    await seed(store)
    acme = MemoryManager(store, "carol@acme.example", org_id="acme", embeddings=fake_embeddings())
    await acme.remember("Carol prefers dark mode")
    await acme.remember("Carol prefers dark mode!")

    everyone = await build_graph(model=scripted_model(script=INSIGHTS), store=store).ainvoke({})
    assert everyone["report"]["users"] == 3
    assert everyone["report"]["deduplicated"] == 2  # alice's pair and carol's pair
    only_acme = await build_graph(model=scripted_model(), store=store).ainvoke(
        {"org_ids": ["acme"]}
    )
    assert only_acme["report"]["users"] == 1
    assert len(await acme.list_memories("semantic")) == 1


async def test_qdrant_expired_items_are_swept_by_the_store() -> None:
    from memory.maintenance import sweep_store_ttl

    store = qdrant_memory_store()
    mm_now = MemoryManager(store, "alice", embeddings=fake_embeddings())
    await mm_now.remember("short-lived", ttl_minutes=0.001)
    await asyncio.sleep(0.2)
    # omit_expired hides the item from every read, so only the store's own sweep deletes it.
    assert await mm_now.purge_expired() == 0
    assert await sweep_store_ttl(store) == 1
    assert await sweep_store_ttl(in_memory_store()) == 0  # no TTL config: nothing to sweep
