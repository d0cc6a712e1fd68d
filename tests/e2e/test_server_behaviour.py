"""What the LangGraph server gives our graphs, proven on a real `langgraph dev` via langgraph_sdk.

Streaming (updates, nested-subgraph messages, custom progress), HITL found through
threads.search, double-texting (all four multitask strategies work on the local server),
cancellation, background runs + join, cron and webhooks, and the store's vector index.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.e2e.conftest import start_dev_server, stop_dev_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SLOW_S = 2.5
SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": {"user": "^slow"}, "replies": [{"content": "slow done", "delay": SLOW_S}]},
        {"match": {"user": "^quick"}, "replies": [{"content": "quick done"}]},
        {
            "match": {"user": "^needs approval"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6 * 7"}, "id": "hitl1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
        {"match": {"system": "research stage"}, "replies": ["Notes: X is 42."]},
        {"match": {"schema": "Analysis"}, "replies": [{"json": {"findings": ["X"], "gaps": []}}]},
        {"match": {"schema": "Report"}, "replies": [{"json": {"title": "X", "body": "X is 42."}}]},
        {"match": {"schema": "ReportReview"}, "replies": [{"json": {"approved": True}}]},
        {"match": {"system": "Produce the best answer"}, "replies": ["draft one"]},
        {
            "match": {"schema": "Critique"},
            "replies": [
                {"json": {"correctness": 5, "completeness": 5, "clarity": 5, "efficiency": 5}}
            ],
        },
    ],
    "default": {"content": "ok"},
}


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
def client(dev_server: str, llm_server: Any) -> Any:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    llm_server.requests.clear()
    return get_client(url=dev_server)


async def _wait_status(client: Any, thread_id: str, run_id: str, status: str) -> None:
    for _ in range(200):
        if (await client.runs.get(thread_id, run_id))["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {status!r}")


async def test_stream_updates_nested_messages_and_custom_events(client: Any) -> None:
    thread = await client.threads.create()
    seen: dict[str, list[Any]] = {}
    async for part in client.runs.stream(
        thread["thread_id"],
        "pipeline",
        input={"task": "What is X?"},
        stream_mode=["updates", "messages", "custom"],
        stream_subgraphs=True,
    ):
        seen.setdefault(part.event, []).append(part.data)

    updates = [u for e, items in seen.items() if e.startswith("updates") for u in items]
    assert {"research", "analyse", "write", "review"} <= {k for u in updates for k in u}
    assert any(e.startswith("updates|research:") for e in seen), sorted(seen)
    # The token stream reaches the client from inside the research stage's ReAct subgraph: the
    # message metadata names the nested checkpoint namespace.
    nested_ids = {
        message_id
        for item in seen["messages/metadata"]
        for message_id, meta in item.items()
        if meta["metadata"].get("langgraph_checkpoint_ns", "").startswith("research:")
    }
    assert nested_ids
    partial = [m for chunk in seen["messages/partial"] for m in chunk if m["id"] in nested_ids]
    assert any(m["content"] == "Notes: X is 42." for m in partial)
    # Custom progress events from get_stream_writer() in the pipeline's stage runner.
    assert [e["stage"] for e in seen["custom"] if e["event"] == "stage_completed"] == [
        "research",
        "analyse",
        "write",
        "review",
    ]


async def test_interrupted_thread_is_found_by_search_and_resumed(client: Any) -> None:
    marker = uuid.uuid4().hex
    thread = await client.threads.create(metadata={"case": marker})
    paused = await client.runs.wait(
        thread["thread_id"],
        "react",
        input=_user("needs approval 6 * 7"),
        context={"approval_mode": "always"},
    )
    assert paused["__interrupt__"][0]["value"]["calls"][0]["id"] == "hitl1"

    found = await client.threads.search(status="interrupted", metadata={"case": marker})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    done = await client.runs.wait(
        thread["thread_id"], "react", command={"resume": {"hitl1": {"decision": "approve"}}}
    )
    assert done["final_answer"] == "Result: 42."
    assert await client.threads.search(status="interrupted", metadata={"case": marker}) == []


async def _busy_thread(client: Any) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    first = await client.runs.create(thread["thread_id"], "react", input=_user("slow one"))
    await _wait_status(client, thread["thread_id"], first["run_id"], "running")
    return thread["thread_id"], first


async def test_double_texting_reject(client: Any) -> None:
    thread_id, first = await _busy_thread(client)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.runs.create(
            thread_id, "react", input=_user("quick two"), multitask_strategy="reject"
        )
    assert refused.value.response.status_code == 409
    result = await client.runs.join(thread_id, first["run_id"])
    assert result["final_answer"] == "slow done"


async def test_double_texting_interrupt_keeps_the_first_runs_progress(client: Any) -> None:
    thread_id, first = await _busy_thread(client)
    second = await client.runs.create(
        thread_id, "react", input=_user("quick two"), multitask_strategy="interrupt"
    )
    result = await client.runs.join(thread_id, second["run_id"])
    assert result["final_answer"] == "quick done"
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    humans = [m["content"] for m in result["messages"] if m["type"] == "human"]
    assert humans == ["slow one", "quick two"]


async def test_double_texting_rollback_deletes_the_first_run(client: Any) -> None:
    thread_id, first = await _busy_thread(client)
    second = await client.runs.create(
        thread_id, "react", input=_user("quick two"), multitask_strategy="rollback"
    )
    result = await client.runs.join(thread_id, second["run_id"])
    assert [m["content"] for m in result["messages"] if m["type"] == "human"] == ["quick two"]
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await client.runs.get(thread_id, first["run_id"])
    assert gone.value.response.status_code == 404


async def test_double_texting_enqueue_runs_both_in_order(client: Any) -> None:
    thread_id, first = await _busy_thread(client)
    second = await client.runs.create(
        thread_id, "react", input=_user("quick two"), multitask_strategy="enqueue"
    )
    assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "pending"
    result = await client.runs.join(thread_id, second["run_id"])
    assert [m["content"] for m in result["messages"] if m["type"] in ("human", "ai")] == [
        "slow one",
        "slow done",
        "quick two",
        "quick done",
    ]
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "success"


async def test_cancel_stops_a_long_run_and_the_thread_stays_usable(client: Any) -> None:
    thread_id, first = await _busy_thread(client)
    await client.runs.cancel(thread_id, first["run_id"], wait=True)

    # The default cancel action is "interrupt": the run and the thread read "interrupted", the
    # checkpoint before the cancelled step stays, and no answer was written.
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    state = await client.threads.get_state(thread_id)
    assert not state["values"].get("final_answer")
    assert [m["content"] for m in state["values"]["messages"]] == ["slow one"]
    after = await client.runs.wait(thread_id, "react", input=_user("quick after cancel"))
    assert after["final_answer"] == "quick done"
    assert [m["content"] for m in after["messages"] if m["type"] == "human"][-1] == (
        "quick after cancel"
    )
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_background_run_and_join(client: Any) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "react", input=_user("quick bg"))
    assert run["status"] in ("pending", "running")
    result = await client.runs.join(thread["thread_id"], run["run_id"])
    assert result["final_answer"] == "quick done"
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


async def test_store_index_ranks_memories_by_meaning(client: Any) -> None:
    namespace = ["memories", f"idx-{uuid.uuid4().hex[:6]}", "semantic"]
    await client.store.put_item(namespace, "a", {"content": "The user's favourite colour is teal"})
    await client.store.put_item(namespace, "b", {"content": "Invoices are due on Fridays"})
    found = await client.store.search_items(namespace, query="favourite colour", limit=2)
    items = found["items"]
    assert [i["key"] for i in items] == ["a", "b"]
    assert items[0]["score"] is not None and items[0]["score"] > items[1]["score"]


# --- cron and webhooks: a second server whose config lets webhooks reach loopback ---


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append({"path": self.path, "body": json.loads(body or b"{}")})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def ops_server(llm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("langgraph-ops")
    repo = Path(__file__).resolve().parents[2]
    config = json.loads((repo / "langgraph.json").read_text())
    # Tests only: the receiver listens on plain http on loopback, which the defaults refuse.
    config["webhooks"] = {"url": {"disable_loopback": False, "require_https": False}}
    (workdir / "langgraph.ops.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "CRON_SCHEDULER_SLEEP_TIME": "1",
    }
    url, process, _ = start_dev_server(workdir, env, ("--config", "langgraph.ops.json"))
    try:
        yield url
    finally:
        stop_dev_server(process)


async def test_webhook_reaches_a_local_receiver(
    ops_server: str, llm_server: Any, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    base, received = receiver
    client = get_client(url=ops_server)
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "react", input=_user("quick hook"), webhook=f"{base}/hook"
    )
    await client.runs.join(thread["thread_id"], run["run_id"])
    for _ in range(100):
        if any(r["body"].get("run_id") == run["run_id"] for r in received):
            break
        await asyncio.sleep(0.1)
    (hook,) = [r for r in received if r["body"].get("run_id") == run["run_id"]]
    assert hook["path"] == "/hook"
    assert hook["body"]["status"] == "success"
    assert hook["body"]["values"]["final_answer"] == "quick done"


async def test_cron_runs_memory_maintenance(
    ops_server: str, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    base, received = receiver
    client = get_client(url=ops_server)
    user = f"cron-{uuid.uuid4().hex[:6]}"
    await client.store.put_item(
        ["memories", user, "semantic"], "m1", {"content": "likes tea", "kind": "semantic"}
    )
    path = f"/cron-{user}"
    # Six-field croniter schedule (seconds last): every 2 s, so the test need not wait a minute.
    cron = await client.crons.create(
        "memory_maintenance",
        schedule="* * * * * */2",
        input={"user_ids": [user]},
        webhook=f"{base}{path}",
        on_run_completed="keep",
    )
    try:
        for _ in range(150):
            if any(r["path"] == path for r in received):
                break
            await asyncio.sleep(0.2)
    finally:
        await client.crons.delete(cron["cron_id"])
    hooks = [r["body"] for r in received if r["path"] == path]
    assert hooks, "the cron never ran"
    assert hooks[0]["status"] == "success"
    assert hooks[0]["values"]["report"]["users"] == 1
    run = await client.runs.get(hooks[0]["thread_id"], hooks[0]["run_id"])
    assert run["status"] == "success"
