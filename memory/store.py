"""Build the long-term store: Qdrant (langgraph-store-qdrant) by default.

Any LangGraph `BaseStore` works with `MemoryManager` (the server's, `InMemoryStore`,
`PostgresStore`); `memory_index(...)` gives them the same semantic index over `content`.
`open_store(...)` is what applications (the `weft` CLI) use: the backend `memory.settings`
names, opened off the event loop, closed on exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, IndexConfig, TTLConfig

from memory.embeddings import make_embeddings
from memory.settings import MemorySettings, MemorySettingsError

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_PATH = Path(".weft") / "memory"
"""Where the CLI keeps a local (on-disk) Qdrant when neither QDRANT_URL nor QDRANT_PATH is set."""

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

    from memory._qdrant_local import LocalQdrantStore

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
    local = settings.qdrant_url in (None, ":memory:")
    logger.info("memory store: Qdrant %s collection=%s dims=%d", where, settings.collection, dims)
    store = (LocalQdrantStore if local else QdrantStore)(
        client,
        collection_name=settings.collection,
        index=QdrantIndexConfig(dims=dims, embed=embeddings, fields=list(INDEXED_FIELDS)),
        ttl=TTLConfig(**TTL_CONFIG),
    )
    store.setup()
    return store


@asynccontextmanager
async def open_store(
    settings: MemorySettings | None = None, *, default_path: Path | None = None
) -> AsyncIterator[BaseStore]:
    """The store `settings` name (default: from the environment), set up, closed on exit.

    `qdrant`: `QDRANT_URL`, else `QDRANT_PATH`, else `default_path` on disk (else
    `:memory:`). `postgres`: an `AsyncPostgresStore` at `DATABASE_URL` without a vector index
    (pgvector is often missing; MemoryManager ranks with its own embedder). `memory`: an
    `InMemoryStore` with the memory index. Blocking setup (client, collection) runs in a
    worker thread.

    Raises:
        MemorySettingsError: the settings cannot work (no DATABASE_URL, missing extra).
        Exception: whatever the backend raises when it cannot be opened (callers decide
            whether to run without memory).
    """
    settings = settings or MemorySettings.from_env()
    if settings.store == "postgres":
        if not settings.database_url:
            raise MemorySettingsError("WEFT_MEMORY_STORE=postgres needs DATABASE_URL")
        try:
            from langgraph.store.postgres.aio import AsyncPostgresStore
        except ImportError as exc:
            raise MemorySettingsError(
                "WEFT_MEMORY_STORE=postgres needs the postgres extra: pip install "
                "'weftgraph[postgres]'"
            ) from exc
        async with AsyncPostgresStore.from_conn_string(settings.database_url) as pg:
            await pg.setup()
            logger.info("memory store: Postgres (no vector index)")
            yield pg
        return
    if settings.store == "memory":
        from langgraph.store.memory import InMemoryStore

        embeddings, dims = make_embeddings(settings)
        yield InMemoryStore(index=memory_index(embeddings, dims))
        return
    if not (settings.qdrant_url or settings.qdrant_path) and default_path is not None:
        default_path.mkdir(parents=True, exist_ok=True)
        settings = dataclasses.replace(settings, qdrant_path=str(default_path))
    store = await asyncio.to_thread(make_store, settings)
    try:
        yield store
    finally:
        client = getattr(store, "client", None)
        if client is not None:
            await asyncio.to_thread(client.close)


@asynccontextmanager
async def open_store_or_none(
    wanted: bool,
    settings: MemorySettings | None = None,
    *,
    default_path: Path | None = DEFAULT_LOCAL_PATH,
) -> AsyncIterator[tuple[BaseStore | None, str | None]]:
    """`open_store` for an application run that must not fail because memory is down.

    Yields `(store, None)`, or `(None, problem)` when the backend cannot be opened (the run
    then continues and its memory steps report `degraded=["memory"]`), or `(None, None)` when
    not `wanted` (nothing is opened, so runs without memory pay nothing).

    Raises:
        MemorySettingsError: the memory settings themselves are wrong (a usage error).
    """
    if not wanted:
        yield None, None
        return
    async with AsyncExitStack() as stack:
        store: BaseStore | None = None
        problem: str | None = None
        try:
            store = await stack.enter_async_context(
                open_store(settings, default_path=default_path)
            )
        except MemorySettingsError:
            raise
        except Exception as exc:
            # Any backend failure (server down, local folder locked by another process,
            # collection built for other dims) means "no memory for this run", not "no run".
            logger.warning("memory store unavailable, running without memory: %r", exc)
            problem = f"memory store unavailable ({exc}); running without memory"
        yield store, problem
