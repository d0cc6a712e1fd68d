"""Deterministic memory upkeep: de-duplicate, promote, prune, and pick episodes to consolidate.

Each step is a documented rule over one user's memories (the `memory_maintenance` graph runs
them, plus one model call that turns old episodes into insights):

- de-duplicate: within a kind, memories whose content embeddings have cosine ≥
  `dedup_threshold` are merged into the one with the higher importance (then more accesses,
  then older); the survivor keeps the higher importance and the summed access count.
- promote: every `promote_every` accesses since the last promotion raise importance by
  `promote_step` (capped at 1): what keeps being recalled matters.
- prune: expired memories, and memories below `prune_below` importance not accessed for
  `stale_days`, are deleted.
- consolidate: episodic memories older than `episode_age_days` and not yet consolidated, once
  there are at least `min_episodes`, are summarised into semantic insights; the episodes
  are then marked `consolidated` and their importance capped at `prune_below` so that
  pruning removes them once stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from langgraph.store.base import BaseStore

from memory.manager import (
    KINDS,
    NAMESPACE_ROOT,
    Memory,
    MemoryKind,
    MemoryManager,
    MemoryUnavailableError,
    parse_timestamp,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenancePolicy:
    """Thresholds of the maintenance rules (module docstring)."""

    dedup_threshold: float = 0.92
    episode_age_days: float = 7.0
    min_episodes: int = 3
    max_episodes: int = 50
    promote_every: int = 3
    promote_step: float = 0.1
    prune_below: float = 0.2
    stale_days: float = 30.0
    scan_limit: int = 1000
    """Most memories per kind one run looks at."""


async def memory_users(store: BaseStore, limit: int = 10_000) -> list[str]:
    """Every user id that has memories in `store`.

    Raises:
        MemoryUnavailableError: the store failed.
    """
    try:
        namespaces = await store.alist_namespaces(
            prefix=(NAMESPACE_ROOT,), max_depth=2, limit=limit
        )
    except Exception as exc:
        # Any backend error means "no memory right now"; logged and re-raised as ours.
        logger.warning("listing memory users failed: %r", exc)
        raise MemoryUnavailableError(f"memory store failed listing users: {exc!r}") from exc
    return sorted({ns[1] for ns in namespaces if len(ns) >= 2})


async def _all(manager: MemoryManager, kind: MemoryKind, limit: int) -> list[Memory]:
    found: list[Memory] = []
    page = 200
    while len(found) < limit:
        batch = await manager.list_memories(kind, limit=page, offset=len(found))
        found += batch
        if len(batch) < page:
            break
    return found[:limit]


async def deduplicate(manager: MemoryManager, policy: MaintenancePolicy) -> int:
    """Merge near-identical memories; returns how many were removed."""
    removed = 0
    for kind in KINDS:
        memories = await _all(manager, kind, policy.scan_limit)
        gone: set[str] = set()
        original: dict[str, Memory] = {m.id: m for m in memories}
        merged = dict(original)
        for a, b, _ in await manager.similar_pairs(memories, policy.dedup_threshold):
            if a.id in gone or b.id in gone:
                continue
            first, second = merged[a.id], merged[b.id]
            keep, drop = sorted(
                (first, second),
                key=lambda m: (-m.importance, -m.access_count, m.created_at, m.id),
            )
            merged[keep.id] = replace(
                keep,
                importance=max(keep.importance, drop.importance),
                access_count=keep.access_count + drop.access_count,
            )
            gone.add(drop.id)
        for memory_id in gone:
            await manager.forget([memory_id], kinds=[kind])
        for memory_id, memory in merged.items():
            if memory_id not in gone and memory != original[memory_id]:
                await manager.update(memory)
        removed += len(gone)
    return removed


async def promote(manager: MemoryManager, policy: MaintenancePolicy) -> int:
    """Raise the importance of often-recalled memories; returns how many changed."""
    promoted = 0
    for kind in KINDS:
        for memory in await _all(manager, kind, policy.scan_limit):
            since = memory.access_count - int(memory.extra.get("promoted_at_access", 0))
            steps = since // policy.promote_every
            if steps <= 0 or memory.importance >= 1.0:
                continue
            await manager.update(
                replace(
                    memory,
                    importance=min(1.0, round(memory.importance + steps * policy.promote_step, 4)),
                    extra={**memory.extra, "promoted_at_access": memory.access_count},
                )
            )
            promoted += 1
    return promoted


async def prune(manager: MemoryManager, policy: MaintenancePolicy) -> int:
    """Delete expired and stale low-importance memories; returns how many."""
    expired = await manager.purge_expired()
    now = manager.clock()
    stale_before = now - timedelta(days=policy.stale_days)
    doomed: list[tuple[MemoryKind, str]] = []
    for kind in KINDS:
        for memory in await _all(manager, kind, policy.scan_limit):
            if memory.importance < policy.prune_below and parse_timestamp(memory.last_accessed) < (
                stale_before
            ):
                doomed.append((kind, memory.id))
    for kind, memory_id in doomed:
        await manager.forget([memory_id], kinds=[kind])
    return expired + len(doomed)


async def episodes_to_consolidate(
    manager: MemoryManager, policy: MaintenancePolicy
) -> list[Memory]:
    """Old, unconsolidated episodes (oldest first), or [] when fewer than `min_episodes`."""
    cutoff = manager.clock() - timedelta(days=policy.episode_age_days)
    episodes = [
        m
        for m in await _all(manager, "episodic", policy.scan_limit)
        if not m.extra.get("consolidated") and parse_timestamp(m.created_at) <= cutoff
    ]
    episodes.sort(key=lambda m: m.created_at)
    return episodes[: policy.max_episodes] if len(episodes) >= policy.min_episodes else []


async def mark_consolidated(
    manager: MemoryManager, episodes: list[Memory], policy: MaintenancePolicy
) -> None:
    """Flag episodes as consolidated and lower them to the pruning threshold."""
    for episode in episodes:
        await manager.update(
            replace(
                episode,
                importance=min(episode.importance, policy.prune_below),
                extra={**episode.extra, "consolidated": True},
            )
        )
