"""Load on a local LangGraph server: K concurrent clients, a mixed workload, exactly-once check.

Starts the scripted OpenAI-compatible backend (nodes/offline) and `langgraph dev` in a temp
copy of the repo on 127.0.0.1 (or targets `--url`, a server you started yourself), then runs
K clients for a bounded time. Each client loops over three operations, each on a new thread:

- react:    the ReAct graph with one calculator call, then the answer        (1 run)
- pipeline: research (a nested ReAct) -> analyse -> write -> review             (1 run)
- hitl:     ReAct with `approval_mode="always"`: the run pauses on the approval
            interrupt, the client resumes it with `command={"resume": "approve"}` (2 runs)

Every run is created with `runs.create` (background) and awaited with `runs.join`, so its id is
known. Afterwards every thread is read back: each created run must be listed exactly once by
`runs.list` in a terminal state, no run may appear that no client created, and the effects must
have happened once (one answer per run, one tool result per calculator call).

    python bench/server_load.py [--clients 8] [--duration 30] [--jobs-per-worker 8]
                                [--llm-delay 0.5]
    python bench/server_load.py --url http://127.0.0.1:2024 --write-script script.json

With `--url` the target's graphs must call a backend serving this script: write it with
`--write-script`, serve it with `weft mock-llm --script script.json --port 8765`, and start the
server with OPENAI_BASE_URL=http://127.0.0.1:8765/v1 and `--n-jobs-per-worker N`
(`langgraph dev` runs one job at a time by default, so K clients would simply queue).

`--llm-delay` makes every scripted model reply take that long, like a real provider; that is
when `--n-jobs-per-worker` matters: runs then mostly wait on I/O, and one job at a time
serialises the waits. Without a delay the runs are CPU-bound in the server's one process.

Prints throughput (runs/s and operations/s), p50/p95 latency per operation kind (client
wall time from creating the first run to the last join), errors, and lost/duplicated runs.
Exits 1 when any run was lost or duplicated, or any operation failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from langgraph_sdk import get_client

REPO = Path(__file__).resolve().parents[1]
TERMINAL = frozenset({"success", "error", "timeout", "interrupted"})
KINDS = ("react", "pipeline", "hitl")
# A run that stops on interrupt() ends "success"; the thread, not the run, reads "interrupted".
EXPECTED_STATUS = {"react": ["success"], "pipeline": ["success"], "hitl": ["success", "success"]}

SCRIPT: dict[str, Any] = {
    "rules": [
        {
            "match": {"user": "^(load react|load hitl)"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6 * 7"}, "id": "load1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
        {"match": {"system": "research stage"}, "replies": ["Notes: X is 42."]},
        {"match": {"schema": "Analysis"}, "replies": [{"json": {"findings": ["X"], "gaps": []}}]},
        {"match": {"schema": "Report"}, "replies": [{"json": {"title": "X", "body": "X is 42."}}]},
        {"match": {"schema": "ReportReview"}, "replies": [{"json": {"approved": True}}]},
    ],
    "default": {"content": "ok"},
}


def script_with_delay(delay_s: float) -> dict[str, Any]:
    """SCRIPT with every reply taking `delay_s` seconds, standing in for a real model's latency."""
    if delay_s <= 0:
        return SCRIPT

    def slow(reply: Any) -> dict[str, Any]:
        return {**({"content": reply} if isinstance(reply, str) else reply), "delay": delay_s}

    rules = [{**rule, "replies": [slow(r) for r in rule["replies"]]} for rule in SCRIPT["rules"]]
    return {"rules": rules, "default": slow(SCRIPT["default"])}


@dataclass
class Operation:
    """One client operation: a thread, the runs it created, how long it took, what went wrong."""

    kind: str
    thread_id: str = ""
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def _run(client: Any, op: Operation, graph: str, **kwargs: Any) -> dict[str, Any]:
    run = await client.runs.create(op.thread_id, graph, **kwargs)
    op.run_ids.append(run["run_id"])
    values = await client.runs.join(op.thread_id, run["run_id"])
    return values if isinstance(values, dict) else {}


