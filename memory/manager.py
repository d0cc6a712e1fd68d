"""MemoryManager: long-term memories of one user over any LangGraph `BaseStore`.

Layout (shared with every writer, e.g. Reflexion's reflections):

- namespace `("memories", <user>, <kind>)`, or `("org_memories", <org>, <user>, <kind>)` when
  the run names an organisation (`Context.org_id`): a separate root, so no prefix search of one
  layout can reach into the other. Kind is one of `semantic` (facts and preferences),
  `episodic` (what happened in past runs), `procedural` (instructions and examples to follow).
  Procedural memories may be scoped to one agent: `(..., <user>, "procedural", <agent>)`; an
  agent recalls the user-wide ones plus its own, never another agent's.
- labels are `namespace_label(...)`-encoded (`%` → `%25`, `.` → `%2E`): LangGraph stores refuse
  periods in labels, and user ids are often e-mail addresses.
- key `memory_key(kind, content, agent)`: a uuid5 of the kind (and agent) and the normalised
  content, so storing the same thing twice updates one item instead of adding a duplicate;
- value `{"content", "kind", "importance", "created_at", "last_accessed", "access_count",
  "expires_at"?, "agent"?, "source"?, ...extra}`, plain JSON only (ISO-8601 UTC timestamps).
  `source` is provenance: only procedural memories whose source is in `TRUSTED_SOURCES`
  (saved by the user or an operator through code or the store API) count as instructions;
  everything else, including what a model saved with the `save_memory` tool, is data.

Ranking (`recall`) blends three signals, each in [0, 1]:

    score = w_sim * similarity + w_imp * importance + w_rec * 0.5 ** (age_days / half_life)

where `similarity` is the store's vector score clamped to [0, 1] (or a cosine computed here
when the store has no index), and `age_days` counts from the last access. Defaults:
`RankingWeights()`. The ranked list then fills the token budget greedily: an item that does
not fit is skipped and shorter ones further down still get their chance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast, get_args

from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, GetOp, Item, PutOp, SearchItem

from memory.tokens import count_tokens

logger = logging.getLogger(__name__)

MemoryKind = Literal["semantic", "episodic", "procedural"]
KINDS: tuple[MemoryKind, ...] = get_args(MemoryKind)
NAMESPACE_ROOT = "memories"
ORG_NAMESPACE_ROOT = "org_memories"
KEY_NAMESPACE = uuid.NAMESPACE_URL
"""uuid5 namespace of memory keys; changing it orphans every stored memory."""

TRUSTED_SOURCES = frozenset({"user", "operator"})
"""`source` values that make a procedural memory an instruction (see the module docstring)."""
AGENT_SOURCE = "agent"
"""`source` of what a model saved through the memory tools (data, never instructions)."""

RESERVED_FIELDS = frozenset(
    {
        "content",
        "kind",
        "importance",
        "created_at",
        "last_accessed",
        "access_count",
        "expires_at",
        "agent",
    }
)
_PAGE = 500


class MemoryError_(RuntimeError):  # noqa: N801 - avoid shadowing the builtin MemoryError
    """Base class of memory errors."""


class MemoryUnavailableError(MemoryError_):
    """The store failed; callers degrade (run without memory) instead of failing."""


class InvalidMemoryError(ValueError):
    """A memory argument is out of range or not storable (kind, importance, extra fields)."""


@dataclass(frozen=True)
class RankingWeights:
    """Weights of the recall blend (see the module docstring) and the recency half-life."""

    similarity: float = 0.6
    importance: float = 0.25
    recency: float = 0.15
    half_life_days: float = 30.0


@dataclass(frozen=True)
class Memory:
    """One stored memory, as read back (plus ranking details after `recall`)."""

    id: str
    kind: MemoryKind
    content: str
    importance: float
    created_at: str
    last_accessed: str
    access_count: int
    expires_at: str | None = None
    agent: str | None = None
    """The agent a procedural memory is scoped to; None means every agent of the user."""
    extra: dict[str, Any] = field(default_factory=dict)
    namespace: tuple[str, ...] = ()
    """Where the item lives (set when read from a store; writes recompute it when empty)."""
    similarity: float | None = None
    score: float | None = None

    @classmethod
    def from_item(cls, item: Item) -> Memory:
        """Read a store item written by `MemoryManager` (or any writer of the layout)."""
        value = item.value
        agent = value.get("agent")
        kind = value.get("kind") or item.namespace[-2 if agent else -1]
        created = value.get("created_at") or item.created_at.isoformat()
        return cls(
            id=item.key,
            kind=cast(MemoryKind, kind),
            content=str(value.get("content", "")),
            importance=float(value.get("importance", 0.5)),
            created_at=created,
            last_accessed=value.get("last_accessed") or created,
            access_count=int(value.get("access_count", 0)),
            expires_at=value.get("expires_at"),
            agent=agent,
            extra={k: v for k, v in value.items() if k not in RESERVED_FIELDS},
            namespace=tuple(item.namespace),
        )

    @property
    def source(self) -> str | None:
        """Who saved the memory (provenance), when the writer said so."""
        source = self.extra.get("source")
        return source if isinstance(source, str) else None

    @property
    def is_instruction(self) -> bool:
        """A procedural memory saved by the user or an operator: to be followed, not weighed."""
        return self.kind == "procedural" and self.source in TRUSTED_SOURCES

    def to_value(self) -> dict[str, Any]:
        """The plain-JSON value stored for this memory."""
        value: dict[str, Any] = {
            **self.extra,
            "content": self.content,
            "kind": self.kind,
            "importance": self.importance,
            "created_at": self.created_at,
            "last_accessed": self.last_accessed,
            "access_count": self.access_count,
        }
        if self.expires_at is not None:
            value["expires_at"] = self.expires_at
        if self.agent is not None:
            value["agent"] = self.agent
        return value

    def line(self) -> str:
        """How the memory is shown to a model: one line, markup neutralised (`prompt_safe`)."""
        return f"- [{self.kind}] {prompt_safe(self.content)}"


@dataclass(frozen=True)
class RecallResult:
    """What `recall` selected, and what it had to leave out."""

    memories: list[Memory]
    tokens: int
    """Tokens of the selected memories' lines (`Memory.line`)."""
    skipped: int
    """Candidates ranked high enough but too long for the remaining budget."""
    considered: int

    def text(self) -> str:
        """The selected memories, one line each."""
        return "\n".join(m.line() for m in self.memories)

    @property
    def instructions(self) -> list[Memory]:
        """Selected memories that are instructions (`Memory.is_instruction`)."""
        return [m for m in self.memories if m.is_instruction]

    @property
    def data(self) -> list[Memory]:
        """Selected memories that are background data (everything else)."""
        return [m for m in self.memories if not m.is_instruction]


