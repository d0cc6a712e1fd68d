"""Debate through the real ChatOpenAI and OpenAIEmbeddings against the scripted HTTP server."""

from __future__ import annotations

from typing import Any

import pytest

from graphs.debate import build_graph
from nodes.context import Context

pytestmark = pytest.mark.anyio

NAMES = ("Advocate", "Skeptic", "Pragmatist")
OPENING = {
    "Advocate": "Tabs, because indentation width is then a reader preference.",
    "Skeptic": "Spaces, because code looks the same in every viewer.",
    "Pragmatist": "Whatever the formatter enforces for the language.",
}
# Every debater settles on the same wording, so the embeddings agree exactly.
AGREED = "Use the language's standard formatter and its default; for Python that means spaces."


def position(answer: str, normalized: str) -> dict[str, Any]:
    return {
        "json": {
            "answer": answer,
            "normalized_answer": normalized,
            "reasoning": "scripted",
            "confidence": 0.8,
        }
    }


SCRIPT = {
    "name": "debate-http",
    "rules": [
        *(
            {
                "match": {"system": f"You are {name},", "user": "^Round 0 "},
                "replies": [position(OPENING[name], name.lower())],
            }
            for name in NAMES
        ),
        *(
            {
                "match": {"system": f"You are {name},", "user": "^Round 1 "},
                "replies": [position(AGREED, "formatter default")],
            }
            for name in NAMES
        ),
        {
            "match": {"schema": "Verdict"},
            "replies": [
                {
                    "json": {
                        "decision": AGREED,
                        "rationale": "All debaters converged on the formatter's default.",
                        "points_of_disagreement": [],
                        "confidence": 0.9,
                    }
                }
            ],
        },
        {
            "match": {"schema": "TieBreak"},
            "replies": [{"json": {"choice": "spaces", "rationale": "most common in practice"}}],
        },
    ],
}


async def test_debate_converges_by_embeddings_over_http(use_script: Any) -> None:
    server = use_script(SCRIPT)
    # No embeddings injected: the graph builds OpenAIEmbeddings from OPENAI_BASE_URL, which the
    # scripted server answers with deterministic vectors.
    result = await build_graph().ainvoke({"question": "Tabs or spaces?"})

    chat_requests = server.requests
    assert len(chat_requests) == 3 * 2 + 1  # opening, one revision round, verdict
    formats = [r["response_format"]["json_schema"]["name"] for r in chat_requests]
    assert formats == ["DebaterReply"] * 6 + ["Verdict"]
    assert result["converged"] is True
    opening, revised = result["assessments"]
    assert opening["agreement"] < 0.8 <= revised["agreement"]
    assert revised["agreement"] == pytest.approx(1.0)
    assert result["final_answer"] == AGREED
    assert result["usage"]["openai:gpt-4.1-mini"]["calls"] == 7


async def test_vote_mode_tie_is_broken_by_the_judge_over_http(use_script: Any) -> None:
    ties = {
        "rules": [
            {
                "match": {"system": "You are Advocate,"},
                "replies": [position("Tabs.", "tabs")],
            },
            {
                "match": {"system": "You are Skeptic,"},
                "replies": [position("Spaces.", "spaces")],
            },
            *SCRIPT["rules"][-1:],
        ]
    }
    server = use_script(ties)
    result = await build_graph().ainvoke(
        {"question": "Tabs or spaces?"}, context=Context(debate_mode="vote", debate_debaters=2)
    )

    assert len(server.requests) == 3
    schema = server.requests[-1]["response_format"]["json_schema"]["schema"]
    assert sorted(schema["properties"]["choice"]["enum"]) == ["spaces", "tabs"]
    assert result["vote"]["decided_by"] == "judge"
    assert result["final_answer"] == "Spaces."


async def test_scripted_embeddings_endpoint_serves_openai_embeddings(use_script: Any) -> None:
    from langchain_openai import OpenAIEmbeddings

    server = use_script({"default": "unused"})
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=server.base_url,
        api_key="test",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
    )
    first, same, other = await embeddings.aembed_documents(["tabs win", "tabs win", "spaces"])
    assert first == same and first != other
    assert sum(x * x for x in first) == pytest.approx(1.0, rel=1e-5)
