"""Supervisor graph: routing, parallel delegation, guards, capability router, nested teams."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from graphs.supervisor import build_graph, team_depth
from nodes.context import Context
from nodes.offline import ScriptedChatModel
from nodes.supervision import TeamDepthError, WorkerSpec

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("supervisor.mmd")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "team_of_teams.py"
DECISION = "SupervisorDecision"


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)], **extra}


def decide(when: str, reply: dict[str, Any], after_last: str = "error") -> dict[str, Any]:
    """A supervisor rule: matched on its schema and on the progress message it is shown."""
    return {
        "match": {"schema": DECISION, "last": when},
        "replies": [{"json": reply}],
        "after_last": after_last,
    }


def handoff(worker: str, instructions: str, *parallel: tuple[str, str]) -> dict[str, Any]:
    return {
        "next": worker,
        "instructions": instructions,
        "parallel": [{"worker": w, "instructions": i} for w, i in parallel],
    }


def finish(answer: str) -> dict[str, Any]:
    return {"next": "FINISH", "answer": answer}


def worker_rule(name: str, *replies: Any, after_last: str = "error") -> dict[str, Any]:
    return {
        "match": {"system": f"worker '{name}'"},
        "replies": list(replies),
        "after_last": after_last,
    }


def tool_reply(name: str, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "args": args}]}


# A rule that never matches: a role that must not be called gets a script that fails if it is.
NEVER = {"match": {"model": "never-called"}, "replies": ["unreachable"]}


def models(supervisor: list[dict[str, Any]], workers: list[dict[str, Any]]) -> dict[str, Any]:
    """One scripted model per role, so each role's calls can be counted exactly."""
    return {
        "planner": ScriptedChatModel(
            script={"rules": supervisor or [NEVER]}, model="supervisor-model"
        ),
        "router": ScriptedChatModel(script={"rules": supervisor or [NEVER]}, model="router-model"),
        "worker": ScriptedChatModel(script={"rules": workers or [NEVER]}, model="worker-model"),
    }


DEFAULT_WORKER_SCRIPT = [
    worker_rule(
        "analyst",
        tool_reply("calculate", expression="2480 * 17.5 / 100"),
        {"content": "17.5% of 2480 is {{tool:calculate}}."},
    ),
    worker_rule(
        "clock",
        tool_reply("get_current_time", timezone="Asia/Tokyo"),
        {"content": "Tokyo time: {{tool:get_current_time}}"},
    ),
    worker_rule("writer", {"content": "434, and it is evening in Tokyo."}),
]


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")


async def test_parallel_then_single_handoff_then_finish_with_exact_call_counts() -> None:
    team = models(
        [
            decide(
                "no worker has been asked",
                handoff("analyst", "Compute 17.5% of 2480.", ("clock", "Time in Tokyo?")),
            ),
            decide('worker="writer"', finish("17.5% of 2480 is 434; it is evening in Tokyo.")),
            decide('worker="clock"', handoff("writer", "Write one line from the results.")),
        ],
        DEFAULT_WORKER_SCRIPT,
    )
    result = await build_graph(model=team).ainvoke(ask("17.5% of 2480, and Tokyo time?"))

    assert result["success"] is True and result["error"] is None
    assert result["final_answer"] == "17.5% of 2480 is 434; it is evening in Tokyo."
    # 3 supervisor decisions (parallel step, writer step, FINISH) + 2 + 2 + 1 worker calls.
    assert len(team["planner"].calls) == 3
    assert len(team["worker"].calls) == 5
    assert result["usage"]["supervisor-model"]["calls"] == 3
    assert result["usage"]["worker-model"]["calls"] == 5
    steps = [(h["step"], h["worker"]) for h in result["handoffs"]]
    assert sorted(steps) == [(0, "analyst"), (0, "clock"), (1, "writer")]
    assert steps[-1] == (1, "writer")
    by_worker = {h["worker"]: h for h in result["handoffs"]}
    assert by_worker["analyst"]["result"] == "17.5% of 2480 is 434."
    assert by_worker["analyst"]["context_policy"] == "none"
    assert all(h["success"] and h["router"] == "model" for h in result["handoffs"])
    assert {r["tool"] for r in result["tool_results"]} == {"calculate", "get_current_time"}
    # The supervisor's history holds only the request and the answer: no worker transcripts.
    assert [type(m) for m in result["messages"]] == [HumanMessage, AIMessage]