_PROMPT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def prompt_safe(text: str) -> str:
    """`text` on one line with `&`, `<`, `>` escaped, for injection inside a tagged block.

    A stored memory is untrusted text that reaches later prompts (other threads, other
    patterns): escaping stops it from closing the block (`</memories>`) or opening a fake
    one, and collapsing newlines stops it from forging extra `- [kind] ...` lines.
    """
    return " ".join(text.split()).translate(_PROMPT_ESCAPES)


def normalise_content(content: str) -> str:
    """Lower-cased text with whitespace collapsed: what makes two memories "the same"."""
    return " ".join(content.lower().split())


def memory_key(kind: str, content: str, agent: str | None = None) -> str:
    """Content-addressed key: uuid5 of `"<kind>:<normalised content>"` (`"<kind>@<agent>:..."`
    for an agent-scoped memory, so it never collides with the user-wide one)."""
    scope = kind if agent is None else f"{kind}@{agent}"
    return str(uuid.uuid5(KEY_NAMESPACE, f"{scope}:{normalise_content(content)}"))


def namespace_label(value: str, what: str = "label") -> str:
    """`value` as a store namespace label: `%` → `%25`, `.` → `%2E`, NUL → `%00`.

    LangGraph stores refuse periods (PostgresStore, the server's store) and NUL bytes in
    labels; the encoding is injective, so two different ids never share a namespace.

    Raises:
        InvalidMemoryError: `value` is empty (`what` names the argument).
    """
    if not value:
        raise InvalidMemoryError(f"{what} must be a non-empty string, got {value!r}")
    return value.replace("%", "%25").replace(".", "%2E").replace("\x00", "%00")


