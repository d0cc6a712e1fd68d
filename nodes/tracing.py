"""What LangSmith (or any LangChain tracer) sees of a weftgraph run.

Every compiled graph carries the tags `weftgraph` and `pattern:<pattern>` and the metadata
`{"weftgraph_pattern": <pattern>}` on its root run (the run is named after the graph), and the
agent loop's model calls add `agent` and `user_id`. LangGraph adds `thread_id` itself. With no
LangSmith key set, nothing is sent and nothing is logged.
"""

from __future__ import annotations

from typing import Any, TypeVar

from langgraph.pregel import Pregel

from nodes.context import Context

GraphT = TypeVar("GraphT", bound=Pregel[Any, Any, Any, Any])


def traced(graph: GraphT, *, pattern: str) -> GraphT:
    """`graph` with the tags and metadata its runs are traced with."""
    present = (graph.config or {}).get("tags") or []
    tags = [t for t in ("weftgraph", f"pattern:{pattern}") if t not in present]
    return graph.with_config(tags=tags, metadata={"weftgraph_pattern": pattern})


def call_metadata(ctx: Context, agent: str) -> dict[str, Any]:
    """Metadata for one model call of an agent, for finding a user's or an agent's calls."""
    return {"agent": agent, "user_id": ctx.user_id}


__all__ = ["call_metadata", "traced"]
