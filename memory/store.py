"""Build the long-term store: Qdrant (langgraph-store-qdrant) by default.

Any LangGraph `BaseStore` works with `MemoryManager` (the server's, `InMemoryStore`,
`PostgresStore`); `memory_index(...)` gives them the same semantic index over `content`.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, IndexConfig, TTLConfig

from memory.embeddings import make_embeddings
from memory.settings import MemorySettings

logger = logging.getLogger(__name__)

INDEXED_FIELDS = ["content"]
"""Only a memory's text is embedded; metadata stays out of the vector."""

TTL_CONFIG: TTLConfig = {"omit_expired": True, "refresh_on_read": False}
"""Qdrant reads `omit_expired` once, when the store is built; recall never extends a TTL."""


def memory_index(embeddings: Embeddings, dims: int) -> IndexConfig:
    """The index config every store gets: embed `content` with `embeddings`."""
    return {"dims": dims, "embed": embeddings, "fields": list(INDEXED_FIELDS)}


def make_store(
    settings: MemorySettings | None = None,
    *,
    embeddings: Embeddings | None = None,
    dims: int | None = None,
    **client_options: Any,
) -> BaseStore:
    """A ready (set-up) Qdrant store for memories.

    Local mode by default (`:memory:`, or on disk with `QDRANT_PATH`), a server with
    `QDRANT_URL` (+ `QDRANT_API_KEY`). `embeddings`/`dims` override the settings' embedder.
    The sync `QdrantStore` is used on purpose: its async methods run each batch (Qdrant I/O
    and embedding) in a worker thread, whereas the async client in local mode would scan
    vectors on the event loop.
    """
    from langgraph.store.qdrant import QdrantIndexConfig, QdrantStore
    from qdrant_client import QdrantClient

    settings = settings or MemorySettings.from_env()
    if embeddings is None:
        embeddings, dims = make_embeddings(settings)
    elif dims is None:
        dims = len(embeddings.embed_query("dimension probe"))
    if settings.qdrant_url:
        client = QdrantClient(
            location=settings.qdrant_url, api_key=settings.qdrant_api_key, **client_options
        )
    elif settings.qdrant_path:
        client = QdrantClient(path=settings.qdrant_path, **client_options)
    else:
        client = QdrantClient(location=":memory:", **client_options)
    where = settings.qdrant_url or settings.qdrant_path or ":memory:"
    logger.info("memory store: Qdrant %s collection=%s dims=%d", where, settings.collection, dims)
    store = QdrantStore(
        client,
        collection_name=settings.collection,
        index=QdrantIndexConfig(dims=dims, embed=embeddings, fields=list(INDEXED_FIELDS)),
        ttl=TTLConfig(**TTL_CONFIG),
    )
    store.setup()
    return store