async def operate(client: Any, kind: str) -> Operation:
    """Run one operation of `kind` on a fresh thread; failures are recorded, not raised."""
    op = Operation(kind)
    started = time.perf_counter()
    try:
        op.thread_id = (await client.threads.create(metadata={"bench": "server_load"}))["thread_id"]
        tag = uuid.uuid4().hex[:6]
        if kind == "react":
            values = await _run(client, op, "react", input=_user(f"load react {tag}"))
            _expect(values.get("final_answer"), "Result: 42.")
        elif kind == "pipeline":
            values = await _run(client, op, "pipeline", input={"task": f"What is X? {tag}"})
            _expect(values.get("completed_stages"), ["research", "analyse", "write", "review"])
        else:
            await _run(
                client,
                op,
                "react",
                input=_user(f"load hitl {tag}"),
                context={"approval_mode": "always"},
            )
            thread = await client.threads.get(op.thread_id)
            _expect(thread["status"], "interrupted")
            values = await _run(
                client,
                op,
                "react",
                command={"resume": "approve"},
                context={"approval_mode": "always"},
            )
            _expect(values.get("final_answer"), "Result: 42.")
    except Exception as exc:  # a load test counts every failure instead of stopping at one
        op.error = f"{type(exc).__name__}: {exc}"[:300]
    op.seconds = time.perf_counter() - started
    return op


def _expect(got: Any, wanted: Any) -> None:
    if got != wanted:
        raise AssertionError(f"expected {wanted!r}, got {got!r}")


async def client_loop(url: str, index: int, deadline: float, done: list[Operation]) -> None:
    """One client: operations back to back (kinds in rotation) until the deadline."""
    client = get_client(url=url)
    turn = index
    while time.perf_counter() < deadline:
        done.append(await operate(client, KINDS[turn % len(KINDS)]))
        turn += 1


async def audit_runs(url: str, operations: Sequence[Operation]) -> dict[str, Any]:
    """Read every thread back: lost, duplicated, unexpected or non-terminal runs; effects."""
    client = get_client(url=url)
    lost, duplicated, foreign, unfinished, wrong_status, effects = [], [], [], [], [], []
    semaphore = asyncio.Semaphore(16)

    async def check(op: Operation) -> None:
        if not op.thread_id:
            return
        async with semaphore:
            listed = await client.runs.list(op.thread_id, limit=100)
            state = await client.threads.get_state(op.thread_id)
        counts = Counter(r["run_id"] for r in listed)
        by_id = {r["run_id"]: r for r in listed}
        lost.extend(r for r in op.run_ids if r not in counts)
        duplicated.extend(r for r, n in counts.items() if n > 1)
        foreign.extend(r for r in counts if r not in op.run_ids)
        unfinished.extend(r for r in op.run_ids if by_id.get(r, {}).get("status") not in TERMINAL)
        if op.error is None:
            statuses = [by_id[r]["status"] for r in op.run_ids if r in by_id]
            if statuses != EXPECTED_STATUS[op.kind]:
                wrong_status.append((op.thread_id, statuses))
            messages = state["values"].get("messages") or []
            tool_results = [m for m in messages if m.get("type") == "tool"]
            answers = [m for m in messages if m.get("type") == "ai" and not m.get("tool_calls")]
            if op.kind in ("react", "hitl") and (len(tool_results), len(answers)) != (1, 1):
                effects.append((op.thread_id, len(tool_results), len(answers)))

    await asyncio.gather(*(check(op) for op in operations))
    return {
        "lost": lost,
        "duplicated": duplicated,
        "unexpected": foreign,
        "not_terminal": unfinished,
        "wrong_status": wrong_status,
        "repeated_or_missing_effects": effects,
    }


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(
    operations: Sequence[Operation], elapsed: float, audit: dict[str, Any], flags: str
) -> bool:
    """Print the figures; True when the run is clean (no errors, nothing lost or duplicated)."""
    runs = sum(len(op.run_ids) for op in operations)
    errors = [op for op in operations if op.error]
    print(f"server: {flags}")  # noqa: T201 - a benchmark prints its figures
    print(  # noqa: T201
        f"{len(operations)} operations, {runs} runs in {elapsed:.1f} s: "
        f"{runs / elapsed:.2f} runs/s, {len(operations) / elapsed:.2f} operations/s"
    )
    print(f"{'kind':<10}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'errors':>8}")  # noqa: T201
    for kind in (*KINDS, "all"):
        ok = [op.seconds for op in operations if kind in ("all", op.kind) and not op.error]
        failed = sum(1 for op in errors if kind in ("all", op.kind))
        print(  # noqa: T201
            f"{kind:<10}{len(ok):>5}{_percentile(ok, 50):>9.2f}{_percentile(ok, 95):>9.2f}"
            f"{failed:>8}"
        )
    for kind, count in Counter(op.error for op in errors).most_common(5):
        print(f"error x{count}: {kind}")  # noqa: T201
    problems = {name: items for name, items in audit.items() if items}
    print(  # noqa: T201
        "runs: every created run listed once, terminal, with its effects once"
        if not problems
        else f"run audit FAILED: {json.dumps(problems, default=str)[:2000]}"
    )
    return not problems and not errors


