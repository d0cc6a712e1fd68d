"""A `langgraph dev` started with auth on (WEFT_AUTH=keys), shared by the auth and inbox tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client

from tests.e2e.conftest import start_dev_server

REPO = Path(__file__).resolve().parents[2]
OUTBOX_GRAPH = "react_outbox"
"""Test-only graph id: the ReAct graph built with `send_email`, which the shipped `react` lacks."""
_OUTBOX_GRAPH_MODULE = """\
from graphs.react import build_graph
from tools.outbox import send_email

graph = build_graph(tools=[send_email])
"""

KEYS = {"alice": "key-alice", "bob": "key-bob", "memories": "key-memories", "rita": "key-rita"}
"""identity -> API key; `rita` is the reviewer, `memories` a user named like the namespace root."""
ROLES = {"rita": "reviewer"}


def api_keys_spec() -> str:
    return ",".join(f"{key}:{who}:{ROLES.get(who, 'user')}" for who, key in KEYS.items())


def start_auth_server(workdir: Path, llm_server: Any) -> tuple[str, Any, Path, Path]:
    """Start the server; returns (url, process, outbox path, log path).

    The outbox lives in `workdir` so the tests can read what `send_email` delivered.
    """
    outbox = workdir / "weft" / "outbox.sqlite"
    env = {
        **os.environ,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "WEFT_AUTH": "keys",
        "WEFT_API_KEYS": api_keys_spec(),
        "WEFT_OUTBOX": str(outbox),
        "WEFT_AUDIT_LOG": str(workdir / "weft" / "audit.jsonl"),
        "WEFT_SANDBOX_ROOT": str(workdir / "weft" / "sandbox"),
    }
    # The shipped langgraph.json plus one test-only graph, as the ops server in
    # test_server_behaviour.py does for webhooks.
    config = json.loads((REPO / "langgraph.json").read_text())
    config["graphs"][OUTBOX_GRAPH] = "./react_outbox.py:graph"
    (workdir / "react_outbox.py").write_text(_OUTBOX_GRAPH_MODULE)
    (workdir / "langgraph.auth.json").write_text(json.dumps(config))
    url, process, log = start_dev_server(
        workdir, env, ("--config", "langgraph.auth.json", "--n-jobs-per-worker", "4")
    )
    return url, process, outbox, log


def client_for(url: str, who: str | None) -> Any:
    """An SDK client sending `who`'s bearer token (None: no token at all)."""
    headers = {} if who is None else {"Authorization": f"Bearer {KEYS[who]}"}
    return get_client(url=url, headers=headers)
