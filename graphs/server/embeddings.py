"""The embedder behind the server store's vector index (`langgraph.json` `store.index.embed`).

The server embeds each memory's `content` with it on `put` and ranks `search(query=...)` by
similarity, which is what `memory.manager.MemoryManager` expects from an indexed store. The
choice follows `memory.settings` (WEFT_EMBEDDINGS; `auto` means OpenAI-compatible
/v1/embeddings when OPENAI_API_KEY is set, else the lexical hash embedder), always at
`INDEX_DIMS` dimensions because `store.index.dims` in `langgraph.json` is fixed.
"""

from __future__ import annotations

import dataclasses

from langchain_core.embeddings import Embeddings

from memory.embeddings import make_embeddings
from memory.settings import MemorySettings

INDEX_DIMS = 1536
"""Must equal `store.index.dims` in langgraph.json (text-embedding-3-small's native size)."""


def server_embeddings(settings: MemorySettings | None = None) -> Embeddings:
    """The embedder the settings ask for, producing `INDEX_DIMS`-dimensional vectors."""
    settings = settings or MemorySettings.from_env()
    if settings.embeddings == "auto" and not settings.openai_api_key:
        # auto would pick MiniLM (384-d) when installed; the index size is fixed, so stay on
        # the hash embedder, which takes any size.
        settings = dataclasses.replace(settings, embeddings="hash")
    embedder, dims = make_embeddings(dataclasses.replace(settings, embedding_dims=INDEX_DIMS))
    if dims != INDEX_DIMS:
        raise ValueError(
            f"WEFT_EMBEDDINGS={settings.embeddings!r} gives {dims}-d vectors; the server store "
            f"index expects {INDEX_DIMS} (langgraph.json store.index.dims)"
        )
    return embedder


embeddings = server_embeddings()
