"""ReAct: one agent that reasons, calls tools (in parallel when independent) and answers.

Model calls: one per iteration; at most `Context.max_iterations` per user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from nodes.agent import AgentInput, AgentOutput, AgentState, build_agent
from nodes.context import Context
from nodes.model import ModelOverride
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

ReactState = AgentState


def build_graph(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[AgentState, Context, AgentInput, AgentOutput]:
    """Compile the ReAct graph.

    Args:
        model: Chat model object or id used instead of the context's `model`.
        tools: Tools to offer (default: calculator and clock).
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term memory store (None for the server, which brings its own).
        policy: Tool policy (a built-in name, a .yaml/.json path or a `Policy`); default per
            run: `Context.agent_policies["react"]`, else `Context.policy`.
    """
    agent = build_agent(
        tools=tools,
        model=model,
        name="react",
        checkpointer=checkpointer,
        store=store,
        guard_output=True,
        policy=policy,
    )
    return traced(agent, pattern="react")


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()
