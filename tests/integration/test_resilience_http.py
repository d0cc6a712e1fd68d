"""Retry layering and fallback through the real ChatOpenAI and the scripted HTTP server.

Proves "no double retry": when the OpenAI client retries (Context.max_retries > 0), the model
node does not retry on top; when the client is told not to retry, the node's MODEL_RETRY does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage

from graphs.react import build_graph
from nodes.context import Context
from nodes.model import resolve_model
from nodes.resilience import BREAKERS, MODEL_RETRY

pytestmark = pytest.mark.anyio

DOWN = {"error": {"status": 503, "message": "overloaded", "retry_after": 0.01}}
SCRIPT = {
    "rules": [
        {"match": {"model": "flaky-model"}, "replies": [DOWN], "after_last": "repeat"},
        {
            "match": {"model": "backup-model"},
            "replies": ["answer from backup"],
            "after_last": "repeat",
        },
    ]
}


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    BREAKERS.reset()
    yield
    BREAKERS.reset()


def _requests_for(server: Any, model: str) -> int:
    return sum(1 for body in server.requests if body.get("model") == model)


async def test_client_retries_are_not_multiplied_by_node_retries(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script(SCRIPT)
    context = Context(model="openai:flaky-model", max_retries=1)
    with pytest.raises(openai.InternalServerError):
        await build_graph().ainvoke({"messages": [HumanMessage("hi")]}, context=context)
    assert _requests_for(server, "flaky-model") == 2, "1 try + 1 client retry, no node retry"


async def test_node_retries_when_the_client_does_not(
    use_script: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import langgraph.pregel._retry as retry_module

    waits: list[float] = []
    real_sleep = retry_module.asyncio.sleep

    async def record(delay: float, result: Any = None) -> Any:
        if delay > 0:  # zero-length sleeps are event-loop yields, not waits
            waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(retry_module.asyncio, "sleep", record)
    server = use_script(SCRIPT)
    context = Context(model="openai:flaky-model", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        await build_graph().ainvoke({"messages": [HumanMessage("hi")]}, context=context)
    assert _requests_for(server, "flaky-model") == MODEL_RETRY.max_attempts == 3
    assert len(waits) == 2


async def test_falls_back_to_the_context_backup_model_over_http(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script(SCRIPT)
    context = Context(
        model="openai:flaky-model",
        fallback_model="openai:backup-model",
        max_retries=0,
        circuit_failure_threshold=2,
    )
    model, _ = resolve_model("agent", context)
    for _ in range(3):
        reply = await model.ainvoke([HumanMessage("hi")])
        assert reply.content == "answer from backup"
    assert _requests_for(server, "flaky-model") == 2, "the open circuit stopped further tries"
    assert _requests_for(server, "backup-model") == 3
