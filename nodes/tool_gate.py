"""The tool gate: the one place that decides, per tool call, allow / deny / needs review.

Every pattern's agent loop (`nodes/agent.py`) runs it on each model reply that asks for tools,
before anything executes. In order, a call is denied when:

1. the tool is not in the run's subset (`Context.tools`)                 → `unknown_tool`
2. a plan-time allow-list exists and the tool is not on it               → `not_in_plan`
3. its arguments fail the tool's schema (field, expected, received)      → `invalid_args`
4. the policy's first matching rule says `deny`, or no rule matches      → `denied`

Otherwise it is sent for review when the policy says `require_approval`, or when
`Context.approval_mode` asks for it (`always`; `risky` = the tool declares `write` or
`irreversible`), and allowed when nothing asks for review. The verdicts go into the
`tool_gate` state key (call id → `GateVerdict`); the approval gate (`nodes/approval.py`)
resolves reviews and the executor (`nodes/tool_node.py`) runs only `allow` verdicts.

Every verdict writes one `policy_decision` audit line and every review one
`approval_requested` line (`tools/audit.py`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NotRequired

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_RUNTIME
from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict

from nodes.context import Context
from nodes.prompts.approval import (
    INVALID_ARGS_MESSAGE,
    NOT_IN_PLAN_MESSAGE,
    POLICY_DENIED_MESSAGE,
    UNKNOWN_TOOL_MESSAGE,
)
from tools.audit import FileAuditSink, MemoryAuditSink, audit, audit_key_ready, get_audit_sink
from tools.policy import Policy, load_policy
from tools.registry import ToolRegistry, ToolSpec

logger = logging.getLogger(__name__)

GateDecision = Literal["allow", "deny", "review"]
PolicyRef = Policy | str
"""What a `policy=` argument accepts: a `tools.policy.Policy`, a built-in name or a path."""
APPROVAL_MODES = ("never", "risky", "always")


class ReviewRequest(TypedDict):
    """What a reviewer sees for one call (one entry of the approval interrupt)."""

    id: str
    """The tool call id: the key of the answer for this call."""
    tool: str
    args: dict[str, Any]
    reason: str
    """The agent's stated reason: the text of the model reply that asked for the call."""
    consequences: str
    """From the tool's metadata: side-effect level, what it does, whether it is safe to repeat."""
    rule_id: str
    """The policy rule (or `approval_mode`) that asked for the review."""
    why_review: str
    deadline: str
    """ISO-8601 UTC; an answer after it counts as `expired` (rejected)."""


class GateVerdict(TypedDict):
    """The gate's verdict on one tool call, updated by the approval gate."""

    call_id: str
    tool: str
    decision: GateDecision
    code: str | None
    """When denied: `unknown_tool`, `not_in_plan`, `invalid_args`, `denied`, `rejected`,
    `expired`; recorded in `tool_results`."""
    message: str | None
    """When denied: the text the model receives as an error ToolMessage."""
    rule_id: str | None
    args: NotRequired[dict[str, Any]]
    """Replacement arguments chosen by a reviewer (`edit`)."""
    review: NotRequired[ReviewRequest]
    reviewer: NotRequired[str | None]
    note: NotRequired[str | None]
    """Shown to the model next to the result (e.g. that a reviewer edited the arguments)."""


def utc_now() -> datetime:
    """The gates' clock (tests patch it to make deadlines deterministic)."""
    return datetime.now(UTC)


