"""Capabilities agents can call: built-in tools, the registry and the policy engine."""

from __future__ import annotations

from langchain_core.tools import BaseTool

# The catalogue attaches every built-in tool's side-effect metadata; importing it with the
# package means a tool taken straight from its module (`tools.outbox.send_email`) can never
# look like an undeclared, harmless read to the gates.
from tools import builtin as _catalogue  # noqa: F401
from tools.calculator import calculate
from tools.clock import get_current_time


def builtin_tools() -> list[BaseTool]:
    """The starter tools an agent gets unless given others: calculator and clock."""
    return [calculate, get_current_time]


__all__ = ["builtin_tools", "calculate", "get_current_time"]