async def test_handoffs_carry_only_the_context_each_worker_is_configured_for() -> None:
    team = models(
        [
            decide(
                "no worker has been asked",
                handoff("analyst", "Compute 17.5% of 2480.", ("clock", "Time in Tokyo?")),
            ),
            decide('worker="writer"', finish("done")),
            decide('worker="clock"', handoff("writer", "Write one line from the results.")),
        ],
        DEFAULT_WORKER_SCRIPT,
    )
    await build_graph(model=team).ainvoke(ask("17.5% of 2480, and Tokyo time?"))

    first_inputs = {
        name: call
        for call in team["worker"].calls
        for name in ("analyst", "clock", "writer")
        if f"worker '{name}'" in call[0].content and len(call) == 2
    }
    analyst_task = first_inputs["analyst"][1].content
    assert "Compute 17.5% of 2480." in analyst_task
    assert "<request>" not in analyst_task and "<results>" not in analyst_task  # policy none
    writer_task = first_inputs["writer"][1].content  # policy full_summary
    assert "<request>\n17.5% of 2480, and Tokyo time?\n</request>" in writer_task
    assert '<result worker="analyst">17.5% of 2480 is 434.</result>' in writer_task
    assert '<result worker="clock">Tokyo time:' in writer_task
    # Every worker starts from a fresh two-message history: no earlier transcript leaks in.
    assert all(isinstance(c[0], SystemMessage) for c in first_inputs.values())
    # The supervisor never sees a worker's tool calls, only results in its progress message.
    for call in team["planner"].calls:
        assert not any(isinstance(m, ToolMessage) for m in call)
        assert not any(isinstance(m, AIMessage) and m.tool_calls for m in call)


async def test_parallel_workers_run_concurrently() -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()

    @tool
    async def step_a() -> str:
        """First half of a handshake."""
        a_started.set()
        await asyncio.wait_for(b_started.wait(), timeout=5)
        return "a done"

    @tool
    async def step_b() -> str:
        """Second half of a handshake."""
        b_started.set()
        await asyncio.wait_for(a_started.wait(), timeout=5)
        return "b done"

    workers = [
        WorkerSpec(name="left", description="does a", tools=("step_a",)),
        WorkerSpec(name="right", description="does b", tools=("step_b",)),
    ]
    team = models(
        [
            decide("no worker has been asked", handoff("left", "go", ("right", "go"))),
            decide("worker=", finish("both done")),
        ],
        [
            worker_rule("left", tool_reply("step_a"), {"content": "{{tool:step_a}}"}),
            worker_rule("right", tool_reply("step_b"), {"content": "{{tool:step_b}}"}),
        ],
    )
    # Run one after the other, each tool would wait for the other and time out with an error.
    graph = build_graph(model=team, workers=workers, tools=[step_a, step_b])
    result = await graph.ainvoke(ask("handshake"))

    assert sorted(h["result"] for h in result["handoffs"]) == ["a done", "b done"]
    assert {h["step"] for h in result["handoffs"]} == {0}
    assert all(r["ok"] for r in result["tool_results"])


async def test_ping_pong_between_two_workers_is_stopped_with_a_clear_error() -> None:
    team = models(
        [
            decide("no worker has been asked", handoff("analyst", "compute")),
            decide('step="3"', handoff("clock", "check again")),
            decide('step="2"', handoff("analyst", "compute again")),
            decide('step="1"', handoff("clock", "check")),
        ],
        [
            worker_rule("analyst", {"content": "numbers"}, after_last="repeat"),
            worker_rule("clock", {"content": "time"}, after_last="repeat"),
        ],
    )
    result = await build_graph(model=team).ainvoke(ask("loop please"))

    assert result["success"] is False
    assert "ping-pong between workers 'analyst' and 'clock'" in result["error"]
    assert "analyst → clock → analyst → clock" in result["error"]
    # The fourth handoff (clock again) was refused before it ran.
    assert [h["worker"] for h in result["handoffs"]] == ["analyst", "clock", "analyst"]
    assert len(team["planner"].calls) == 4
    assert len(team["worker"].calls) == 3
    assert result["final_answer"].startswith("I'm sorry — the team could not finish")
    assert "- analyst: numbers" in result["final_answer"]
    assert result["messages"][-1].content == result["final_answer"]


