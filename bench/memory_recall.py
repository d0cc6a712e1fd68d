"""Memory benchmarks: recall latency by store size, and checkpoint bytes per turn.

1. `MemoryManager.recall` latency (p50/p95 over `--queries` queries, k=8, 800-token budget,
   no access write-back) for one user holding N memories spread over the three kinds, for the
   default embedded backend (Qdrant local mode, `:memory:`) and for `InMemoryStore`. Both use
   the same 384-d lexical hash embedder (MiniLM's size) so the figures measure the stores,
   not an embedding model; query embedding time is included.
2. Checkpoint bytes per turn of a 200-turn thread (scripted agent, extractive summariser)
   with and without summarisation.

    python bench/memory_recall.py [--sizes 1000 10000 50000] [--queries 10] [--turns 200]
                                  [--stores qdrant qdrant-disk inmemory]
                                  [--skip-recall | --skip-thread]

Qdrant's local mode is an exact pure-Python scan (slow at scale, see PLATFORM_NOTES); a Qdrant
server (`QDRANT_URL`) uses HNSW and is not measured here.
"""
# ruff: noqa: T201 - a benchmark prints its figures

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from memory.embeddings import HashingEmbeddings
from memory.manager import KINDS, MemoryManager, memory_key, memory_namespace
from memory.settings import MemorySettings
from memory.store import make_store, memory_index
from memory.testing import ExtractiveSummarizer, stored_bytes
from nodes.agent import build_agent
from nodes.context import Context
from nodes.offline import ScriptedChatModel

DIMS = 384
TOPICS = [
    "deploy",
    "billing",
    "colour",
    "travel",
    "allergy",
    "music",
    "garden",
    "tax",
    "python",
    "coffee",
    "meeting",
    "invoice",
    "database",
    "holiday",
    "football",
    "recipe",
    "laptop",
    "insurance",
    "doctor",
    "birthday",
]


STORE_NAMES = {
    "qdrant": "qdrant (local :memory:)",
    "qdrant-disk": "qdrant (local on disk)",
    "inmemory": "InMemoryStore",
}


def make(kind: str) -> BaseStore:
    embeddings = HashingEmbeddings(DIMS)
    if kind == "inmemory":
        return InMemoryStore(index=memory_index(embeddings, DIMS))
    settings = MemorySettings(
        collection=f"bench_{uuid.uuid4().hex[:8]}",
        embeddings="hash",
        # The CLI's default: an on-disk local Qdrant (.weft/memory); here a temp folder.
        qdrant_path=tempfile.mkdtemp(prefix="weft-bench-") if kind == "qdrant-disk" else None,
    )
    return make_store(settings, embeddings=embeddings, dims=DIMS)


def memory_text(i: int) -> str:
    a, b = TOPICS[i % len(TOPICS)], TOPICS[(i * 7 + 3) % len(TOPICS)]
    return f"note {i}: the user mentioned {a} together with {b} on day {i % 365}"


async def populate(store: BaseStore, user: str, n: int) -> float:
    start = time.perf_counter()
    stamp = "2026-01-01T00:00:00+00:00"
    batch: list[PutOp] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        content = memory_text(i)
        value = {
            "content": content,
            "kind": kind,
            "importance": (i % 10) / 10,
            "created_at": stamp,
            "last_accessed": stamp,
            "access_count": 0,
        }
        batch.append(PutOp(memory_namespace(user, kind), memory_key(kind, content), value))
        if len(batch) == 500:
            await store.abatch(batch)
            batch = []
    if batch:
        await store.abatch(batch)
    return time.perf_counter() - start


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def recall_latency(kind: str, n: int, queries: int) -> dict[str, float]:
    store = make(kind)
    load_s = await populate(store, "bench-user", n)
    manager = MemoryManager(store, "bench-user")
    await manager.recall("warm up", k=8, token_budget=800, touch=False)
    timings = []
    for q in range(queries):
        query = f"what did the user say about {TOPICS[q % len(TOPICS)]}?"
        start = time.perf_counter()
        result = await manager.recall(query, k=8, token_budget=800, touch=False)
        timings.append((time.perf_counter() - start) * 1000)
        assert result.memories, "recall returned nothing"
    return {
        "load_s": load_s,
        "p50_ms": statistics.median(timings),
        "p95_ms": percentile(timings, 0.95),
    }


def turn_text(i: int) -> str:
    if i < 2:
        return ["FACT: the user's name is Ada.", "FACT: the user likes teal."][i]
    return f"Turn {i}: please note weather report {i} " + "and more detail " * 12


async def thread_bytes(turns: int, summarise: bool) -> list[tuple[int, int]]:
    agent = ScriptedChatModel(script={"rules": [], "default": {"content": "Noted, thanks."}})
    saver = InMemorySaver()
    graph = build_agent(
        model={"agent": agent, "summarizer": ExtractiveSummarizer()}, checkpointer=saver
    )
    context = Context(
        context_window_tokens=1_500,
        reserve_output_tokens=300,
        summarize_after_tokens=900 if summarise else None,
        summary_keep_tokens=400,
    )
    config: Any = {"configurable": {"thread_id": "bench"}}
    sizes: list[tuple[int, int]] = []
    for i in range(turns):
        await graph.ainvoke({"messages": [HumanMessage(turn_text(i))]}, config, context=context)
        if (i + 1) % 50 == 0 or i + 1 == turns:
            sizes.append((i + 1, stored_bytes(saver)))
    return sizes


async def main(args: argparse.Namespace) -> None:
    if not args.skip_recall:
        print(
            f"recall latency (k=8, budget 800 tokens, {DIMS}-d, one user, 3 kinds, "
            f"{args.queries} queries)"
        )
        print(f"{'store':<24}{'memories':>9}{'load s':>8}{'p50 ms':>9}{'p95 ms':>9}")
        for kind in args.stores:
            for n in args.sizes:
                r = await recall_latency(kind, n, args.queries)
                name = STORE_NAMES[kind]
                line = f"{name:<24}{n:>9}{r['load_s']:>8.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
                print(line, flush=True)
    if not args.skip_thread:
        print(f"\ncheckpoint bytes, {args.turns}-turn thread (InMemorySaver, all checkpoints)")
        print(f"{'turns':>6}{'summarised':>14}{'per turn':>10}{'unsummarised':>15}{'per turn':>10}")
        with_s = await thread_bytes(args.turns, True)
        without = await thread_bytes(args.turns, False)
        for (t, a), (_, b) in zip(with_s, without, strict=True):
            print(f"{t:>6}{a:>14,}{a // t:>10,}{b:>15,}{b // t:>10,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument(
        "--stores", nargs="+", default=["qdrant", "inmemory"], choices=sorted(STORE_NAMES)
    )
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--skip-thread", action="store_true")
    asyncio.run(main(parser.parse_args()))
