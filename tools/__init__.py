"""Capabilities agents can call: built-in tools, the registry and the policy engine."""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.calculator import calculate
from tools.clock import get_current_time


def builtin_tools() -> list[BaseTool]:
    """The starter tools an agent gets unless given others: calculator and clock."""
    return [calculate, get_current_time]


__all__ = ["builtin_tools", "calculate", "get_current_time"]
