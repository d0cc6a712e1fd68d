"""Plans for the planner-executor pattern: schema, validation and the eager DAG scheduler.

Everything here is pure or plain asyncio, so it is unit-tested without LangGraph and reused by
`bench/plan_schedule.py`:

- `Plan` / `PlannedTask` / `PlanRevision` / `FinalAnswer`: the structured outputs the planner,
  replanner and synthesizer return.
- `plan_problems(...)`: every reason a plan cannot run (duplicate ids, self dependencies,
  unknown dependencies or tools, cycles with the exact cycle named), worded for the planner
  that must repair it.
- `EagerScheduler`: lets each task start as soon as *its own* dependencies are done, with at
  most `max_concurrency` tasks running at once; `run_eager` and `run_waves` drive it (and a
  level-by-level baseline) over plain coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired

from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypedDict

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled", "skipped"]
"""Life cycle of one task.

`pending` (planned, not started) → `running` → `completed` | `failed`; `cancelled` when a
dependency failed or was cancelled; `skipped` when the replanner dropped it or the run ended
before it could start.
"""

TASK_STATUSES: tuple[TaskStatus, ...] = (
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "skipped",
)


class PlannedTask(BaseModel):
    """One step of a plan."""

    id: str = Field(description="Short unique id such as 't1'; other tasks refer to it.")
    description: str = Field(description="What this task must find out or do, self-contained.")
    depends_on: list[str] = Field(
        default_factory=list,
        description="Ids of the tasks whose results this task needs; empty when independent.",
    )
    tools: list[str] = Field(
        default_factory=list,
        description="Names of the only tools the task's worker may use (least privilege).",
    )
    tool: str | None = Field(
        default=None,
        description="Set to run exactly one call of this tool instead of a worker agent.",
    )
    tool_args: str = Field(
        default="{}",
        description='Arguments of the direct `tool` call as a JSON object, e.g. {"x": 1}.',
    )

    # A JSON string rather than a free-form object keeps the schema valid for OpenAI's strict
    # structured outputs (which forbid open objects); callers may still pass a dict.
    @field_validator("tool_args", mode="before")
    @classmethod
    def _dump_args(cls, value: Any) -> Any:
        return json.dumps(value) if isinstance(value, Mapping) else value

    def arguments(self) -> dict[str, Any]:
        """`tool_args` parsed; raises ValueError when it is not a JSON object."""
        try:
            parsed = json.loads(self.tool_args or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"tool_args of task {self.id!r} is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError(
                f"tool_args of task {self.id!r} must be a JSON object, got {self.tool_args!r}"
            )
        return parsed


class Plan(BaseModel):
    """The planner's answer: tasks forming a dependency graph (no cycles)."""

    tasks: list[PlannedTask] = Field(description="Every task needed to answer the request.")


class PlanRevision(BaseModel):
    """The replanner's answer: a new version of the remaining (unfinished) part of the plan."""

    rationale: str = Field(description="Why the remaining plan changes this way.")
    tasks: list[PlannedTask] = Field(
        description="Tasks still to run; may depend on completed task ids. Empty means the "
        "completed results are enough to answer."
    )


class FinalAnswer(BaseModel):
    """The synthesizer's answer for the user."""

    answer: str = Field(description="The answer, citing task ids like [t1] for each fact.")
    cited_task_ids: list[str] = Field(
        default_factory=list, description="Ids of the tasks whose results the answer uses."
    )


class TaskRecord(TypedDict):
    """One task of the plan as kept in state: the planned fields plus its outcome."""

    id: str
    description: str
    depends_on: list[str]
    tools: list[str]
    tool: str | None
    tool_args: dict[str, Any]
    status: TaskStatus
    result: NotRequired[str | None]
    """The task's answer (completed tasks only)."""
    error: NotRequired[str | None]
    """Why the task failed, was cancelled or skipped."""
    round: NotRequired[int]
    """Execution round (0 for the first plan, +1 per replan) the task belongs to."""


def records_from_plan(tasks: Iterable[PlannedTask], *, round_: int = 0) -> list[TaskRecord]:
    """Turn planned tasks into `pending` state records."""
    return [
        TaskRecord(
            id=t.id,
            description=t.description,
            depends_on=list(t.depends_on),
            tools=list(t.tools),
            tool=t.tool,
            tool_args=t.arguments(),
            status="pending",
            round=round_,
        )
        for t in tasks
    ]


# --- validation -------------------------------------------------------------------------------


