"""Subprocess half of the crash-resume test (tests/integration/test_crash_resume.py).

    python crash_worker.py GRAPH DB THREAD WORKDIR run|resume

Runs (or resumes with `None` input) one of two small graphs on a durable checkpointer and
writes the final state as JSON to WORKDIR/final-<mode>.json. Every node execution appends a
line to WORKDIR/executions.log; a side effect happens at most once per idempotency key
(thread id + tool call id), recorded in WORKDIR/effects.log. While WORKDIR/block exists, the
side-effecting step marks WORKDIR/blocked and waits forever: the parent `kill -9`s it there.

GRAPH is `steps` (prepare → act ∥ sibling → finish) or `react` (the ReAct graph with a
scripted model and a side-effecting `send_email` tool).
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolRuntime
from langgraph.runtime import Runtime

from nodes.offline import ScriptedChatModel
from nodes.persistence import durability_for, open_checkpointer
from tools.registry import idempotency_key

WORKDIR = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(".")


def _append(name: str, line: str) -> None:
    # O_APPEND + fsync: the parent reads these after a SIGKILL, so each line must be on disk.
    fd = os.open(WORKDIR / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def record_execution(node: str) -> None:
    _append("executions.log", node)


def perform_once(key: str, effect: str) -> str:
    """The side effect, guarded by its idempotency key.

    Like an idempotent HTTP API, a repeated key does nothing and returns the first outcome,
    so a re-run step produces exactly the update of the run that was cut short.
    """
    ledger = WORKDIR / "effects.log"
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        seen_key, _, outcome = line.partition("\t")
        if seen_key == key:
            return outcome
    _append("effects.log", f"{key}\t{effect}")
    return effect


async def block_if_asked() -> None:
    if (WORKDIR / "block").exists():
        (WORKDIR / "blocked").touch()
        while True:  # until SIGKILL
            await asyncio.sleep(0.05)


# --- the purpose-built graph -------------------------------------------------------------


class StepsState(TypedDict, total=False):
    request: str
    log: Annotated[list[str], operator.add]
    effect: str
    sibling: str
    result: str


async def prepare(state: StepsState) -> dict[str, Any]:
    record_execution("prepare")
    return {"log": ["prepare"]}


async def act(state: StepsState, runtime: Runtime[Any]) -> dict[str, Any]:
    record_execution("act")
    thread_id = runtime.execution_info.thread_id if runtime.execution_info else None
    outcome = perform_once(idempotency_key(thread_id, "act-1"), f"sent {state['request']}")
    await block_if_asked()
    return {"log": ["act"], "effect": outcome}


async def sibling(state: StepsState) -> dict[str, Any]:
    record_execution("sibling")
    return {"log": ["sibling"], "sibling": "done"}


async def finish(state: StepsState) -> dict[str, Any]:
    record_execution("finish")
    return {"log": ["finish"], "result": f"{state['effect']} + {state['sibling']}"}


def build_steps(checkpointer: Any) -> Any:
    builder = StateGraph(StepsState)
    builder.add_node("prepare", prepare)
    builder.add_node("act", act)
    builder.add_node("sibling", sibling)
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "act")
    builder.add_edge("prepare", "sibling")
    builder.add_edge(["act", "sibling"], "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer, name="steps")


# --- the ReAct graph with a side-effecting tool ------------------------------------------


# No side-effect metadata on purpose: the default policy would pause a "write" tool for human
# approval, and this test is about crashes, not approvals (covered by the approval tests).
@tool
async def send_email(to: str, body: str, runtime: ToolRuntime) -> str:
    """Send an email.

    Args:
        to: Recipient address.
        body: Message text.
    """
    record_execution("tool:send_email")
    thread_id = runtime.config.get("configurable", {}).get("thread_id")
    key = idempotency_key(thread_id, str(runtime.tool_call_id))
    outcome = perform_once(key, f"sent to {to}")
    await block_if_asked()
    return outcome


REACT_SCRIPT = {
    "name": "crash-react",
    "rules": [
        {
            "match": {"user": "Email"},
            "replies": [
                {
                    "tool_calls": [
                        {"name": "send_email", "args": {"to": "ann@example.com", "body": "hello"}}
                    ]
                },
                {"content": "Done: {{last_tool}}."},
            ],
        }
    ],
}


class ModelCallCounter(BaseCallbackHandler):
    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        record_execution("model")


def build_react(checkpointer: Any) -> Any:
    from graphs.react import build_graph

    model = ScriptedChatModel(script=REACT_SCRIPT)
    return build_graph(model=model, tools=[send_email], checkpointer=checkpointer)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        data = {"type": value.type, "content": value.content}
        for attr in ("tool_calls", "tool_call_id", "name", "status"):
            if getattr(value, attr, None):
                data[attr] = getattr(value, attr)
        return data
    if isinstance(value, dict):
        # Durations differ between a crashed and a clean run by nature; counts must not.
        return {
            k: _jsonable(v)
            for k, v in value.items()
            if k not in {"tool_results", "wall_time_s", "paused_s"}
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def main(graph_name: str, db: str, thread_id: str, mode: str) -> None:
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread_id},
        "callbacks": [ModelCallCounter()],
    }
    async with open_checkpointer(db) as saver:
        if graph_name == "steps":
            graph = build_steps(saver)
            payload: Any = {"request": "report"}
            durability = "sync"  # the graph has a side effect
        else:
            graph = build_react(saver)
            payload = {"messages": [{"role": "user", "content": "Email Ann a hello"}]}
            durability = durability_for("react")
        if mode == "resume":
            before = await graph.aget_state(config)
            (WORKDIR / "next-before-resume.json").write_text(json.dumps(list(before.next)))
            payload = None
        final = await graph.ainvoke(payload, config, durability=durability)
    (WORKDIR / f"final-{mode}.json").write_text(json.dumps(_jsonable(final), sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]))