def run_ids(config: RunnableConfig | None) -> dict[str, Any]:
    """thread_id and run_id of the current run, for audit records and idempotency keys.

    `run_id`, in order: the config metadata's `run_id` (set by the LangGraph server and by
    `weft run`), the invocation's own `config["run_id"]` (LangGraph's run id, which it keeps
    in the runtime's `execution_info` of the top-level graph's nodes only), else the id bound
    to this run's `RunControl` (one object LangGraph creates per top-level invoke and shares
    with every subgraph, so records from nested agents carry the same id). The first id seen
    for a run is bound to it; a run that never shows one gets a fresh `local-<uuid>`. Every
    resume is a new run, as on the server. Outside a graph run the id is None.
    """
    config = config or {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    runtime = configurable.get(CONFIG_KEY_RUNTIME)
    info = getattr(runtime, "execution_info", None)
    explicit = metadata.get("run_id") or config.get("run_id") or getattr(info, "run_id", None)
    control = getattr(runtime, "control", None)
    run_id = (
        _run_id_for(control, str(explicit) if explicit else None)
        if control is not None
        else (str(explicit) if explicit else None)
    )
    return {
        "thread_id": configurable.get("thread_id") or metadata.get("thread_id"),
        "run_id": run_id,
    }


# RunControl → run id. Bounded: an entry is only needed while its run is active.
_RUN_IDS: OrderedDict[Any, str] = OrderedDict()
_RUN_IDS_LIMIT = 4096
_run_ids_lock = threading.Lock()


def _run_id_for(control: Any, explicit: str | None) -> str:
    with _run_ids_lock:
        known = _RUN_IDS.get(control)
        if known is None:
            known = explicit or f"local-{uuid.uuid4()}"
            _RUN_IDS[control] = known
            while len(_RUN_IDS) > _RUN_IDS_LIMIT:
                _RUN_IDS.popitem(last=False)
        return known


def validate_args(spec: ToolSpec, args: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Check `args` against the tool's model-facing schema.

    Returns (arguments with defaults filled in, None) or (None, error text naming each
    field, what was expected and what was received).
    """
    if not isinstance(args, Mapping):
        return None, f"arguments must be a JSON object, got {type(args).__name__}"
    schema = spec.tool.tool_call_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return dict(args), None  # a JSON-schema tool validates when it runs
    try:
        validated = schema.model_validate(dict(args))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(arguments)"
            received = "missing" if error["type"] == "missing" else repr(error.get("input"))
            problems.append(f"{where!r}: {error['msg']} (received {received})")
        return None, "; ".join(problems)
    return {**dict(args), **validated.model_dump(exclude_unset=False)}, None


class ToolGate:
    """Policy, plan and review decisions for one agent's tools.

    Args:
        registry: The agent's tools (its registry subset).
        policy: A Policy, a built-in policy name or a path fixed when the graph is built
            (`build_agent(policy=)`, `WorkerSpec.policy`, a graph's `build_graph(policy=)`).
        agent: The agent's name: the key of `Context.agent_policies`, and written into audit
            records.

    Which policy applies, stated once (first that is set wins): the build-time `policy`,
    then `Context.agent_policies[agent]`, then `Context.policy` (default: `default`).
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        policy: Policy | str | None = None,
        agent: str = "agent",
    ) -> None:
        self.registry = registry
        self.agent = agent
        self._policy = policy
        if policy is not None:
            load_policy(policy)  # a misspelt build-time policy fails here, not on first use

    def policy_for(self, ctx: Context) -> Policy:
        """The policy for this agent in this run (precedence in the class docstring)."""
        return load_policy(policy_ref(self._policy, self.agent, ctx))

    def allowed_names(self, ctx: Context, plan: Sequence[str] | None = None) -> list[str]:
        """Tools the model may see and call: the run's subset, cut to the plan when one exists."""
        from nodes.tool_node import allowed_tool_names

        names = allowed_tool_names(ctx.tools, self.registry.names)
        fixed = plan_allow_list(ctx, plan)
        return names if fixed is None else [n for n in names if n in fixed]

    def decide(
        self,
        calls: Sequence[Mapping[str, Any]],
        *,
        ctx: Context,
        plan: Sequence[str] | None = None,
        reason: str = "",
        config: RunnableConfig | None = None,
    ) -> tuple[dict[str, GateVerdict], list[dict[str, Any]]]:
        """Verdicts for `calls` plus the audit records to write (the caller writes them)."""
        policy = self.policy_for(ctx)
        subset = set(self.allowed_names(ctx, plan))
        fixed = plan_allow_list(ctx, plan)
        deadline = (utc_now() + timedelta(seconds=ctx.approval_timeout_s)).isoformat()
        ids = run_ids(config)
        verdicts: dict[str, GateVerdict] = {}
        records: list[dict[str, Any]] = []
        for call in calls:
            verdict = self._decide_one(call, ctx, policy, subset, fixed, reason, deadline)
            verdicts[verdict["call_id"]] = verdict
            base = {
                **ids,
                "agent": self.agent,
                "tool": verdict["tool"],
                "call_id": verdict["call_id"],
                "args": call.get("args") or {},
                "rule_id": verdict["rule_id"],
                "policy": policy.name,
            }
            records.append(
                {
                    **base,
                    "event": "policy_decision",
                    "decision": verdict["decision"],
                    "code": verdict["code"],
                }
            )
            if verdict["decision"] == "review":
                records.append(
                    {
                        **base,
                        "event": "approval_requested",
                        "deadline": deadline,
                        "decision": "pending",
                    }
                )
            elif verdict["decision"] == "deny":
                logger.info("tool call %r denied (%s)", verdict["tool"], verdict["code"])
        return verdicts, records

    def recheck(
        self, call_id: str, tool: str, args: Any, *, ctx: Context
    ) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """Re-validate and re-check edited arguments: (args, error code, message)."""
        spec = self.registry.spec(tool)
        validated, problem = validate_args(spec, args)
        if validated is None:
            return None, "invalid_args", INVALID_ARGS_MESSAGE.format(tool=tool, problems=problem)
        decision = self.policy_for(ctx).decide(tool, validated, side_effect=spec.side_effect)
        if decision.decision == "deny":
            return None, "denied", POLICY_DENIED_MESSAGE.format(tool=tool, reason=decision.reason)
        return dict(args), None, None

    def _decide_one(
        self,
        call: Mapping[str, Any],
        ctx: Context,
        policy: Policy,
        subset: set[str],
        fixed: frozenset[str] | None,
        reason: str,
        deadline: str,
    ) -> GateVerdict:
        name, call_id = str(call.get("name", "")), str(call.get("id", ""))
        if name not in subset or name not in self.registry:
            if fixed is not None and name in self.registry and name not in fixed:
                return _denied(
                    call_id,
                    name,
                    "not_in_plan",
                    "plan_allow_list",
                    NOT_IN_PLAN_MESSAGE.format(tool=name, allowed=_names(fixed)),
                )
            message = UNKNOWN_TOOL_MESSAGE.format(tool=name, allowed=_names(sorted(subset)))
            return _denied(call_id, name, "unknown_tool", None, message)
        spec = self.registry.spec(name)
        validated, problem = validate_args(spec, call.get("args"))
        if validated is None:
            message = INVALID_ARGS_MESSAGE.format(tool=name, problems=problem)
            return _denied(call_id, name, "invalid_args", None, message)
        decision = policy.decide(name, validated, side_effect=spec.side_effect)
        if decision.decision == "deny":
            message = POLICY_DENIED_MESSAGE.format(tool=name, reason=decision.reason)
            return _denied(call_id, name, "denied", decision.rule_id, message)
        why = _review_reason(decision.decision, decision.reason, spec, ctx.approval_mode)
        if why is None:
            return GateVerdict(
                call_id=call_id,
                tool=name,
                decision="allow",
                code=None,
                message=None,
                rule_id=decision.rule_id,
            )
        rule_id = (
            decision.rule_id
            if decision.decision == "require_approval"
            else (f"approval_mode={ctx.approval_mode}")
        )
        review = ReviewRequest(
            id=call_id,
            tool=name,
            args=dict(call.get("args") or {}),
            reason=reason,
            consequences=spec.describe_consequences(),
            rule_id=rule_id,
            why_review=why,
            deadline=deadline,
        )
        return GateVerdict(
            call_id=call_id,
            tool=name,
            decision="review",
            code=None,
            message=None,
            rule_id=rule_id,
            review=review,
        )


def policy_ref(built: Policy | str | None, agent: str, ctx: Context) -> Policy | str:
    """The policy reference for `agent`: `built`, else `Context.agent_policies`, else
    `Context.policy`."""
    if built is not None:
        return built
    per_agent = ctx.agent_policies or {}
    if not isinstance(per_agent, Mapping):
        raise TypeError(
            "context field 'agent_policies' must map agent names to policy names, got "
            f"{type(per_agent).__name__}"
        )
    return per_agent.get(agent) or ctx.policy


def plan_allow_list(ctx: Context, plan: Sequence[str] | None) -> frozenset[str] | None:
    """The plan-time allow-list: `Context.plan_tools` and the state's `plan_tools`, intersected."""
    lists = [set(x) for x in (ctx.plan_tools, plan) if x is not None]
    if not lists:
        return None
    return frozenset(set.intersection(*lists))


def _review_reason(decision: str, policy_reason: str, spec: ToolSpec, mode: str) -> str | None:
    if mode not in APPROVAL_MODES:
        raise ValueError(
            f"approval_mode {mode!r} is not one of {', '.join(map(repr, APPROVAL_MODES))}"
        )
    if decision == "require_approval":
        return f"policy: {policy_reason}"
    if mode == "always":
        return "approval_mode is 'always': every tool call is reviewed"
    if mode == "risky" and spec.risky:
        return f"approval_mode is 'risky' and {spec.name!r} is {spec.side_effect}"
    return None


def _denied(call_id: str, tool: str, code: str, rule_id: str | None, message: str) -> GateVerdict:
    return GateVerdict(
        call_id=call_id, tool=tool, decision="deny", code=code, message=message, rule_id=rule_id
    )


def _names(names: Sequence[str] | frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "(none)"


def denial_message(verdict: GateVerdict) -> ToolMessage:
    """The error ToolMessage that answers a denied, rejected or expired call."""
    return ToolMessage(
        content=verdict["message"] or f"Error: the call to {verdict['tool']!r} was not run.",
        name=verdict["tool"],
        tool_call_id=verdict["call_id"],
        status="error",
    )


def write_audit(records: Sequence[Mapping[str, Any]]) -> None:
    """Write gate audit records (sync callers)."""
    for record in records:
        fields = dict(record)
        audit(str(fields.pop("event")), **fields)


async def awrite_audit(records: Sequence[Mapping[str, Any]]) -> None:
    """Write audit records without blocking the event loop.

    Appending a line to an already open audit file is done in place; anything that may block
    (reading or creating the digest key, opening or creating the file, another kind of sink)
    runs in a worker thread.
    """
    if not records:
        return
    sink = get_audit_sink()
    if (
        audit_key_ready()
        and isinstance(sink, FileAuditSink | MemoryAuditSink)
        and (not isinstance(sink, FileAuditSink) or sink.is_open())
    ):
        write_audit(records)
    else:
        await asyncio.to_thread(write_audit, records)


AuditedStep = Callable[
    [Mapping[str, Any], Runtime[Context]], tuple[dict[str, Any], list[dict[str, Any]]]
]
"""A node body that returns its state update and the audit records to write."""


def audited_node(step: AuditedStep, *, name: str) -> RunnableCallable:
    """A node (sync and async twins) that runs `step` and writes its audit records before
    returning the update, so no verdict leaves the node unaudited."""

    async def arun(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        update, records = step(state, runtime)
        await awrite_audit(records)
        return update

    def run(state: Mapping[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
        update, records = step(state, runtime)
        write_audit(records)
        return update

    return RunnableCallable(run, arun, name=name)


__all__ = [
    "AuditedStep",
    "GateDecision",
    "GateVerdict",
    "PolicyRef",
    "ReviewRequest",
    "ToolGate",
    "audited_node",
    "awrite_audit",
    "denial_message",
    "plan_allow_list",
    "policy_ref",
    "run_ids",
    "utc_now",
    "validate_args",
    "write_audit",
]
