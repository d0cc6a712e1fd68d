"""Output guardrail: check the final answer before END and redact, revise or escalate.

Checks (deterministic, documented algorithms; see `find_pii`):
- PII: email addresses, phone numbers (formatted North-American numbers and `+`-prefixed
  international numbers with 8-15 digits), US SSNs written `AAA-GG-SSSS` (invalid area/group/
  serial numbers excluded), payment card numbers of 13-19 digits that pass the Luhn check.
- Length: at most `GuardrailRules.max_chars` characters.
- Per-graph rules: named regexes the answer must not contain (`blocked_patterns`), and values
  that are allowed although they look like PII (`pii_allow`, full match, e.g. a support address).

What happens on a violation is `Context.output_guardrail` (or the factory's `mode=`):
`off` (skip), `redact` (mask each finding as `[REDACTED EMAIL]`... and cut to length), `revise`
(ask the model for a revised answer, at most `max_revisions` structured calls, re-checking each;
whatever still fails is then redacted), or `approve` (one `interrupt()` for a human; resume with
`"approve"`, `"reject"` or `{"decision": "edit", "text": "..."}`).

Wiring, in any graph whose state has `final_answer` (and usually `messages`):

    builder.add_node("output_guardrail", make_output_guardrail())
    builder.add_edge("<node that produced the answer>", "output_guardrail")
    builder.add_edge("output_guardrail", END)

The node rewrites `final_answer` and the last AI message (same id, so `add_messages` replaces
it), adds the usage of revision calls to `usage`, and emits an `output_guardrail` stream event
naming the finding kinds (never their text).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph._internal._runnable import RunnableCallable
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, Field

from nodes.context import Context, ModelRole, context_of
from nodes.model import ModelOverride, message_text
from nodes.prompts.guardrails import (
    GUARDRAIL_REVIEW_MESSAGE,
    GUARDRAIL_REVISE_REQUEST,
    GUARDRAIL_REVISE_SYSTEM,
    GUARDRAIL_TRUNCATED_SUFFIX,
    GUARDRAIL_WITHHELD_MESSAGE,
)
from nodes.state import add_usage, pause_credit
from nodes.structured import ask_structured

logger = logging.getLogger(__name__)

GuardrailMode = Literal["off", "redact", "revise", "approve"]
PiiKind = Literal["email", "phone", "ssn", "card"]
PII_KINDS: tuple[PiiKind, ...] = ("card", "ssn", "email", "phone")
OUTPUT_REVIEW_INTERRUPT_TYPE = "output_review"

EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# Area 000/666/9xx, group 00 and serial 0000 are never issued.
SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
CARD_CANDIDATE_RE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
PHONE_RE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}"  # international, '+' prefix
    r"|(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # North-American, formatted
    r")(?![\w.]?\d)"
)


def luhn_valid(digits: str) -> bool:
    """True when `digits` (only 0-9) passes the Luhn checksum used by payment cards."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text."""

    kind: PiiKind
    start: int
    end: int
    value: str


def _candidates(kind: PiiKind, text: str) -> Iterable[PiiMatch]:
    pattern = {"email": EMAIL_RE, "ssn": SSN_RE, "card": CARD_CANDIDATE_RE, "phone": PHONE_RE}
    for match in pattern[kind].finditer(text):
        value = match.group(0)
        digits = re.sub(r"\D", "", value)
        if kind == "card" and not luhn_valid(digits):
            continue
        if kind == "phone" and value.startswith("+") and not 8 <= len(digits) <= 15:
            continue
        yield PiiMatch(kind, match.start(), match.end(), value)


def find_pii(
    text: str, kinds: Iterable[PiiKind] = PII_KINDS, *, allow: Sequence[str] = ()
) -> list[PiiMatch]:
    """Every PII finding in `text`, ordered by position, without overlaps.

    Kinds are searched in the fixed order card, ssn, email, phone; a later kind's match that
    overlaps an earlier finding is dropped (a card number is not also a phone number). Values
    that fully match one of the `allow` regexes are not reported.
    """
    allowed = [re.compile(p) for p in allow]
    wanted = set(kinds)
    found: list[PiiMatch] = []
    for kind in PII_KINDS:
        if kind not in wanted:
            continue
        for match in _candidates(kind, text):
            if any(a.fullmatch(match.value) for a in allowed):
                continue
            if any(match.start < f.end and f.start < match.end for f in found):
                continue
            found.append(match)
    return sorted(found, key=lambda m: m.start)


@dataclass(frozen=True)
class GuardrailRules:
    """What one graph's output may not contain."""

    pii: tuple[PiiKind, ...] = PII_KINDS
    """PII kinds to detect (empty tuple: none)."""
    max_chars: int = 8000
    """Longest answer allowed, in characters."""
    blocked_patterns: Mapping[str, str] = field(default_factory=dict)
    """Rule name → regex the answer must not contain (e.g. {"internal_host": r"\\w+\\.corp"})."""
    pii_allow: tuple[str, ...] = ()
    """Regexes (full match) for values that may appear although they look like PII."""


