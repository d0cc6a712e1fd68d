"""The approvals inbox (graphs/server/inbox.py) on a real `langgraph dev`: JSON API and a browser.

The server runs with auth on (WEFT_AUTH=keys, see tests/e2e/auth_keys.py) and a test-only
`react_outbox` graph (the ReAct factory with `send_email`, writing to a local SQLite outbox).
The browser tests drive Debian's headless Chromium with Playwright; they are skipped only when
/usr/bin/chromium is missing (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.e2e.auth_keys import KEYS, OUTBOX_GRAPH, client_for, start_auth_server
from tests.e2e.conftest import stop_dev_server
from tools.outbox import Outbox

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_ENV = "WEFT_INBOX_SCREENSHOT"
"""When set, the screenshot test also saves its picture there (the README's is made this way)."""

EMAIL = {"to": "boss@corp.com", "subject": "Q3 summary", "body": "Revenue is up 4%."}
HOSTILE = {
    "to": "boss@corp.com",
    "subject": "<img src=x onerror=\"document.body.dataset.pwned='img'\">",
    "body": "<script>document.body.dataset.pwned='script'</script><b>bold?</b>",
}
HOSTILE_REASON = "<img src=y onerror=\"document.body.dataset.pwned='reason'\">Sending it now."


def _mail_rule(trigger: str, args: dict[str, Any], reason: str, call_id: str) -> dict[str, Any]:
    return {
        "match": {"user": f"^{trigger}"},
        "replies": [
            {
                "content": reason,
                "tool_calls": [{"name": "send_email", "args": args, "id": call_id}],
            },
            {"content": "Done: {{last_tool}}"},
        ],
    }


SCRIPT = {
    "rules": [
        _mail_rule("mail approve", EMAIL, "Sending the Q3 summary to the boss.", "m1"),
        _mail_rule("mail edit", EMAIL, "Sending the Q3 summary to the boss.", "m2"),
        _mail_rule("mail reject", EMAIL, "Sending the Q3 summary to the boss.", "m3"),
        _mail_rule("mail hostile", HOSTILE, HOSTILE_REASON, "m4"),
        _mail_rule("mail api", EMAIL, "Sending the Q3 summary to the boss.", "m5"),
        {
            "match": {"user": "^calc approve"},
            "replies": [
                {
                    "content": "Computing.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "2 + 3"}, "id": "c1"}
                    ],
                },
                {"content": "Result: {{last_tool}}."},
            ],
        },
    ],
    "default": {"content": "ok"},
}


class InboxServer:
    def __init__(self, url: str, outbox: Path, audit: Path) -> None:
        self.url, self.outbox, self.audit = url, Outbox(outbox), audit

    def emails_of(self, thread_id: str) -> list[dict[str, Any]]:
        return [
            m for m in self.outbox.messages("email") if m["idempotency_key"].startswith(thread_id)
        ]

    def audit_lines(self, thread_id: str) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        lines = [json.loads(line) for line in self.audit.read_text().splitlines() if line]
        return [r for r in lines if r.get("thread_id") == thread_id]


@pytest.fixture(scope="module")
def inbox_server(
    llm_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InboxServer]:
    workdir = tmp_path_factory.mktemp("langgraph-inbox")
    url, process, outbox, _ = start_auth_server(workdir, llm_server)
    try:
        yield InboxServer(url, outbox, workdir / "weft" / "audit.jsonl")
    finally:
        stop_dev_server(process)


@pytest.fixture
def server(inbox_server: InboxServer, llm_server: Any) -> InboxServer:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    return inbox_server


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def _pause(url: str, who: str, text: str, graph: str = OUTBOX_GRAPH) -> str:
    """Start a run as `who` that stops on an approval; returns its thread id."""
    client = client_for(url, who)
    thread = await client.threads.create()
    paused = await client.runs.wait(
        thread["thread_id"], graph, input=_user(f"{text} {uuid.uuid4().hex[:6]}")
    )
    assert paused["__interrupt__"][0]["value"]["type"] == "tool_approval", paused
    return str(thread["thread_id"])


async def _finished(url: str, who: str, thread_id: str) -> dict[str, Any]:
    """The thread's final values once the resumed run is done."""
    client = client_for(url, who)
    for _ in range(300):
        thread = await client.threads.get(thread_id)
        if thread["status"] == "idle":
            values: dict[str, Any] = thread["values"]
            return values
        assert thread["status"] in ("busy", "interrupted"), thread["status"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"thread {thread_id} did not finish")


def _api(url: str, who: str | None) -> httpx.AsyncClient:
    headers = {} if who is None else {"Authorization": f"Bearer {KEYS[who]}"}
    return httpx.AsyncClient(base_url=url, headers=headers)


async def _listed(url: str, who: str) -> dict[str, Any]:
    async with _api(url, who) as http:
        response = await http.get("/inbox/api/approvals")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# --- JSON API ---


