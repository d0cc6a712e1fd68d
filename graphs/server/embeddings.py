"""The embedder behind the server store's vector index (`langgraph.json` `store.index.embed`).

The server embeds each memory's `content` with it on `put` and ranks `search(query=...)` by
similarity, which is what `memory.manager.MemoryManager` expects from an indexed store. The
choice follows `memory.settings` (`WEFT_EMBEDDINGS`), always at `INDEX_DIMS` dimensions
because `store.index.dims` in `langgraph.json` is fixed. With `auto`:

1. OpenAI-compatible `/v1/embeddings` (`text-embedding-3-small`, honouring OPENAI_BASE_URL)
   when `OPENAI_API_KEY` is set;
2. else the offline MiniLM extra when installed (384-d, zero-padded to `INDEX_DIMS`, which
   leaves every cosine similarity unchanged);
3. else the lexical hash embedder, with a WARNING: word overlap, not meaning. It is the
   documented offline/test fallback only; set `WEFT_EMBEDDINGS=hash` to choose it on purpose.

The chosen embedder is logged once at startup (INFO), so a deployment can see what it runs.
"""

from __future__ import annotations

import dataclasses
import logging

from langchain_core.embeddings import Embeddings

from memory.embeddings import (
    HashingEmbeddings,
    MiniLMEmbeddings,
    ZeroPaddedEmbeddings,
    make_embeddings,
    minilm_available,
)
from memory.settings import DEFAULT_OPENAI_EMBEDDING_MODEL, MemorySettings

logger = logging.getLogger(__name__)

INDEX_DIMS = 1536
"""Must equal `store.index.dims` in langgraph.json (text-embedding-3-small's native size)."""


def server_choice(settings: MemorySettings) -> str:
    """`WEFT_EMBEDDINGS` resolved for the server: `openai:<model>`, `minilm` or `hash`."""
    if settings.embeddings != "auto":
        return settings.embeddings
    if settings.openai_api_key:
        return f"openai:{DEFAULT_OPENAI_EMBEDDING_MODEL}"
    return "minilm" if minilm_available() else "hash"


def server_embeddings(settings: MemorySettings | None = None) -> Embeddings:
    """The embedder the settings ask for, producing `INDEX_DIMS`-dimensional vectors.

    Raises:
        ValueError: the chosen model cannot produce `INDEX_DIMS`-d vectors.
    """
    settings = settings or MemorySettings.from_env()
    choice = server_choice(settings)
    if choice == "hash":
        if settings.embeddings == "auto":
            logger.warning(
                "server memory embeddings: no OPENAI_API_KEY and no offline extra "
                "(weftgraph[offline-embeddings]); falling back to the LEXICAL hash embedder: "
                "recall matches shared words, not meaning. Set WEFT_EMBEDDINGS to choose."
            )
        else:
            logger.info("server memory embeddings: hash (lexical, chosen by WEFT_EMBEDDINGS)")
        return HashingEmbeddings(INDEX_DIMS)
    if choice == "minilm":
        logger.info("server memory embeddings: MiniLM (offline, 384-d padded to %d)", INDEX_DIMS)
        return ZeroPaddedEmbeddings(MiniLMEmbeddings(), INDEX_DIMS)
    embedder, dims = make_embeddings(
        dataclasses.replace(settings, embeddings=choice, embedding_dims=INDEX_DIMS)
    )
    if dims != INDEX_DIMS:
        raise ValueError(
            f"WEFT_EMBEDDINGS={settings.embeddings!r} gives {dims}-d vectors; the server store "
            f"index expects {INDEX_DIMS} (langgraph.json store.index.dims)"
        )
    logger.info("server memory embeddings: %s at %d dims", choice, INDEX_DIMS)
    return embedder


embeddings = server_embeddings()
