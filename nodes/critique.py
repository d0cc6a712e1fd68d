"""Critique, evaluation and reflection: schemas and helpers of the reflection family.

Used by critic-refine (graphs/refine.py) and Reflexion (graphs/reflexion.py). Also holds how
Reflexion's lessons are kept in long-term memory: through `MemoryManager` as procedural
memories scoped to the `reflexion` agent (`("memories", user, "procedural", "reflexion")`,
content-addressed keys, importance kept at the highest seen, access counts), so any store the
run has (InMemoryStore, Postgres, Qdrant, the server's) works the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.messages import AnyMessage
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from memory.manager import Memory
from nodes.context import Context, ModelRole
from nodes.memory_nodes import manager_for
from nodes.model import ModelOverride, message_text, resolve_model
from nodes.state import ModelUsage, usage_update

logger = logging.getLogger(__name__)

CRITERIA = ("correctness", "completeness", "clarity", "efficiency")

LESSON_AGENT = "reflexion"
"""The agent Reflexion's lessons are scoped to (other agents never see them as lessons)."""
LESSON_SOURCE = "reflexion"
"""Provenance of a lesson: model-written, so recalled elsewhere it is data, not instructions."""


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


async def remember_lesson(
    store: BaseStore, *, context: Context, lesson: str, task: str, importance: float
) -> Memory:
    """Keep one lesson as a procedural memory of the run's user, scoped to Reflexion.

    Raises:
        MemoryUnavailableError: the store failed (callers degrade).
        InvalidMemoryError: the lesson or the run's user/org cannot be stored.
    """
    memory = await manager_for(store, context, agent=LESSON_AGENT).remember(
        lesson,
        kind="procedural",
        importance=importance,
        agent_scoped=True,
        source=LESSON_SOURCE,
        task=task,
    )
    logger.info("stored a reflexion lesson for user %s", context.user_id)
    return memory


async def recall_lessons(
    store: BaseStore, *, context: Context, task: str, limit: int
) -> list[str]:
    """Up to `limit` of the user's Reflexion lessons, ranked for `task` by the memory blend
    (similarity, importance, recency; see memory/manager.py).

    Raises:
        MemoryUnavailableError: the store failed (callers degrade).
    """
    if limit <= 0:
        return []
    result = await manager_for(store, context, agent=LESSON_AGENT).recall(
        task, k=limit, agent_only=True
    )
    return [m.content for m in result.memories]


__all__ = [
    "CRITERIA",
    "Critique",
    "Evaluation",
    "Reflection",
    "ask_text",
    "best_draft_index",
    "recall_lessons",
    "remember_lesson",
]
