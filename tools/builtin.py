"""The catalogue of built-in tools the registry serves (each module holds its own tools).

Tool metadata convention (read by `tools/registry.py`): every tool sets `tags` and
`metadata={"side_effect": "read"|"write"|"irreversible", "idempotent": bool,
"timeout_s": float, "rate_limit": "10/min" | None, "fallback": "<tool name>" | None}`.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.calculator import calculate
from tools.clock import get_current_time

calculate.metadata = {
    "side_effect": "read",
    "idempotent": True,
    "timeout_s": 5.0,
    "rate_limit": None,
    "fallback": None,
}
calculate.tags = ["math", "starter"]
get_current_time.metadata = {
    "side_effect": "read",
    "idempotent": True,
    "timeout_s": 5.0,
    "rate_limit": None,
    "fallback": None,
}
get_current_time.tags = ["time", "starter"]


def all_builtin_tools() -> list[BaseTool]:
    """Every built-in tool, for the registry. Add new built-in tools here."""
    return [calculate, get_current_time]