def decode_label(label: str) -> str:
    """Inverse of `namespace_label`."""
    return label.replace("%00", "\x00").replace("%2E", ".").replace("%25", "%")


def user_prefix(user_id: str, org_id: str | None = None) -> tuple[str, ...]:
    """The namespace prefix holding every memory of `user_id` (in `org_id`, if given)."""
    user = namespace_label(user_id, "user_id")
    if org_id is None:
        return (NAMESPACE_ROOT, user)
    return (ORG_NAMESPACE_ROOT, namespace_label(org_id, "org_id"), user)


def memory_namespace(
    user_id: str, kind: str, *, org_id: str | None = None, agent: str | None = None
) -> tuple[str, ...]:
    """The namespace holding `user_id`'s memories of `kind` (scoped to `agent`, if given)."""
    namespace = (*user_prefix(user_id, org_id), kind)
    return namespace if agent is None else (*namespace, namespace_label(agent, "agent"))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(ts: str) -> datetime:
    """Parse a stored ISO-8601 timestamp (naive ones are taken as UTC)."""
    parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_kinds(kinds: Iterable[str]) -> tuple[MemoryKind, ...]:
    checked = tuple(kinds)
    unknown = [k for k in checked if k not in KINDS]
    if unknown:
        raise InvalidMemoryError(
            f"unknown memory kind(s) {', '.join(map(repr, unknown))}; valid kinds: "
            f"{', '.join(KINDS)}"
        )
    return cast(tuple[MemoryKind, ...], checked)


