"""Memory settings read from the environment, in this one place.

| Variable | Meaning | Default |
| --- | --- | --- |
| `WEFT_MEMORY_STORE` | `qdrant`, `postgres` (at `DATABASE_URL`) or `memory` | `qdrant` |
| `QDRANT_URL` | A Qdrant server URL, or `:memory:` for an in-process store | local mode |
| `QDRANT_PATH` | Folder of an on-disk local Qdrant (if no `QDRANT_URL`) | CLI: `.weft/memory` |
| `QDRANT_API_KEY` | API key for `QDRANT_URL` | unset |
| `WEFT_MEMORY_COLLECTION` | Qdrant collection holding the memories | `weft_memories` |
| `WEFT_EMBEDDINGS` | `auto`, `openai:<model>`, `minilm` or `hash` | `auto` |
| `WEFT_EMBEDDING_DIMS` | Vector size for `openai:` models that allow choosing it | model default |

`auto` picks OpenAI embeddings when `OPENAI_API_KEY` is set, else the offline MiniLM extra
when it is installed, else the lexical `hash` embedder (test-grade; a warning is logged).

`DATABASE_URL` alone does not move memories to Postgres: it selects the CLI's checkpointer,
and Postgres here often lacks pgvector, so the vector store stays Qdrant unless
`WEFT_MEMORY_STORE=postgres` asks for it (then MemoryManager ranks with its own embedder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_COLLECTION = "weft_memories"
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_CHOICES = ("auto", "openai:<model>", "minilm", "hash")
STORE_CHOICES = ("qdrant", "postgres", "memory")


class MemorySettingsError(ValueError):
    """A memory environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class MemorySettings:
    """Where memories live and how they are embedded."""

    store: str = "qdrant"
    """Backend: `qdrant`, `postgres` or `memory` (in-process, nothing kept)."""
    database_url: str | None = None
    """Postgres URL for `store="postgres"` (`DATABASE_URL`)."""
    qdrant_url: str | None = None
    """Qdrant server URL or `:memory:`; None means local mode (`qdrant_path` or in memory)."""
    qdrant_path: str | None = None
    """Folder of an on-disk local Qdrant; ignored when `qdrant_url` is set."""
    qdrant_api_key: str | None = None
    collection: str = DEFAULT_COLLECTION
    embeddings: str = "auto"
    """`auto`, `openai:<model>`, `minilm` or `hash` (see the module docstring)."""
    embedding_dims: int | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MemorySettings:
        """Read the settings from `env` (default: `os.environ`)."""
        env = os.environ if env is None else env
        dims_raw = env.get("WEFT_EMBEDDING_DIMS") or None
        try:
            dims = int(dims_raw) if dims_raw else None
        except ValueError:
            raise MemorySettingsError(
                f"WEFT_EMBEDDING_DIMS must be a positive integer, got {dims_raw!r}"
            ) from None
        choice = (env.get("WEFT_EMBEDDINGS") or "auto").strip()
        if choice not in ("auto", "minilm", "hash") and not choice.startswith("openai:"):
            raise MemorySettingsError(
                f"WEFT_EMBEDDINGS={choice!r} is not supported; expected one of "
                f"{', '.join(EMBEDDING_CHOICES)}"
            )
        store = (env.get("WEFT_MEMORY_STORE") or "qdrant").strip()
        if store not in STORE_CHOICES:
            raise MemorySettingsError(
                f"WEFT_MEMORY_STORE={store!r} is not supported; expected one of "
                f"{', '.join(STORE_CHOICES)}"
            )
        return cls(
            store=store,
            database_url=env.get("DATABASE_URL") or None,
            qdrant_url=env.get("QDRANT_URL") or None,
            qdrant_path=env.get("QDRANT_PATH") or None,
            qdrant_api_key=env.get("QDRANT_API_KEY") or None,
            collection=env.get("WEFT_MEMORY_COLLECTION") or DEFAULT_COLLECTION,
            embeddings=choice,
            embedding_dims=dims,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
        )
