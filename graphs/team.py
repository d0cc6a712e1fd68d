"""Declarative teams: a YAML/JSON spec of agents and tasks compiled into a graph.

A spec names agents (role, goal, optional backstory, tool subset, model, capabilities, handoff
context, or a nested `team`) and tasks (description, expected output, the agent that does it,
`context` links to earlier tasks), plus a `process`:

* `hierarchical` compiles to a supervisor (graphs/supervisor.py) whose workers are the agents
  and whose system prompt lists the tasks as the plan; the supervisor model routes.
  Model calls: as the supervisor (handoff steps + 1, plus the workers' ReAct calls).
* `sequential` compiles to a pipeline: one node per task, in spec order, each running its
  agent's ReAct loop on the task, the user's request and the outputs of the tasks it links to.
  The run stops at the first failed task. Model calls: the sum of the agents' ReAct calls (no
  routing calls). The answer is the last task's output; every output is in `task_outputs`.

Example (YAML)::

    name: trip_team
    process: sequential
    agents:
      - {name: planner, role: Trip planner, goal: Plan the day, tools: [get_current_time]}
      - {name: accountant, role: Accountant, goal: Total the costs, tools: [calculate]}
    tasks:
      - {name: plan, agent: planner, description: Plan the trip, expected_output: A schedule}
      - name: budget
        agent: accountant
        description: Add up the costs of the plan
        expected_output: A total in EUR
        context: [plan]

`load_team_spec` validates a spec and raises `TeamSpecError` naming the agent or task, the field,
what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict

from graphs import supervisor as supervisor_graph
from graphs.supervisor import FINISH_RUN
from nodes.context import Context, ModelRole, context_of
from nodes.finish import (
    budget_stop,
    child_accounting,
    child_context,
    load_price_table,
    make_finish_run,
    stopped_outcome,
)
from nodes.model import ModelOverride, message_text
from nodes.prompts.supervision import (
    TEAM_AGENT_PERSONA,
    TEAM_TASK_CONTEXT,
    TEAM_TASK_CONTEXT_ITEM,
    TEAM_TASK_LINE,
    TEAM_TASK_PROMPT,
    TEAM_TASKS_GUIDANCE,
)
from nodes.state import (
    RunAccounting,
    RunClockChannel,
    RunOutcome,
    combine_clock_updates,
    start_clock,
)
from nodes.supervision import (
    MAX_TEAM_DEPTH,
    ContextPolicy,
    WorkerSpec,
    WorkerSpecError,
    validate_workers,
)
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

logger = logging.getLogger(__name__)

Process = Literal["sequential", "hierarchical"]
_TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_RESERVED_TASK_NAMES = frozenset({"__start__", "__end__", "supervisor"})


class TeamSpecError(ValueError):
    """A team spec is invalid; the message names the agent/task and field, expected vs got."""


class AgentSpec(BaseModel):
    """One agent of a team spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique id (letters, digits, '_' or '-').")
    role: str = Field(min_length=1, description="What the agent is, e.g. 'Researcher'.")
    goal: str = Field(min_length=1, description="What the agent tries to achieve.")
    backstory: str = Field(default="", description="Optional extra persona text.")
    tools: list[str] = Field(default_factory=list, description="Tool names (default none).")
    model: str | None = Field(default=None, description="Model id, e.g. 'openai:gpt-4.1'.")
    model_role: ModelRole = Field(default="worker", description="Context model setting used.")
    capabilities: list[str] = Field(default_factory=list, description="Capability tags.")
    context: ContextPolicy = Field(
        default="last_result", description="Handoff context: none, last_result, full_summary."
    )
    team: TeamSpec | None = Field(
        default=None, description="A nested team this agent stands for (instead of tools)."
    )
    policy: str | None = Field(
        default=None,
        description="Tool policy: a built-in name or a .yaml/.json path (default: the "
        "team's, then Context.agent_policies[name], then Context.policy).",
    )


class TaskSpec(BaseModel):
    """One task of a team spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique id (letters, digits, '_' or '-').")
    description: str = Field(min_length=1, description="What to do.")
    expected_output: str = Field(min_length=1, description="What a good result looks like.")
    agent: str = Field(description="Name of the agent that does this task.")
    context: list[str] = Field(
        default_factory=list, description="Names of tasks whose outputs this task builds on."
    )


class TeamSpec(BaseModel):
    """A declarative team: agents, tasks and how they are run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The team's name (the compiled graph's name).")
    process: Process = Field(description="'sequential' (pipeline) or 'hierarchical'.")
    description: str = Field(default="", description="What the team is for.")
    agents: list[AgentSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)