@contextlib.contextmanager
def local_server(jobs_per_worker: int, llm_delay_s: float) -> Iterator[tuple[str, str]]:
    """The scripted backend plus `langgraph dev` in a temp copy of the repo; yields (url, flags)."""
    sys.path.insert(0, str(REPO))
    from nodes.offline import ScriptedLLMServer
    from tests.e2e.conftest import start_dev_server, stop_dev_server

    flags = (
        f"langgraph dev --no-browser --no-reload --n-jobs-per-worker {jobs_per_worker}; "
        f"model latency {llm_delay_s:g} s per call"
    )
    script = script_with_delay(llm_delay_s)
    with ScriptedLLMServer(script) as llm, tempfile.TemporaryDirectory() as workdir:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "bench-key",
            "LANGSMITH_TRACING": "false",
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "WEFT_AUDIT_LOG": str(Path(workdir) / "audit.jsonl"),
        }
        url, process, _ = start_dev_server(
            Path(workdir), env, ("--n-jobs-per-worker", str(jobs_per_worker))
        )
        try:
            yield url, flags
        finally:
            stop_dev_server(process)


def _require_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise SystemExit(f"--url must point at a loopback address (got {host!r})")


async def load(url: str, clients: int, duration: float, flags: str) -> bool:
    operations: list[Operation] = []
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(client_loop(url, i, deadline, operations) for i in range(clients)))
    elapsed = time.perf_counter() - started  # in-flight operations finish past the deadline
    audit = await audit_runs(url, operations)
    return report(operations, elapsed, audit, f"{flags}; {clients} clients, {duration:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (K)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to keep starting")
    parser.add_argument("--jobs-per-worker", type=int, default=8, help="--n-jobs-per-worker")
    parser.add_argument(
        "--llm-delay", type=float, default=0.0, help="seconds each scripted model reply takes"
    )
    parser.add_argument("--url", help="target a running server on loopback instead")
    parser.add_argument("--write-script", type=Path, help="write the backend script and exit")
    args = parser.parse_args(argv)
    if args.write_script:
        args.write_script.write_text(json.dumps(script_with_delay(args.llm_delay), indent=2))
        return 0
    if args.url:
        _require_loopback(args.url)
        ok = asyncio.run(load(args.url, args.clients, args.duration, f"target {args.url}"))
    else:
        with local_server(args.jobs_per_worker, args.llm_delay) as (url, flags):
            ok = asyncio.run(load(url, args.clients, args.duration, flags))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