async def test_ping_pong_window_is_configurable() -> None:
    team = models(
        [
            decide("no worker has been asked", handoff("analyst", "compute")),
            decide('step="2"', handoff("analyst", "compute again")),
            decide('step="1"', handoff("clock", "check")),
        ],
        [
            worker_rule("analyst", {"content": "numbers"}, after_last="repeat"),
            worker_rule("clock", {"content": "time"}, after_last="repeat"),
        ],
    )
    result = await build_graph(model=team).ainvoke(
        ask("loop"), context=Context(supervisor_ping_pong_window=3)
    )
    assert "analyst → clock → analyst" in result["error"]
    assert [h["worker"] for h in result["handoffs"]] == ["analyst", "clock"]


async def test_max_handoffs_stops_the_run() -> None:
    team = models(
        [decide("", handoff("analyst", "compute more"), after_last="repeat")],
        [worker_rule("analyst", {"content": "more numbers"}, after_last="repeat")],
    )
    result = await build_graph(model=team).ainvoke(
        ask("never stop"), context=Context(supervisor_max_handoffs=2)
    )

    assert result["success"] is False
    assert result["error"].startswith("max_handoffs (2) reached: 2 handoff(s) made")
    assert len(result["handoffs"]) == 2
    assert len(team["planner"].calls) == 3
    assert "more numbers" in result["final_answer"]


async def test_a_parallel_step_larger_than_the_budget_runs_nothing() -> None:
    team = models(
        [decide("no worker", handoff("analyst", "a", ("clock", "b"), ("writer", "c")))], []
    )
    result = await build_graph(model=team).ainvoke(
        ask("everything at once"), context=Context(supervisor_max_handoffs=2)
    )
    assert "asked for 3 more" in result["error"]
    assert result.get("handoffs", []) == []
    assert team["worker"].calls == []


async def test_unknown_worker_is_re_asked_through_the_schema() -> None:
    supervisor = ScriptedChatModel(
        replies=[
            {"json": {"next": "poet", "instructions": "write a sonnet"}},
            {"json": finish("No poet here; nothing to do.")},
        ],
        model="supervisor-model",
    )
    result = await build_graph(model={"planner": supervisor}).ainvoke(ask("a sonnet"))
    assert result["final_answer"] == "No poet here; nothing to do."
    retry = supervisor.calls[1][-1].content
    assert "did not match the required SupervisorDecision schema" in retry
    assert len(supervisor.calls) == 2


async def test_failed_worker_is_reported_to_the_supervisor() -> None:
    team = models(
        [
            decide("no worker has been asked", handoff("analyst", "loop")),
            decide('status="failed', finish("The analyst could not finish.")),
        ],
        [worker_rule("analyst", tool_reply("calculate", expression="1+1"), after_last="repeat")],
    )
    result = await build_graph(model=team).ainvoke(
        ask("compute"), context=Context(max_iterations=2)
    )
    failed = result["handoffs"][0]
    assert failed["success"] is False and "max_iterations (2)" in failed["error"]
    assert result["final_answer"] == "The analyst could not finish."


async def test_worker_spec_model_and_prompt_win_and_run_settings_do_not_leak() -> None:
    own = ScriptedChatModel(replies=[AIMessage("special result")], model="special")
    workers = [
        WorkerSpec(
            name="special",
            description="special work",
            system_prompt="Persona with {braces} kept.",
            tools=(),
            model=own,
        )
    ]
    team = models(
        [
            decide("no worker has been asked", handoff("special", "do it")),
            decide('worker="special"', finish("ok")),
        ],
        [],
    )
    result = await build_graph(model=team, workers=workers).ainvoke(
        ask("go"), context=Context(system_prompt="Supervisor-level prompt", tools=("calculate",))
    )
    assert result["success"] is True
    system = own.calls[0][0].content
    assert "Persona with {braces} kept." in system
    assert "Supervisor-level prompt" not in system
    assert result["usage"]["special"]["calls"] == 1


