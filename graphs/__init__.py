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
        GraphInfo(
            "supervisor",
            "graphs.supervisor",
            "Supervisor: routes each step to worker agents or nested teams (in parallel when "
            "independent) with structured decisions; guards stop ping-pong and runaway handoffs.",
        ),
        GraphInfo(
            "team",
            "graphs.team",
            "Team spec: a YAML/JSON team of agents and tasks compiled into a supervisor "
            "(hierarchical) or a task pipeline (sequential); example: a budget team.",
        ),
        GraphInfo(
            "memory_maintenance",
            "graphs.memory_maintenance",
            "Memory maintenance: de-duplicates, consolidates old episodes into insights, "
            "promotes often-recalled and prunes stale memories (run it on a schedule).",
        ),
        GraphInfo(
            "debate",
            "graphs.debate",
            "Debate and consensus: debaters with distinct personas answer, revise over rounds "
            "until they agree, and a judge rules; or a majority vote with a judge on ties.",
        ),
        GraphInfo(
            "tot",
            "graphs.tot",
            "Tree of thoughts: expands k thoughts per node, scores each, keeps the best b to "
            "depth d or a score threshold, then solves along the best path.",
        ),
        GraphInfo(
            "router",
            "graphs.router",
            "Router: classifies the request into declared intents (customer-service example: "
            "order status, refund, product info, general) and hands it to that subgraph.",
        ),
        GraphInfo(
            "plan_execute",
            "graphs.plan_execute",
            "Planner-executor: typed task plan, validated and repaired, run eagerly in parallel "
            "with per-task tools; replans after failures and answers citing task ids.",
        ),
        GraphInfo(
            "pipeline",
            "graphs.pipeline",
            "Research pipeline: research (ReAct) -> analyse -> write -> review; stops at an "
            "invalid stage output and resumes from that stage.",
        ),
        GraphInfo(
            "refine",
            "graphs.refine",
            "Critic-refine: draft, structured critique (1-5 on four criteria), revise until "
            "the average reaches the threshold.",
        ),
        GraphInfo(
            "reflexion",
            "graphs.reflexion",
            "Reflexion: ReAct actor, evaluator (rubric or check), verbal reflection, retry; "
            "lessons kept in long-term memory.",
        ),
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
