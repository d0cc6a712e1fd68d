"""Planner-executor graph: planning, validation repair, eager execution, replanning, review,
crash/resume, with the in-process scripted model."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from graphs.plan_execute import PlanReviewError, build_graph, parse_review, revise_remaining
from nodes.context import Context
from nodes.planning import PlannedTask

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("plan_execute.mmd")
REQUEST = {"request": "What is 6*7, and what time is it?"}


def task(task_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "description": f"do {task_id}", "depends_on": list(deps), **extra}


def direct(task_id: str, tool_name: str, *deps: str, **args: Any) -> dict[str, Any]:
    return task(task_id, *deps, tool=tool_name, tool_args=args)


def answer(text: str, *cited: str) -> dict[str, Any]:
    return {"json": {"answer": text, "cited_task_ids": list(cited)}}


def kinds(model: Any) -> list[str]:
    """What each model call was: a schema name (Plan, PlanRevision, ...) or `worker:<id>`."""
    out = []
    for request in model.requests:
        choice, tools = request.get("tool_choice"), request.get("tools") or []
        if isinstance(choice, dict):
            out.append(choice["function"]["name"])
            continue
        if choice == "required" and len(tools) == 1:
            out.append(tools[0]["function"]["name"])
            continue
        user = [m for m in request["messages"] if m["role"] == "user"][-1]["content"]
        match = re.match(r"Task (\w+):", user)
        out.append(f"worker:{match.group(1)}" if match else "other")
    return out


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


async def run_collecting(
    graph: Any, payload: Any, config: dict[str, Any] | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for _, mode, chunk in graph.astream(
        payload, config, stream_mode=["custom", "updates"], subgraphs=True, **kwargs
    ):
        if mode == "custom":
            events.append(chunk)
    return events


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in result["tasks"]}


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_happy_path_runs_workers_and_a_direct_tool_with_exact_model_calls(
    scripted_model: Any,
) -> None:
    plan = {
        "tasks": [
            task("t1", tools=["calculate"]),
            direct("t2", "get_current_time", timezone="UTC"),
            task("t3", "t1", "t2"),
        ]
    }
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("42 [t1]", "t1", "t9")]},
                {
                    "match": {"user": "^Task t1:"},
                    "replies": [
                        {"tool_calls": [{"name": "calculate", "args": {"expression": "6*7"}}]},
                        {"content": "6*7 is 42"},
                    ],
                },
                {"match": {"user": "^Task t3:"}, "replies": ["42, at the time t2 found"]},
            ]
        }
    )
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    events = await run_collecting(graph, REQUEST, thread("happy"))
    result = (await graph.aget_state(thread("happy"))).values

    assert result["success"] is True and result["error"] is None
    assert result["final_answer"] == "42 [t1]"
    assert result["citations"] == ["t1"]  # unknown ids the model cites are dropped
    assert Counter(kinds(model)) == {"Plan": 1, "worker:t1": 2, "worker:t3": 1, "FinalAnswer": 1}
    assert result["usage"]["scripted"]["calls"] == 5
    tasks = by_id(result)
    assert {i: r["status"] for i, r in tasks.items()} == {
        "t1": "completed",
        "t2": "completed",
        "t3": "completed",
    }
    assert tasks["t1"]["result"] == "6*7 is 42"
    assert "UTC" in tasks["t2"]["result"]
    # Least privilege: each worker was offered only its task's tools.
    offered = {
        k: [t["function"]["name"] for t in r.get("tools", [])]
        for k, r in zip(kinds(model), model.requests, strict=True)
        if k.startswith("worker")
    }
    assert offered == {"worker:t1": ["calculate"], "worker:t3": []}
    # t3's worker saw its dependencies' results as data.
    t3_prompt = [r for k, r in zip(kinds(model), model.requests, strict=True) if k == "worker:t3"]
    user_text = t3_prompt[0]["messages"][-1]["content"]
    assert "[t1] 6*7 is 42" in user_text and "<dependency_results>" in user_text
    assert {(e["event"], e.get("task_id"), e.get("status")) for e in events} >= {
        ("task_started", "t1", "running"),
        ("task_finished", "t1", "completed"),
        ("task_started", "t2", "running"),
        ("task_finished", "t3", "completed"),
    }
    assert [r["tool"] for r in result["tool_results"]].count("get_current_time") == 1


async def test_cycle_is_sent_back_to_the_planner_and_the_repaired_plan_runs(
    scripted_model: Any,
) -> None:
    cyclic = {"tasks": [direct("t1", "calculate", "t2", expression="1+1"), task("t2", "t1")]}
    fixed = {"tasks": [direct("t1", "calculate", expression="1+1")]}
    model = scripted_model(
        script={
            "rules": [
                {
                    "match": {"schema": "Plan", "last": "dependency cycle"},
                    "replies": [{"json": fixed}],
                },
                {"match": {"schema": "Plan"}, "replies": [{"json": cyclic}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("2 [t1]", "t1")]},
            ]
        }
    )
    graph = build_graph(model=model)
    events: list[dict[str, Any]] = []
    async for _, mode, chunk in graph.astream(
        REQUEST, stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom":
            events.append(chunk)
        else:
            result = chunk

    assert kinds(model) == ["Plan", "Plan", "FinalAnswer"]
    repair_request = model.requests[1]["messages"][-1]["content"]
    assert "dependency cycle: t1 -> t2 -> t1" in repair_request
    assert '"id": "t2"' in model.requests[1]["messages"][-2]["content"]  # it sees its draft
    # Nothing ran before the plan was valid.
    assert events[0] == {"event": "plan_accepted", "by": "planner", "task_ids": ["t1"]}
    assert result["success"] is True
    assert result["plan_attempts"] == 2
    assert [r["id"] for r in result["tasks"]] == ["t1"]


async def test_planning_stops_after_max_plan_attempts_without_running_anything(
    scripted_model: Any,
) -> None:
    bad = {"tasks": [task("t1", "t7", tools=["get_current_time"])]}
    model = scripted_model(
        script={"rules": [{"match": {"schema": "Plan"}, "replies": [{"json": bad}]}]}
    )
    result = await build_graph(model=model).ainvoke(
        REQUEST, context=Context(max_plan_attempts=2, tools=("calculate",))
    )

    assert kinds(model) == ["Plan", "Plan"]
    assert result["success"] is False
    assert result["plan_problems"] == [
        "task 't1' depends on unknown task 't7'; known ids: t1",
        "task 't1' uses unknown tool 'get_current_time'; available tools: calculate",
    ]
    assert "no valid plan after 2 attempt(s)" in result["error"]
    assert "could not make a valid plan" in result["final_answer"]
    assert "tasks" not in result


async def test_a_low_recursion_limit_stops_planning_cleanly(scripted_model: Any) -> None:
    bad = {"tasks": [task("t1", "t1")]}
    model = scripted_model(
        script={"rules": [{"match": {"schema": "Plan"}, "replies": [{"json": bad}]}]}
    )
    result = await build_graph(model=model).ainvoke(
        REQUEST, {"recursion_limit": 9}, context=Context(max_plan_attempts=50)
    )

    assert result["success"] is False
    assert result["error"].startswith("the graph's recursion limit was reached")
    assert kinds(model) == ["Plan", "Plan"]  # a third draft could not have finished


def _price_tools(calls: Counter[str]) -> list[BaseTool]:
    @tool
    async def fetch_price(symbol: str) -> str:
        """Fetch a price from the primary feed.

        Args:
            symbol: Ticker symbol.
        """
        calls["fetch_price"] += 1
        raise ToolException("primary feed is down")

    @tool
    async def fetch_price_backup(symbol: str) -> str:
        """Fetch a price from the backup feed.

        Args:
            symbol: Ticker symbol.
        """
        calls["fetch_price_backup"] += 1
        return f"{symbol}=101.5"

    @tool
    async def lookup_fx(pair: str) -> str:
        """Look up an exchange rate.

        Args:
            pair: Currency pair like EURUSD.
        """
        calls["lookup_fx"] += 1
        return f"{pair}=1.1"

    @tool
    async def convert(amount: str, rate: str) -> str:
        """Convert an amount with a rate.

        Args:
            amount: The amount.
            rate: The rate.
        """
        calls["convert"] += 1
        return "converted"

    return [fetch_price, fetch_price_backup, lookup_fx, convert]


PRICE_PLAN = {
    "tasks": [
        direct("t1", "fetch_price", symbol="ACME"),
        direct("t2", "convert", "t1", amount="price", rate="fx"),
        direct("t3", "lookup_fx", pair="EURUSD"),
        direct("t4", "convert", "t2", amount="x", rate="y"),
    ]
}
PRICE_REVISION = {
    "rationale": "the primary feed is down; use the backup feed",
    "tasks": [
        direct("t5", "fetch_price_backup", symbol="ACME"),
        direct("t2", "convert", "t5", "t3", amount="price", rate="fx"),
    ],
}


async def test_failed_task_cancels_dependents_and_the_replanner_revises_the_rest(
    scripted_model: Any,
) -> None:
    calls: Counter[str] = Counter()
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": PRICE_PLAN}]},
                {"match": {"schema": "PlanRevision"}, "replies": [{"json": PRICE_REVISION}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("done [t2]", "t2")]},
            ]
        }
    )
    graph = build_graph(model=model, tools=_price_tools(calls))
    result = await graph.ainvoke(REQUEST, context=Context(max_replans=1))

    assert kinds(model) == ["Plan", "PlanRevision", "FinalAnswer"]
    statuses = {i: r["status"] for i, r in by_id(result).items()}
    assert statuses == {
        "t1": "failed",
        "t3": "completed",
        "t4": "cancelled",  # cancelled with t2 and not revived by the replanner
        "t5": "completed",
        "t2": "completed",  # revived with a new dependency
    }
    assert by_id(result)["t4"]["error"] == "dependency 't2' cancelled"
    assert "primary feed is down" in by_id(result)["t1"]["error"]
    # Completed work is not redone; the failed tool is not retried.
    assert calls == {"fetch_price": 1, "lookup_fx": 1, "fetch_price_backup": 1, "convert": 1}
    replan_prompt = model.requests[1]["messages"][-1]["content"]
    completed, failed, remaining = (
        re.search(rf"<{tag}>(.*?)</{tag}>", replan_prompt, re.S).group(1)  # type: ignore[union-attr]
        for tag in ("completed", "failed", "remaining")
    )
    assert "[t3]" in completed and "EURUSD=1.1" in completed and "[t1]" not in completed
    assert "[t1]" in failed and "primary feed is down" in failed
    assert "[t2]" in remaining and "[t4]" in remaining and "cancelled" in remaining
    assert result["replans"] == [
        {
            "round": 1,
            "failed": ["t1"],
            "rationale": "the primary feed is down; use the backup feed",
            "added": ["t5", "t2"],
            "skipped": [],
        }
    ]
    assert result["success"] is True and result["final_answer"] == "done [t2]"
    assert result["plan_attempts"] == 1


async def test_failure_with_no_replans_left_reports_it(scripted_model: Any) -> None:
    calls: Counter[str] = Counter()
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": PRICE_PLAN}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("partial [t3]", "t3")]},
            ]
        }
    )
    result = await build_graph(model=model, tools=_price_tools(calls)).ainvoke(
        REQUEST, context=Context(max_replans=0)
    )

    assert kinds(model) == ["Plan", "FinalAnswer"]
    assert result["success"] is False
    assert result["error"] == "task(s) 't1' failed and no replans are left (max_replans=0)"
    assert result["final_answer"] == "partial [t3]"
    assert {i: r["status"] for i, r in by_id(result).items()} == {
        "t1": "failed",
        "t2": "cancelled",
        "t3": "completed",
        "t4": "cancelled",
    }


def _handshake_tools(timeout_s: float = 5.0) -> list[BaseTool]:
    c_started = asyncio.Event()

    @tool
    async def quick(name: str) -> str:
        """Finish at once.

        Args:
            name: Task name.
        """
        if name == "c":
            c_started.set()
        return f"{name} done"

    @tool
    async def wait_for_c() -> str:
        """Finish only once task c has started."""
        try:
            await asyncio.wait_for(c_started.wait(), timeout_s)
        except TimeoutError:
            raise ToolException("c never started while I was running") from None
        return "b done"

    return [quick, wait_for_c]


async def test_a_task_starts_as_soon_as_its_own_dependencies_are_done(
    scripted_model: Any,
) -> None:
    # b waits for c, and c depends only on a. A wave scheduler runs {a, b} and only then
    # {c}, so b would fail waiting; the eager scheduler starts c as soon as a is done.
    plan = {
        "tasks": [
            direct("a", "quick", name="a"),
            direct("b", "wait_for_c"),
            direct("c", "quick", "a", name="c"),
        ]
    }
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("ok")]},
            ]
        }
    )
    graph = build_graph(model=model, tools=_handshake_tools(), checkpointer=InMemorySaver())
    events = await run_collecting(graph, REQUEST, thread("eager"))
    result = (await graph.aget_state(thread("eager"))).values

    assert {i: r["status"] for i, r in by_id(result).items()} == {
        "a": "completed",
        "b": "completed",
        "c": "completed",
    }
    order = [(e["event"], e["task_id"]) for e in events if "task_id" in e]
    assert order.index(("task_started", "c")) < order.index(("task_finished", "b"))
    assert kinds(model) == ["Plan", "FinalAnswer"]


async def test_at_most_max_concurrency_tasks_run_at_once(scripted_model: Any) -> None:
    state = {"running": 0, "peak": 0}
    release = asyncio.Event()

    @tool
    async def hold(slot: int) -> str:
        """Hold a slot until two tasks run together.

        Args:
            slot: Which task.
        """
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        if state["running"] == 2:
            release.set()
        await asyncio.wait_for(release.wait(), 5)
        state["running"] -= 1
        return f"slot {slot}"

    plan = {"tasks": [direct(f"t{i}", "hold", slot=i) for i in range(6)]}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("ok")]},
            ]
        }
    )
    result = await build_graph(model=model, tools=[hold]).ainvoke(
        REQUEST, context=Context(max_concurrency=2)
    )

    assert {r["status"] for r in result["tasks"]} == {"completed"}
    assert state["peak"] == 2


async def test_plan_review_pauses_then_an_invalid_edit_is_refused_and_a_valid_one_runs(
    scripted_model: Any,
) -> None:
    plan = {"tasks": [direct("t1", "calculate", expression="6*7")]}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("7*8 is 56 [t2]", "t2")]},
            ]
        }
    )
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = thread("review")
    context = Context(review_plan=True)

    paused = await graph.ainvoke(REQUEST, config, context=context)
    review = paused["__interrupt__"][0].value
    assert review["kind"] == "plan_review"
    assert [t["id"] for t in review["tasks"]] == ["t1"]

    cyclic_edit = {"action": "edit", "tasks": [task("t2", "t2")]}
    paused = await graph.ainvoke(Command(resume=cyclic_edit), config, context=context)
    review = paused["__interrupt__"][0].value
    assert review["problems"] == ["task 't2' depends on itself"]

    edit = {"action": "edit", "tasks": [direct("t2", "calculate", expression="7*8")]}
    result = await graph.ainvoke(Command(resume=edit), config, context=context)

    assert result["success"] is True
    assert {i: r["status"] for i, r in by_id(result).items()} == {
        "t1": "skipped",
        "t2": "completed",
    }
    assert by_id(result)["t2"]["result"].count("56") == 1
    assert kinds(model) == ["Plan", "FinalAnswer"]  # resuming never re-asks the planner


async def test_plan_review_approve_runs_the_plan_as_proposed(scripted_model: Any) -> None:
    plan = {"tasks": [direct("t1", "calculate", expression="6*7")]}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("42 [t1]", "t1")]},
            ]
        }
    )
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config, context = thread("approve"), Context(review_plan=True)
    await graph.ainvoke(REQUEST, config, context=context)
    paused = await graph.ainvoke(Command(resume="maybe"), config, context=context)
    assert (
        "unrecognised plan-review answer 'maybe'" in paused["__interrupt__"][0].value["problems"][0]
    )
    result = await graph.ainvoke(Command(resume={"action": "approve"}), config, context=context)

    assert by_id(result)["t1"]["status"] == "completed"
    assert result["final_answer"] == "42 [t1]"


async def test_a_crash_mid_plan_resumes_without_redoing_finished_tasks(
    scripted_model: Any,
) -> None:
    broken = {"on": True}
    runs: Counter[str] = Counter()
    publishing = asyncio.Event()

    @tool
    async def archive() -> str:
        """Archive the sources (slow: still running when publishing starts)."""
        await asyncio.wait_for(publishing.wait(), 5)
        runs["archive"] += 1
        return "archived"

    @tool
    async def publish(text: str) -> str:
        """Publish a text.

        Args:
            text: What to publish.
        """
        runs["publish"] += 1
        publishing.set()
        if broken["on"]:
            raise ConnectionResetError("publisher connection dropped")  # a crash, not a tool error
        return "published"

    @tool
    async def research(topic: str) -> str:
        """Research a topic.

        Args:
            topic: The topic.
        """
        runs["research"] += 1
        return f"notes on {topic}"

    plan = {
        "tasks": [
            task("t1", tools=["research"]),
            direct("t2", "research", topic="side facts"),
            direct("t3", "publish", "t1", "t2", text="report"),
            task("t4", "t3"),
            direct("t5", "archive"),
        ]
    }
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {
                    "match": {"user": "^Task t1:"},
                    "replies": [
                        {"tool_calls": [{"name": "research", "args": {"topic": "x"}}]},
                        {"content": "t1 summary"},
                    ],
                },
                {"match": {"user": "^Task t4:"}, "replies": ["announced"]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("done [t4]", "t4")]},
            ]
        }
    )
    tools = [research, publish, archive]
    graph = build_graph(model=model, tools=tools, checkpointer=InMemorySaver())
    config = thread("crash")

    with pytest.raises(ConnectionResetError):
        await graph.ainvoke(REQUEST, config)
    assert Counter(kinds(model)) == {"Plan": 1, "worker:t1": 2}
    # t5 was running when t3 crashed: it was allowed to finish, so its result is saved.
    assert runs == {"research": 2, "publish": 1, "archive": 1}

    broken["on"] = False
    result = await graph.ainvoke(None, config)

    assert result["success"] is True
    assert {r["status"] for r in result["tasks"]} == {"completed"}
    # t1 (two worker calls), t2 and t5 ran once in all; only t3 ran again.
    assert Counter(kinds(model)) == {"Plan": 1, "worker:t1": 2, "worker:t4": 1, "FinalAnswer": 1}
    assert runs == {"research": 2, "publish": 2, "archive": 1}
    assert by_id(result)["t1"]["result"] == "t1 summary"


async def test_an_interrupt_inside_a_task_lets_siblings_finish_and_resume_skips_them(
    scripted_model: Any,
) -> None:
    asked = asyncio.Event()
    runs: Counter[str] = Counter()

    @tool
    async def ask_owner(question: str) -> str:
        """Ask the owner a question and wait for the answer.

        Args:
            question: The question.
        """
        runs["ask_owner"] += 1
        asked.set()
        return f"owner says {interrupt({'question': question})}"

    @tool
    async def research(topic: str) -> str:
        """Research a topic.

        Args:
            topic: The topic.
        """
        # Still running when the sibling pauses: its result must survive the pause.
        await asyncio.wait_for(asked.wait(), 5)
        runs["research"] += 1
        return f"notes on {topic}"

    plan = {
        "tasks": [
            direct("t1", "ask_owner", question="budget?"),
            task("t2", tools=["research"]),
            task("t3", "t1", "t2"),
        ]
    }
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {
                    "match": {"user": "^Task t2:"},
                    "replies": [
                        {"tool_calls": [{"name": "research", "args": {"topic": "x"}}]},
                        {"content": "t2 notes"},
                    ],
                },
                {"match": {"user": "^Task t3:"}, "replies": ["t3 done"]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("done [t3]", "t3")]},
            ]
        }
    )
    graph = build_graph(model=model, tools=[ask_owner, research], checkpointer=InMemorySaver())
    config = thread("pause")

    paused = await graph.ainvoke(REQUEST, config)
    assert paused["__interrupt__"][0].value == {"question": "budget?"}
    assert Counter(kinds(model)) == {"Plan": 1, "worker:t2": 2}

    result = await graph.ainvoke(Command(resume="100 EUR"), config)

    assert result["success"] is True
    assert by_id(result)["t1"]["result"].count("owner says 100 EUR") == 1
    assert by_id(result)["t2"]["result"] == "t2 notes"
    assert Counter(kinds(model)) == {
        "Plan": 1,
        "worker:t2": 2,
        "worker:t3": 1,
        "FinalAnswer": 1,
    }
    assert runs == {"ask_owner": 2, "research": 1}


async def test_a_revised_plan_is_validated_too_and_may_finish_with_no_more_tasks(
    scripted_model: Any,
) -> None:
    calls: Counter[str] = Counter()
    reuses_completed_id = {
        "rationale": "retry",
        "tasks": [direct("t3", "fetch_price_backup", symbol="ACME")],
    }
    nothing_left = {"rationale": "t3 already answers the request", "tasks": []}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": PRICE_PLAN}]},
                {
                    "match": {"schema": "PlanRevision", "last": "belongs to a completed task"},
                    "replies": [{"json": nothing_left}],
                },
                {"match": {"schema": "PlanRevision"}, "replies": [{"json": reuses_completed_id}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("fx only [t3]", "t3")]},
            ]
        }
    )
    result = await build_graph(model=model, tools=_price_tools(calls)).ainvoke(REQUEST)

    assert kinds(model) == ["Plan", "PlanRevision", "PlanRevision", "FinalAnswer"]
    assert result["plan_attempts"] == 2
    assert (
        "task id 't3' belongs to a completed task" in model.requests[2]["messages"][-1]["content"]
    )
    assert result["replans"] == [
        {
            "round": 1,
            "failed": ["t1"],
            "rationale": "t3 already answers the request",
            "added": [],
            "skipped": [],
        }
    ]
    assert calls["fetch_price_backup"] == 0
    assert result["success"] is True and result["final_answer"] == "fx only [t3]"


def test_review_answers_are_parsed_strictly() -> None:
    assert parse_review("approve") == ("approve", [])
    assert parse_review({"action": "approve"}) == ("approve", [])
    action, tasks = parse_review({"action": "edit", "tasks": [task("t9")]})
    assert action == "edit" and [t.id for t in tasks] == ["t9"]
    with pytest.raises(PlanReviewError, match="edited tasks are not valid tasks"):
        parse_review({"action": "edit", "tasks": [{"id": "t1"}]})
    with pytest.raises(PlanReviewError, match="expected 'approve'"):
        parse_review({"action": "reject"})


def test_a_revision_keeps_history_revives_cancelled_ids_and_skips_dropped_pending() -> None:
    def record(task_id: str, status: str) -> Any:
        return {**task(task_id), "tools": [], "tool": None, "tool_args": {}, "status": status}

    records = [
        record("t1", "completed"),
        record("t2", "failed"),
        record("t3", "cancelled"),
        record("t4", "cancelled"),
        record("t5", "pending"),
    ]
    revised, skipped = revise_remaining(
        records, [PlannedTask(id="t3", description="again", depends_on=["t1"])], round_=1
    )
    assert [(r["id"], r["status"]) for r in revised] == [
        ("t1", "completed"),
        ("t2", "failed"),
        ("t4", "cancelled"),
        ("t5", "skipped"),
        ("t3", "pending"),
    ]
    assert skipped == ["t5"]
    assert revised[-1]["round"] == 1 and revised[-1]["description"] == "again"
    assert records[4]["status"] == "pending"  # inputs are not mutated


async def test_a_round_that_does_not_fit_the_budget_is_skipped_and_synthesized(
    scripted_model: Any,
) -> None:
    plan = {"tasks": [task("t1", tools=["calculate"]), task("t2")]}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("Nothing was run.")]},
            ]
        }
    )
    result = await build_graph(model=model).ainvoke(REQUEST, context=Context(max_model_calls=2))

    # The plan used 1 call; two workers plus the synthesis need 3 more: no task starts.
    assert Counter(kinds(model)) == {"Plan": 1, "FinalAnswer": 1}
    assert {i: r["status"] for i, r in by_id(result).items()} == {"t1": "skipped", "t2": "skipped"}
    assert result["success"] is False
    assert result["error"] == "max_model_calls (2) reached: 1 used, 3 more needed"
    assert result["metrics"]["stopped_by"] == "max_model_calls"


async def test_parallel_workers_share_what_is_left_of_the_budget(scripted_model: Any) -> None:
    plan = {"tasks": [task("t1", tools=["calculate"]), task("t2")]}
    looping = {"tool_calls": [{"name": "calculate", "args": {"expression": "1+1"}}]}
    model = scripted_model(
        script={
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {"match": {"user": "^Task t1:"}, "replies": [looping], "after_last": "repeat"},
                {"match": {"user": "^Task t2:"}, "replies": ["t2 done"]},
                {"match": {"schema": "FinalAnswer"}, "replies": [answer("t2 only [t2]", "t2")]},
            ]
        }
    )
    ctx = Context(max_model_calls=6, max_replans=0)
    result = await build_graph(model=model).ainvoke(REQUEST, context=ctx)

    # 6 - 1 (plan) - 1 (kept for the synthesis) = 4 calls, split between the two workers.
    assert Counter(kinds(model)) == {"Plan": 1, "worker:t1": 2, "worker:t2": 1, "FinalAnswer": 1}
    tasks = by_id(result)
    assert tasks["t1"]["status"] == "failed"
    assert tasks["t1"]["error"].startswith("max_model_calls (2) reached")
    assert tasks["t2"]["status"] == "completed"
    assert result["metrics"]["model_calls"] == 5
    assert result["metrics"]["iterations"] == 2
