"""Pipeline and reflection graphs through the real ChatOpenAI client against the scripted
OpenAI-compatible server: structured output over HTTP, per-role models, and the bundled demos."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from graphs.cli import load_demo
from graphs.refine import build_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

CRITIC_SCRIPT: dict[str, Any] = {
    "rules": [
        {"match": {"system": "Produce the best answer"}, "replies": ["A first draft."]},
        {"match": {"system": "revising your draft"}, "replies": ["A better draft."]},
        {
            "match": {"model": "critic-model", "schema": "Critique", "user": "better draft"},
            "replies": [
                {
                    "json": {
                        "correctness": 5,
                        "completeness": 5,
                        "clarity": 4,
                        "efficiency": 4,
                        "suggestions": [],
                    }
                }
            ],
        },
        {
            "match": {"model": "critic-model", "schema": "Critique"},
            "replies": [
                {
                    "json": {
                        "correctness": 3,
                        "completeness": 2,
                        "clarity": 3,
                        "efficiency": 3,
                        "suggestions": ["Be more specific."],
                    }
                }
            ],
        },
    ]
}


async def test_refine_over_http_uses_the_critic_model_for_critiques(use_script: Any) -> None:
    server = use_script(CRITIC_SCRIPT)
    result = await build_graph().ainvoke(
        {"task": "Write something."},
        context=Context(model="openai:writer-model", judge_model="openai:critic-model"),
    )

    assert result["success"] is True
    assert result["final_answer"] == "A better draft."
    assert [d["average"] for d in result["drafts"]] == [2.75, 4.5]
    models = [r["model"] for r in server.requests]
    assert models == ["writer-model", "critic-model", "writer-model", "critic-model"]
    critique_request = server.requests[1]
    assert critique_request["response_format"]["json_schema"]["name"] == "Critique"
    assert result["usage"]["openai:critic-model"]["calls"] == 2
    assert result["usage"]["openai:writer-model"]["calls"] == 2
    assert result["usage"]["openai:writer-model"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("graph_id", "calls", "answer_part"),
    [
        ("pipeline", 5, "360 EUR"),
        ("refine", 4, "Rayleigh scattering"),
        ("reflexion", 6, "396"),
    ],
)
async def test_bundled_demo_runs_green_through_chat_openai(
    use_script: Any, graph_id: str, calls: int, answer_part: str
) -> None:
    demo = load_demo(graph_id)
    server = use_script(demo["script"])
    module = import_module(f"graphs.{graph_id}")

    result = await module.build_graph().ainvoke(
        module.input_from_text(demo["input"]), context=Context(**demo.get("context", {}))
    )

    assert result["success"] is True, result["error"]
    assert answer_part in result["final_answer"]
    assert len(server.requests) == calls
    assert sum(u["calls"] for u in result["usage"].values()) == calls


def test_demo_files_are_valid_json_with_input_and_script() -> None:
    for graph_id in ("pipeline", "refine", "reflexion"):
        demo = json.loads((REPO / "graphs" / "demo_scripts" / f"{graph_id}.json").read_text())
        assert demo["input"] and demo["script"]["rules"]
