"""The catalogue of built-in tools the registry serves (each module holds its own tools).

Tool metadata convention (read by `tools/registry.py`): every tool sets `tags` and
`metadata={"side_effect": "read"|"write"|"irreversible", "idempotent": bool,
"timeout_s": float, "rate_limit": "10/min" | None, "fallback": "<tool name>" | None}`.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool

from tools.calculator import calculate
from tools.clock import get_current_time
from tools.database import query_database
from tools.files import list_directory, read_file, write_file
from tools.outbox import create_ticket, send_email
from tools.python_sandbox import run_python
from tools.web import fetch_url, search_web

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


def _declare(tool: BaseTool, tags: list[str], **metadata: object) -> None:
    tool.metadata = {"rate_limit": None, "fallback": None, **metadata}
    tool.tags = tags


_declare(search_web, ["web", "research"], side_effect="read", idempotent=True, timeout_s=15.0,
         rate_limit="30/min")
_declare(fetch_url, ["web", "research"], side_effect="read", idempotent=True, timeout_s=30.0,
         rate_limit="30/min")
_declare(query_database, ["data", "database"], side_effect="read", idempotent=True,
         timeout_s=10.0)
_declare(read_file, ["files"], side_effect="read", idempotent=True, timeout_s=10.0)
_declare(list_directory, ["files"], side_effect="read", idempotent=True, timeout_s=10.0)
_declare(write_file, ["files"], side_effect="write", idempotent=False, timeout_s=10.0,
         consequences="Creates or replaces a file in the sandbox folder.")
_declare(run_python, ["code"], side_effect="read", idempotent=True, timeout_s=20.0,
         rate_limit="10/min")
_declare(send_email, ["communication", "outbox"], side_effect="irreversible", idempotent=True,
         timeout_s=10.0, rate_limit="10/h",
         consequences="Sends an email that cannot be recalled.")
_declare(create_ticket, ["support", "outbox"], side_effect="write", idempotent=True,
         timeout_s=10.0, rate_limit="30/h",
         consequences="Opens a support ticket that a human team will act on.")


def all_builtin_tools() -> list[BaseTool]:
    """Every built-in tool, for the registry. Add new built-in tools here."""
    return [
        calculate,
        get_current_time,
        search_web,
        fetch_url,
        query_database,
        read_file,
        write_file,
        list_directory,
        run_python,
        send_email,
        create_ticket,
    ]
