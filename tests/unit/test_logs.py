"""JSON logging: one object per record, with the thread, run and node of the graph run."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from nodes.logs import configure_logging, run_fields

pytestmark = pytest.mark.anyio

logger = logging.getLogger("weftgraph.test")


class Steps(TypedDict):
    done: list[str]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    configure_logging("json", level=logging.INFO, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = before  # leave pytest's own handlers as they were


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_records_inside_a_graph_run_carry_thread_run_and_node(
    log_lines: io.StringIO,
) -> None:
    async def work(state: Steps) -> dict[str, Any]:
        logger.info("working on %d item(s)", 3)
        return {"done": ["work"]}

    builder = StateGraph(Steps)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    config = {
        "configurable": {"thread_id": "t-42"},
        "run_id": "6f1b1d2c-0000-4000-8000-000000000001",
    }
    await builder.compile().ainvoke({"done": []}, config)
    logger.warning("outside any run")

    inside, outside = records(log_lines)
    assert inside["message"] == "working on 3 item(s)"
    assert (inside["level"], inside["logger"]) == ("INFO", "weftgraph.test")
    assert inside["thread_id"] == "t-42"
    assert inside["node"] == "work"
    assert inside["run_id"] == "6f1b1d2c-0000-4000-8000-000000000001"
    assert inside["checkpoint_ns"].startswith("work:")
    assert outside["message"] == "outside any run"
    assert not {"thread_id", "run_id", "node"} & set(outside)


def test_exceptions_are_part_of_the_record(log_lines: io.StringIO) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        logger.exception("lookup failed")
    (record,) = records(log_lines)
    assert record["message"] == "lookup failed"
    assert "KeyError: 'missing'" in record["exception"]


def test_no_run_fields_outside_a_run() -> None:
    assert run_fields() == {}


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="'xml' is not supported; expected one of text, json"):
        configure_logging("xml")  # type: ignore[arg-type]
