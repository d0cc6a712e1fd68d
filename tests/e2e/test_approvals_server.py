"""Approvals through a real `langgraph dev` server: interrupt, then `command={"resume": ...}`.

The first tests use the served `react` graph (calculator). The side-effect tests start a second
server whose config serves `mailer`, the agent loop with `send_email`, writing the audit log
and the outbox into its own directory, so rows and audit lines can be counted exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.e2e.conftest import REPO, start_dev_server, stop_dev_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = {
    "rules": [
        {
            "match": {"user": "approve 9 \\* 9"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "9 * 9"}, "id": "srv1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
        {
            "match": {"user": "edit 9 \\* 9"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "9 * 9"}, "id": "srv2"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
    ]
}


async def start(client: Any, text: str) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "react",
        input={"messages": [{"role": "user", "content": text}]},
        context={"approval_mode": "always"},
    )
    return thread["thread_id"], result


async def test_approve_through_the_server(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    thread_id, paused = await start(client, "approve 9 * 9")

    (interrupt,) = paused["__interrupt__"]
    (request,) = interrupt["value"]["calls"]
    assert (request["id"], request["tool"], request["reason"]) == (
        "srv1",
        "calculate",
        "Computing.",
    )
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approval"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    result = await client.runs.wait(
        thread_id, "react", command={"resume": {"srv1": {"decision": "approve"}}}
    )
    assert result["final_answer"] == "Result: 81."
    assert result["tool_results"][0]["ok"] is True


async def test_edit_through_the_server(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    thread_id, _ = await start(client, "edit 9 * 9")
    result = await client.runs.wait(
        thread_id,
        "react",
        command={"resume": {"srv2": {"decision": "edit", "args": {"expression": "9 * 10"}}}},
    )
    assert result["final_answer"] == "Result: 90."  # the reviewer's arguments ran
    (tool_message,) = [m for m in result["messages"] if m["type"] == "tool"]
    assert tool_message["content"].startswith("Note: a reviewer changed the arguments")


MAILER_GRAPH = """from nodes.agent import build_agent
from tools.outbox import send_email

graph = build_agent(tools=[send_email], name="mailer")
"""

EMAIL = {"to": "boss@corp.com", "subject": "Summary", "body": "All done."}


def mail_rule(user: str, call_id: str) -> dict[str, Any]:
    return {
        "match": {"user": user},
        "replies": [
            {
                "content": "Emailing the boss.",
                "tool_calls": [{"name": "send_email", "args": EMAIL, "id": call_id}],
            },
            {"content": "Outcome: {{last_tool}}"},
        ],
    }


MAIL_SCRIPT = {
    "rules": [
        mail_rule("mail and approve", "m1"),
        mail_rule("mail and reject", "m2"),
        mail_rule("mail too late", "m3"),
    ]
}


class Mailer:
    """A running server that serves `mailer`, with its audit log and outbox."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.audit_log = workdir / "audit.jsonl"
        self.outbox = workdir / "outbox.sqlite"

    def records(self, thread_id: str) -> list[dict[str, Any]]:
        lines = self.audit_log.read_text(encoding="utf-8").splitlines()
        return [r for r in map(json.loads, lines) if r["thread_id"] == thread_id]

    def emails(self) -> list[dict[str, Any]]:
        from tools.outbox import Outbox

        return Outbox(self.outbox).messages("email")


@pytest.fixture(scope="module")
def mailer(llm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailer]:
    workdir = tmp_path_factory.mktemp("mailer-server")
    (workdir / "mailer_graph.py").write_text(MAILER_GRAPH, encoding="utf-8")
    config = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))
    config["graphs"] = {"mailer": "./mailer_graph.py:graph"}
    (workdir / "mailer.json").write_text(json.dumps(config), encoding="utf-8")
    env = {
        **os.environ,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "WEFT_AUDIT_LOG": str(workdir / "audit.jsonl"),
        "WEFT_OUTBOX": str(workdir / "outbox.sqlite"),
        "WEFT_AUDIT_KEY": "server-test-key-" + "0" * 32,
    }
    url, process, _ = start_dev_server(workdir, env, ("--config", "mailer.json"))
    try:
        yield Mailer(url, workdir)
    finally:
        stop_dev_server(process)


