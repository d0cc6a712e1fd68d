"""Plan validation and the eager scheduler (nodes/planning.py), without LangGraph."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nodes.planning import (
    EagerScheduler,
    PlannedTask,
    SimpleTask,
    TaskStatus,
    critical_path,
    find_cycle,
    levels,
    plan_problems,
    run_eager,
    run_waves,
    topological_order,
)

pytestmark = pytest.mark.anyio

TOOLS = ["calculate", "get_current_time"]


def t(task_id: str, *deps: str, **extra: Any) -> PlannedTask:
    return PlannedTask(id=task_id, description=f"do {task_id}", depends_on=list(deps), **extra)


def test_valid_plan_has_no_problems() -> None:
    plan = [t("t1", tools=["calculate"]), t("t2"), t("t3", "t1", "t2")]
    assert plan_problems(plan, available_tools=TOOLS) == []


def test_empty_plan_is_a_problem_unless_allowed() -> None:
    assert plan_problems([], available_tools=TOOLS) == [
        "the plan has no tasks; give at least one task"
    ]
    assert plan_problems([], available_tools=TOOLS, allow_empty=True) == []


def test_duplicate_ids_are_named_with_their_count() -> None:
    problems = plan_problems([t("t1"), t("t1"), t("t2")], available_tools=TOOLS)
    assert problems == ["duplicate task id 't1' is used by 2 tasks"]


def test_self_dependency_is_named_and_not_reported_as_a_cycle() -> None:
    problems = plan_problems([t("t1", "t1")], available_tools=TOOLS)
    assert problems == ["task 't1' depends on itself"]


def test_unknown_dependency_lists_the_known_ids() -> None:
    problems = plan_problems([t("t1"), t("t2", "t9")], available_tools=TOOLS)
    assert problems == ["task 't2' depends on unknown task 't9'; known ids: t1, t2"]


def test_unknown_tools_list_the_available_ones() -> None:
    plan = [t("t1", tools=["browse"]), t("t2", tool="rm_rf")]
    assert plan_problems(plan, available_tools=TOOLS) == [
        "task 't1' uses unknown tool 'browse'; available tools: calculate, get_current_time",
        "task 't2' uses unknown tool 'rm_rf'; available tools: calculate, get_current_time",
    ]


def test_direct_tool_arguments_must_be_a_json_object() -> None:
    plan = [
        t("t1", tool="calculate", tool_args="[1, 2]"),
        t("t2", tool="calculate", tool_args="{oops"),
        t("t3", tool="calculate", tool_args={"expression": "1+1"}),
    ]
    problems = plan_problems(plan, available_tools=TOOLS)
    assert problems[0] == "tool_args of task 't1' must be a JSON object, got '[1, 2]'"
    assert problems[1].startswith("tool_args of task 't2' is not valid JSON")
    assert len(problems) == 2
    assert plan[2].arguments() == {"expression": "1+1"}


def test_cycle_is_named_exactly() -> None:
    plan = [t("t1", "t3"), t("t2", "t1"), t("t3", "t2"), t("t4")]
    problems = plan_problems(plan, available_tools=TOOLS)
    assert problems == [
        "dependency cycle: t1 -> t3 -> t2 -> t1 (each task depends on the next); break it so "
        "every task can eventually start"
    ]


def test_find_cycle_ignores_unknown_ids_and_self_edges() -> None:
    assert find_cycle({"a": ["a", "zz"], "b": ["a"]}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]


def test_revised_plan_may_depend_on_completed_ids_but_not_reuse_them() -> None:
    plan = [t("t1"), t("t4", "t2")]
    problems = plan_problems(plan, available_tools=TOOLS, completed_ids={"t1", "t2"})
    assert problems == ["task id 't1' belongs to a completed task; give the new task another id"]


def test_several_problems_are_all_reported() -> None:
    plan = [t("a", "a"), t("a", "x"), t("b", "c"), t("c", "b")]
    problems = plan_problems(plan, available_tools=TOOLS)
    assert len(problems) == 4
    assert problems[0].startswith("duplicate task id 'a'")
    assert problems[-1].startswith("dependency cycle: b -> c -> b")


def test_topological_order_levels_and_critical_path() -> None:
    plan = [t("d", "b", "c"), t("a"), t("b", "a"), t("c")]
    assert topological_order(plan) == ["a", "b", "c", "d"]
    assert levels(plan) == [["a", "c"], ["b"], ["d"]]
    assert critical_path(plan, {"a": 1, "b": 2, "c": 4, "d": 1}) == 5
    with pytest.raises(ValueError, match="a -> b -> a"):
        topological_order([t("a", "b"), t("b", "a")])


def test_scheduler_rejects_a_zero_concurrency_bound() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be >= 1, got 0"):
        EagerScheduler({"a": []}, max_concurrency=0)


def _handshake_dag(timeout_s: float) -> tuple[list[SimpleTask], list[str]]:
    """b can only finish once c has started; c depends on a. A wave scheduler runs a and b
    together and waits for both, so c never starts while b waits: b times out and fails."""
    c_started = asyncio.Event()
    log: list[str] = []

    async def quick(name: str) -> TaskStatus:
        log.append(name)
        if name == "c":
            c_started.set()
        return "completed"

    async def waits_for_c() -> TaskStatus:
        try:
            await asyncio.wait_for(c_started.wait(), timeout_s)
        except TimeoutError:
            log.append("b timed out")
            return "failed"
        log.append("b")
        return "completed"

    tasks = [
        SimpleTask("a", (), lambda: quick("a")),
        SimpleTask("b", (), waits_for_c),
        SimpleTask("c", ("a",), lambda: quick("c")),
    ]
    return tasks, log


async def test_eager_starts_a_task_when_its_own_dependencies_are_done() -> None:
    tasks, log = _handshake_dag(timeout_s=5)
    statuses = await run_eager(tasks, max_concurrency=5)
    assert statuses == {"a": "completed", "c": "completed", "b": "completed"}
    assert log.index("c") < log.index("b")


async def test_wave_baseline_cannot_finish_the_same_dag() -> None:
    # The contrast that makes the eager test meaningful; a short wait keeps the test fast.
    tasks, log = _handshake_dag(timeout_s=0.05)
    statuses = await run_waves(tasks, max_concurrency=5)
    assert statuses["b"] == "failed"
    assert log == ["a", "b timed out", "c"]


async def test_failed_dependency_cancels_its_dependents_transitively() -> None:
    ran: list[str] = []

    def runner(name: str, status: TaskStatus) -> Any:
        async def run() -> TaskStatus:
            ran.append(name)
            return status

        return run

    tasks = [
        SimpleTask("a", (), runner("a", "failed")),
        SimpleTask("b", ("a",), runner("b", "completed")),
        SimpleTask("c", ("b",), runner("c", "completed")),
        SimpleTask("d", (), runner("d", "completed")),
    ]
    statuses = await run_eager(tasks)
    assert statuses == {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "completed"}
    assert sorted(ran) == ["a", "d"]


async def test_concurrency_bound_is_respected() -> None:
    running = peak = 0
    release = asyncio.Event()

    async def work() -> TaskStatus:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            release.set()
        await asyncio.wait_for(release.wait(), 5)
        running -= 1
        return "completed"

    tasks = [SimpleTask(f"t{i}", (), work) for i in range(8)]
    statuses = await run_eager(tasks, max_concurrency=3)
    assert set(statuses.values()) == {"completed"}
    assert peak == 3
