"""Structured logging: JSON lines that say which thread, run and node wrote them.

Library code only creates loggers; applications choose the output. `weft` does it with
`--log-format json` (or `WEFT_LOG_FORMAT=json`); in Python:

    from nodes.logs import configure_logging
    configure_logging("json", level="INFO")

Each record then carries `thread_id`, `run_id`, `node` and `checkpoint_ns` when it is logged
inside a graph run (read from LangGraph's run config), and nothing extra outside one. Message
text is whatever the loggers write: weftgraph logs decisions at INFO and never prompts or
message contents above DEBUG.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from langchain_core.runnables.config import var_child_runnable_config

# The key LangGraph keeps the run's Runtime under (what `langgraph.runtime.get_runtime` reads);
# read directly because a log filter must not raise outside a run.
CONFIG_KEY_RUNTIME = "__pregel_runtime"

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
RUN_FIELDS = ("thread_id", "run_id", "node", "checkpoint_ns")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def run_fields() -> dict[str, str]:
    """Thread, run, node and namespace of the graph run the caller is in (empty outside one)."""
    config = var_child_runnable_config.get()
    if not config:
        return {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    runtime = configurable.get(CONFIG_KEY_RUNTIME)
    info = getattr(runtime, "execution_info", None)
    found = {
        "thread_id": getattr(info, "thread_id", None) or configurable.get("thread_id"),
        "run_id": getattr(info, "run_id", None) or metadata.get("run_id"),
        "node": metadata.get("langgraph_node"),
        "checkpoint_ns": configurable.get("checkpoint_ns") or metadata.get("checkpoint_ns"),
    }
    return {key: str(value) for key, value in found.items() if value}


class RunContextFilter(logging.Filter):
    """Adds `run_fields()` to every record it sees (as attributes, for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in run_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, run fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in RUN_FIELDS:
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    log_format: LogFormat = "text",
    *,
    level: int | str = logging.WARNING,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as text or JSON lines.

    Replaces handlers an earlier call installed; returns the new handler.

    Raises:
        ValueError: `log_format` is not one of `LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"log format {log_format!r} is not supported; expected one of {', '.join(LOG_FORMATS)}"
        )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.set_name("weftgraph")
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == "weftgraph"]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "LogFormat",
    "RunContextFilter",
    "configure_logging",
    "run_fields",
]
