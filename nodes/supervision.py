"""Supervisor building blocks: worker specs, the routing schema and the pure routing guards.

Everything here is free of graph wiring so it can be unit-tested directly:

* `WorkerSpec` describes one worker (a ReAct agent with a tool subset, or a compiled graph such
  as another supervisor) and how much context it receives on a handoff.
* `routing_schema(names)` is the structured decision the supervisor model returns at each step:
  `{next: <worker> | FINISH, instructions, parallel: [...], answer}`.
* Guards: `handoff_limit_error` (max handoffs per request) and `ping_pong_pair` (A,B,A,B between
  the same two workers) stop a run with a clear error instead of looping.
* `capability_route` is the deterministic router a caller opts into with
  `Context.supervisor_router="capability"`.

The capability router, stated once: the request's required capability tags (from the caller's
input `capabilities`, or from one structured model call constrained to the declared tags) are
worked through in order. At each step the first tag not yet covered picks the candidate workers
that declare it; among them the worker covering the most still-uncovered tags wins, ties go to
the worker with the fewest handoffs so far in this request (least load), then to declaration
order. That worker is handed every uncovered tag it declares. When every tag is covered the run
finishes; the answer is the workers' results in handoff order (one section per worker when there
is more than one). No text is matched against keywords anywhere in this algorithm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NotRequired

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, Field, create_model, model_validator
from typing_extensions import TypedDict

from nodes.context import ModelRole
from nodes.prompts.supervision import (
    HANDOFF_REQUEST_CONTEXT,
    HANDOFF_RESULT_ITEM,
    HANDOFF_RESULTS_CONTEXT,
    SUPERVISOR_NO_PROGRESS,
    SUPERVISOR_PROGRESS_ITEM,
    WORKER_HANDOFF_PROMPT,
)
from tools.policy import Policy

FINISH = "FINISH"
MAX_TEAM_DEPTH = 3
"""Default bound on nesting: a team of teams of teams (3 levels of supervisors)."""

ContextPolicy = Literal["none", "last_result", "full_summary"]
"""What a worker receives besides its instructions on a handoff.