def find_cycle(dependencies: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as `[a, b, ..., a]`, or None when the graph is acyclic.

    `dependencies` maps a task id to the ids it depends on; unknown ids and self edges are
    ignored (they are reported separately). Deterministic: ids are visited in the given order.
    """
    visiting: list[str] = []
    on_path: set[str] = set()
    finished: set[str] = set()

    def visit(node: str) -> list[str] | None:
        visiting.append(node)
        on_path.add(node)
        for dep in dependencies.get(node, ()):
            if dep == node or dep not in dependencies or dep in finished:
                continue
            if dep in on_path:
                return [*visiting[visiting.index(dep) :], dep]
            if (cycle := visit(dep)) is not None:
                return cycle
        visiting.pop()
        on_path.discard(node)
        finished.add(node)
        return None

    for node in dependencies:
        if node not in finished and (cycle := visit(node)) is not None:
            return cycle
    return None


def plan_problems(
    tasks: Sequence[PlannedTask],
    *,
    available_tools: Sequence[str],
    completed_ids: Collection[str] = (),
    allow_empty: bool = False,
) -> list[str]:
    """Every reason `tasks` cannot run, worded for the model that must fix the plan.

    Args:
        tasks: The proposed tasks.
        available_tools: Tool names the plan may use.
        completed_ids: Ids of tasks already completed (a revised plan may depend on them but
            must not reuse them).
        allow_empty: Whether an empty task list is acceptable (the replanner may say so).

    Returns:
        Problems in a stable order; empty when the plan is valid.
    """
    problems: list[str] = []
    if not tasks and not allow_empty:
        return ["the plan has no tasks; give at least one task"]
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.id] = counts.get(task.id, 0) + 1
    for task_id, count in counts.items():
        if not task_id.strip():
            problems.append("a task has an empty id; every task needs a short unique id")
        elif count > 1:
            problems.append(f"duplicate task id {task_id!r} is used by {count} tasks")
        if task_id in completed_ids:
            problems.append(
                f"task id {task_id!r} belongs to a completed task; give the new task another id"
            )
    known = [*counts, *(i for i in completed_ids if i not in counts)]
    tools = list(available_tools)
    for task in tasks:
        for dep in task.depends_on:
            if dep == task.id:
                problems.append(f"task {task.id!r} depends on itself")
            elif dep not in counts and dep not in completed_ids:
                problems.append(
                    f"task {task.id!r} depends on unknown task {dep!r}; known ids: "
                    f"{', '.join(known)}"
                )
        if task.tool:
            try:
                task.arguments()
            except ValueError as exc:
                problems.append(str(exc))
        for name in [*task.tools, *([task.tool] if task.tool else [])]:
            if name not in tools:
                problems.append(
                    f"task {task.id!r} uses unknown tool {name!r}; available tools: "
                    f"{', '.join(tools) or '(none)'}"
                )
    graph = {t.id: [d for d in t.depends_on if d in counts] for t in tasks}
    if (cycle := find_cycle(graph)) is not None:
        problems.append(
            "dependency cycle: "
            + " -> ".join(cycle)
            + " (each task depends on the next); break it so every task can eventually start"
        )
    return problems


def topological_order(tasks: Sequence[PlannedTask] | Sequence[TaskRecord]) -> list[str]:
    """Task ids so that every task comes after its dependencies; ties keep the plan order.

    Dependencies outside `tasks` (completed earlier) are ignored. Raises ValueError naming
    the cycle when there is one (validate first with `plan_problems`).
    """
    deps = {_id(t): [d for d in _deps(t) if d != _id(t)] for t in tasks}
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(deps):
        progressed = False
        for task_id, needs in deps.items():
            if task_id not in placed and all(d in placed or d not in deps for d in needs):
                order.append(task_id)
                placed.add(task_id)
                progressed = True
        if not progressed:
            cycle = find_cycle(deps)
            raise ValueError(f"tasks have a dependency cycle: {' -> '.join(cycle or [])}")
    return order


def dependents(dependencies: Mapping[str, Sequence[str]], task_id: str) -> set[str]:
    """Ids of every task that needs `task_id`, directly or through other tasks."""
    found: set[str] = set()
    frontier = [task_id]
    while frontier:
        current = frontier.pop()
        for other, needs in dependencies.items():
            if current in needs and other not in found:
                found.add(other)
                frontier.append(other)
    return found


def levels(tasks: Sequence[PlannedTask] | Sequence[TaskRecord]) -> list[list[str]]:
    """Group task ids into waves: wave n holds the tasks whose deepest dependency is in n-1."""
    depth: dict[str, int] = {}
    by_id = {_id(t): t for t in tasks}
    for task_id in topological_order(tasks):
        parents = [depth[d] for d in _deps(by_id[task_id]) if d in depth]
        depth[task_id] = 1 + max(parents) if parents else 0
    waves: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for task_id, level in depth.items():
        waves[level].append(task_id)
    return waves


def critical_path(
    tasks: Sequence[PlannedTask] | Sequence[TaskRecord], durations: Mapping[str, float]
) -> float:
    """Length of the longest dependency chain: no schedule can finish faster."""
    finish: dict[str, float] = {}
    by_id = {_id(t): t for t in tasks}
    for task_id in topological_order(tasks):
        start = max((finish[d] for d in _deps(by_id[task_id]) if d in finish), default=0.0)
        finish[task_id] = start + durations[task_id]
    return max(finish.values(), default=0.0)


def _id(task: PlannedTask | TaskRecord) -> str:
    return task.id if isinstance(task, PlannedTask) else task["id"]


def _deps(task: PlannedTask | TaskRecord) -> list[str]:
    return list(task.depends_on) if isinstance(task, PlannedTask) else list(task["depends_on"])


# --- scheduling -------------------------------------------------------------------------------


@dataclass
class EagerScheduler:
    """Coordinates concurrently started tasks so each waits only for its own dependencies.

    Every task coroutine first awaits `ready(task_id)`: it returns once all of the task's
    dependencies have finished, and says whether they all completed (run) or which one did
    not (cancel). The caller then runs the task inside `slot(task_id)`, which admits at most
    `max_concurrency` tasks at once, and reports the outcome with `finish(...)`. Outcomes of
    tasks finished in an earlier round go in `prior` (dependencies on them are satisfied).
    """

    dependencies: Mapping[str, Sequence[str]]
    max_concurrency: int = 5
    prior: Mapping[str, TaskStatus] = field(default_factory=dict)
    statuses: dict[str, TaskStatus] = field(init=False)
    running: set[str] = field(init=False, default_factory=set)
    """Ids of the tasks holding a slot right now."""
    _done: dict[str, asyncio.Event] = field(init=False)
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency!r}")
        self.statuses = dict(self.prior)
        self._done = {task_id: asyncio.Event() for task_id in self.dependencies}
        self._slots = asyncio.Semaphore(self.max_concurrency)

    async def ready(self, task_id: str) -> str | None:
        """Wait for `task_id`'s dependencies; None when it may run, else the blocking dep id."""
        for dep in self.dependencies[task_id]:
            if dep in self._done:
                await self._done[dep].wait()
        for dep in self.dependencies[task_id]:
            if self.statuses.get(dep) != "completed":
                return dep
        return None

    @contextlib.asynccontextmanager
    async def slot(self, task_id: str) -> AsyncIterator[None]:
        """Hold one of the `max_concurrency` slots while `task_id` runs (see `running`)."""
        async with self._slots:
            self.running.add(task_id)
            try:
                yield
            finally:
                self.running.discard(task_id)

    def finish(self, task_id: str, status: TaskStatus) -> None:
        """Record a final status and wake the tasks that wait for this one."""
        self.statuses[task_id] = status
        self._done[task_id].set()


@dataclass(frozen=True)
class SimpleTask:
    """A task for `run_eager`/`run_waves`: an id, its dependencies and a coroutine factory."""

    id: str
    depends_on: tuple[str, ...]
    run: Callable[[], Awaitable[TaskStatus]]


async def run_eager(tasks: Sequence[SimpleTask], *, max_concurrency: int = 5) -> dict[str, str]:
    """Run `tasks` eagerly (each as soon as its dependencies completed); return statuses.

    A task whose dependency did not complete is `cancelled` without running.
    """
    scheduler = EagerScheduler({t.id: t.depends_on for t in tasks}, max_concurrency)

    async def one(task: SimpleTask) -> None:
        if await scheduler.ready(task.id) is not None:
            scheduler.finish(task.id, "cancelled")
            return
        async with scheduler.slot(task.id):
            status = await task.run()
        scheduler.finish(task.id, status)

    await asyncio.gather(*(one(t) for t in tasks))
    return dict(scheduler.statuses)


async def run_waves(tasks: Sequence[SimpleTask], *, max_concurrency: int = 5) -> dict[str, str]:
    """Baseline: run level by level, each wave starting only when the previous one ended."""
    by_id = {t.id: t for t in tasks}
    statuses: dict[str, str] = {}
    slots = asyncio.Semaphore(max_concurrency)

    async def one(task: SimpleTask) -> None:
        if any(statuses.get(d) != "completed" for d in task.depends_on):
            statuses[task.id] = "cancelled"
            return
        async with slots:
            statuses[task.id] = await task.run()

    for wave in levels([_as_record(t) for t in tasks]):
        await asyncio.gather(*(one(by_id[i]) for i in wave))
    return statuses


def _as_record(task: SimpleTask) -> TaskRecord:
    return TaskRecord(
        id=task.id,
        description="",
        depends_on=list(task.depends_on),
        tools=[],
        tool=None,
        tool_args={},
        status="pending",
    )


__all__ = [
    "TASK_STATUSES",
    "EagerScheduler",
    "FinalAnswer",
    "Plan",
    "PlanRevision",
    "PlannedTask",
    "SimpleTask",
    "TaskRecord",
    "TaskStatus",
    "critical_path",
    "dependents",
    "find_cycle",
    "levels",
    "plan_problems",
    "records_from_plan",
    "run_eager",
    "run_waves",
    "topological_order",
]
