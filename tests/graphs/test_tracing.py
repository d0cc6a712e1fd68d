"""What a tracer sees: run names, tags and metadata per graph and per model call."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.tracers.schemas import Run

from graphs import GRAPHS
from graphs.react import build_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio


def walk(run: Run) -> list[Run]:
    return [run, *(r for child in run.child_runs for r in walk(child))]


async def test_a_react_run_is_named_tagged_and_carries_user_and_agent(
    scripted_model: Any,
) -> None:
    model = scripted_model(
        {"tool_calls": [{"name": "calculate", "args": {"expression": "6*7"}}]}, "42"
    )
    # Passed as a callback it is inherited by every nested run, as LangSmith's tracer is.
    collector = RunCollectorCallbackHandler()
    await build_graph(model=model).ainvoke(
        {"messages": [HumanMessage("6*7?")]},
        {"configurable": {"thread_id": "traced"}, "callbacks": [collector]},
        context=Context(user_id="ada"),
    )

    (root,) = collector.traced_runs
    assert root.name == "react"
    assert {"weftgraph", "pattern:react"} <= set(root.tags or [])
    assert root.extra["metadata"]["weftgraph_pattern"] == "react"
    assert root.extra["metadata"]["thread_id"] == "traced"
    model_runs = [r for r in walk(root) if r.run_type == "llm"]
    assert len(model_runs) == 2
    for run in model_runs:
        assert run.extra["metadata"]["user_id"] == "ada"
        assert run.extra["metadata"]["agent"] == "react"


def test_every_registered_graph_is_tagged_with_its_pattern() -> None:
    for graph_id, entry in GRAPHS.items():
        module_path, _, attribute = entry.path.removeprefix("./").partition(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        graph = getattr(module, attribute)
        assert "weftgraph" in graph.config["tags"], graph_id
        assert f"pattern:{graph_id}" in graph.config["tags"], graph_id


async def test_tracing_on_without_a_key_runs_quietly(
    scripted_model: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    with caplog.at_level(logging.WARNING):
        result = await build_graph(model=scripted_model("hello")).ainvoke(
            {"messages": [HumanMessage("hi")]}
        )
    assert result["final_answer"] == "hello"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
