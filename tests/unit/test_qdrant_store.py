"""How we use langgraph-store-qdrant: workarounds for its defects (memory/_qdrant_local.py)
and the behaviours MemoryManager relies on, against a real local-mode Qdrant."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from langgraph.store.base import PutOp, SearchOp

from memory._qdrant_local import LocalQdrantStore
from memory.manager import MemoryManager, memory_namespace
from memory.testing import fake_embeddings, qdrant_memory_store

pytestmark = pytest.mark.anyio


async def test_concurrent_batches_on_a_local_client_do_not_corrupt_reads() -> None:
    store = qdrant_memory_store()
    assert isinstance(store, LocalQdrantStore)
    errors: list[str] = []

    async def write(worker: int) -> None:
        for i in range(40):
            namespace = ("memories", f"u{worker}", "semantic")
            op = PutOp(namespace, uuid.uuid4().hex, {"content": f"n{i}"})
            try:
                await store.abatch([op])
            except (ValueError, IndexError) as exc:  # what the unguarded store raises
                errors.append(repr(exc))

    async def read(worker: int) -> None:
        for _ in range(40):
            try:
                await store.abatch([SearchOp(("memories", f"u{worker}"), None, 10, 0, "n", False)])
            except (ValueError, IndexError) as exc:
                errors.append(repr(exc))

    await asyncio.gather(*(write(w) for w in range(6)), *(read(r) for r in range(6)))
    assert errors == []
    assert len(await store.asearch(("memories",), limit=1000)) == 240


async def test_reads_never_extend_a_store_ttl() -> None:
    store = qdrant_memory_store()
    mm = MemoryManager(store, "alice", embeddings=fake_embeddings())
    memory = await mm.remember("temporary fact", ttl_minutes=60)
    namespace = memory_namespace("alice", "semantic")

    def store_expiry() -> datetime:
        (point,) = store.client.retrieve(  # type: ignore[attr-defined]
            store.collection_name, [_point_id(namespace, memory.id)], with_payload=True
        )
        return datetime.fromisoformat(point.payload["expires_at"])

    before = store_expiry()
    await asyncio.sleep(0.05)
    await mm.get(memory.id)
    await mm.forget(["no-such-id"])
    await mm.recall("temporary fact", touch=False)
    assert store_expiry() == before
    assert before > datetime.now(UTC)


def _point_id(namespace: tuple[str, ...], key: str) -> str:
    from langgraph.store.qdrant._payload import point_id

    return point_id(namespace, key)