async def test_same_thread_counts_guards_per_request() -> None:
    team = models(
        [
            decide("no worker has been asked", handoff("analyst", "compute")),
            decide('worker="analyst"', finish("done")),
        ],
        [worker_rule("analyst", {"content": "numbers"}, after_last="repeat")],
    )
    graph = build_graph(model=team, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    context = Context(supervisor_max_handoffs=1)

    first = await graph.ainvoke(ask("first"), config, context=context)
    second = await graph.ainvoke(ask("second"), config, context=context)

    assert first["success"] is True and second["success"] is True
    assert [(h["turn"], h["step"]) for h in second["handoffs"]] == [(0, 0), (1, 0)]
    assert [type(m) for m in second["messages"]] == [HumanMessage, AIMessage] * 2
    # The second decision sees the first exchange but only this request's handoffs.
    last_planner_input = team["planner"].calls[-1]
    assert [m.content for m in last_planner_input if isinstance(m, HumanMessage)][:2] == [
        "first",
        "second",
    ]


# --- capability router --------------------------------------------------------------------------


async def test_capability_router_with_caller_tags_makes_no_routing_calls() -> None:
    team = models([], DEFAULT_WORKER_SCRIPT)
    result = await build_graph(model=team).ainvoke(
        ask("17.5% of 2480, and Tokyo time?", capabilities=["time", "math"]),
        context=Context(supervisor_router="capability"),
    )

    assert result["success"] is True
    assert team["planner"].calls == [] and team["router"].calls == []
    assert [(h["worker"], h["capabilities"], h["router"]) for h in result["handoffs"]] == [
        ("clock", ["time"], "capability"),
        ("analyst", ["math"], "capability"),
    ]
    assert len(team["worker"].calls) == 4
    assert result["final_answer"].startswith("clock:\nTokyo time:")
    assert "\n\nanalyst:\n17.5% of 2480 is 434." in result["final_answer"]


async def test_capability_router_tags_the_request_with_one_structured_call() -> None:
    tagger = [
        {
            "match": {"schema": "TaskCapabilities"},
            "replies": [{"json": {"capabilities": ["math"]}}],
        }
    ]
    team = models(tagger, DEFAULT_WORKER_SCRIPT)
    result = await build_graph(model=team).ainvoke(
        ask("17.5% of 2480?"), context=Context(supervisor_router="capability")
    )
    assert len(team["router"].calls) == 1 and team["planner"].calls == []
    assert [h["worker"] for h in result["handoffs"]] == ["analyst"]
    assert result["final_answer"] == "17.5% of 2480 is 434."
    assert "math, time, writing" in team["router"].calls[0][-1].content


async def test_capability_router_reports_undeclared_tags() -> None:
    team = models([], [])
    result = await build_graph(model=team).ainvoke(
        ask("a poem", capabilities=["poetry"]), context=Context(supervisor_router="capability")
    )
    assert result["success"] is False
    assert (
        "no worker declares capability 'poetry'; declared tags: math, time, writing"
        in (result["error"])
    )
    assert team["worker"].calls == []


# --- nested teams -------------------------------------------------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("team_of_teams_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_team_of_two_teams_runs() -> None:
    example = load_example()
    model = ScriptedChatModel(script=example.DEMO_SCRIPT)
    graph = example.build_team_of_teams(model=model)
    assert team_depth(graph) == 2

    result = await graph.ainvoke(ask(example.DEMO_REQUEST))

    assert result["success"] is True
    assert result["final_answer"] == example.EXPECTED_ANSWER
    top = [h["worker"] for h in result["handoffs"]]
    assert top == ["data_team", "writing_team"]
    nested = {h["worker"]: [n["worker"] for n in h["nested"]] for h in result["handoffs"]}
    assert nested == {"data_team": ["analyst"], "writing_team": ["drafter", "editor"]}
    # 3 top decisions + (2 data-team decisions + 2 analyst calls)
    # + (3 writing-team decisions + 1 drafter + 1 editor) = 12 calls.
    assert len(model.calls) == 12
    assert result["usage"]["scripted"]["calls"] == 12


def test_nesting_deeper_than_the_limit_fails_at_build_time() -> None:
    leaf = WorkerSpec(name="solo", description="works alone", tools=())
    graph = build_graph(workers=[leaf], name="level1")
    for level in (2, 3):
        graph = build_graph(
            workers=[WorkerSpec(name="team", description="a team", graph=graph)],
            name=f"level{level}",
        )
    assert team_depth(graph) == 3
    with pytest.raises(TeamDepthError) as caught:
        build_graph(
            workers=[WorkerSpec(name="team", description="a team", graph=graph)], name="level4"
        )
    assert "'level4' nests teams 4 levels deep (level4 > level3 > level2 > level1)" in str(
        caught.value
    )
    assert "maximum is 3" in str(caught.value)
    assert (
        team_depth(
            build_graph(
                workers=[WorkerSpec(name="team", description="a team", graph=graph)],
                name="level4",
                max_depth=4,
            )
        )
        == 4
    )


# --- interrupts inside workers ------------------------------------------------------------------


async def test_a_worker_approval_interrupt_pauses_the_team_and_resumes() -> None:
    from langgraph.types import Command

    team = models(
        [
            decide(
                "no worker has been asked",
                handoff("analyst", "Compute 17.5% of 2480.", ("clock", "Time in Tokyo?")),
            ),
            decide('worker="analyst"', finish("434, with the time checked.")),
        ],
        DEFAULT_WORKER_SCRIPT,
    )
    graph = build_graph(model=team, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "approve-1"}}
    context = Context(approval_mode="always")

    paused = await graph.ainvoke(ask("17.5% of 2480, and Tokyo time?"), config, context=context)

    interrupts = paused["__interrupt__"]
    assert {i.value["type"] for i in interrupts} == {"tool_approval"}
    assert {c["tool"] for i in interrupts for c in i.value["calls"]} == {
        "calculate",
        "get_current_time",
    }
    assert "handoffs" not in paused or paused["handoffs"] == []

    answers = {i.id: "approve" for i in interrupts}
    result = await graph.ainvoke(Command(resume=answers), config, context=context)

    assert result["success"] is True
    assert result["final_answer"] == "434, with the time checked."
    by_worker = {h["worker"]: h["result"] for h in result["handoffs"]}
    assert by_worker["analyst"] == "17.5% of 2480 is 434."
    # Resuming re-enters the paused workers without repeating their first model call.
    assert len(team["worker"].calls) == 4
    assert len(team["planner"].calls) == 2