- `none`: only the supervisor's instructions.
- `last_result`: the instructions plus the most recent teammate result of this request.
- `full_summary`: the instructions, the user's request and every teammate result so far.
"""
CONTEXT_POLICIES: tuple[str, ...] = ("none", "last_result", "full_summary")
RouterKind = Literal["model", "capability"]

_RESERVED_NAMES = frozenset({FINISH, "supervisor", "__start__", "__end__"})
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class WorkerSpecError(ValueError):
    """A worker spec (or a set of them) is invalid: says which worker, which field and why."""


class TeamDepthError(ValueError):
    """Teams are nested deeper than allowed."""


@dataclass(frozen=True)
class WorkerSpec:
    """One worker of a supervisor team.

    Attributes:
        name: Unique id (letters, digits, `_`, `-`); the supervisor routes by it.
        description: What the worker is good at; the supervisor reads it to route.
        system_prompt: The worker's persona; the team's worker framing is added around it.
        tools: Names of the team's tools this worker may call; None means all of them, an empty
            tuple none.
        model: Model id or object for this worker; None uses the team's model for `role`.
        role: Which context model setting the worker uses when `model` is None.
        context: What the worker receives on a handoff besides its instructions (see
            `ContextPolicy`).
        capabilities: Tags the capability router matches against the request's tags.
        graph: A compiled graph that runs instead of a ReAct agent, e.g. another supervisor
            (a nested team). It is invoked with `{"messages": [task]}` and must report
            `final_answer` (and ideally `success`, `error`, `usage`).
        policy: Tool policy for this worker (a `tools.policy.Policy`, a built-in name or a
            .yaml/.json path). None: the team's `build_graph(policy=)`, else
            `Context.agent_policies[name]`, else `Context.policy`.
    """

    name: str
    description: str
    system_prompt: str = ""
    tools: tuple[str, ...] | None = None
    model: str | BaseChatModel | None = None
    role: ModelRole = "worker"
    context: ContextPolicy = "last_result"
    capabilities: tuple[str, ...] = ()
    graph: Any = None
    policy: Policy | str | None = None


def validate_workers(workers: Sequence[WorkerSpec], available_tools: Sequence[str]) -> None:
    """Check a team's worker specs before compiling.

    Raises:
        WorkerSpecError: naming the worker and field at fault, what was expected and the
            valid options.
    """
    if not workers:
        raise WorkerSpecError("a supervisor team needs at least one worker; got none")
    seen: set[str] = set()
    for index, spec in enumerate(workers):
        where = f"worker {index} ({spec.name!r})"
        if not isinstance(spec.name, str) or not _NAME_PATTERN.match(spec.name):
            raise WorkerSpecError(
                f"{where}: 'name' must start with a letter and use only letters, digits, '_' "
                f"or '-' (at most 64 characters); got {spec.name!r}"
            )
        if spec.name in _RESERVED_NAMES:
            raise WorkerSpecError(
                f"{where}: 'name' {spec.name!r} is reserved; reserved names: "
                f"{', '.join(sorted(_RESERVED_NAMES))}"
            )
        if spec.name in seen:
            raise WorkerSpecError(f"{where}: duplicate worker name {spec.name!r}")
        seen.add(spec.name)
        if not spec.description.strip():
            raise WorkerSpecError(f"{where}: 'description' must say what the worker does")
        if spec.context not in CONTEXT_POLICIES:
            raise WorkerSpecError(
                f"{where}: 'context' must be one of {', '.join(CONTEXT_POLICIES)}; "
                f"got {spec.context!r}"
            )
        if spec.graph is not None and (
            spec.tools is not None or spec.system_prompt or spec.policy is not None
        ):
            raise WorkerSpecError(
                f"{where}: a worker given a compiled 'graph' brings its own tools, prompt and "
                "policy; leave 'tools', 'system_prompt' and 'policy' unset"
            )
        unknown = [t for t in spec.tools or () if t not in available_tools]
        if unknown:
            raise WorkerSpecError(
                f"{where}: unknown tool(s) {', '.join(map(repr, unknown))} in 'tools'; "
                f"available: {', '.join(available_tools) or '(none)'}"
            )


class Delegation(BaseModel):
    """One extra worker to run in the same step as `next`."""

    worker: str = Field(description="Name of the worker.")
    instructions: str = Field(description="Self-contained task for that worker.")


class SupervisorDecision(BaseModel):
    """The supervisor's decision for the next step."""

    next: str = Field(description="The worker to hand off to, or FINISH when the request is done.")
    instructions: str = Field(
        default="",
        description="Self-contained task for the `next` worker; empty on FINISH.",
    )
    parallel: list[Delegation] = Field(
        default_factory=list,
        description="Other workers to run at the same time as `next` (independent parts only); "
        "empty for a single handoff and on FINISH.",
    )
    answer: str = Field(
        default="",
        description="On FINISH: the complete final answer for the user. Empty otherwise.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SupervisorDecision:
        if self.next == FINISH:
            if not self.answer.strip():
                raise ValueError("'answer' must hold the final answer when next is FINISH")
            if self.parallel:
                raise ValueError("'parallel' must be empty when next is FINISH")
            return self
        if not self.instructions.strip():
            raise ValueError(f"'instructions' for worker {self.next!r} must not be empty")
        names = [self.next, *(d.worker for d in self.parallel)]
        if FINISH in names[1:]:
            raise ValueError("FINISH cannot be delegated in 'parallel'")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"each worker may appear once per step; repeated: {', '.join(duplicates)}"
            )
        return self

    def delegations(self) -> list[Delegation]:
        """Every handoff of this step, `next` first; empty on FINISH."""
        if self.next == FINISH:
            return []
        return [Delegation(worker=self.next, instructions=self.instructions), *self.parallel]


def routing_schema(worker_names: Sequence[str]) -> type[SupervisorDecision]:
    """`SupervisorDecision` with `next` and `parallel[].worker` constrained to the team.

    The schema keeps the name `SupervisorDecision` (scripts and traces match on it); the enum
    lets providers with strict structured output reject unknown workers before we see them.
    """
    names = tuple(worker_names)
    worker_type = Literal[names]  # type: ignore[valid-type]
    next_type = Literal[(*names, FINISH)]  # type: ignore[valid-type]
    delegation = create_model(
        "Delegation",
        __base__=Delegation,
        worker=(worker_type, Field(description="Name of the worker.")),
    )
    schema = create_model(
        "SupervisorDecision",
        __base__=SupervisorDecision,
        __doc__=SupervisorDecision.__doc__,
        next=(
            next_type,
            Field(description="The worker to hand off to, or FINISH when the request is done."),
        ),
        parallel=(
            list[delegation],  # type: ignore[valid-type]
            Field(
                default_factory=list,
                description="Other workers to run at the same time as `next` (independent "
                "parts only); empty for a single handoff and on FINISH.",
            ),
        ),
    )
    return schema