def _plain_json(extra: Mapping[str, Any]) -> dict[str, Any]:
    clash = sorted(set(extra) & RESERVED_FIELDS)
    if clash:
        raise InvalidMemoryError(
            f"extra field(s) {', '.join(map(repr, clash))} are reserved; reserved fields: "
            f"{', '.join(sorted(RESERVED_FIELDS))}"
        )
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(extra), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidMemoryError(
            f"memory extra fields must be plain JSON (str, number, bool, list, dict): {exc}"
        ) from None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class MemoryManager:
    """Remember, recall and forget one user's memories in a LangGraph `BaseStore`.

    Args:
        store: Any BaseStore. With a vector index over `content` (see
            `memory.store.memory_index`) the store ranks by similarity; without one,
            candidates are the newest items and similarity is computed here with `embeddings`.
        user_id: Whose memories these are; every namespace holds it.
        org_id: The user's organisation, when memories are partitioned per org.
        agent: The agent recalling and writing agent-scoped procedural memories; None sees
            only the user-wide ones.
        embeddings: Used only when the store returns no scores (no index) and by
            `similar_pairs`; defaults to the store's own embedder when it has one.
        weights: The ranking blend.
        clock: Current time (UTC); tests pass a fake to move time.
    """

    def __init__(
        self,
        store: BaseStore,
        user_id: str,
        *,
        org_id: str | None = None,
        agent: str | None = None,
        embeddings: Embeddings | None = None,
        weights: RankingWeights | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.prefix = user_prefix(user_id, org_id)  # validates user_id and org_id
        if agent is not None:
            namespace_label(agent, "agent")
        self.store = store
        self.user_id = user_id
        self.org_id = org_id
        self.agent = agent
        self.embeddings = embeddings or getattr(store, "embeddings", None)
        self.weights = weights or RankingWeights()
        self.clock = clock

    # --- plumbing ---

    @asynccontextmanager
    async def _store_call(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except (InvalidMemoryError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Any backend error (network, driver, server) means "no memory right now".
            logger.warning("memory %s failed for user %s: %r", action, self.user_id, exc)
            raise MemoryUnavailableError(f"memory store failed during {action}: {exc!r}") from exc

    async def _search(self, namespace: tuple[str, ...], **kwargs: Any) -> list[SearchItem]:
        # Reads never extend a TTL, whatever the store's own default.
        return await self.store.asearch(namespace, refresh_ttl=False, **kwargs)

    def _namespace(self, kind: str, agent: str | None = None) -> tuple[str, ...]:
        return memory_namespace(self.user_id, kind, org_id=self.org_id, agent=agent)

    def _own_namespaces(self, kinds: Iterable[MemoryKind]) -> list[tuple[str, ...]]:
        """The namespaces this manager reads ids from: each kind, plus its agent's procedures."""
        namespaces = [self._namespace(kind) for kind in kinds]
        if self.agent is not None and "procedural" in kinds:
            namespaces.append(self._namespace("procedural", self.agent))
        return namespaces

    def _visible(self, namespace: Sequence[str], kinds: Iterable[str]) -> bool:
        """Whether a searched item belongs to this user, a wanted kind and this agent."""
        base = len(self.prefix)
        if tuple(namespace[:base]) != self.prefix:
            return False
        rest = tuple(namespace[base:])
        if len(rest) == 1:
            return rest[0] in kinds
        return (
            len(rest) == 2
            and rest[0] == "procedural"
            and "procedural" in kinds
            and self.agent is not None
            and rest[1] == namespace_label(self.agent)
        )

    def _expired(self, memory: Memory, now: datetime) -> bool:
        return memory.expires_at is not None and parse_timestamp(memory.expires_at) <= now

    def _store_ttl(self, memory: Memory, now: datetime) -> float | None:
        """Minutes left for the store's own TTL (kept on every rewrite of the item)."""
        if memory.expires_at is None or not self.store.supports_ttl:
            return None
        return max((parse_timestamp(memory.expires_at) - now).total_seconds() / 60, 1e-3)

    def _put_op(self, memory: Memory, now: datetime) -> PutOp:
        return PutOp(
            memory.namespace or self._namespace(memory.kind, memory.agent),
            memory.id,
            memory.to_value(),
            index=None,
            ttl=self._store_ttl(memory, now),
        )

    # --- writing ---

    async def remember(
        self,
        content: str,
        *,
        kind: MemoryKind = "semantic",
        importance: float = 0.5,
        ttl_minutes: float | None = None,
        agent_scoped: bool = False,
        **extra: Any,
    ) -> Memory:
        """Store `content`; storing the same (normalised) content again updates the item.

        On update the creation time and access count are kept, importance becomes the higher
        of old and new, extra fields are merged and the content takes the new wording.
        `agent_scoped` keeps a procedural memory for this manager's agent only. Pass
        `source=...` for provenance (`TRUSTED_SOURCES` make procedural memories instructions).

        Raises:
            InvalidMemoryError: unknown kind, importance outside [0, 1], empty content,
                non-JSON or reserved extra fields, `agent_scoped` without an agent or for a
                kind other than procedural.
            MemoryUnavailableError: the store failed.
        """
        (kind,) = _check_kinds([kind])
        if agent_scoped and (kind != "procedural" or self.agent is None):
            raise InvalidMemoryError(
                "agent_scoped needs kind='procedural' and a MemoryManager built with agent=...; "
                f"got kind={kind!r}, agent={self.agent!r}"
            )
        agent = self.agent if agent_scoped else None
        if not content.strip():
            raise InvalidMemoryError("memory content must not be empty")
        if not 0.0 <= importance <= 1.0:
            raise InvalidMemoryError(f"importance must be within [0, 1], got {importance!r}")
        if ttl_minutes is not None and ttl_minutes <= 0:
            raise InvalidMemoryError(f"ttl_minutes must be positive, got {ttl_minutes!r}")
        clean_extra = _plain_json(extra)
        now = self.clock()
        key = memory_key(kind, content, agent)
        namespace = self._namespace(kind, agent)
        async with self._store_call("remember"):
            existing = await self.store.aget(namespace, key, refresh_ttl=False)
        previous = Memory.from_item(existing) if existing else None
        if previous is not None and self._expired(previous, now):
            previous = None
        stamp = now.isoformat()
        memory = Memory(
            id=key,
            kind=kind,
            content=content.strip(),
            importance=max(importance, previous.importance) if previous else importance,
            created_at=previous.created_at if previous else stamp,
            last_accessed=previous.last_accessed if previous else stamp,
            access_count=previous.access_count if previous else 0,
            expires_at=(now + timedelta(minutes=ttl_minutes)).isoformat()
            if ttl_minutes is not None
            else (previous.expires_at if previous else None),
            agent=agent,
            extra={**(previous.extra if previous else {}), **clean_extra},
            namespace=namespace,
        )
        async with self._store_call("remember"):
            await self.store.abatch([self._put_op(memory, now)])
        logger.info(
            "memory %s: %s %s for user %s",
            "updated" if previous else "stored",
            kind,
            key,
            self.user_id,
        )
        return memory

    # --- reading ---

    async def get(self, memory_id: str, kinds: Iterable[str] = KINDS) -> Memory | None:
        """The live memory with this id (searching `kinds`), or None."""
        checked = _check_kinds(kinds)
        async with self._store_call("get"):
            items = await self.store.abatch(
                [GetOp(ns, memory_id, refresh_ttl=False) for ns in self._own_namespaces(checked)]
            )
        now = self.clock()
        for item in items:
            if isinstance(item, Item):
                memory = Memory.from_item(item)
                if not self._expired(memory, now):
                    return memory
        return None

    async def list_memories(
        self,
        kind: MemoryKind,
        *,
        limit: int = 100,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
    ) -> list[Memory]:
        """Live memories of one kind, newest first (no ranking, no access update).

        Includes the kind's agent-scoped memories of every agent (maintenance, listings).
        """
        (kind,) = _check_kinds([kind])
        async with self._store_call("list"):
            items = await self._search(
                self._namespace(kind), filter=filter, limit=limit, offset=offset
            )
        now = self.clock()
        return [m for m in map(Memory.from_item, items) if not self._expired(m, now)]

    async def recall(
        self,
        query: str,
        *,
        kinds: Iterable[str] = KINDS,
        k: int = 8,
        token_budget: int | None = None,
        touch: bool = True,
        agent_only: bool = False,
    ) -> RecallResult:
        """The best `k` memories for `query` that fit `token_budget` (None: no limit).

        Searches the kinds (4·k candidates per kind, at least 20), ranks the candidates by
        the blend in the module docstring, then fills the budget greedily, skipping what does
        not fit. With `touch`, the returned memories get `last_accessed` and `access_count`
        updated (one batched write). `agent_only` searches just this manager's agent-scoped
        procedural memories (e.g. Reflexion's own lessons).
        """
        checked = _check_kinds(kinds)
        if agent_only and self.agent is None:
            raise InvalidMemoryError("agent_only needs a MemoryManager built with agent=...")
        if k <= 0 or (token_budget is not None and token_budget <= 0):
            return RecallResult(memories=[], tokens=0, skipped=0, considered=0)
        limit = max(4 * k, 20)
        # All kinds: one search over the user's prefix (one scan instead of three; local
        # Qdrant scans every point per search). Some kinds: one search per kind.
        if agent_only:
            checked = ("procedural",)
            namespaces = [self._namespace("procedural", self.agent)]
        elif set(checked) == set(KINDS):
            namespaces = [self.prefix]
        else:
            namespaces = [self._namespace(kind) for kind in checked]
        async with self._store_call("recall"):
            found = await asyncio.gather(
                *(
                    self._search(ns, query=query or None, limit=limit * len(checked))
                    if len(namespaces) == 1
                    else self._search(ns, query=query or None, limit=limit)
                    for ns in namespaces
                )
            )
        now = self.clock()
        candidates = [
            (item, Memory.from_item(item))
            for items in found
            for item in items
            # Prefix searches also return other agents' procedures: keep only what is ours.
            if self._visible(item.namespace, checked)
        ]
        candidates = [(i, m) for i, m in candidates if not self._expired(m, now)]
        similarities = await self._similarities(query, candidates)
        ranked = sorted(
            (
                replace(m, similarity=sim, score=self._blend(m, sim, now))
                for (_, m), sim in zip(candidates, similarities, strict=True)
            ),
            key=lambda m: (-(m.score or 0.0), m.id),
        )
        chosen: list[Memory] = []
        used = skipped = 0
        for memory in ranked:
            if len(chosen) >= k:
                break
            tokens = count_tokens(memory.line())
            if token_budget is not None and used + tokens > token_budget:
                skipped += 1
                continue
            chosen.append(memory)
            used += tokens
        if touch and chosen:
            chosen = await self._touch(chosen, now)
        logger.debug(
            "recall for user %s: %d chosen, %d skipped, %d tokens",
            self.user_id,
            len(chosen),
            skipped,
            used,
        )
        return RecallResult(
            memories=chosen, tokens=used, skipped=skipped, considered=len(candidates)
        )

    def _blend(self, memory: Memory, similarity: float, now: datetime) -> float:
        w = self.weights
        age_days = max((now - parse_timestamp(memory.last_accessed)).total_seconds(), 0.0) / 86400
        recency = 0.5 ** (age_days / w.half_life_days) if w.half_life_days > 0 else 0.0
        importance = min(max(memory.importance, 0.0), 1.0)
        return w.similarity * similarity + w.importance * importance + w.recency * recency

    async def _similarities(
        self, query: str, candidates: Sequence[tuple[SearchItem, Memory]]
    ) -> list[float]:
        scores = [item.score for item, _ in candidates]
        if all(s is not None for s in scores):
            return [min(max(float(cast(float, s)), 0.0), 1.0) for s in scores]
        if not query or self.embeddings is None:
            return [0.0] * len(candidates)
        # The store has no vector index: rank its candidates with our own embedder.
        texts = [m.content for _, m in candidates]
        query_vector, vectors = await asyncio.gather(
            self.embeddings.aembed_query(query), self.embeddings.aembed_documents(texts)
        )
        return [min(max(_cosine(query_vector, v), 0.0), 1.0) for v in vectors]

    async def _touch(self, memories: list[Memory], now: datetime) -> list[Memory]:
        stamp = now.isoformat()
        touched = [
            replace(m, last_accessed=stamp, access_count=m.access_count + 1) for m in memories
        ]
        async with self._store_call("recall"):
            await self.store.abatch([self._put_op(m, now) for m in touched])
        return touched

    # --- forgetting ---

    async def forget(
        self,
        ids: Iterable[str] | None = None,
        *,
        kinds: Iterable[str] = KINDS,
        filter: dict[str, Any] | None = None,
    ) -> int:
        """Delete memories by id, or every memory of `kinds` matching `filter`.

        Give `ids` or `filter` (use `forget_all` to erase everything). Returns how many items
        were deleted.
        """
        checked = _check_kinds(kinds)
        if ids is None and filter is None:
            raise InvalidMemoryError(
                "forget needs ids or a filter; use forget_all() to erase every memory"
            )
        if ids is not None:
            wanted = list(ids)
            # Reads never extend a TTL: direct ops bypass the store's `refresh_on_read` setting.
            ops = [
                GetOp(ns, i, refresh_ttl=False)
                for ns in self._own_namespaces(checked)
                for i in wanted
            ]
            async with self._store_call("forget"):
                found = await self.store.abatch(ops)
                doomed = [
                    (op.namespace, op.key)
                    for op, item in zip(ops, found, strict=True)
                    if item is not None
                ]
                await self._delete(doomed)
            return len(doomed)
        total = 0
        for kind in checked:
            total += await self._delete_matching(self._namespace(kind), filter)
        return total

    async def forget_all(self) -> int:
        """Erase every memory of this user (right to erasure). Returns how many."""
        total = 0
        async with self._store_call("forget_all"):
            namespaces = await self.store.alist_namespaces(prefix=self.prefix, limit=10_000)
        for namespace in {*namespaces, *(self._namespace(k) for k in KINDS)}:
            total += await self._delete_matching(namespace, None)
        logger.info("erased %d memories of user %s", total, self.user_id)
        return total

    async def purge_expired(self) -> int:
        """Delete memories whose `expires_at` has passed (for stores without TTL)."""
        now = self.clock()
        doomed: list[tuple[tuple[str, ...], str]] = []
        for kind in KINDS:
            offset = 0
            while True:
                async with self._store_call("purge"):
                    page = await self._search(
                        self._namespace(kind), limit=_PAGE, offset=offset
                    )
                doomed += [
                    (item.namespace, item.key)
                    for item in page
                    if self._expired(Memory.from_item(item), now)
                ]
                if len(page) < _PAGE:
                    break
                offset += _PAGE
        async with self._store_call("purge"):
            await self._delete(doomed)
        return len(doomed)

    async def _delete_matching(
        self, namespace: tuple[str, ...], filter: dict[str, Any] | None
    ) -> int:
        total = 0
        while True:
            async with self._store_call("forget"):
                page = await self._search(namespace, filter=filter, limit=_PAGE)
                if not page:
                    return total
                await self._delete([(item.namespace, item.key) for item in page])
            total += len(page)

    async def _delete(self, doomed: Sequence[tuple[tuple[str, ...], str]]) -> None:
        if doomed:
            await self.store.abatch([PutOp(tuple(ns), key, None) for ns, key in doomed])

    # --- maintenance helpers ---

    async def update(self, memory: Memory) -> None:
        """Write `memory` back as is (same id, kind and namespace), keeping its TTL."""
        async with self._store_call("update"):
            await self.store.abatch([self._put_op(memory, self.clock())])

    async def delete(self, memories: Iterable[Memory]) -> int:
        """Delete these memories (read from this store) where they live. Returns how many."""
        doomed = [(m.namespace or self._namespace(m.kind, m.agent), m.id) for m in memories]
        async with self._store_call("delete"):
            await self._delete(doomed)
        return len(doomed)

    async def similar_pairs(
        self, memories: Sequence[Memory], threshold: float
    ) -> list[tuple[Memory, Memory, float]]:
        """Pairs of memories whose content embeddings have cosine ≥ `threshold`, best first."""
        if self.embeddings is None or len(memories) < 2:
            return []
        import numpy as np

        vectors = np.asarray(
            await self.embeddings.aembed_documents([m.content for m in memories]), dtype=float
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms == 0, 1.0, norms)
        sims = unit @ unit.T
        rows, cols = np.nonzero(np.triu(sims >= threshold, k=1))
        pairs = [
            (memories[int(i)], memories[int(j)], float(sims[i, j]))
            for i, j in zip(rows, cols, strict=True)
        ]
        return sorted(pairs, key=lambda p: -p[2])


def manager_for(
    store: BaseStore,
    user_id: str,
    embeddings: Embeddings | None = None,
    *,
    org_id: str | None = None,
    agent: str | None = None,
) -> MemoryManager:
    """A MemoryManager for `user_id`: the given embedder, else the store's own, else the
    default from `memory.settings` (used only when the store has no vector index)."""
    from memory.embeddings import default_embeddings

    own = getattr(store, "embeddings", None)
    return MemoryManager(
        store,
        user_id,
        org_id=org_id,
        agent=agent,
        embeddings=embeddings or own or default_embeddings(),
    )