async def test_api_roles_and_resume(server: InboxServer) -> None:
    mine = await _pause(server.url, "alice", "mail api")
    theirs = await _pause(server.url, "bob", "mail api")

    async with _api(server.url, None) as anonymous:
        assert (await anonymous.get("/inbox/api/approvals")).status_code == 401
        assert (await anonymous.post(f"/inbox/api/approvals/{mine}", json={})).status_code == 401
        # The inbox itself reads through the in-process client, which skips the API's auth
        # (root path "/noauth"); the same listing over HTTP without a key is refused.
        assert (await anonymous.post("/threads/search", json={})).status_code == 401

    alice = await _listed(server.url, "alice")
    assert alice["user"] == {"identity": "alice", "role": "user"}
    alice_threads = {e["thread_id"] for e in alice["approvals"]}
    assert mine in alice_threads and theirs not in alice_threads
    (entry,) = [e for e in alice["approvals"] if e["thread_id"] == mine]
    (call,) = entry["calls"]
    assert (entry["owner"], call["tool"], call["args"]) == ("alice", "send_email", EMAIL)
    assert call["reason"] == "Sending the Q3 summary to the boss."
    assert call["consequences"] and call["deadline"]

    reviewer = await _listed(server.url, "rita")
    assert reviewer["user"] == {"identity": "rita", "role": "reviewer"}
    assert {mine, theirs} <= {e["thread_id"] for e in reviewer["approvals"]}

    answer = {"interrupt_id": entry["interrupt_id"], "decisions": {"m5": {"decision": "approve"}}}
    async with _api(server.url, "bob") as bob:
        # Not bob's thread and bob is no reviewer: it does not exist for him.
        assert (await bob.post(f"/inbox/api/approvals/{mine}", json=answer)).status_code == 404
    async with _api(server.url, "rita") as rita:
        bad = await rita.post(
            f"/inbox/api/approvals/{mine}", json={"decisions": {"nope": {"decision": "approve"}}}
        )
        assert (bad.status_code, bad.json()["error"]) == (
            400,
            "unknown call id 'nope'; pending calls: m5",
        )
        assert (await rita.post(f"/inbox/api/approvals/{mine}", content=b"{")).status_code == 400
        missing = await rita.post(f"/inbox/api/approvals/{uuid.uuid4()}", json=answer)
        assert missing.status_code == 404
        accepted = await rita.post(f"/inbox/api/approvals/{mine}", json=answer)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["run_id"]

    done = await _finished(server.url, "alice", mine)
    assert done["final_answer"].startswith("Done: Email sent to boss@corp.com")
    assert len(server.emails_of(mine)) == 1
    (decision,) = [r for r in server.audit_lines(mine) if r["event"] == "approval_decision"]
    assert (decision["decision"], decision["reviewer"]) == ("approve", "rita")
    async with _api(server.url, "rita") as rita:
        again = await rita.post(f"/inbox/api/approvals/{mine}", json=answer)
        assert again.status_code == 409
    # bob's approval is still waiting, untouched.
    assert server.emails_of(theirs) == []
    assert theirs in {e["thread_id"] for e in (await _listed(server.url, "bob"))["approvals"]}


async def test_owner_may_answer_own_approval_and_the_resume_acts_for_the_owner(
    server: InboxServer,
) -> None:
    thread_id = await _pause(server.url, "alice", "mail api")
    (entry,) = [
        e for e in (await _listed(server.url, "alice"))["approvals"] if e["thread_id"] == thread_id
    ]
    body = {
        "interrupt_id": entry["interrupt_id"],
        "decisions": {"m5": {"decision": "reject", "comment": "not now"}},
        "reviewer": "someone-else",
    }
    async with _api(server.url, "alice") as alice:
        assert (await alice.post(f"/inbox/api/approvals/{thread_id}", json=body)).status_code == 202
    done = await _finished(server.url, "alice", thread_id)
    assert server.emails_of(thread_id) == []
    (tool_message,) = [m for m in done["messages"] if m["type"] == "tool"]
    assert "not now" in tool_message["content"]
    (decision,) = [r for r in server.audit_lines(thread_id) if r["event"] == "approval_decision"]
    assert (decision["decision"], decision["reviewer"]) == ("reject", "alice")


async def test_api_with_auth_off(dev_server: str, llm_server: Any) -> None:
    from nodes.offline import load_script

    llm_server.script = load_script(SCRIPT)
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"],
        "react",
        input=_user("calc approve"),
        context={"approval_mode": "always"},
    )
    async with httpx.AsyncClient(base_url=dev_server) as http:
        listed = (await http.get("/inbox/api/approvals")).json()
        assert listed["user"] is None
        (entry,) = [e for e in listed["approvals"] if e["thread_id"] == thread["thread_id"]]
        answer = {"decisions": {"c1": {"decision": "approve"}}, "reviewer": "ops"}
        posted = await http.post(f"/inbox/api/approvals/{thread['thread_id']}", json=answer)
        assert posted.status_code == 202, posted.text
        await client.runs.join(thread["thread_id"], posted.json()["run_id"])
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["final_answer"] == "Result: 5."
    assert entry["calls"][0]["args"] == {"expression": "2 + 3"}