def capability_schema(tags: Sequence[str]) -> type[BaseModel]:
    """`TaskCapabilities {capabilities: [tag, ...]}` constrained to the declared tags."""
    tag_type = Literal[tuple(tags)]  # type: ignore[valid-type]
    return create_model(
        "TaskCapabilities",
        __doc__="The capabilities a request needs, in the order the work should happen.",
        capabilities=(
            list[tag_type],  # type: ignore[valid-type]
            Field(min_length=1, description="Capability tags, in order of the work."),
        ),
    )


class Handoff(TypedDict):
    """One completed handoff: the supervisor's handoff log entry."""

    turn: int
    """Index of the user message (0-based) this handoff served."""
    step: int
    """Routing step within that request (parallel handoffs share a step)."""
    worker: str
    instructions: str
    context_policy: str
    """What context the worker received: none, last_result or full_summary."""
    router: str
    """Who chose this handoff: `model` or `capability`."""
    result: str
    """The worker's final answer."""
    success: bool
    error: str | None
    capabilities: NotRequired[list[str]]
    """Capability tags this handoff covered (capability router only)."""
    nested: NotRequired[list[Handoff]]
    """The handoff log of a nested team, when the worker is itself a supervisor."""


def add_handoffs(current: list[Handoff] | None, update: list[Handoff] | None) -> list[Handoff]:
    """Append handoffs in arrival order (parallel workers each add theirs)."""
    return [*(current or []), *(update or [])]


def handoffs_in_turn(handoffs: Sequence[Handoff], turn: int) -> list[Handoff]:
    """The handoffs made for request number `turn`."""
    return [h for h in handoffs if h["turn"] == turn]


def handoff_message(policy: str, instructions: str, request: str, prior: Sequence[Handoff]) -> str:
    """The one message a worker receives: its instructions plus the context its policy allows.

    `prior` are this request's completed handoffs; failed ones are not passed on as results.
    """
    results = [h for h in prior if h["success"]]
    context = ""
    if policy == "full_summary":
        context = HANDOFF_REQUEST_CONTEXT.format(request=request)
        if results:
            context += HANDOFF_RESULTS_CONTEXT.format(results=_results_block(results))
    elif policy == "last_result" and results:
        context = HANDOFF_RESULTS_CONTEXT.format(results=_results_block(results[-1:]))
    return WORKER_HANDOFF_PROMPT.format(instructions=instructions, context=context)


def _results_block(handoffs: Sequence[Handoff]) -> str:
    return "\n".join(
        HANDOFF_RESULT_ITEM.format(worker=h["worker"], result=h["result"]) for h in handoffs
    )


def progress_text(handoffs: Sequence[Handoff]) -> str:
    """This request's handoffs as the supervisor sees them before deciding the next step."""
    if not handoffs:
        return SUPERVISOR_NO_PROGRESS
    return "\n".join(
        SUPERVISOR_PROGRESS_ITEM.format(
            step=h["step"] + 1,
            worker=h["worker"],
            status="succeeded" if h["success"] else f"failed: {h['error']}",
            instructions=h["instructions"],
            result=h["result"],
        )
        for h in handoffs
    )


def steps_of(handoffs: Sequence[Handoff]) -> list[list[str]]:
    """Worker names per routing step, in step order (a parallel step lists several)."""
    by_step: dict[int, list[str]] = {}
    for handoff in handoffs:
        by_step.setdefault(handoff["step"], []).append(handoff["worker"])
    return [by_step[step] for step in sorted(by_step)]


def handoff_limit_error(done: int, proposed: int, max_handoffs: int) -> str | None:
    """Why `proposed` more handoffs may not run after `done`, or None when they fit."""
    if done + proposed <= max_handoffs:
        return None
    return (
        f"max_handoffs ({max_handoffs}) reached: {done} handoff(s) made and the supervisor "
        f"asked for {proposed} more"
    )


