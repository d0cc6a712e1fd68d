"""Critique, evaluation and reflection: schemas and helpers of the reflection family.

Used by critic-refine (graphs/refine.py) and Reflexion (graphs/reflexion.py). Also holds how
Reflexion's lessons are kept in long-term memory: the LangGraph `BaseStore` layout shared with
memory/ (namespace `("memories", user_id, "procedural")`, content-addressed keys), so any store
the run has (InMemoryStore, Postgres, Qdrant, the server's) works the same.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AnyMessage
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from nodes.context import Context, ModelRole
from nodes.model import ModelOverride, message_text, resolve_model
from nodes.state import ModelUsage, usage_update

logger = logging.getLogger(__name__)

CRITERIA = ("correctness", "completeness", "clarity", "efficiency")

MEMORY_KIND = "procedural"
MEMORY_SOURCE = "reflexion"


class Critique(BaseModel):
    """A critic's scores (1-5 each) and suggestions for one draft."""

    correctness: int = Field(ge=1, le=5, description="Is it right? 1 (wrong) to 5 (fully).")
    completeness: int = Field(ge=1, le=5, description="Does it cover the whole task? 1-5.")
    clarity: int = Field(ge=1, le=5, description="Is it easy to follow? 1-5.")
    efficiency: int = Field(ge=1, le=5, description="Concise, without waste? 1-5.")
    suggestions: list[str] = Field(
        default_factory=list, description="Concrete changes that would raise the scores."
    )

    @property
    def scores(self) -> dict[str, int]:
        """The four scores by criterion."""
        return {name: int(getattr(self, name)) for name in CRITERIA}

    @property
    def average(self) -> float:
        """Mean of the four scores."""
        return sum(self.scores.values()) / len(CRITERIA)


class Evaluation(BaseModel):
    """An evaluator's verdict on one attempt (from a rubric model call or a check function)."""

    passed: bool = Field(description="True only if the answer satisfies the whole rubric.")
    feedback: str = Field(description="Which rubric points fail and why (or why it passes).")
    score: float | None = Field(
        default=None, ge=0, le=1, description="Optional overall quality from 0 to 1."
    )


class Reflection(BaseModel):
    """A verbal self-reflection on a failed attempt."""

    diagnosis: str = Field(description="Why the attempt failed, in one or two sentences.")
    lesson: str = Field(
        description="One reusable instruction in the imperative that fixes the failure."
    )
    importance: float = Field(
        default=0.5, ge=0, le=1, description="How useful the lesson is for future tasks (0-1)."
    )


async def ask_text(
    messages: Sequence[AnyMessage],
    *,
    role: ModelRole,
    context: Context,
    model: ModelOverride = None,
) -> tuple[str, dict[str, ModelUsage]]:
    """One free-text model call (a draft, not a decision): returns the text and its usage."""
    chat_model, model_id = resolve_model(role, context, model)
    reply = await chat_model.ainvoke(list(messages))
    return message_text(reply.content), usage_update(
        model_id, getattr(reply, "usage_metadata", None)
    )


def best_draft_index(averages: Sequence[float | None]) -> int | None:
    """Index of the highest-scored draft; ties go to the later (more refined) one."""
    best: int | None = None
    for i, value in enumerate(averages):
        if value is None:
            continue
        if best is None or value >= (averages[best] or 0.0):
            best = i
    return best


# --- long-term memory of lessons ------------------------------------------------------------


def normalise_memory_text(content: str) -> str:
    """Lower-case, whitespace-collapsed text: equal lessons get equal keys."""
    return " ".join(content.lower().split())


def memory_key(content: str, kind: str = MEMORY_KIND) -> str:
    """Content-addressed key: uuid5 of `"<kind>:<normalised content>"` (same lesson, same key,
    so storing it twice updates instead of duplicating)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{normalise_memory_text(content)}"))


def memory_namespace(user_id: str) -> tuple[str, ...]:
    """Where a user's procedural memories live."""
    return ("memories", user_id, MEMORY_KIND)


def store_has_index(store: BaseStore) -> bool:
    """Whether `store` was configured with a vector index (so `query=` ranks by meaning)."""
    return bool(getattr(store, "index_config", None))


async def remember_lesson(
    store: BaseStore, *, user_id: str, lesson: str, task: str, importance: float
) -> str:
    """Write one lesson as a procedural memory and return its key."""
    key = memory_key(lesson)
    value: dict[str, Any] = {
        "content": lesson,
        "kind": MEMORY_KIND,
        "source": MEMORY_SOURCE,
        "task": task,
        "importance": float(importance),
        "created_at": datetime.now(UTC).isoformat(),
    }
    await store.aput(memory_namespace(user_id), key, value)
    logger.info("stored a reflexion lesson for user %s", user_id)
    logger.debug("lesson key %s", key)
    return key


async def recall_lessons(store: BaseStore, *, user_id: str, task: str, limit: int) -> list[str]:
    """Up to `limit` procedural memories for the user: by similarity to `task` when the store
    has an index, otherwise the most important (then newest) ones."""
    if limit <= 0:
        return []
    namespace = memory_namespace(user_id)
    if store_has_index(store):
        items = await store.asearch(namespace, query=task, limit=limit)
    else:
        # Without an index the store cannot rank by meaning: take a wider page, rank ourselves.
        items = await store.asearch(namespace, limit=max(limit * 5, 20))
        items = sorted(
            items,
            key=lambda item: (
                float(item.value.get("importance", 0.0) or 0.0),
                str(item.value.get("created_at", "")),
            ),
            reverse=True,
        )[:limit]
    lessons = [str(item.value.get("content", "")) for item in items]
    return [lesson for lesson in lessons if lesson.strip()]


__all__ = [
    "CRITERIA",
    "Critique",
    "Evaluation",
    "Reflection",
    "ask_text",
    "best_draft_index",
    "memory_key",
    "memory_namespace",
    "normalise_memory_text",
    "recall_lessons",
    "remember_lesson",
    "store_has_index",
]
