"""The approval gate (human in the loop) between the model and tool execution.

When the tool gate marked calls for review (`tool_gate` verdicts with decision `review`), this
node calls `interrupt()` ONCE with all of them:

    {"type": "tool_approval", "message": "...how to answer...",
     "calls": [{"id", "tool", "args", "reason", "consequences", "rule_id", "why_review",
                "deadline"}, ...]}

Resume with `Command(resume=answer)` (Python), `weft run ... --resume JSON` or the interactive
prompt (CLI), or `runs.wait(..., command={"resume": answer})` (server), where `answer` is

    {call_id: {"decision": "approve" | "reject" | "edit", "args": {...},   # args: edit only
               "comment": "...", "reviewer": "..."}, ...}

or, for every pending call at once, a bare `"approve"` / `"reject"` or one
`{"decision": ..., "comment": ..., "reviewer": ...}` mapping without call ids.

- approve: the call runs as the model asked.
- edit: the new args are validated against the tool's schema and re-checked against the policy
  (a `deny` there refuses the call); the model is told the arguments were changed.
- reject: the model gets an error ToolMessage with the reviewer's comment.
- an answer after the call's deadline counts as `expired` (rejected), whatever it says;
  a call the answer does not mention, or an unreadable answer, counts as rejected.

Nothing runs here: side effects happen only in the executor after this node, so resuming an
interrupted run cannot repeat them. Each decision writes an `approval_decision` audit line
(the reviewer's name in clear, the comment with PII masked: see `audit_comment`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from langgraph._internal._runnable import RunnableCallable
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from nodes.context import Context, context_of
from nodes.guardrails import GuardrailRules, redact
from nodes.prompts.approval import (
    APPROVAL_REQUEST_MESSAGE,
    EXPIRED_MESSAGE,
    REJECTED_MESSAGE,
    UNREADABLE_DECISION_MESSAGE,
)
from nodes.state import pause_credit
from nodes.tool_gate import GateVerdict, ToolGate, audited_node, run_ids, utc_now

logger = logging.getLogger(__name__)

APPROVAL_INTERRUPT_TYPE = "tool_approval"
DECISIONS = ("approve", "reject", "edit")


def approval_request(pending: list[GateVerdict]) -> dict[str, Any]:
    """The interrupt payload for the calls awaiting review."""
    return {
        "type": APPROVAL_INTERRUPT_TYPE,
        "message": APPROVAL_REQUEST_MESSAGE.format(count=len(pending)),
        "calls": [dict(v["review"]) for v in pending if "review" in v],
    }


def answer_for(answer: Any, call_id: str) -> Any:
    """The part of a resume answer that concerns `call_id` (None when it is not covered)."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, Mapping):
        if call_id in answer:
            return answer[call_id]
        if "decision" in answer:
            return answer
    return None


def resume_value(interrupt_ids: Sequence[str], answer: Any) -> Any:
    """The `Command(resume=...)` value for `answer` when a thread waits on these interrupts.

    One interrupt: the answer itself. Several (e.g. parallel plan tasks each waiting for a
    review): LangGraph wants one value per interrupt id. An answer already keyed by interrupt
    ids is kept; any other answer goes to every interrupt, which works for approvals because
    each approval gate reads only its own call ids from it (`answer_for`), so one
    `{call_id: decision}` mapping, or a bare "approve", answers them all.
    """
    ids = list(interrupt_ids)
    if len(ids) <= 1:
        return answer
    if isinstance(answer, Mapping) and answer and set(answer) <= set(ids):
        return dict(answer)
    return {interrupt_id: answer for interrupt_id in ids}