def ping_pong_pair(
    steps: Sequence[Sequence[str]], proposed: Sequence[str], window: int
) -> tuple[str, str] | None:
    """The two workers a proposed step would ping-pong between, or None.

    The guard trips when the last `window` steps, counting the proposed one, are single
    handoffs alternating strictly between two different workers (A,B,A,B for window 4). A
    parallel step breaks the pattern. `window` 0 disables the guard.

    Raises:
        ValueError: when `window` is 1 or 2 (any two different handoffs would trip it).
    """
    if window == 0:
        return None
    if window < 3:
        raise ValueError(
            f"ping-pong window must be 0 (off) or >= 3, got {window!r}: a window of "
            f"{window} would stop every handoff to a second worker"
        )
    sequence = [*steps, proposed][-window:]
    if len(sequence) < window or any(len(step) != 1 for step in sequence):
        return None
    names = [step[0] for step in sequence]
    first, second = names[0], names[1]
    if first == second:
        return None
    expected = [first if i % 2 == 0 else second for i in range(window)]
    return (first, second) if names == expected else None


def ping_pong_error(pair: tuple[str, str], window: int) -> str:
    """The error text of a tripped ping-pong guard."""
    a, b = pair
    pattern = " → ".join(a if i % 2 == 0 else b for i in range(window))
    return (
        f"ping-pong between workers {a!r} and {b!r} ({pattern}) without finishing; stopped "
        f"by the ping-pong guard (supervisor_ping_pong_window={window})"
    )


class CapabilityError(ValueError):
    """Required capability tags that no worker declares."""


@dataclass(frozen=True)
class CapabilityChoice:
    """The capability router's pick: a worker and the tags it is handed."""

    worker: str
    tags: tuple[str, ...]


def declared_capabilities(workers: Sequence[WorkerSpec]) -> list[str]:
    """Every capability tag the team declares, in declaration order, once each."""
    tags: list[str] = []
    for spec in workers:
        tags.extend(t for t in spec.capabilities if t not in tags)
    return tags


def check_capabilities(tags: Sequence[str], workers: Sequence[WorkerSpec]) -> None:
    """Raise CapabilityError when a required tag is declared by no worker (or none given)."""
    declared = declared_capabilities(workers)
    if not tags:
        raise CapabilityError(
            "the capability router needs at least one required capability tag; "
            f"declared tags: {', '.join(declared) or '(none)'}"
        )
    unknown = [t for t in tags if t not in declared]
    if unknown:
        raise CapabilityError(
            f"no worker declares capability {', '.join(map(repr, unknown))}; "
            f"declared tags: {', '.join(declared) or '(none)'}"
        )


def capability_route(
    required: Sequence[str],
    covered: Sequence[str],
    workers: Sequence[WorkerSpec],
    load: Mapping[str, int],
) -> CapabilityChoice | None:
    """The deterministic capability/least-load router (algorithm in the module docstring).

    Args:
        required: The request's capability tags, in work order.
        covered: Tags already handed to a worker in this request.
        workers: The team, in declaration order.
        load: Handoffs per worker so far in this request.

    Returns:
        The next worker and the tags it covers, or None when every tag is covered.

    Raises:
        CapabilityError: when a required tag is declared by no worker.
    """
    check_capabilities(required, workers)
    uncovered = [t for t in required if t not in covered]
    if not uncovered:
        return None
    head = uncovered[0]
    candidates = [(index, spec) for index, spec in enumerate(workers) if head in spec.capabilities]

    def rank(item: tuple[int, WorkerSpec]) -> tuple[int, int, int]:
        index, spec = item
        overlap = sum(1 for t in uncovered if t in spec.capabilities)
        return (-overlap, load.get(spec.name, 0), index)

    _, best = min(candidates, key=rank)
    return CapabilityChoice(
        worker=best.name, tags=tuple(t for t in uncovered if t in best.capabilities)
    )


__all__ = [
    "CONTEXT_POLICIES",
    "FINISH",
    "MAX_TEAM_DEPTH",
    "CapabilityChoice",
    "CapabilityError",
    "ContextPolicy",
    "Delegation",
    "Handoff",
    "RouterKind",
    "SupervisorDecision",
    "TeamDepthError",
    "WorkerSpec",
    "WorkerSpecError",
    "add_handoffs",
    "capability_route",
    "capability_schema",
    "check_capabilities",
    "declared_capabilities",
    "handoff_limit_error",
    "handoff_message",
    "handoffs_in_turn",
    "ping_pong_error",
    "ping_pong_pair",
    "progress_text",
    "routing_schema",
    "steps_of",
    "validate_workers",
]
