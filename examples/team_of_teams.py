"""A top-level team of two teams: a data team and a writing team under one supervisor.

    company (supervisor)
    ├── data_team (supervisor): analyst [calculate], clock [get_current_time]
    └── writing_team (supervisor): drafter, editor

Each team is a compiled supervisor graph used as a worker of the one above it; the handoff log of
a nested team appears under `nested` in the top-level `handoffs`. Run it offline (scripted
answers from a local OpenAI-compatible server, no real model):

    python examples/team_of_teams.py

With a real provider, call `build_team_of_teams()` and set OPENAI_API_KEY (and OPENAI_BASE_URL for
another OpenAI-compatible server).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from graphs.supervisor import build_graph
from nodes.model import ModelOverride
from nodes.supervision import WorkerSpec


def build_team_of_teams(
    *, model: ModelOverride = None, checkpointer: Any = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the company team: a supervisor over the data team and the writing team."""
    data_team = build_graph(
        model=model,
        name="data_team",
        workers=[
            WorkerSpec(
                name="analyst",
                description="Computes numbers with a calculator.",
                system_prompt="You are a careful analyst; compute with the calculator.",
                tools=("calculate",),
                capabilities=("math",),
                context="none",
            ),
            WorkerSpec(
                name="clock",
                description="Looks up the current time in any timezone.",
                system_prompt="You are a timekeeper.",
                tools=("get_current_time",),
                capabilities=("time",),
                context="none",
            ),
        ],
    )
    writing_team = build_graph(
        model=model,
        name="writing_team",
        workers=[
            WorkerSpec(
                name="drafter",
                description="Drafts a short text from the facts it is given.",
                system_prompt="You draft short, plain texts.",
                tools=(),
                context="none",
            ),
            WorkerSpec(
                name="editor",
                description="Tightens and corrects a draft.",
                system_prompt="You are a strict editor.",
                tools=(),
                context="last_result",
            ),
        ],
    )
    return build_graph(
        model=model,
        name="company",
        checkpointer=checkpointer,
        workers=[
            WorkerSpec(
                name="data_team",
                description="A team that computes figures and looks up facts.",
                graph=data_team,
                capabilities=("math", "time"),
                context="none",
            ),
            WorkerSpec(
                name="writing_team",
                description="A team that drafts and edits text from given facts.",
                graph=writing_team,
                capabilities=("writing",),
                context="last_result",
            ),
        ],
    )


DEMO_REQUEST = "Our travel budget is 2,480 EUR; 17.5% goes to hotels. Write a one-line memo."
EXPECTED_ANSWER = "Memo: hotels get 434 EUR of the 2,480 EUR travel budget."


def _decide(team: str, when: str, reply: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"{team} supervisor",
        "match": {"schema": "SupervisorDecision", "system": f"team '{team}'", "last": when},
        "replies": [{"json": reply}],
    }


def _worker(name: str, *replies: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "match": {"system": f"worker '{name}'"}, "replies": list(replies)}


FIRST = "no worker has been asked"
DEMO_SCRIPT: dict[str, Any] = {
    "name": "team-of-teams",
    "rules": [
        _decide(
            "company",
            FIRST,
            {"next": "data_team", "instructions": "Compute 17.5% of 2,480 EUR."},
        ),
        _decide("company", 'worker="writing_team"', {"next": "FINISH", "answer": EXPECTED_ANSWER}),
        _decide(
            "company",
            'worker="data_team"',
            {"next": "writing_team", "instructions": "Write a one-line memo about the figure."},
        ),
        _decide(
            "data_team",
            FIRST,
            {"next": "analyst", "instructions": "Compute 2480 * 17.5 / 100."},
        ),
        _decide("data_team", 'worker="analyst"', {"next": "FINISH", "answer": "Hotels: 434 EUR."}),
        _decide(
            "writing_team",
            FIRST,
            {"next": "drafter", "instructions": "Draft a memo: hotels get 434 EUR of 2,480."},
        ),
        _decide(
            "writing_team",
            'worker="editor"',
            {"next": "FINISH", "answer": EXPECTED_ANSWER},
        ),
        _decide(
            "writing_team",
            'worker="drafter"',
            {"next": "editor", "instructions": "Tighten the draft into one line."},
        ),
        _worker(
            "analyst",
            {"tool_calls": [{"name": "calculate", "args": {"expression": "2480 * 17.5 / 100"}}]},
            {"content": "2480 * 17.5 / 100 = {{tool:calculate}}"},
        ),
        _worker("drafter", {"content": "Memo - the hotels will be getting 434 EUR out of 2,480."}),
        _worker("editor", {"content": EXPECTED_ANSWER}),
    ],
}


async def _main() -> int:
    from nodes.offline import ScriptedLLMServer, load_script

    with ScriptedLLMServer(load_script(DEMO_SCRIPT)) as server:
        # This example is its own application process: pointing its environment at the scripted
        # server is how every ChatOpenAI inside the teams finds it.
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ["OPENAI_API_KEY"] = "scripted-example"
        result = await build_team_of_teams().ainvoke(
            {"messages": [{"role": "user", "content": DEMO_REQUEST}]}
        )
    sys.stdout.write(f"{result['final_answer']}\n\nhandoffs:\n")
    log = [
        {
            "worker": h["worker"],
            "result": h["result"],
            "nested": [n["worker"] for n in h.get("nested", [])],
        }
        for h in result["handoffs"]
    ]
    sys.stdout.write(json.dumps(log, indent=2) + "\n")
    return 0 if result["success"] else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