def resolve_review(
    verdict: GateVerdict, answer: Any, *, gate: ToolGate, ctx: Context, now: datetime
) -> GateVerdict:
    """Apply one reviewer answer to one pending verdict (pure apart from policy loading)."""
    review = verdict["review"]
    tool = verdict["tool"]
    entry: Mapping[str, Any] = (
        {"decision": answer}
        if isinstance(answer, str)
        else answer
        if isinstance(answer, Mapping)
        else {}
    )
    decision = str(entry.get("decision", "")).strip().lower()
    reviewer = entry.get("reviewer")
    comment = entry.get("comment")
    base: dict[str, Any] = {**verdict, "reviewer": reviewer}

    def settle(**changes: Any) -> GateVerdict:
        return cast(GateVerdict, {**base, **changes})

    if now > datetime.fromisoformat(review["deadline"]):
        message = EXPIRED_MESSAGE.format(tool=tool, deadline=review["deadline"])
        return settle(decision="deny", code="expired", message=message)
    if decision in {"approve", "approved", "yes"}:
        return settle(decision="allow", code=None, message=None)
    if decision == "edit":
        args, code, refusal = gate.recheck(verdict["call_id"], tool, entry.get("args"), ctx=ctx)
        if args is None:
            return settle(decision="deny", code=code, message=refusal)
        return settle(decision="allow", code=None, message=None, args=args)
    if decision in {"reject", "rejected", "no"}:
        message = REJECTED_MESSAGE.format(
            tool=tool, reviewer=reviewer or "unnamed", comment=comment or "no reason given"
        )
        return settle(decision="deny", code="rejected", message=message)
    shown = json.dumps(answer, default=str) if answer is not None else "(none for this call)"
    message = UNREADABLE_DECISION_MESSAGE.format(tool=tool, answer=shown)
    return settle(decision="deny", code="rejected", message=message)


AUDIT_COMMENT_RULES = GuardrailRules(max_chars=500)
"""PII masking and length cap for reviewer comments in audit records."""


def audit_comment(answer: Any) -> str | None:
    """The reviewer's comment as the audit log keeps it: PII masked, at most 500 characters.

    The comment is kept because it is the reason for the decision, which is what an auditor
    reads the log for; personal data in it is masked because the call's arguments are only
    kept as digests, and a comment quoting them ("don't email jane@corp.com") would undo that.
    """
    comment = answer.get("comment") if isinstance(answer, Mapping) else None
    if comment is None:
        return None
    return redact(str(comment), AUDIT_COMMENT_RULES)


def _decision_label(before: GateVerdict, after: GateVerdict) -> str:
    if after["decision"] == "allow":
        return "edit" if "args" in after else "approve"
    return (
        "expired"
        if after["code"] == "expired"
        else ("reject" if after["code"] == "rejected" else f"edit_refused:{after['code']}")
    )


def make_approval_node(gate: ToolGate) -> RunnableCallable:
    """The approval node for an agent whose tools `gate` decides over.

    Reads `tool_gate`; writes `tool_gate` (reviews resolved to allow/deny).
    """

    def review(
        state: Mapping[str, Any], runtime: Runtime[Context]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        verdicts: dict[str, GateVerdict] = dict(state.get("tool_gate") or {})
        pending = [v for v in verdicts.values() if v["decision"] == "review"]
        if not pending:
            return {}, []
        answer = interrupt(approval_request(pending))
        ctx, now = context_of(runtime), utc_now()
        ids = run_ids(get_config())
        records = []
        for verdict in pending:
            resolved = resolve_review(
                verdict, answer_for(answer, verdict["call_id"]), gate=gate, ctx=ctx, now=now
            )
            verdicts[verdict["call_id"]] = resolved
            label = _decision_label(verdict, resolved)
            logger.info("review of %r: %s", verdict["tool"], label)
            records.append(
                {
                    "event": "approval_decision",
                    **ids,
                    "agent": gate.agent,
                    "tool": verdict["tool"],
                    "call_id": verdict["call_id"],
                    "args": resolved.get("args", verdict["review"]["args"]),
                    "decision": label,
                    "rule_id": verdict["rule_id"],
                    "reviewer": resolved.get("reviewer"),
                    "comment": audit_comment(answer_for(answer, verdict["call_id"])),
                }
            )
        # The wait for the reviewer does not count against the run's wall-time budget.
        return {"tool_gate": verdicts, **pause_credit(runtime)}, records

    return audited_node(review, name="approval")


__all__ = [
    "APPROVAL_INTERRUPT_TYPE",
    "answer_for",
    "approval_request",
    "audit_comment",
    "make_approval_node",
    "resolve_review",
    "resume_value",
]