async def start_mail(client: Any, text: str, **context: Any) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"],
        "mailer",
        input={"messages": [{"role": "user", "content": text}]},
        context=context or None,
    )
    return thread["thread_id"], result


async def test_approved_email_is_sent_exactly_once_and_audited(
    mailer: Mailer, llm_server: Any
) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(MAIL_SCRIPT)
    client = get_client(url=mailer.url)
    thread_id, paused = await start_mail(client, "mail and approve")
    (interrupt,) = paused["__interrupt__"]
    (request,) = interrupt["value"]["calls"]
    assert (request["id"], request["tool"]) == ("m1", "send_email")
    assert request["consequences"].startswith("irreversible:")
    assert mailer.emails() == []  # the default policy holds the email for a human

    answer = {"m1": {"decision": "approve", "reviewer": "rita"}}
    result = await client.runs.wait(thread_id, "mailer", command={"resume": answer})
    assert result["final_answer"].startswith("Outcome: Email sent to boss@corp.com")
    # A client that repeats its resume (a retry after a dropped connection) sends nothing.
    await client.runs.wait(thread_id, "mailer", command={"resume": answer})
    (row,) = mailer.emails()
    assert (row["idempotency_key"], row["attempts"]) == (f"{thread_id}:m1", 1)

    records = mailer.records(thread_id)
    assert [(r["event"], r["decision"]) for r in records] == [
        ("policy_decision", "review"),
        ("approval_requested", "pending"),
        ("approval_decision", "approve"),
        ("tool_executed", "executed"),
    ]
    runs = await client.runs.list(thread_id)
    run_ids = {str(run["run_id"]) for run in runs}
    assert {r["run_id"] for r in records} <= run_ids  # the server's own run ids
    assert records[0]["run_id"] != records[2]["run_id"]  # the resume is another run
    assert {r["agent"] for r in records} == {"mailer"}
    assert records[2]["reviewer"] == "rita"
    assert all(v.startswith("hmac-sha256:") for v in records[0]["args"].values())
    assert "boss@corp.com" not in mailer.audit_log.read_text(encoding="utf-8")


async def test_rejected_email_is_not_sent_and_the_model_hears_why(
    mailer: Mailer, llm_server: Any
) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(MAIL_SCRIPT)
    client = get_client(url=mailer.url)
    thread_id, _ = await start_mail(client, "mail and reject")
    answer = {"m2": {"decision": "reject", "comment": "not before Monday", "reviewer": "rita"}}
    result = await client.runs.wait(thread_id, "mailer", command={"resume": answer})

    assert "not before Monday" in result["final_answer"]
    assert result["tool_results"][0]["error_code"] == "rejected"
    assert all(r["idempotency_key"] != f"{thread_id}:m2" for r in mailer.emails())
    decision = [r for r in mailer.records(thread_id) if r["event"] == "approval_decision"]
    assert [(r["decision"], r["comment"], r["reviewer"]) for r in decision] == [
        ("reject", "not before Monday", "rita")
    ]
    assert not [r for r in mailer.records(thread_id) if r["event"] == "tool_executed"]


async def test_an_answer_after_the_deadline_expires(mailer: Mailer, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(MAIL_SCRIPT)
    client = get_client(url=mailer.url)
    # A deadline a millisecond after the request: any answer arrives too late.
    thread_id, paused = await start_mail(client, "mail too late", approval_timeout_s=0.001)
    assert paused["__interrupt__"][0]["value"]["calls"][0]["deadline"]
    result = await client.runs.wait(thread_id, "mailer", command={"resume": "approve"})

    assert result["tool_results"][0]["error_code"] == "expired"
    assert "approval deadline" in result["final_answer"]
    assert all(r["idempotency_key"] != f"{thread_id}:m3" for r in mailer.emails())
    decision = [r for r in mailer.records(thread_id) if r["event"] == "approval_decision"]
    assert [r["decision"] for r in decision] == ["expired"]
