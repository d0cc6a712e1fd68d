"""A tool call decided ahead of time (a plan's direct task), run through the agent loop's gates.

    START ─▶ gate ─▶ [approval] ─▶ tools ─▶ END

The call arrives as the last AIMessage's `tool_calls` (no model is asked). `gate` is the same
tool gate the agent loop runs after each model reply (`nodes/tool_gate.py`: run subset,
`plan_tools`, schema, policy, `approval_mode`); a call that needs review goes to the same
approval node (`nodes/approval.py`: one `interrupt()`, resume with approve / edit / reject, a
late answer expires), and only then does the shared executor (`nodes/tool_node.py`) run what
was allowed. So a planner-executor's direct task is reviewed exactly like a worker's call, and
a resumed run cannot repeat its side effect.

Run it as a subgraph (from a node or a functional-API task): it has no checkpointer of its
own and uses its parent's, which is what lets an interrupt pause and resume it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.tools import BaseTool
from langgraph._internal._runnable import RunnableCallable
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from nodes.approval import make_approval_node
from nodes.context import Context, context_of
from nodes.model import message_text
from nodes.state import RunAccounting, RunTracking
from nodes.tool_gate import GateVerdict, ToolGate, audited_node
from nodes.tool_node import make_tool_node
from tools.policy import Policy
from tools.registry import ToolRegistry


class ToolCallInput(RunAccounting):
    """What a caller sends: the call(s) as an AIMessage, and the tools the plan allows."""

    messages: Annotated[list[AnyMessage], add_messages]
    plan_tools: NotRequired[list[str] | None]
    """Plan-time allow-list (see `nodes.agent.AgentInput.plan_tools`)."""


class ToolCallState(ToolCallInput, RunTracking):
    """Full state: the input plus the gate's verdicts."""

    tool_gate: NotRequired[dict[str, GateVerdict]]
    """Gate verdict per tool call id, resolved by the approval node."""


def route_after_gate(state: Mapping[str, Any]) -> Literal["approval", "tools"]:
    """Review first when any verdict asks for it, else run (or refuse) the calls."""
    verdicts = (state.get("tool_gate") or {}).values()
    return "approval" if any(v["decision"] == "review" for v in verdicts) else "tools"


def make_gate_node(gate: ToolGate) -> RunnableCallable:
    """The tool gate as a node of its own, for calls no model node has judged.

    Reads `messages` (the last AIMessage's `tool_calls` and text, the stated reason),
    `plan_tools`; writes `tool_gate`, plus one audit line per decision.
    """

    def decide(
        state: Mapping[str, Any], runtime: Runtime[Context]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            raise ValueError(
                "the tool-call graph expects its last message to be an AIMessage with "
                f"tool_calls, got {type(last).__name__}"
            )
        verdicts, records = gate.decide(
            last.tool_calls,
            ctx=context_of(runtime),
            plan=state.get("plan_tools"),
            reason=message_text(last.content),
            config=get_config(),
        )
        return {"tool_gate": verdicts}, records

    return audited_node(decide, name="gate")


def build_tool_call_graph(
    tools: Sequence[BaseTool],
    *,
    policy: Policy | str | None = None,
    name: str = "tool_call",
) -> CompiledStateGraph[ToolCallState, Context, ToolCallInput, ToolCallState]:
    """Compile gate → approval → tools for planned calls over `tools`.

    Args:
        tools: The tools a call may name (calls to others are `unknown_tool`); narrow a call
            further with the `plan_tools` input key.
        policy: Tool policy fixed at build time; default `Context.agent_policies[name]`, then
            `Context.policy` (see `nodes.tool_gate.ToolGate`).
        name: The graph's name and the agent name in audit records and `agent_policies`.
    """
    gate = ToolGate(ToolRegistry(tools), policy=policy, agent=name)
    builder = StateGraph(ToolCallState, context_schema=Context, input_schema=ToolCallInput)
    builder.add_node("gate", make_gate_node(gate))
    builder.add_node("approval", make_approval_node(gate))
    builder.add_node("tools", make_tool_node(tools, gate=gate))
    builder.add_edge(START, "gate")
    builder.add_conditional_edges("gate", route_after_gate)
    builder.add_edge("approval", "tools")
    builder.add_edge("tools", END)
    return builder.compile(name=name)


__all__ = [
    "ToolCallInput",
    "ToolCallState",
    "build_tool_call_graph",
    "make_gate_node",
    "route_after_gate",
]