def _where(raw: Any, loc: Sequence[str | int]) -> str:
    """Readable location like `agents[1] ('writer').tools` from a pydantic error location."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            name = (
                node[key].get("name")
                if isinstance(node, list) and isinstance(node[key], Mapping)
                else None
            )
            parts[-1] += f"[{key}]" + (f" ({name!r})" if name else "")
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, Mapping) else None
    return ".".join(parts) or "spec"


def _parse(raw: Any, where: str) -> TeamSpec:
    if not isinstance(raw, Mapping):
        raise TeamSpecError(f"{where}: a team spec must be a mapping, got {type(raw).__name__}")
    try:
        return TeamSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            detail = error["msg"]
            if error["type"] != "missing":
                detail += f" (got {error.get('input')!r})"
            problems.append(f"{where}: {_where(raw, error['loc'])}: {detail}")
        raise TeamSpecError("invalid team spec:\n" + "\n".join(problems)) from None


def _check_links(spec: TeamSpec, where: str, available_tools: Sequence[str]) -> None:
    agents = [a.name for a in spec.agents]
    tasks = [t.name for t in spec.tasks]
    for kind, names in (("agent", agents), ("task", tasks)):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TeamSpecError(
                f"{where}: duplicate {kind} name(s) {', '.join(map(repr, duplicates))}"
            )
    for index, agent in enumerate(spec.agents):
        at = f"{where}: agents[{index}] ({agent.name!r})"
        if agent.team is not None and agent.tools:
            raise TeamSpecError(
                f"{at}: an agent that stands for a nested 'team' has no 'tools' of its own; "
                f"got tools {agent.tools!r}"
            )
        if agent.team is not None and agent.policy is not None:
            raise TeamSpecError(
                f"{at}: an agent that stands for a nested 'team' has no 'policy' of its own "
                f"(its team's agents do); got policy {agent.policy!r}"
            )
        if agent.team is not None:
            _check_links(agent.team, f"{at}.team", available_tools)
    for index, task in enumerate(spec.tasks):
        at = f"{where}: tasks[{index}] ({task.name!r})"
        if not _TASK_NAME.match(task.name) or task.name in _RESERVED_TASK_NAMES:
            raise TeamSpecError(
                f"{at}.name: must start with a letter and use only letters, digits, '_' or "
                f"'-' (not {', '.join(sorted(_RESERVED_TASK_NAMES))}); got {task.name!r}"
            )
        if task.agent not in agents:
            raise TeamSpecError(
                f"{at}.agent: unknown agent {task.agent!r}; agents: {', '.join(agents)}"
            )
        for link in task.context:
            if link == task.name:
                raise TeamSpecError(f"{at}.context: a task cannot build on itself ({link!r})")
            if link not in tasks:
                raise TeamSpecError(
                    f"{at}.context: unknown task {link!r}; tasks: {', '.join(tasks)}"
                )
            if spec.process == "sequential" and tasks.index(link) > index:
                raise TeamSpecError(
                    f"{at}.context: task {link!r} runs after {task.name!r} in a sequential "
                    f"process; link only to earlier tasks: "
                    f"{', '.join(tasks[:index]) or '(none)'}"
                )
    try:
        validate_workers([_worker_spec(a, None) for a in spec.agents], available_tools)
    except WorkerSpecError as exc:
        # validate_workers names "worker <i> (<name>)"; in a spec that is agents[<i>].
        message = re.sub(r"^worker (\d+) ", r"agents[\1] ", str(exc))
        raise TeamSpecError(f"{where}: {message}") from None


def load_team_spec(
    source: TeamSpec | Mapping[str, Any] | str | Path,
    *,
    tools: Sequence[BaseTool] | None = None,
) -> TeamSpec:
    """Parse and validate a team spec from a mapping, a JSON/YAML file path, or a TeamSpec.

    Raises:
        TeamSpecError: naming the agent or task, the field, what was expected and received.
    """
    where = "spec"
    if isinstance(source, TeamSpec):
        spec = source
    else:
        raw: Any = source
        if isinstance(source, str | Path):
            path = Path(source)
            where = str(path)
            raw = _read_file(path)
        spec = _parse(raw, where)
    _check_links(spec, where, [t.name for t in _tools(tools)])
    return spec


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise TeamSpecError(f"{path}: unknown spec extension {suffix!r}; use .json, .yaml or .yml")
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TeamSpecError(f"{path}: not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TeamSpecError(f"{path}: not valid YAML: {exc}") from None


def _tools(tools: Sequence[BaseTool] | None) -> Sequence[BaseTool]:
    if tools is not None:
        return tools
    from tools import builtin_tools

    return builtin_tools()


def _persona(agent: AgentSpec) -> str:
    backstory = f"\n{agent.backstory}" if agent.backstory else ""
    return TEAM_AGENT_PERSONA.format(role=agent.role, goal=agent.goal, backstory=backstory)


def _worker_spec(agent: AgentSpec, graph: Any) -> WorkerSpec:
    if agent.team is not None:
        return WorkerSpec(
            name=agent.name,
            description=f"{agent.role} (a team): {agent.goal}",
            context=agent.context,
            capabilities=tuple(agent.capabilities),
            # Validation runs before nested teams are compiled; any object stands in for one.
            graph=graph if graph is not None else object(),
        )
    return WorkerSpec(
        name=agent.name,
        description=f"{agent.role}: {agent.goal}",
        system_prompt=_persona(agent),
        tools=tuple(agent.tools),
        model=agent.model,
        role=agent.model_role,
        context=agent.context,
        capabilities=tuple(agent.capabilities),
        policy=agent.policy,
    )


def _guidance(spec: TeamSpec) -> str:
    lines = "\n".join(
        TEAM_TASK_LINE.format(
            name=task.name,
            description=task.description,
            expected=task.expected_output,
            agent=task.agent,
            context=f" (builds on: {', '.join(task.context)})" if task.context else "",
        )
        for task in spec.tasks
    )
    return TEAM_TASKS_GUIDANCE.format(tasks=lines, process=spec.process)


class TeamInput(TypedDict):
    """What a caller sends to a sequential team: the request as a user message."""

    messages: Annotated[list[AnyMessage], add_messages]


def merge_outputs(current: dict[str, str] | None, update: dict[str, str] | None) -> dict[str, str]:
    """Merge task outputs by task name; later runs of a task replace earlier ones."""
    return {**(current or {}), **(update or {})}


class TeamOutput(RunOutcome, RunAccounting):
    """What a sequential team reports."""

    messages: Annotated[list[AnyMessage], add_messages]
    task_outputs: NotRequired[Annotated[dict[str, str], merge_outputs]]
    """Each finished task's output, by task name."""
    failed_task: NotRequired[str | None]
    """The task that stopped the run, or None."""


