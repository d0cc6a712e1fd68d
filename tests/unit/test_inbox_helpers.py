"""The pure parts of the approvals inbox (graphs/server/inbox.py) and the page's safety headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from graphs.server.inbox import InboxRequestError, app, build_resume, pending_approvals

CALL = {
    "id": "e1",
    "tool": "send_email",
    "args": {"to": "a@b.com", "subject": "Hi", "body": "x"},
    "reason": "Sending the summary.",
    "consequences": "Cannot be undone.",
    "rule_id": "review_side_effects",
    "why_review": "policy",
    "deadline": "2030-01-01T00:00:00+00:00",
}


def _thread(*interrupts: Any, owner: str | None = "alice") -> dict[str, Any]:
    metadata = {"graph_id": "react"} | ({"owner": owner} if owner else {})
    return {
        "thread_id": "t1",
        "metadata": metadata,
        "updated_at": "2030-01-01T00:00:00Z",
        "interrupts": {"task-a": list(interrupts)},
    }


def _approval(interrupt_id: str = "i1", *calls: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": interrupt_id,
        "value": {"type": "tool_approval", "message": "Answer per call.", "calls": list(calls)},
    }


def test_pending_approvals_lists_only_tool_approvals() -> None:
    other = {"id": "i9", "value": {"type": "plan_review", "plan": []}}
    (entry,) = pending_approvals(_thread(_approval("i1", CALL), other, {"id": "i8", "value": 3}))
    assert entry == {
        "thread_id": "t1",
        "interrupt_id": "i1",
        "graph_id": "react",
        "owner": "alice",
        "updated_at": "2030-01-01T00:00:00Z",
        "message": "Answer per call.",
        "calls": [CALL],
    }
    assert pending_approvals({"thread_id": "t2", "metadata": {}, "interrupts": {}}) == []


def test_build_resume_for_the_only_interrupt_is_keyed_by_call() -> None:
    (entry,) = pending_approvals(_thread(_approval("i1", CALL, {**CALL, "id": "e2"})))
    resume = build_resume(
        entry,
        {
            "e1": {"decision": "edit", "args": {"to": "c@d.com"}, "comment": "fixed"},
            "e2": {"decision": "reject", "reviewer": "mallory"},
        },
        reviewer="rita",
        only_interrupt=True,
    )
    # The reviewer is always the caller, whatever the body claims.
    assert resume == {
        "e1": {
            "decision": "edit",
            "reviewer": "rita",
            "args": {"to": "c@d.com"},
            "comment": "fixed",
        },
        "e2": {"decision": "reject", "reviewer": "rita"},
    }


def test_build_resume_with_several_interrupts_is_keyed_by_interrupt_id() -> None:
    (entry,) = pending_approvals(_thread(_approval("i1", CALL)))
    resume = build_resume(
        entry, {"e1": {"decision": "approve"}}, reviewer="rita", only_interrupt=False
    )
    assert resume == {"i1": {"e1": {"decision": "approve", "reviewer": "rita"}}}


@pytest.mark.parametrize(
    ("decisions", "message"),
    [
        ({}, "'decisions' must be a non-empty object keyed by call id"),
        ("approve", "'decisions' must be a non-empty object"),
        ({"zz": {"decision": "approve"}}, "unknown call id 'zz'; pending calls: e1, e2"),
        ({"e1": "approve"}, "decision for 'e1' must be an object"),
        ({"e1": {"decision": "maybe"}}, "is 'maybe'; expected one of approve, reject, edit"),
        ({"e1": {"decision": "edit", "args": "to=x"}}, "an edit of 'e1' needs 'args' as an object"),
        ({"e1": {"decision": "approve"}}, "no decision for call\\(s\\) e2"),
    ],
)
def test_build_resume_rejects_bad_answers_with_400(decisions: Any, message: str) -> None:
    (entry,) = pending_approvals(_thread(_approval("i1", CALL, {**CALL, "id": "e2"})))
    with pytest.raises(InboxRequestError, match=message) as error:
        build_resume(entry, decisions, reviewer="rita", only_interrupt=True)
    assert error.value.status == 400


def test_the_page_is_self_contained_and_locked_down() -> None:
    response = TestClient(app).get("/inbox")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    (nonce,) = set(re.findall(r"'nonce-([^']+)'", csp))
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = response.text
    # Every <script>/<style> carries this response's nonce; nothing is loaded from elsewhere.
    tags = re.findall(r"<(script|style)\b([^>]*)>", html)
    assert tags and all(f'nonce="{nonce}"' in attrs for _, attrs in tags)
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html)
    # Values reach the DOM through textContent / .value only: no HTML parsing sinks.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in html
    assert TestClient(app).get("/inbox").headers["content-security-policy"] != csp