# --- the page in a real headless Chromium ---


@pytest.fixture
async def page(server: InboxServer) -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); .ci/run installs it")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 900})
            tab = await context.new_page()
            tab.dialogs = []
            tab.on("dialog", lambda dialog: tab.dialogs.append(dialog.message))
            yield tab
        finally:
            await browser.close()


async def _open_inbox(tab: Any, server: InboxServer, who: str, thread_id: str) -> Any:
    """Load the page as `who` and return the card of `thread_id`'s approval."""
    await tab.goto(f"{server.url}/inbox")
    await tab.fill("#token", KEYS[who])
    await tab.click("#refresh")
    card = tab.locator(f'section.card[data-thread="{thread_id}"]')
    await card.wait_for(timeout=15_000)
    return card


async def _answered(tab: Any, card: Any, decision: str) -> None:
    await card.locator(f'button[data-decision="{decision}"]').click()
    await tab.wait_for_function(
        "(d) => document.getElementById('status').textContent.startsWith(d + ' sent')",
        arg=decision,
        timeout=15_000,
    )


async def test_browser_approve_sends_exactly_one_email(page: Any, server: InboxServer) -> None:
    thread_id = await _pause(server.url, "alice", "mail approve")
    card = await _open_inbox(page, server, "rita", thread_id)
    text = await card.inner_text()
    state = await client_for(server.url, "alice").threads.get_state(thread_id)
    (call,) = state["interrupts"][0]["value"]["calls"]
    for shown in ("send_email", call["reason"], call["consequences"], call["deadline"]):
        assert shown in text, shown
    assert json.loads(await card.locator("pre.args").inner_text()) == EMAIL
    assert "owner alice" in text

    await _answered(page, card, "approve")
    done = await _finished(server.url, "alice", thread_id)
    assert done["final_answer"].startswith("Done: Email sent to boss@corp.com")
    (email,) = server.emails_of(thread_id)
    assert (email["payload"], email["attempts"]) == (EMAIL, 1)
    # The page refreshed after answering: the card is gone.
    assert await page.locator(f'section.card[data-thread="{thread_id}"]').count() == 0


async def test_browser_edit_sends_to_the_edited_address(page: Any, server: InboxServer) -> None:
    thread_id = await _pause(server.url, "alice", "mail edit")
    card = await _open_inbox(page, server, "alice", thread_id)
    edited = {**EMAIL, "to": "cfo@corp.com"}
    await card.locator("textarea").fill(json.dumps(edited))
    await _answered(page, card, "edit")
    done = await _finished(server.url, "alice", thread_id)
    assert done["final_answer"].startswith("Done: Email sent to cfo@corp.com")
    (email,) = server.emails_of(thread_id)
    assert email["payload"] == edited


async def test_browser_reject_sends_nothing(page: Any, server: InboxServer) -> None:
    thread_id = await _pause(server.url, "alice", "mail reject")
    card = await _open_inbox(page, server, "rita", thread_id)
    await card.locator("input.comment").fill("wrong recipient")
    await _answered(page, card, "reject")
    done = await _finished(server.url, "alice", thread_id)
    assert server.emails_of(thread_id) == []
    (tool_message,) = [m for m in done["messages"] if m["type"] == "tool"]
    assert "rita" in tool_message["content"] and "wrong recipient" in tool_message["content"]


async def test_browser_renders_hostile_arguments_as_text(page: Any, server: InboxServer) -> None:
    thread_id = await _pause(server.url, "alice", "mail hostile")
    card = await _open_inbox(page, server, "rita", thread_id)
    text = await card.inner_text()
    assert HOSTILE_REASON in text  # the markup shows as literal characters
    assert json.loads(await card.locator("pre.args").inner_text()) == HOSTILE
    assert await page.locator("#list img, #list script, #list b").count() == 0
    await page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert await page.evaluate("document.body.dataset.pwned") is None
    assert page.dialogs == []
    await _answered(page, card, "reject")
    await _finished(server.url, "alice", thread_id)
    assert server.emails_of(thread_id) == []


async def test_browser_screenshot_of_pending_approvals(
    page: Any, server: InboxServer, tmp_path: Path
) -> None:
    first = await _pause(server.url, "alice", "mail approve")
    second = await _pause(server.url, "bob", "mail hostile")
    await _open_inbox(page, server, "rita", first)
    await page.locator(f'section.card[data-thread="{second}"]').wait_for()
    picture = tmp_path / "approvals_inbox.png"
    await page.screenshot(path=str(picture), full_page=True)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if target := os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(picture, target)
    # Leave nothing pending for the other tests.
    async with _api(server.url, "rita") as rita:
        for thread_id in (first, second):
            listed = await _listed(server.url, "rita")
            (entry,) = [e for e in listed["approvals"] if e["thread_id"] == thread_id]
            decisions = {c["id"]: {"decision": "reject"} for c in entry["calls"]}
            response = await rita.post(
                f"/inbox/api/approvals/{thread_id}", json={"decisions": decisions}
            )
            assert response.status_code == 202