class TeamState(TeamOutput, RunClockChannel):
    """Full state of a sequential team."""


def _make_task_node(task: TaskSpec, runnable: Any, *, first: bool, last: bool) -> Any:
    async def run_task(state: TeamState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run this task's agent on the request plus the outputs of its linked tasks.

        Reads `messages`, `task_outputs`; writes `task_outputs`, `usage`, `tool_results` and,
        when last or failed, `final_answer`, `success`, `error`, `failed_task`, `messages`.
        """
        outputs = state.get("task_outputs") or {}
        linked = "\n".join(
            TEAM_TASK_CONTEXT_ITEM.format(task=name, result=outputs.get(name, ""))
            for name in task.context
        )
        request = next(
            (
                message_text(m.content)
                for m in reversed(state["messages"])
                if isinstance(m, HumanMessage)
            ),
            "",
        )
        prompt = TEAM_TASK_PROMPT.format(
            description=task.description,
            expected=task.expected_output,
            request=request,
            context=TEAM_TASK_CONTEXT.format(results=linked) if linked else "",
        )
        run_ctx = context_of(runtime)
        clock = start_clock(state) if first else {}
        await load_price_table(run_ctx)
        current = {**state, **clock}
        stop = budget_stop(current, run_ctx)
        if stop:
            done = "\n".join(f"{name}: {text}" for name, text in outputs.items())
            outcome = stopped_outcome(f"{stop} before task {task.name!r}", done or None)
            return {
                **clock,
                **outcome,
                "failed_task": task.name,
                "messages": [AIMessage(outcome["final_answer"])],
            }
        # The agent's own prompt and tools come from its spec; its budget is what the run has
        # left; only the team's own answer passes the output guardrail.
        ctx = dataclasses.replace(
            child_context(run_ctx, current), system_prompt=None, tools=None, output_guardrail="off"
        )
        get_stream_writer()({"event": "task_started", "task": task.name, "agent": task.agent})
        output = await runnable.ainvoke({"messages": [HumanMessage(prompt)]}, context=ctx)
        answer = output.get("final_answer")
        if answer is None and output.get("messages"):
            answer = message_text(output["messages"][-1].content)
        accounting = child_accounting(output)
        update: dict[str, Any] = {
            "task_outputs": {task.name: answer or ""},
            **accounting,
            # The first task starts the clock and may also credit its agent's approval wait.
            **combine_clock_updates(clock, accounting),
        }
        if output.get("success") is False:
            error = (
                f"task {task.name!r} (agent {task.agent!r}) failed: "
                f"{output.get('error') or 'no reason given'}"
            )
            logger.info("sequential team stopped: %s", error)
            message = f"I'm sorry — the team could not finish: {error}."
            return {
                **update,
                "failed_task": task.name,
                "final_answer": message,
                "success": False,
                "error": error,
                "messages": [AIMessage(message)],
            }
        if last:
            return {
                **update,
                "failed_task": None,
                "final_answer": answer,
                "success": True,
                "error": None,
                "messages": [AIMessage(answer or "")],
            }
        return update

    run_task.__name__ = f"run_{task.name}"
    return run_task


def _route_after(task: str, following: str) -> Any:
    def route(state: TeamState) -> str:
        return FINISH_RUN if state.get("failed_task") == task else following

    route.__name__ = f"after_{task}"
    return route


def _nested_teams(
    spec: TeamSpec,
    tools: Sequence[BaseTool],
    model: ModelOverride,
    max_depth: int,
    policy: PolicyRef | None = None,
) -> dict[str, Any]:
    """Compiled graphs of the agents that stand for a nested team, by agent name."""
    return {
        agent.name: build_team_graph(
            agent.team, model=model, tools=tools, max_depth=max_depth, policy=policy
        )
        for agent in spec.agents
        if agent.team is not None
    }


def build_team_graph(
    source: TeamSpec | Mapping[str, Any] | str | Path,
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    name: str | None = None,
    max_depth: int = MAX_TEAM_DEPTH,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[Any, Context, Any, Any]:
    """Compile a team spec into a supervisor (hierarchical) or a task pipeline (sequential).

    Args:
        source: The spec: a mapping, a `.json`/`.yaml` path, or a validated `TeamSpec`.
        model: Chat model object or id for every role, or a role→model mapping; an agent's
            own `model` wins for that agent.
        tools: Tools the agents' `tools` names refer to (default: the built-in tools).
        name: The compiled graph's name (default: the spec's `name`).
        max_depth: Most levels of nested teams, counting this one (default 3).
        checkpointer: Saver for threads; leave None for the server, which supplies its own.
        store: Long-term store; leave None for the server, which supplies its own.
        policy: Tool policy for agents whose spec sets none (an agent's `policy` wins; nested
            teams get it too).

    Raises:
        TeamSpecError: the spec is invalid.
        TeamDepthError: nested teams exceed `max_depth`.
    """
    available = _tools(tools)
    spec = load_team_spec(source, tools=available)
    graph_name = name or spec.name
    nested = _nested_teams(spec, available, model, max_depth, policy)
    if spec.process == "hierarchical":
        workers = [_worker_spec(agent, nested.get(agent.name)) for agent in spec.agents]
        return supervisor_graph.build_graph(
            model=model,
            workers=workers,
            tools=available,
            name=graph_name,
            team=spec.name,
            guidance=_guidance(spec),
            max_depth=max_depth,
            checkpointer=checkpointer,
            store=store,
            policy=policy,
            pattern="team",
        )
    agents = {agent.name: agent for agent in spec.agents}
    depth = supervisor_graph.check_team_depth(spec.name, list(nested.values()), max_depth)
    builder = StateGraph(
        TeamState, context_schema=Context, input_schema=TeamInput, output_schema=TeamOutput
    )
    for index, task in enumerate(spec.tasks):
        agent = agents[task.agent]
        runnable = nested.get(agent.name) or supervisor_graph.worker_agent(
            _worker_spec(agent, None), available, model, spec.name, policy
        )
        last = index == len(spec.tasks) - 1
        builder.add_node(task.name, _make_task_node(task, runnable, first=index == 0, last=last))
        if last:
            builder.add_edge(task.name, FINISH_RUN)
        else:
            following = spec.tasks[index + 1].name
            builder.add_conditional_edges(
                task.name, _route_after(task.name, following), [following, FINISH_RUN]
            )
    builder.add_node(
        FINISH_RUN,
        make_finish_run(model=model, iterations=lambda s: len(s.get("task_outputs") or {})),
    )
    builder.add_edge(START, spec.tasks[0].name)
    builder.add_edge(FINISH_RUN, END)
    compiled = traced(
        builder.compile(name=graph_name, checkpointer=checkpointer, store=store), pattern="team"
    )
    supervisor_graph.record_team_depth(compiled, depth)
    return compiled


# The ready-made team served as the `team` graph (the same spec as examples/budget_team.yaml; a
# test keeps the two equal): a budget analyst, a scheduler and a nested sequential memo team.
EXAMPLE_TEAM_SPEC: dict[str, Any] = {
    "name": "budget_team",
    "process": "hierarchical",
    "description": "Answers budget questions with exact figures and a one-line memo.",
    "agents": [
        {
            "name": "analyst",
            "role": "Budget analyst",
            "goal": "Compute every figure exactly with the calculator.",
            "tools": ["calculate"],
            "capabilities": ["math"],
            "context": "none",
        },
        {
            "name": "scheduler",
            "role": "Scheduler",
            "goal": "Check current dates and times when the request depends on them.",
            "tools": ["get_current_time"],
            "capabilities": ["time"],
            "context": "none",
        },
        {
            "name": "memo_team",
            "role": "Memo writers",
            "goal": "Turn the figures into a short, correct memo.",
            "capabilities": ["writing"],
            "context": "full_summary",
            "team": {
                "name": "memo_team",
                "process": "sequential",
                "agents": [
                    {
                        "name": "drafter",
                        "role": "Drafter",
                        "goal": "Draft a short memo from the figures you are given.",
                    },
                    {
                        "name": "editor",
                        "role": "Editor",
                        "goal": "Tighten a draft into one clear, correct line.",
                    },
                ],
                "tasks": [
                    {
                        "name": "draft",
                        "agent": "drafter",
                        "description": "Draft the memo the supervisor asked for.",
                        "expected_output": "A draft of at most three sentences.",
                    },
                    {
                        "name": "edit",
                        "agent": "editor",
                        "description": "Edit the draft into the final memo.",
                        "expected_output": "One line, no new facts.",
                        "context": ["draft"],
                    },
                ],
            },
        },
    ],
    "tasks": [
        {
            "name": "figures",
            "agent": "analyst",
            "description": "Compute the figures the request asks for.",
            "expected_output": "Each figure with the calculation behind it.",
        },
        {
            "name": "memo",
            "agent": "memo_team",
            "description": "Write the memo from the figures.",
            "expected_output": "A one-line memo quoting the figures.",
            "context": ["figures"],
        },
    ],
}


def build_graph(
    *,
    model: ModelOverride = None,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[Any, Context, Any, Any]:
    """Compile the ready-made example team (`EXAMPLE_TEAM_SPEC`) as the `team` graph.

    Args:
        model: Chat model object or id for every role, or a role→model mapping.
        tools: Tools the spec's tool names refer to (default: the built-in tools).
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term memory store (None for the server, which brings its own).
    """
    return build_team_graph(
        EXAMPLE_TEAM_SPEC,
        model=model,
        tools=tools,
        name="team",
        checkpointer=checkpointer,
        store=store,
    )


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()

__all__ = [
    "EXAMPLE_TEAM_SPEC",
    "AgentSpec",
    "TaskSpec",
    "TeamInput",
    "TeamOutput",
    "TeamSpec",
    "TeamSpecError",
    "build_graph",
    "build_team_graph",
    "graph",
    "load_team_spec",
]
