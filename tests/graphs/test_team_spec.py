"""Team specs: YAML/JSON → supervisor (hierarchical) or task pipeline (sequential), validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, HumanMessage

from graphs.cli import load_demo
from graphs.supervisor import team_depth
from graphs.team import (
    EXAMPLE_TEAM_SPEC,
    TeamSpecError,
    build_graph,
    build_team_graph,
    load_team_spec,
)
from nodes.context import Context
from nodes.offline import ScriptedChatModel
from nodes.supervision import TeamDepthError

pytestmark = pytest.mark.anyio

HERE = Path(__file__).parent
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRIP_SPEC = EXAMPLES / "trip_team.json"


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def trip_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(TRIP_SPEC.read_text(encoding="utf-8"))
    return spec


TRIP_SCRIPT = {
    "rules": [
        {
            "match": {"system": "worker 'planner'"},
            "replies": [{"content": "09:00 Colosseum 18 EUR\n13:00 Lunch 22 EUR"}],
        },
        {
            "match": {"system": "worker 'accountant'"},
            "replies": [
                {"tool_calls": [{"name": "calculate", "args": {"expression": "18 + 22"}}]},
                {"content": "Total: 18 + 22 = {{tool:calculate}} EUR"},
            ],
        },
    ]
}


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == (HERE / "team.mmd").read_text(encoding="utf-8")


def test_sequential_structure_is_one_node_per_task_in_order() -> None:
    drawn = build_team_graph(TRIP_SPEC).get_graph().draw_mermaid()
    assert "__start__ --> plan;" in drawn
    assert "plan -.-> budget;" in drawn and "plan -.-> finish_run;" in drawn
    assert "budget --> finish_run;" in drawn and "finish_run --> __end__;" in drawn


def test_example_yaml_is_the_registered_team_spec() -> None:
    from_yaml = yaml.safe_load((EXAMPLES / "budget_team.yaml").read_text(encoding="utf-8"))
    assert from_yaml == EXAMPLE_TEAM_SPEC
    assert load_team_spec(EXAMPLES / "budget_team.yaml").process == "hierarchical"


async def test_sequential_team_runs_tasks_in_order_with_linked_context() -> None:
    model = ScriptedChatModel(script=TRIP_SCRIPT)
    graph = build_team_graph(TRIP_SPEC, model=model)
    assert graph.name == "trip_team"

    result = await graph.ainvoke(ask("A day in Rome, please."))

    assert result["success"] is True and result["error"] is None
    assert result["final_answer"] == "Total: 18 + 22 = 40 EUR"
    assert result["task_outputs"] == {
        "plan": "09:00 Colosseum 18 EUR\n13:00 Lunch 22 EUR",
        "budget": "Total: 18 + 22 = 40 EUR",
    }
    # planner: 1 call; accountant: 2 (calculator, then answer); no routing calls.
    assert len(model.calls) == 3
    assert result["usage"]["scripted"]["calls"] == 3
    plan_task, budget_task = model.calls[0][-1].content, model.calls[1][-1].content
    assert "Your task: Plan the day trip" in plan_task
    assert "<request>\nA day in Rome, please.\n</request>" in plan_task
    assert "<context>" not in plan_task  # the first task links to nothing
    assert "Expected output: The total in EUR" in budget_task
    assert '<task name="plan">09:00 Colosseum 18 EUR\n13:00 Lunch 22 EUR</task>' in budget_task
    assert [type(m) for m in result["messages"]] == [HumanMessage, AIMessage]


async def test_sequential_team_stops_at_the_failed_task() -> None:
    model = ScriptedChatModel(
        script={
            "rules": [
                {
                    "match": {"system": "worker 'planner'"},
                    "replies": [
                        {"tool_calls": [{"name": "get_current_time", "args": {}}]},
                    ],
                    "after_last": "repeat",
                }
            ]
        }
    )
    result = await build_team_graph(TRIP_SPEC, model=model).ainvoke(
        ask("A day in Rome"), context=Context(max_iterations=1)
    )

    assert result["success"] is False
    assert result["failed_task"] == "plan"
    assert result["error"].startswith("task 'plan' (agent 'planner') failed: max_iterations (1)")
    assert "budget" not in result["task_outputs"]
    assert len(model.calls) == 1  # the accountant never ran
    assert result["final_answer"].startswith("I'm sorry")


async def test_hierarchical_team_routes_through_a_supervisor_with_the_task_plan() -> None:
    demo = load_demo("team")
    model = ScriptedChatModel(script=demo["script"])

    result = await build_graph(model=model).ainvoke(ask(demo["input"]))

    assert result["success"] is True
    assert result["final_answer"].startswith("Hotels get 434 EUR")
    assert [h["worker"] for h in result["handoffs"]] == ["analyst", "memo_team"]
    memo = result["handoffs"][1]
    assert memo["result"] == "Hotel spend is capped at 434 EUR of our 2,480 EUR travel budget."
    # 3 supervisor decisions + analyst 2 + nested sequential memo team (drafter 1 + editor 1).
    assert len(model.calls) == 7
    system = model.calls[0][0].content
    assert "supervisor of the team 'budget_team'" in system
    assert "- task 'memo' → memo_team: Write the memo from the figures." in system
    assert "(builds on: figures)" in system
    assert "- memo_team: Memo writers (a team): Turn the figures" in system


def test_nested_spec_teams_count_toward_the_depth_limit() -> None:
    assert team_depth(build_graph()) == 2
    spec = copy.deepcopy(EXAMPLE_TEAM_SPEC)
    with pytest.raises(TeamDepthError, match="'budget_team' nests teams 2 levels deep"):
        build_team_graph(spec, max_depth=1)


def _mutated(path: str, value: Any) -> dict[str, Any]:
    """The trip spec with one field replaced (path like 'tasks.1.context'); None deletes it."""
    spec = trip_spec()
    *parents, last = path.split(".")
    node: Any = spec
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    key_or_index: Any = int(last) if last.isdigit() else last
    if value is None:
        del node[key_or_index]
    else:
        node[key_or_index] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            _mutated("process", "parallel"),
            "process: Input should be 'sequential' or 'hierarchical'",
        ),
        (_mutated("process", None), "spec: process: Field required"),
        (_mutated("agents.1.role", None), "agents[1] ('accountant').role: Field required"),
        (_mutated("agents.0.temper", "hot"), "agents[0] ('planner').temper: Extra inputs"),
        (_mutated("tasks", []), "tasks: List should have at least 1 item"),
        (
            _mutated("tasks.1.agent", "ghost"),
            "tasks[1] ('budget').agent: unknown agent 'ghost'; agents: planner, accountant",
        ),
        (
            _mutated("tasks.1.context", ["weather"]),
            "tasks[1] ('budget').context: unknown task 'weather'; tasks: plan, budget",
        ),
        (
            _mutated("tasks.0.context", ["budget"]),
            "tasks[0] ('plan').context: task 'budget' runs after 'plan' in a sequential process",
        ),
        (
            _mutated("tasks.1.context", ["budget"]),
            "tasks[1] ('budget').context: a task cannot build on itself ('budget')",
        ),
        (
            _mutated("agents.1.tools", ["search_web"]),
            "agents[1] ('accountant'): unknown tool(s) 'search_web' in 'tools'; available: "
            "calculate, get_current_time",
        ),
        (_mutated("agents.1.name", "planner"), "duplicate agent name(s) 'planner'"),
        (_mutated("tasks.1.name", "my task"), "tasks[1] ('my task').name: must start with"),
        (
            _mutated("agents.0.context", "everything"),
            "agents[0] ('planner').context: Input should be 'none', 'last_result' or",
        ),
    ],
)
def test_invalid_specs_name_the_agent_or_task_and_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(TeamSpecError) as caught:
        load_team_spec(spec)
    assert message in str(caught.value)


def test_a_forward_link_is_fine_in_a_hierarchical_process() -> None:
    spec = _mutated("tasks.0.context", ["budget"])
    spec["process"] = "hierarchical"
    assert load_team_spec(spec).tasks[0].context == ["budget"]


def test_nested_team_errors_name_the_path() -> None:
    spec = copy.deepcopy(EXAMPLE_TEAM_SPEC)
    spec["agents"][2]["team"]["tasks"][1]["agent"] = "ghost"
    with pytest.raises(TeamSpecError, match=r"agents\[2\] \('memo_team'\)\.team: tasks\[1\]"):
        load_team_spec(spec)
    spec = copy.deepcopy(EXAMPLE_TEAM_SPEC)
    spec["agents"][2]["tools"] = ["calculate"]
    with pytest.raises(TeamSpecError, match="stands for a nested 'team' has no 'tools'"):
        load_team_spec(spec)


def test_spec_files_must_be_json_or_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "team.toml"
    bad.write_text("name = 'x'")
    with pytest.raises(TeamSpecError, match="unknown spec extension '.toml'"):
        load_team_spec(bad)
    broken = tmp_path / "team.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(TeamSpecError, match="team.yaml: not valid YAML"):
        load_team_spec(broken)
    listed = tmp_path / "team.json"
    listed.write_text("[]")
    with pytest.raises(TeamSpecError, match="a team spec must be a mapping, got list"):
        load_team_spec(listed)


async def test_sequential_team_stops_before_a_task_the_budget_cannot_cover() -> None:
    model = ScriptedChatModel(script=TRIP_SCRIPT)
    result = await build_team_graph(TRIP_SPEC, model=model).ainvoke(
        ask("A day in Rome, please."), context=Context(max_model_calls=1)
    )

    assert len(model.calls) == 1  # the planner's; the accountant never starts
    assert result["failed_task"] == "budget"
    assert result["success"] is False
    assert result["error"] == "max_model_calls (1) reached: 1 used before task 'budget'"
    assert "09:00 Colosseum 18 EUR" in result["final_answer"]  # the finished task's output
    assert result["metrics"]["iterations"] == 1
