"""Approvals inbox: a small web app mounted into the LangGraph server (`langgraph.json` `http.app`).

    GET  /inbox                               the page (HTML, CSS and JS inline; no external assets)
    GET  /inbox/api/approvals                 pending tool approvals the caller may see (JSON)
    POST /inbox/api/approvals/{thread_id}     answer one: {"interrupt_id": ..., "decisions":
                                              {call_id: {"decision": "approve"|"edit"|"reject",
                                                         "args": {...}, "comment": "..."}}}

The API resumes the thread with the approval gate's resume format (nodes/approval.py) as a
background run and returns its id. It talks to the server in-process (`get_client()` without a
URL, which skips the API's auth), so it applies the same rules itself (graphs/server/auth.py):
with auth on, the bearer token names the caller; users see and answer approvals on their own
threads, reviewers on every thread; the answer's `reviewer` is always the caller's identity.
The page renders every value with `textContent` (tool arguments are attacker-influenced) and is
served with a nonce-based Content-Security-Policy, so injected markup can neither render nor run.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import httpx
from langgraph_sdk import Auth, get_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from graphs.server.auth import ApiUser, AuthConfigError, can_resume, can_see, resolve_user
from nodes.approval import APPROVAL_INTERRUPT_TYPE, DECISIONS
from nodes.identity import OWNER_METADATA_KEY

logger = logging.getLogger(__name__)

SEARCH_LIMIT = 100
"""Most interrupted threads one listing looks at (newest first)."""


class InboxRequestError(ValueError):
    """A request the inbox refuses; carries the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _caller(request: Request) -> ApiUser | None:
    try:
        return await resolve_user(request.headers.get("authorization"))
    except Auth.exceptions.HTTPException as exc:
        raise InboxRequestError(exc.status_code, str(exc.detail)) from None
    except AuthConfigError as exc:
        logger.error("inbox auth misconfigured: %s", exc)
        raise InboxRequestError(500, "server auth is misconfigured") from None


