"""Stores for tests and demos: the same memory index on every backend, and a broken store.

Not used by production code paths; kept in the package so every test tier (and users'
own tests) can build identical stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.memory import InMemoryStore
from pydantic import Field

from memory.embeddings import HashingEmbeddings
from memory.settings import MemorySettings
from memory.store import make_store, memory_index

TEST_DIMS = 64


def fake_embeddings(dims: int = TEST_DIMS) -> HashingEmbeddings:
    """The lexical hash embedder at a small size (fast in Qdrant's local exact scan)."""
    return HashingEmbeddings(dims)


def in_memory_store(dims: int = TEST_DIMS) -> InMemoryStore:
    """InMemoryStore with the memory index over `content`."""
    return InMemoryStore(index=memory_index(fake_embeddings(dims), dims))


def qdrant_memory_store(dims: int = TEST_DIMS) -> BaseStore:
    """Qdrant in local `:memory:` mode with the memory index (a fresh collection)."""
    settings = MemorySettings(collection=f"test_{uuid.uuid4().hex[:8]}", embeddings="hash")
    return make_store(settings, embeddings=fake_embeddings(dims), dims=dims)


class StoreDownError(ConnectionError):
    """What `BrokenStore` raises for every operation."""


class BrokenStore(BaseStore):
    """A store whose every operation raises, as an unreachable server would."""

    def __init__(self, message: str = "store unreachable") -> None:
        self.message = message
        self.calls = 0

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Fail."""
        self.calls += 1
        raise StoreDownError(self.message)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Fail."""
        self.calls += 1
        raise StoreDownError(self.message)


def describe(store: Any) -> str:
    """Short backend name for test ids and benchmark output."""
    return type(store).__name__


class ExtractiveSummarizer(BaseChatModel):
    """Chat-model double for summarisation: replies with every distinct line containing
    `marker` that it is shown (the previous summary included), nothing else.

    Like a faithful summariser it keeps only what it sees, so facts survive repeated
    summarisation only if each request carries the previous summary. `requests` records
    every input.
    """

    marker: str = "FACT:"
    requests: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "extractive-summarizer"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.requests.append(list(messages))
        lines = [
            line.strip().removeprefix("User: ")
            for message in messages
            for line in str(message.content).splitlines()
            if self.marker in line
        ]
        summary = "\n".join(dict.fromkeys(lines)) or "Nothing to keep."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(summary))])


def stored_bytes(saver: Any) -> int:
    """Every byte an `InMemorySaver` holds: checkpoints, channel blobs and pending writes."""

    def walk(value: Any) -> int:
        if isinstance(value, bytes | bytearray):
            return len(value)
        if isinstance(value, dict):
            return sum(walk(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(walk(v) for v in value)
        return 0

    return walk(dict(saver.storage)) + walk(dict(saver.blobs)) + walk(dict(saver.writes))
