"""Auth on a real `langgraph dev` (WEFT_AUTH=keys): ownership, reviewer role, store, identity.

Users: alice and bob (role user), `memories` (a user whose name is the namespace root), rita
(reviewer). The rules under test are listed in graphs/server/auth.py's module docstring.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.auth_keys import KEYS, client_for, start_auth_server
from tests.e2e.conftest import stop_dev_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SCRIPT = {
    "rules": [
        {
            "match": {"user": "^approve 6 \\* 7"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6 * 7"}, "id": "auth1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
        {"match": {"user": "^remember"}, "replies": [{"content": "Noted."}]},
    ],
    "default": {"content": "ok"},
}


@pytest.fixture(scope="module")
def auth_server(llm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process, _, _ = start_auth_server(tmp_path_factory.mktemp("langgraph-auth"), llm_server)
    try:
        yield url
    finally:
        stop_dev_server(process)


@pytest.fixture
def clients(auth_server: str, llm_server: Any) -> dict[str, Any]:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    return {who: client_for(auth_server, who) for who in KEYS}


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def _status_of(call: Any) -> int:
    """The HTTP status an SDK call fails with (200 if it succeeds)."""
    try:
        await call
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code
    return 200


async def _allowed(calls: dict[str, Any]) -> dict[str, int]:
    """Run each call; return those that were NOT refused with 403/404, with their status."""
    statuses = {name: await _status_of(call) for name, call in calls.items()}
    return {name: status for name, status in statuses.items() if status not in (403, 404)}


async def _paused_thread(client: Any, tag: str = "", **context: Any) -> str:
    thread = await client.threads.create()
    paused = await client.runs.wait(
        thread["thread_id"],
        "react",
        input=_user(f"approve 6 * 7 {tag}"),
        context={"approval_mode": "always", **context},
    )
    assert paused["__interrupt__"][0]["value"]["calls"][0]["id"] == "auth1"
    return str(thread["thread_id"])


async def test_requests_without_a_valid_key_are_refused(auth_server: str) -> None:
    async with httpx.AsyncClient(base_url=auth_server) as http:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Basic {KEYS['alice']}"},
            # Studio's scheme: `disable_studio_auth` sends it to our handler, which wants a key.
            {"x-auth-scheme": "langsmith"},
        ):
            response = await http.post("/threads/search", json={}, headers=headers)
            assert response.status_code == 401, (headers, response.text)
        # The in-process client's "/noauth" root path cannot be reached from outside.
        response = await http.post("/noauth/threads/search", json={})
        assert response.status_code in (401, 404), response.text
        assert (await http.get("/ok")).status_code == 200


async def test_threads_belong_to_their_creator(clients: dict[str, Any]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    marker = uuid.uuid4().hex
    thread = await alice.threads.create(metadata={"owner": "bob", "case": marker})
    thread_id = thread["thread_id"]
    assert thread["metadata"]["owner"] == "alice"  # a claimed owner is overwritten
    run = await alice.runs.wait(thread_id, "react", input=_user("hello"))
    assert run["final_answer"] == "ok"
    run_id = (await alice.runs.list(thread_id))[0]["run_id"]

    assert [t["thread_id"] for t in await alice.threads.search(metadata={"case": marker})] == [
        thread_id
    ]
    assert await bob.threads.search(metadata={"case": marker}) == []
    assert await bob.threads.count(metadata={"case": marker}) == 0
    refused = {
        "get": bob.threads.get(thread_id),
        "get_state": bob.threads.get_state(thread_id),
        "get_history": bob.threads.get_history(thread_id),
        "runs.list": bob.runs.list(thread_id),
        "runs.get": bob.runs.get(thread_id, run_id),
        "runs.join": bob.runs.join(thread_id, run_id),
        "runs.create": bob.runs.create(thread_id, "react", input=_user("hijack")),
        "update": bob.threads.update(thread_id, metadata={"owner": "bob"}),
        "update_state": bob.threads.update_state(thread_id, {"messages": []}),
        "delete": bob.threads.delete(thread_id),
    }
    assert await _allowed(refused) == {}
    # The API answers a copy it cannot find with 409; no copy appeared anywhere.
    assert await _status_of(bob.threads.copy(thread_id)) == 409
    assert len(await alice.threads.search(metadata={"case": marker})) == 1
    # Nothing bob tried changed alice's thread, and alice cannot give it away either.
    await alice.threads.update(thread_id, metadata={"owner": "bob"})
    after = await alice.threads.get(thread_id)
    assert after["metadata"]["owner"] == "alice"
    assert await bob.threads.search(metadata={"case": marker}) == []
    state = await alice.threads.get_state(thread_id)
    assert [m["content"] for m in state["values"]["messages"]] == ["hello", "ok"]


async def test_another_user_cannot_find_resume_or_cancel_a_paused_thread(
    clients: dict[str, Any],
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    thread_id = await _paused_thread(alice)
    bob_sees = [t["thread_id"] for t in await bob.threads.search(status="interrupted", limit=100)]
    assert thread_id not in bob_sees
    resume = {"resume": {"auth1": {"decision": "approve"}}}
    assert await _status_of(bob.runs.wait(thread_id, "react", command=resume)) == 404
    run_id = (await alice.runs.list(thread_id))[0]["run_id"]
    assert await _status_of(bob.runs.cancel(thread_id, run_id)) in (403, 404)
    assert (await alice.threads.get(thread_id))["status"] == "interrupted"
    done = await alice.runs.wait(thread_id, "react", command=resume)
    assert done["final_answer"] == "Result: 42."


async def test_a_user_cannot_cancel_another_users_run(clients: dict[str, Any]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    thread = await alice.threads.create()
    run = await alice.runs.create(thread["thread_id"], "react", input=_user("hello"))
    status = await _status_of(bob.runs.cancel(thread["thread_id"], run["run_id"]))
    assert status in (403, 404)
    await alice.runs.join(thread["thread_id"], run["run_id"])
    assert (await alice.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


async def test_the_reviewer_sees_and_resolves_approvals_but_nothing_more(
    clients: dict[str, Any],
) -> None:
    alice, rita = clients["alice"], clients["rita"]
    tag = uuid.uuid4().hex[:8]
    thread_id = await _paused_thread(alice, tag, memory_enabled=True)

    # May: find every paused thread, read it, answer the interrupt.
    found = [t["thread_id"] for t in await rita.threads.search(status="interrupted", limit=100)]
    assert thread_id in found
    state = await rita.threads.get_state(thread_id)
    assert state["next"] == ["approval"]

    # May not: new input, state edits, metadata edits, cancelling, deleting, forking.
    head = state["checkpoint"]["checkpoint_id"]
    history = await rita.threads.get_history(thread_id, limit=10)
    older = next(h["checkpoint"]["checkpoint_id"] for h in history if h["next"] != ["approval"])
    refused = {
        "new input": rita.runs.create(thread_id, "react", input=_user("reviewer says hi")),
        "resume + input": rita.runs.create(
            thread_id, "react", input=_user("x"), command={"resume": "approve"}
        ),
        "goto": rita.runs.create(thread_id, "react", command={"resume": "a", "goto": "tools"}),
        "fork": rita.runs.create(
            thread_id, "react", command={"resume": "approve"}, checkpoint_id=older
        ),
        "update_state": rita.threads.update_state(thread_id, {"messages": []}),
        "update": rita.threads.update(thread_id, metadata={"owner": "rita"}),
        "cancel": rita.runs.cancel(thread_id, (await alice.runs.list(thread_id))[0]["run_id"]),
        "delete": rita.threads.delete(thread_id),
    }
    assert await _allowed(refused) == {}
    unchanged = await alice.threads.get_state(thread_id)
    assert unchanged["checkpoint"]["checkpoint_id"] == head

    # The resume claims another owner in both metadata layers; the thread owner still wins.
    done = await rita.runs.wait(
        thread_id,
        "react",
        command={"resume": {"auth1": {"decision": "approve", "reviewer": "rita"}}},
        context={"approval_mode": "always", "memory_enabled": True},
        metadata={"owner": "bob"},
        config={"metadata": {"owner": "bob"}},
    )
    assert done["final_answer"] == "Result: 42."
    thread = await alice.threads.get(thread_id)
    assert (thread["metadata"]["owner"], thread["status"]) == ("alice", "idle")
    # The run acted for alice: its episode is in alice's memories, none in rita's or bob's.
    episodes = await alice.store.search_items(("memories", "alice", "episodic"), limit=100)
    assert any(tag in i["value"]["content"] for i in episodes["items"])
    for other in ("rita", "bob"):
        theirs = await clients[other].store.search_items(("memories", other, "episodic"))
        assert not any(tag in i["value"]["content"] for i in theirs["items"]), other


async def test_memory_user_is_the_authenticated_user_not_the_context(
    clients: dict[str, Any],
) -> None:
    alice, bob = clients["alice"], clients["bob"]
    tag = uuid.uuid4().hex[:8]
    thread = await alice.threads.create()
    await alice.runs.wait(
        thread["thread_id"],
        "react",
        input=_user(f"remember {tag}"),
        context={"user_id": "bob", "memory_enabled": True},
    )
    mine = await alice.store.search_items(("memories", "alice", "episodic"), limit=100)
    assert any(tag in str(item["value"].get("content")) for item in mine["items"])
    bobs = await bob.store.search_items(("memories", "bob", "episodic"), limit=100)
    assert not any(tag in str(item["value"].get("content")) for item in bobs["items"])


async def test_the_store_api_reaches_only_the_callers_namespaces(
    clients: dict[str, Any],
) -> None:
    alice, bob, named_memories = clients["alice"], clients["bob"], clients["memories"]
    await alice.store.put_item(("memories", "alice", "semantic"), "k1", {"content": "likes tea"})
    assert (await alice.store.get_item(("memories", "alice", "semantic"), "k1"))["value"] == {
        "content": "likes tea"
    }
    attempts = {
        "bob get": bob.store.get_item(("memories", "alice", "semantic"), "k1"),
        "bob search": bob.store.search_items(("memories", "alice")),
        "bob put": bob.store.put_item(("memories", "alice", "semantic"), "k2", {"content": "x"}),
        "bob delete": bob.store.delete_item(("memories", "alice", "semantic"), "k1"),
        "bob search root": bob.store.search_items(("memories",)),
        # A user named like the namespace root must not reach everyone's memories.
        "'memories' search": named_memories.store.search_items(("memories", "alice")),
        "'memories' get": named_memories.store.get_item(("memories", "alice", "semantic"), "k1"),
        "other root": bob.store.search_items(("bob", "memories")),
    }
    statuses = {name: await _status_of(call) for name, call in attempts.items()}
    assert statuses == dict.fromkeys(attempts, 403), statuses
    listed = await bob.store.list_namespaces()
    assert all(tuple(ns[:2]) == ("memories", "bob") for ns in listed["namespaces"]), listed
    assert (await alice.store.get_item(("memories", "alice", "semantic"), "k1")) is not None


async def test_graphs_are_readable_but_not_editable(clients: dict[str, Any]) -> None:
    alice = clients["alice"]
    graphs = {a["graph_id"] for a in await alice.assistants.search(limit=50)}
    assert {"react", "pipeline", "plan_execute"} <= graphs
    assert await _status_of(alice.assistants.create("react", config={})) == 403


async def test_crons_belong_to_their_creator(clients: dict[str, Any]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    cron = await alice.crons.create("react", schedule="0 0 1 1 *", input=_user("yearly"))
    try:
        assert cron["cron_id"] in {c["cron_id"] for c in await alice.crons.search()}
        assert cron["cron_id"] not in {c["cron_id"] for c in await bob.crons.search()}
        assert await _status_of(bob.crons.delete(cron["cron_id"])) in (403, 404)
    finally:
        await alice.crons.delete(cron["cron_id"])