def pending_approvals(thread: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tool-approval interrupts of one thread, as inbox entries (pure)."""
    metadata = thread.get("metadata") or {}
    entries = []
    for task_interrupts in (thread.get("interrupts") or {}).values():
        for item in task_interrupts or []:
            value = item.get("value")
            if not isinstance(value, Mapping) or value.get("type") != APPROVAL_INTERRUPT_TYPE:
                continue
            entries.append(
                {
                    "thread_id": thread["thread_id"],
                    "interrupt_id": item.get("id"),
                    "graph_id": metadata.get("graph_id"),
                    "owner": metadata.get(OWNER_METADATA_KEY),
                    "updated_at": str(thread.get("updated_at") or ""),
                    "message": value.get("message"),
                    "calls": list(value.get("calls") or []),
                }
            )
    return entries


def build_resume(
    entry: Mapping[str, Any],
    decisions: Any,
    *,
    reviewer: str,
    only_interrupt: bool,
) -> Any:
    """The `command.resume` value answering `entry` (validated; raises InboxRequestError)."""
    if not isinstance(decisions, Mapping) or not decisions:
        raise InboxRequestError(400, "'decisions' must be a non-empty object keyed by call id")
    call_ids = [str(c.get("id")) for c in entry["calls"]]
    answer: dict[str, Any] = {}
    for call_id, raw in decisions.items():
        if call_id not in call_ids:
            raise InboxRequestError(
                400, f"unknown call id {call_id!r}; pending calls: {', '.join(call_ids)}"
            )
        if not isinstance(raw, Mapping):
            raise InboxRequestError(400, f"decision for {call_id!r} must be an object")
        decision = raw.get("decision")
        if decision not in DECISIONS:
            raise InboxRequestError(
                400,
                f"decision for {call_id!r} is {decision!r}; expected one of {', '.join(DECISIONS)}",
            )
        item: dict[str, Any] = {"decision": decision, "reviewer": reviewer}
        if decision == "edit":
            if not isinstance(raw.get("args"), Mapping):
                raise InboxRequestError(400, f"an edit of {call_id!r} needs 'args' as an object")
            item["args"] = dict(raw["args"])
        if raw.get("comment"):
            item["comment"] = str(raw["comment"])
        answer[call_id] = item
    missing = [c for c in call_ids if c not in answer]
    if missing:
        raise InboxRequestError(400, f"no decision for call(s) {', '.join(missing)}")
    return answer if only_interrupt else {entry["interrupt_id"]: answer}


def _error(exc: InboxRequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def list_approvals(request: Request) -> Response:
    """GET /inbox/api/approvals."""
    try:
        user = await _caller(request)
    except InboxRequestError as exc:
        return _error(exc)
    client = get_client()
    filters = (
        {OWNER_METADATA_KEY: user.identity} if user is not None and user.role == "user" else None
    )
    threads = await client.threads.search(
        status="interrupted", metadata=filters, limit=SEARCH_LIMIT, sort_by="updated_at"
    )
    approvals = [
        entry
        for thread in threads
        if can_see(user, thread.get("metadata") or {})
        for entry in pending_approvals(thread)
    ]
    who = None if user is None else {"identity": user.identity, "role": user.role}
    return JSONResponse({"user": who, "approvals": approvals})


async def answer_approval(request: Request) -> Response:
    """POST /inbox/api/approvals/{thread_id}: resume the thread with the reviewer's decisions."""
    thread_id = request.path_params["thread_id"]
    try:
        user = await _caller(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InboxRequestError(400, "body must be JSON") from None
        if not isinstance(body, Mapping):
            raise InboxRequestError(400, "body must be a JSON object")
        client = get_client()
        try:
            thread = await client.threads.get(thread_id)
        except httpx.HTTPStatusError as exc:  # 404 unknown id, 422 not a UUID
            if exc.response.status_code not in (404, 422):
                raise
            raise InboxRequestError(404, f"no thread {thread_id!r}") from None
        metadata = thread.get("metadata") or {}
        if not can_see(user, metadata):
            raise InboxRequestError(404, f"no thread {thread_id!r}")
        if not can_resume(user, metadata):
            raise InboxRequestError(403, "only the thread owner or a reviewer may answer")
        entries = pending_approvals(thread)
        wanted = body.get("interrupt_id")
        entry = next((e for e in entries if wanted in (None, e["interrupt_id"])), None)
        if entry is None:
            raise InboxRequestError(409, f"thread {thread_id!r} has no such pending approval")
        reviewer = user.identity if user is not None else str(body.get("reviewer") or "inbox")
        all_interrupts = sum(len(v or []) for v in (thread.get("interrupts") or {}).values())
        resume = build_resume(
            entry, body.get("decisions"), reviewer=reviewer, only_interrupt=all_interrupts == 1
        )
        context = await _resume_context(client, thread_id, metadata)
        try:
            run = await client.runs.create(
                thread_id,
                metadata.get("assistant_id") or entry["graph_id"],
                command={"resume": resume},
                context=context,
                multitask_strategy="reject",
            )
        except httpx.HTTPStatusError as exc:
            # 409: another answer (or run) got there first; the thread is busy resuming.
            if exc.response.status_code != 409:
                raise
            raise InboxRequestError(409, f"thread {thread_id!r} is already running") from None
    except InboxRequestError as exc:
        return _error(exc)
    logger.info("inbox: %s answered %s on thread %s", reviewer, sorted(resume), thread_id)
    return JSONResponse({"thread_id": thread_id, "run_id": run["run_id"]}, status_code=202)


async def _resume_context(client: Any, thread_id: str, metadata: Mapping[str, Any]) -> Any:
    """The paused run's context (a resume runs with the same settings), acting for the owner."""
    runs = await client.runs.list(thread_id, limit=1)
    context = dict((runs[0].get("kwargs") or {}).get("context") or {}) if runs else {}
    owner = metadata.get(OWNER_METADATA_KEY)
    if owner:
        # In-process calls carry no auth user, so name the owner explicitly.
        context["user_id"] = owner
    return context or None


async def page(request: Request) -> Response:
    """GET /inbox: the static page; data arrives through the JSON API."""
    nonce = secrets.token_urlsafe(16)
    html = PAGE.replace("__NONCE__", nonce)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weftgraph · approvals inbox</title>
<style nonce="__NONCE__">
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center}
header h1{font-size:17px;margin:0;flex:1}
header input{width:220px;padding:4px 6px}
main{max-width:980px;margin:18px auto;padding:0 16px}
.card{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:14px 16px;margin:0 0 14px}
.meta{color:#5b6475;font-size:12px;margin-bottom:6px}
.call{border-top:1px solid #eceef2;padding-top:10px;margin-top:10px}
.tool{font-weight:600;font-size:15px}
dl{display:grid;grid-template-columns:120px 1fr;gap:2px 10px;margin:6px 0}
dt{color:#5b6475}dd{margin:0;white-space:pre-wrap;word-break:break-word}
pre{background:#f0f2f6;padding:8px;border-radius:4px;overflow:auto;margin:0}
textarea{width:100%;min-height:70px;font:12px ui-monospace,monospace;box-sizing:border-box}
.actions{display:flex;gap:8px;align-items:center;margin-top:8px;flex-wrap:wrap}
button{padding:5px 12px;border-radius:4px;border:1px solid #9aa3b5;background:#fff;cursor:pointer}
button.approve{background:#1f7a3d;color:#fff;border-color:#1f7a3d}
button.reject{background:#a32020;color:#fff;border-color:#a32020}
.status{font-size:12px;color:#5b6475}.error{color:#a32020}
.empty{color:#5b6475;text-align:center;padding:30px}
</style></head>
<body>
<header><h1>Approvals inbox</h1><span id="who"></span>
<input id="token" type="password" placeholder="API key (when auth is on)" autocomplete="off">
<button id="refresh">Refresh</button></header>
<main><div id="status" class="status"></div><div id="list"></div></main>
<script nonce="__NONCE__">
"use strict";
const API = "/inbox/api/approvals";
const $ = (id) => document.getElementById(id);
const tokenBox = $("token");
tokenBox.value = sessionStorage.getItem("weft_token") || "";
tokenBox.addEventListener("change", () => {
  sessionStorage.setItem("weft_token", tokenBox.value); load();
});
function headers() {
  const h = {"Content-Type": "application/json"};
  if (tokenBox.value) h["Authorization"] = "Bearer " + tokenBox.value;
  return h;
}
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function field(dl, label, value) {
  dl.append(el("dt", "", label), el("dd", "", value === undefined || value === null ? "—" : value));
}
function setStatus(text, isError) {
  const s = $("status"); s.textContent = text; s.className = isError ? "status error" : "status";
}
async function answer(entry, call, decision, card) {
  const body = {interrupt_id: entry.interrupt_id, decisions: {}};
  const item = {decision: decision, comment: card.querySelector(".comment").value || undefined};
  if (decision === "edit") {
    try { item.args = JSON.parse(card.querySelector("textarea").value); }
    catch (e) { setStatus("arguments are not valid JSON: " + e.message, true); return; }
  }
  body.decisions[call.id] = item;
  const r = await fetch(API + "/" + encodeURIComponent(entry.thread_id),
                        {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { setStatus(data.error || ("HTTP " + r.status), true); return; }
  setStatus(decision + " sent for " + call.tool + " (run " + data.run_id + ")", false);
  card.dataset.answered = decision;
  await load(true);
}
function render(entry) {
  const card = el("section", "card");
  card.dataset.thread = entry.thread_id;
  card.append(el("div", "meta", "thread " + entry.thread_id + " · graph " + (entry.graph_id || "?")
    + (entry.owner ? " · owner " + entry.owner : "") + " · " + entry.updated_at));
  if (entry.message) card.append(el("div", "", entry.message));
  for (const call of entry.calls) {
    const box = el("div", "call");
    box.dataset.call = call.id;
    box.append(el("div", "tool", call.tool));
    const dl = el("dl");
    field(dl, "reason", call.reason);
    field(dl, "consequences", call.consequences);
    field(dl, "why review", call.why_review);
    field(dl, "rule", call.rule_id);
    field(dl, "deadline", call.deadline);
    box.append(dl);
    box.append(el("pre", "args", JSON.stringify(call.args, null, 2)));
    const edit = el("textarea");
    edit.value = JSON.stringify(call.args, null, 2);
    edit.setAttribute("aria-label", "edited arguments");
    box.append(edit);
    const comment = el("input", "comment");
    comment.placeholder = "comment (optional)";
    const actions = el("div", "actions");
    for (const [decision, label, cls] of [["approve", "Approve", "approve"],
                                           ["edit", "Edit & approve", "edit"],
                                           ["reject", "Reject", "reject"]]) {
      const b = el("button", cls, label);
      b.dataset.decision = decision;
      b.addEventListener("click", () => answer(entry, call, decision, box));
      actions.append(b);
    }
    actions.append(comment);
    box.append(actions);
    card.append(box);
  }
  return card;
}
let latestLoad = 0;
async function load(keepStatus) {
  // Only the newest listing renders: a slower, older response must not replace cards the
  // reviewer is already editing.
  const mine = ++latestLoad;
  const r = await fetch(API, {headers: headers()});
  const data = await r.json().catch(() => ({}));
  if (mine !== latestLoad) return;
  const list = $("list");
  list.replaceChildren();
  if (!r.ok) { setStatus(data.error || ("HTTP " + r.status), true); return; }
  $("who").textContent = data.user ? data.user.identity + " (" + data.user.role + ")" : "auth off";
  if (!keepStatus) setStatus(data.approvals.length + " pending", false);
  if (!data.approvals.length) list.append(el("div", "empty", "Nothing waiting for approval."));
  for (const entry of data.approvals) list.append(render(entry));
  document.body.dataset.loaded = String(Date.now());
}
$("refresh").addEventListener("click", () => load());
load();
</script></body></html>
"""

app = Starlette(
    routes=[
        Route("/inbox", page, methods=["GET"]),
        Route("/inbox/api/approvals", list_approvals, methods=["GET"]),
        Route("/inbox/api/approvals/{thread_id}", answer_approval, methods=["POST"]),
    ]
)

__all__ = ["app", "build_resume", "pending_approvals"]