async def test_an_unknown_router_setting_is_named() -> None:
    with pytest.raises(ValueError, match="'model' or 'capability', got 'capabilty'"):
        await build_graph(model=models([], [])).ainvoke(
            ask("hi"),
            context=Context(supervisor_router="capabilty"),  # type: ignore[arg-type]
        )


async def test_a_call_budget_is_shared_with_workers_and_stops_with_their_results() -> None:
    team = models(
        [
            decide("no worker has been asked", handoff("analyst", "Compute 17.5% of 2480.")),
            decide('worker="analyst"', handoff("writer", "Write one line.")),
        ],
        DEFAULT_WORKER_SCRIPT,
    )
    result = await build_graph(model=team).ainvoke(
        ask("What is 17.5% of 2480? One line."), context=Context(max_model_calls=3)
    )

    # Supervisor (1) + analyst (2: tool, answer) = 3: the next step is not taken.
    calls = {role: len(m.calls) for role, m in team.items()}
    assert calls == {"planner": 1, "router": 0, "worker": 2}
    assert result["success"] is False
    assert result["error"] == "max_model_calls (3) reached: 3 used"
    assert "434" in result["final_answer"]  # the analyst's result is the partial answer
    assert result["metrics"]["model_calls"] == 3
    assert result["metrics"]["tools"] == {"calculate": {"calls": 1, "errors": 0}}


async def test_a_worker_gets_only_what_is_left_of_the_budget() -> None:
    looping = [
        worker_rule("analyst", tool_reply("calculate", expression="1+1"), after_last="repeat")
    ]
    team = models(
        [decide("no worker has been asked", handoff("analyst", "Keep computing."))], looping
    )
    result = await build_graph(model=team).ainvoke(
        ask("Compute forever."), context=Context(max_model_calls=4)
    )
    # The supervisor used 1, so the analyst may make 3 calls; then the run has none left.
    assert len(team["worker"].calls) == 3
    assert len(team["planner"].calls) == 1
    (handoff_record,) = result["handoffs"]
    assert handoff_record["success"] is False
    assert handoff_record["error"].startswith("max_model_calls (3) reached")
    assert result["error"].startswith("max_model_calls (4) reached: 4 used")
