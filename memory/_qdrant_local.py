"""Workaround for a langgraph-store-qdrant 0.1.0 defect with local-mode clients.

Defect (reported in the README's Qdrant notes): `QdrantStore.abatch` runs each batch with
`run_in_executor(None, self.batch, ...)`, so concurrent async callers (parallel graph
branches, `asyncio.gather` in recall, several server runs) use one `QdrantClient` from several
threads at once. qdrant-client's local mode (`:memory:` or `path=`) is plain Python state with
no locking: a search racing a write fails with `ValueError: operands could not be broadcast
together with shapes (240,) (239,)` or `IndexError: index 41 is out of bounds` from
`qdrant_client/local/local_collection.py`. Repro: six writers and six readers doing
`abatch([PutOp])` / `abatch([SearchOp])` concurrently on one store fail within 480 calls.

A Qdrant server (`QDRANT_URL`) handles concurrent requests itself and is not wrapped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from langgraph.store.base import Op, Result, TTLConfig
from langgraph.store.qdrant import QdrantIndexConfig, QdrantStore
from qdrant_client import QdrantClient


class LocalQdrantStore(QdrantStore):
    """`QdrantStore` whose batches and TTL sweeps run one at a time (see the module docstring).

    Local mode is an exact in-process scan, so serialising costs no parallelism it had.
    """

    def __init__(
        self,
        client: QdrantClient,
        *,
        collection_name: str,
        index: QdrantIndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        super().__init__(client, collection_name=collection_name, index=index, ttl=ttl)
        self._local_lock = threading.Lock()

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """`QdrantStore.batch`, serialised."""
        with self._local_lock:
            return super().batch(ops)

    def sweep_ttl(self) -> int:
        """`QdrantStore.sweep_ttl`, serialised."""
        with self._local_lock:
            return super().sweep_ttl()