@dataclass(frozen=True)
class Finding:
    """One violation: `kind` is `pii:<kind>`, `max_length` or `rule:<name>`."""

    kind: str
    start: int
    end: int


def check_output(text: str, rules: GuardrailRules) -> list[Finding]:
    """Every violation of `rules` in `text` (PII, blocked patterns, length)."""
    findings = [
        Finding(f"pii:{m.kind}", m.start, m.end)
        for m in find_pii(text, rules.pii, allow=rules.pii_allow)
    ]
    for name, pattern in rules.blocked_patterns.items():
        findings.extend(
            Finding(f"rule:{name}", m.start(), m.end()) for m in re.finditer(pattern, text)
        )
    if len(text) > rules.max_chars:
        findings.append(Finding("max_length", rules.max_chars, len(text)))
    return findings


def redact(text: str, rules: GuardrailRules) -> str:
    """`text` with every finding masked (`[REDACTED EMAIL]`, `[REDACTED RULE NAME]`) and cut
    to `max_chars` (a note says so)."""
    spans = sorted(
        (f for f in check_output(text, rules) if f.kind != "max_length"), key=lambda f: f.start
    )
    parts: list[str] = []
    cursor = 0
    for finding in spans:
        if finding.start < cursor:
            continue
        label = finding.kind.split(":", 1)[1].replace("_", " ").upper()
        parts += [text[cursor : finding.start], f"[REDACTED {label}]"]
        cursor = finding.end
    redacted = "".join([*parts, text[cursor:]])
    if len(redacted) > rules.max_chars:
        suffix = GUARDRAIL_TRUNCATED_SUFFIX.format(limit=rules.max_chars)
        redacted = redacted[: max(rules.max_chars - len(suffix), 0)] + suffix
    return redacted


