"""Deterministic memory upkeep: de-duplicate, promote, prune, and pick episodes to consolidate.

Each step is a documented rule over one user's memories (the `memory_maintenance` graph runs
them, plus one model call that turns old episodes into insights):

- de-duplicate: within one namespace (kind, and agent for scoped procedures) and one trust
  level (instructions are never merged into data), memories whose content embeddings have
  cosine ≥ `dedup_threshold` are merged into the one with the higher importance (then more
  accesses, then older); the survivor keeps the higher importance and the summed accesses.
- promote: every `promote_every` accesses since the last promotion raise importance by
  `promote_step` (capped at 1): what keeps being recalled matters.
- prune: expired memories are deleted (the store's own TTL sweep first, where it has one),
  and so are memories not accessed for `stale_days` that are below `prune_below` importance
  or already consolidated into an insight.
- consolidate: episodic memories older than `episode_age_days` and not yet consolidated, once
  there are at least `min_episodes`, are summarised into semantic insights; the episodes
  are then marked `consolidated` and their importance capped at `prune_below`, so they rank
  below their insight while still recalled and are pruned once stale.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NamedTuple

from langgraph.store.base import BaseStore

from memory.manager import (
    KINDS,
    NAMESPACE_ROOT,
    ORG_NAMESPACE_ROOT,
    Memory,
    MemoryKind,
    MemoryManager,
    MemoryUnavailableError,
    decode_label,
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


class MemoryOwner(NamedTuple):
    """Whose memories a namespace holds: a user, in an organisation or not."""

    user_id: str
    org_id: str | None = None


async def memory_users(store: BaseStore, limit: int = 10_000) -> list[MemoryOwner]:
    """Every (user, org) that has memories in `store`, users outside any org first.

    Raises:
        MemoryUnavailableError: the store failed.
    """
    try:
        plain, in_orgs = await asyncio.gather(
            store.alist_namespaces(prefix=(NAMESPACE_ROOT,), max_depth=2, limit=limit),
            store.alist_namespaces(prefix=(ORG_NAMESPACE_ROOT,), max_depth=3, limit=limit),
        )
    except Exception as exc:
        # Any backend error means "no memory right now"; logged and re-raised as ours.
        logger.warning("listing memory users failed: %r", exc)
        raise MemoryUnavailableError(f"memory store failed listing users: {exc!r}") from exc
    owners = {MemoryOwner(decode_label(ns[1])) for ns in plain if len(ns) >= 2}
    owners |= {
        MemoryOwner(decode_label(ns[2]), decode_label(ns[1])) for ns in in_orgs if len(ns) >= 3
    }
    return sorted(owners, key=lambda o: (o.org_id is not None, o.org_id or "", o.user_id))


async def sweep_store_ttl(store: BaseStore) -> int:
    """Run the store's own TTL sweep, if it has one; returns how many items it deleted.

    Stores built with `omit_expired` (Qdrant, see memory/store.py) hide expired items from
    every read, so `MemoryManager.purge_expired` never sees them; without this sweep they
    would stay on disk for good unless a background sweeper runs.

    Raises:
        MemoryUnavailableError: the store failed.
    """
    sweep = getattr(store, "sweep_ttl", None)
    if sweep is None or not getattr(store, "ttl_config", None):
        return 0
    try:
        if inspect.iscoroutinefunction(sweep):
            return int(await sweep())
        # The sync Qdrant/Postgres stores block: sweep in a worker thread.
        return int(await asyncio.to_thread(sweep))
    except Exception as exc:
        logger.warning("store TTL sweep failed: %r", exc)
        raise MemoryUnavailableError(f"memory store failed sweeping TTLs: {exc!r}") from exc


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
        groups: dict[tuple[tuple[str, ...], bool], list[Memory]] = defaultdict(list)
        for memory in await _all(manager, kind, policy.scan_limit):
            groups[(memory.namespace, memory.is_instruction)].append(memory)
        for memories in groups.values():
            removed += await _merge_duplicates(manager, memories, policy)
    return removed


async def _merge_duplicates(
    manager: MemoryManager, memories: list[Memory], policy: MaintenancePolicy
) -> int:
    gone: set[str] = set()
    original: dict[str, Memory] = {m.id: m for m in memories}
    merged = dict(original)
    for a, b, _ in await manager.similar_pairs(memories, policy.dedup_threshold):
        if a.id in gone or b.id in gone:
            continue
        keep, drop = sorted(
            (merged[a.id], merged[b.id]),
            key=lambda m: (-m.importance, -m.access_count, m.created_at, m.id),
        )
        merged[keep.id] = replace(
            keep,
            importance=max(keep.importance, drop.importance),
            access_count=keep.access_count + drop.access_count,
        )
        gone.add(drop.id)
    await manager.delete(original[memory_id] for memory_id in gone)
    for memory_id, memory in merged.items():
        if memory_id not in gone and memory != original[memory_id]:
            await manager.update(memory)
    return len(gone)


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
    doomed: list[Memory] = []
    for kind in KINDS:
        for memory in await _all(manager, kind, policy.scan_limit):
            unimportant = memory.importance < policy.prune_below
            # Consolidated episodes sit exactly at `prune_below` (mark_consolidated): their
            # content lives on in an insight, so the flag, not the importance, retires them.
            retired = bool(memory.extra.get("consolidated"))
            stale = parse_timestamp(memory.last_accessed) < stale_before
            if stale and (unimportant or retired):
                doomed.append(memory)
    return expired + await manager.delete(doomed)


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
