"""Agent patterns as compiled LangGraph graphs, and the registry the CLI and tests read.

`langgraph.json` registers the same graphs for the server; a test keeps the two in step.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GraphInfo:
    """One registered graph: its id, module and a one-line description."""

    graph_id: str
    module: str
    description: str

    @property
    def path(self) -> str:
        """The `langgraph.json` path of the exported graph."""
        return f"./{self.module.replace('.', '/')}.py:graph"

    def load_module(self) -> Any:
        """Import the graph's module (which exposes `graph` and `build_graph`)."""
        return importlib.import_module(self.module)


GRAPHS: dict[str, GraphInfo] = {
    info.graph_id: info
    for info in [
        GraphInfo(
            "react",
            "graphs.react",
            "ReAct agent: reasons, calls tools (in parallel when independent) and answers.",
        ),
        # New graphs: one GraphInfo each, below; keep langgraph.json in step (a test checks).
    ]
}


class UnknownGraphError(KeyError):
    """A graph id that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_graph_info(graph_id: str) -> GraphInfo:
    """Look up a registered graph, listing the known ids when `graph_id` is not one."""
    try:
        return GRAPHS[graph_id]
    except KeyError:
        raise UnknownGraphError(
            f"unknown graph {graph_id!r}; registered graphs: {', '.join(sorted(GRAPHS))}"
        ) from None
