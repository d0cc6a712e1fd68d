"""Time travel on a durable thread: list history, replay from a checkpoint, fork with update_state.

Recipe (the same for every graph; `config` = {"configurable": {"thread_id": ...}}):

1. History: `[s async for s in graph.aget_state_history(config)]` lists checkpoints newest
   first; each has `.values`, `.next` (the nodes that would run) and `.config` (its id).
2. Replay: `await graph.ainvoke(None, snapshot.config)` re-runs from that checkpoint; the steps
   after it execute again (model calls included) on a new branch, the old ones stay readable.
3. Fork: `fork = await graph.aupdate_state(snapshot.config, update, as_node="agent")` writes
   a new checkpoint after `snapshot` (messages with the same id replace the old ones), then
   `await graph.ainvoke(None, fork)` continues from the edited state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from graphs.react import build_graph
from nodes.persistence import open_checkpointer

pytestmark = pytest.mark.anyio

SCRIPT = {
    "rules": [
        {
            "match": {"user": "times"},
            "replies": [
                {"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]},
                {"content": "The answer is {{tool:calculate}}."},
            ],
        }
    ]
}


def _answer(values: dict[str, Any]) -> str:
    # Tool output may come back wrapped (untrusted-data tags); only the number matters here.
    text = str(values["final_answer"])
    assert text.startswith("The answer is")
    return "42" if "42" in text else "48" if "48" in text else text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "threads.sqlite")
    return str(request.getfixturevalue("postgres_db"))


async def _history(graph: Any, config: dict[str, Any]) -> list[Any]:
    return [snapshot async for snapshot in graph.aget_state_history(config)]


async def test_history_replay_and_fork(setting: str, scripted_model: Any) -> None:
    model = scripted_model(script=SCRIPT)
    config: dict[str, Any] = {"configurable": {"thread_id": "tt-1"}}
    async with open_checkpointer(setting) as saver:
        graph = build_graph(model=model, checkpointer=saver)
        result = await graph.ainvoke({"messages": [HumanMessage("What is 6 times 7?")]}, config)
        assert _answer(result) == "42"
        assert len(model.calls) == 2

        # 1. History, newest first: the finished run, ..., the agent asking for the tool, ...,
        # the input.
        history = await _history(graph, config)
        steps = [s.metadata["step"] for s in history]
        assert steps == sorted(steps, reverse=True)
        assert history[0].next == () and history[-1].next == ("__start__",)
        pending_tools = [s for s in history if s.next == ("tools",)]
        assert len(pending_tools) == 1
        final_snapshot, before_tools = history[0], pending_tools[0]
        assert before_tools.values["messages"][-1].tool_calls[0]["args"] == {"expression": "6 * 7"}

        # 2. Replay from just before the tool ran: tools and the second model call run again.
        replayed = await graph.ainvoke(None, before_tools.config)
        assert _answer(replayed) == "42"
        assert len(model.calls) == 3
        after_replay = await _history(graph, config)
        assert len(after_replay) > len(history)
        ids = {s.config["configurable"]["checkpoint_id"] for s in after_replay}
        assert {s.config["configurable"]["checkpoint_id"] for s in history} <= ids

        # 3. Fork: edit the pending tool call, then continue from the edited checkpoint.
        pending = before_tools.values["messages"][-1]
        edited = AIMessage(
            content=pending.content,
            id=pending.id,
            tool_calls=[{**pending.tool_calls[0], "args": {"expression": "6 * 8"}}],
        )
        fork = await graph.aupdate_state(before_tools.config, {"messages": [edited]}, "agent")
        forked = await graph.ainvoke(None, fork)
        assert _answer(forked) == "48"
        assert [m.content for m in forked["messages"]].count("What is 6 times 7?") == 1
        assert len(forked["messages"]) == 4, "the edited call replaced the original one"

        # The thread now follows the fork; the original ending is still there by its id.
        latest = await graph.aget_state(config)
        assert _answer(latest.values) == "48"
        original = await graph.aget_state(final_snapshot.config)
        assert _answer(original.values) == "42"
        assert (
            original.config["configurable"]["checkpoint_id"]
            != (latest.config["configurable"]["checkpoint_id"])
        )