def describe(findings: Sequence[Finding], rules: GuardrailRules) -> str:
    """One line per finding kind, for the revision prompt (counts, never the values)."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    lines = []
    for kind, count in counts.items():
        if kind == "max_length":
            lines.append(f"- too long: more than {rules.max_chars} characters")
        else:
            lines.append(f"- {kind.replace(':', ' ')}: {count} occurrence(s); remove it")
    return "\n".join(lines)


class RevisedAnswer(BaseModel):
    """The revised answer that must pass the output check."""

    answer: str = Field(description="The complete revised answer for the user.")


def _draft(state: Mapping[str, Any]) -> tuple[str | None, AIMessage | None]:
    messages = state.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], AIMessage) else None
    answer = state.get("final_answer")
    if isinstance(answer, str):
        return answer, last
    if last is not None and not last.tool_calls:
        return message_text(last.content), last
    return None, last


def _emit(event: dict[str, Any]) -> None:
    try:
        get_stream_writer()(event)
    except RuntimeError:  # called outside a graph run (unit tests of the node function)
        logger.debug("no stream writer for %s", event.get("event"))


def _answer_update(
    text: str, last: AIMessage | None, draft: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    update: dict[str, Any] = {"final_answer": text, **(extra or {})}
    if last is not None and last.id and message_text(last.content) == draft:
        update["messages"] = [AIMessage(content=text, id=last.id, name=last.name)]
    return update


def _review(answer: Any) -> tuple[str, str | None, str]:
    if isinstance(answer, str):
        return answer.strip().lower(), None, ""
    if isinstance(answer, Mapping):
        text = answer.get("text")
        return (
            str(answer.get("decision", "")).strip().lower(),
            text if isinstance(text, str) else None,
            str(answer.get("comment") or ""),
        )
    return "", None, ""


GuardStep = Callable[[Mapping[str, Any], Runtime[Context]], dict[str, Any]]
AsyncGuardStep = Callable[[Mapping[str, Any], Runtime[Context]], Awaitable[dict[str, Any]]]


def make_output_guardrail(
    rules: GuardrailRules | None = None,
    *,
    mode: GuardrailMode | None = None,
    model: ModelOverride = None,
    role: ModelRole = "agent",
    max_revisions: int = 2,
    name: str = "output_guardrail",
) -> RunnableCallable:
    """The output guardrail node (see the module docstring for checks, modes and wiring).

    Args:
        rules: This graph's rules (default: all PII kinds, 8000 characters, no extra patterns).
        mode: Fixes the mode for this graph; None reads `Context.output_guardrail` per run.
        model: Model override for revise mode (same forms as `build_graph(model=...)`).
        role: Which context model writes revisions.
        max_revisions: Most revision calls in revise mode before falling back to redaction.
        name: The node's name.

    Reads `final_answer` (else the last AI message) and `messages`; writes `final_answer`,
    `messages`, and in revise mode `usage`; when a reviewer rejects, `success` and `error`.
    """
    guard, aguard = output_guardrail_steps(
        rules, mode=mode, model=model, role=role, max_revisions=max_revisions
    )
    return RunnableCallable(guard, aguard, name=name)


def output_guardrail_steps(
    rules: GuardrailRules | None = None,
    *,
    mode: GuardrailMode | None = None,
    model: ModelOverride = None,
    role: ModelRole = "agent",
    max_revisions: int = 2,
) -> tuple[GuardStep, AsyncGuardStep]:
    """The guardrail's sync and async step functions, for nodes that run it inline
    (`nodes/finish.py`); arguments as for `make_output_guardrail`."""
    rules = rules or GuardrailRules()
    if max_revisions < 0:
        raise ValueError(f"max_revisions must be >= 0, got {max_revisions!r}")

    def resolve_mode(runtime: Runtime[Context]) -> GuardrailMode:
        return mode or context_of(runtime).output_guardrail

    def approve_update(
        draft: str, last: AIMessage | None, findings: list[Finding]
    ) -> dict[str, Any]:
        answer = interrupt(
            {
                "type": OUTPUT_REVIEW_INTERRUPT_TYPE,
                "message": GUARDRAIL_REVIEW_MESSAGE.format(count=len(findings)),
                "findings": sorted({f.kind for f in findings}),
                "draft": draft,
                "redacted": redact(draft, rules),
            }
        )
        decision, text, comment = _review(answer)
        _emit({"event": "output_guardrail", "action": f"review:{decision or 'unreadable'}"})
        if decision == "approve":
            return {}
        if decision == "edit" and text is not None:
            return _answer_update(text, last, draft)
        reason = comment or ("rejected" if decision == "reject" else "no readable decision")
        withheld = GUARDRAIL_WITHHELD_MESSAGE.format(reason=reason)
        logger.info("output withheld by review (%s)", decision or "unreadable")
        return _answer_update(
            withheld, last, draft, {"success": False, "error": f"output withheld: {reason}"}
        )

    def start(state: Mapping[str, Any], runtime: Runtime[Context]) -> tuple[Any, ...] | None:
        current = resolve_mode(runtime)
        draft, last = _draft(state)
        if current == "off" or draft is None:
            return None
        findings = check_output(draft, rules)
        if not findings:
            return None
        kinds = sorted({f.kind for f in findings})
        logger.info("output guardrail found %s (mode %s)", ", ".join(kinds), current)
        _emit({"event": "output_guardrail", "mode": current, "findings": kinds})
        return current, draft, last, findings

    def guard(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        started = start(state, runtime)
        if started is None:
            return {}
        current, draft, last, findings = started
        if current == "approve":
            return {**approve_update(draft, last, findings), **pause_credit(runtime)}
        if current == "revise":
            raise RuntimeError(
                "output_guardrail mode 'revise' calls the model asynchronously; run the graph "
                "with ainvoke/astream, or use mode 'redact' or 'approve'"
            )
        return _answer_update(redact(draft, rules), last, draft)

    async def aguard(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        started = start(state, runtime)
        if started is None:
            return {}
        current, draft, last, findings = started
        if current == "approve":
            return {**approve_update(draft, last, findings), **pause_credit(runtime)}
        if current == "redact":
            return _answer_update(redact(draft, rules), last, draft)
        return await revise(draft, last, findings, context_of(runtime))

    async def revise(
        draft: str, last: AIMessage | None, findings: list[Finding], ctx: Context
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {}
        text = draft
        for attempt in range(1, max_revisions + 1):
            request = GUARDRAIL_REVISE_REQUEST.format(
                problems=describe(findings, rules), max_chars=rules.max_chars, draft=text
            )
            reply = await ask_structured(
                RevisedAnswer,
                [SystemMessage(GUARDRAIL_REVISE_SYSTEM), HumanMessage(request)],
                role=role,
                context=ctx,
                model=model,
            )
            usage = add_usage(usage, reply.usage)
            text = reply.value.answer
            findings = check_output(text, rules)
            if not findings:
                _emit({"event": "output_guardrail", "action": "revised", "revisions": attempt})
                return _answer_update(text, last, draft, {"usage": usage})
        logger.info("output still failed after %d revision(s); redacting", max_revisions)
        _emit({"event": "output_guardrail", "action": "redacted_after_revision"})
        return _answer_update(redact(text, rules), last, draft, {"usage": usage})

    return guard, aguard


__all__ = [
    "EMAIL_RE",
    "OUTPUT_REVIEW_INTERRUPT_TYPE",
    "PHONE_RE",
    "PII_KINDS",
    "SSN_RE",
    "Finding",
    "GuardrailMode",
    "GuardrailRules",
    "PiiMatch",
    "RevisedAnswer",
    "check_output",
    "describe",
    "find_pii",
    "luhn_valid",
    "make_output_guardrail",
    "output_guardrail_steps",
    "redact",
]
