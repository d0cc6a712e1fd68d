"""The model gateway and the tool executor's resilience, through graphs, over real HTTP.

Every test runs a compiled graph whose `ChatOpenAI` talks to the scripted OpenAI-compatible
server, and counts the requests the server saw: fallback on a failing primary, the breaker
opening, failing fast and probing, the rate limiter, the response cache, error handlers, and
tool retries and breakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from graphs.react import build_graph
from nodes.context import Context
from nodes.model import rate_limiter_for
from nodes.resilience import BREAKERS, CircuitOpenError, CircuitState, breaker_for, endpoint_service
from nodes.response_cache import RESPONSE_CACHE

pytestmark = pytest.mark.anyio

DOWN = {"error": {"status": 503, "message": "overloaded"}}
HI = {"messages": [HumanMessage("hi")]}


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    BREAKERS.reset()
    RESPONSE_CACHE.clear()
    yield
    BREAKERS.reset()
    RESPONSE_CACHE.clear()


def _requests_for(server: Any, model: str) -> int:
    return sum(1 for body in server.requests if body.get("model") == model)


def _rule(model: str, *replies: Any) -> dict[str, Any]:
    return {"match": {"model": model}, "replies": list(replies), "after_last": "repeat"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- model fallback and breakers --------------------------------------------------------


async def test_the_backup_answers_when_the_primary_fails_and_usage_names_both(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script(
        {
            "rules": [
                # turn 0: the primary is down; turn 1 (after the tool result): it answers
                _rule("flaky-model", DOWN, "6 x 7 is {{last_tool}}"),
                _rule(
                    "backup-model",
                    {"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]},
                ),
            ]
        }
    )
    context = Context(
        model="openai:flaky-model", fallback_model="openai:backup-model", max_retries=0
    )
    result = await build_graph().ainvoke({"messages": [HumanMessage("6*7?")]}, context=context)

    assert result["success"] is True and result["final_answer"] == "6 x 7 is 42"
    assert _requests_for(server, "flaky-model") == 2 and _requests_for(server, "backup-model") == 1
    usage = result["usage"]
    assert usage["openai:flaky-model"]["calls"] == 1, "the failed attempt is no answered call"
    assert usage["openai:backup-model"]["calls"] == 1
    assert usage["openai:backup-model"]["input_tokens"] > 0


async def test_the_breaker_opens_fails_over_without_requests_and_probes_once(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script({"rules": [_rule("flaky-model", DOWN), _rule("backup-model", "backup")]})
    clock = Clock()
    breaker = breaker_for(
        endpoint_service(server.base_url, "flaky-model"),
        failure_threshold=2,
        reset_timeout_s=60,
        clock=clock,
    )
    context = Context(
        model="openai:flaky-model", fallback_model="openai:backup-model", max_retries=0
    )
    graph = build_graph()

    for _ in range(3):
        result = await graph.ainvoke(HI, context=context)
        assert result["final_answer"] == "backup"
    assert breaker.state is CircuitState.OPEN
    assert _requests_for(server, "flaky-model") == 2, "the open circuit sent no third request"
    assert BREAKERS.degraded() == [breaker.service]

    clock.now += 60  # half-open: the next call is the single probe
    server = use_script({"rules": [_rule("flaky-model", "primary is back")]})
    result = await graph.ainvoke(HI, context=context)
    assert result["final_answer"] == "primary is back"
    assert breaker.state is CircuitState.CLOSED and BREAKERS.degraded() == []
    assert list(result["usage"]) == ["openai:flaky-model"]


async def test_an_open_circuit_without_a_fallback_fails_fast_with_a_clear_error(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script({"rules": [_rule("flaky-model", DOWN)]})
    context = Context(model="openai:flaky-model", max_retries=0, circuit_failure_threshold=1)
    graph = build_graph()
    for _ in range(2):
        # The first failure opens the circuit, so MODEL_RETRY's retry already fails fast.
        with pytest.raises(CircuitOpenError, match="'model:.*/flaky-model' is unavailable"):
            await graph.ainvoke(HI, context=context)
    assert len(server.requests) == 1


async def test_a_call_past_its_deadline_goes_to_the_fallback(
    use_script: Callable[[Any], Any],
) -> None:
    from nodes.model import resolve_model

    use_script(
        {
            "rules": [
                _rule("slow-model", {"content": "too late", "delay": 2}),
                _rule("backup-model", "in time"),
            ]
        }
    )
    context = Context(model="openai:slow-model", fallback_model="openai:backup-model")
    gateway, _ = resolve_model("agent", context)
    gateway.deadline_s = 0.2  # the default (request timeout x attempts) is minutes
    reply = await gateway.ainvoke([HumanMessage("hi")])
    assert reply.content == "in time"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["weft_model_id"] == "openai:backup-model"  # type: ignore[typeddict-item]


# --- rate limiting ----------------------------------------------------------------------


async def test_every_model_request_waits_for_the_shared_rate_limiter(
    use_script: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = use_script(
        {
            "rules": [
                _rule(
                    "limited-model",
                    {"tool_calls": [{"name": "calculate", "args": {"expression": "1 + 1"}}]},
                    "two",
                )
            ]
        }
    )
    limiter = rate_limiter_for(endpoint_service(server.base_url, "limited-model"), 500.0)
    requests_seen_at_acquire: list[int] = []
    real_acquire = limiter.aacquire

    async def spy(*, blocking: bool = True) -> bool:
        requests_seen_at_acquire.append(len(server.requests))
        return await real_acquire(blocking=blocking)

    monkeypatch.setattr(limiter, "aacquire", spy)
    context = Context(model="openai:limited-model", model_requests_per_second=500.0)
    result = await build_graph().ainvoke({"messages": [HumanMessage("1+1?")]}, context=context)

    assert result["final_answer"] == "two"
    assert requests_seen_at_acquire == [0, 1], "each request waited for a token before it was sent"


def test_a_non_positive_rate_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="'model_requests_per_second' must be > 0"):
        rate_limiter_for("model:x/y", 0)


# --- response cache ---------------------------------------------------------------------


async def test_a_repeated_deterministic_request_is_answered_from_the_cache(
    use_script: Callable[[Any], Any],
) -> None:
    server = use_script({"rules": [_rule("det-model", "cached answer")]})
    context = Context(model="openai:det-model", response_cache=True)
    graph = build_graph()

    first = await graph.ainvoke(HI, context=context)
    second = await graph.ainvoke(HI, context=context)

    assert len(server.requests) == 1, "the repeat made no HTTP request"
    assert first["final_answer"] == second["final_answer"] == "cached answer"
    assert first["usage"]["openai:det-model"]["total_tokens"] > 0
    assert second["usage"] == {
        "openai:det-model": {
            "calls": 1,
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "cache_hits": 1,
        }
    }
    # A hit carries no message id of its own: add_messages must append it, not replace.
    assert second["messages"][-1].id != first["messages"][-1].id


async def test_the_cache_key_includes_the_bound_tools(use_script: Callable[[Any], Any]) -> None:
    server = use_script({"rules": [_rule("det-model", "answer")]})
    graph = build_graph()
    await graph.ainvoke(HI, context=Context(model="openai:det-model", response_cache=True))
    await graph.ainvoke(
        HI, context=Context(model="openai:det-model", response_cache=True, tools=("calculate",))
    )
    assert len(server.requests) == 2
    assert [len(r["tools"]) for r in server.requests] == [2, 1]


async def test_structured_calls_are_cached_per_schema(use_script: Callable[[Any], Any]) -> None:
    from graphs.refine import build_graph as build_refine

    critique = {
        "json": {
            "correctness": 5,
            "completeness": 5,
            "clarity": 5,
            "efficiency": 5,
            "suggestions": [],
        }
    }
    server = use_script(
        {
            "rules": [
                {"match": {"schema": "Critique"}, "replies": [critique], "after_last": "repeat"},
                _rule("det-model", "a haiku"),
            ]
        }
    )
    context = Context(model="openai:det-model", response_cache=True)
    graph = build_refine()
    first = await graph.ainvoke({"task": "write a haiku"}, context=context)
    second = await graph.ainvoke({"task": "write a haiku"}, context=context)

    assert len(server.requests) == 2, "one draft and one critique, each sent once"
    assert first["final_answer"] == second["final_answer"] == "a haiku"
    assert second["best_score"] == first["best_score"] == 5.0
    assert second["usage"]["openai:det-model"]["cache_hits"] == 2
    assert second["usage"]["openai:det-model"]["total_tokens"] == 0


async def test_no_cache_when_sampling(use_script: Callable[[Any], Any]) -> None:
    server = use_script({"rules": [_rule("det-model", "answer")]})
    context = Context(model="openai:det-model", response_cache=True, temperature=0.7)
    graph = build_graph()
    for _ in range(2):
        result = await graph.ainvoke(HI, context=context)
        assert "cache_hits" not in result["usage"]["openai:det-model"]
    assert len(server.requests) == 2


async def test_no_cache_unless_switched_on(use_script: Callable[[Any], Any]) -> None:
    server = use_script({"rules": [_rule("det-model", "answer")]})
    graph = build_graph()
    for _ in range(2):
        await graph.ainvoke(HI, context=Context(model="openai:det-model"))
    assert len(server.requests) == 2


# --- error handlers: a lasting model outage takes the pattern's fallback path -----------


async def test_an_unavailable_router_classifier_hands_over_to_the_fallback_intent(
    use_script: Callable[[Any], Any],
) -> None:
    from graphs.router import build_graph as build_router

    server = use_script(
        {"rules": [_rule("router-down", DOWN), _rule("desk-model", "Hello from the desk.")]}
    )
    context = Context(model="openai:desk-model", router_model="openai:router-down", max_retries=1)
    result = await build_router().ainvoke(HI, context=context)

    assert result["routed_to"] == "general" and result["intent"] is None
    assert "classifier unavailable" in result["route_reason"]
    assert result["final_answer"] == "Hello from the desk." and result["success"] is True
    assert _requests_for(server, "router-down") == 2, "1 try + 1 client retry, no node retry"


async def test_an_unavailable_debate_judge_leaves_the_decision_to_the_majority(
    use_script: Callable[[Any], Any],
) -> None:
    from graphs.debate import build_graph as build_debate

    position = {
        "json": {
            "answer": "Paris",
            "normalized_answer": "paris",
            "reasoning": "It is the capital.",
            "confidence": 0.9,
        }
    }
    use_script(
        {
            "rules": [
                _rule("judge-down", DOWN),
                {
                    "match": {"schema": "DebaterReply"},
                    "replies": [position],
                    "after_last": "repeat",
                },
            ]
        }
    )
    context = Context(
        model="openai:debater",
        judge_model="openai:judge-down",
        debate_rounds=0,
        debate_convergence="off",
        max_retries=1,
    )
    result = await build_debate().ainvoke({"question": "Capital of France?"}, context=context)

    assert result["final_answer"] == "Paris" and result["success"] is True
    assert result.get("verdict") is None
    assert result["vote"]["decided_by"] == "majority"


# --- tools: retries, breaker, progress events -------------------------------------------


def _tool_script(model: str = "tool-model") -> dict[str, Any]:
    return {
        "rules": [
            _rule(
                model,
                {"tool_calls": [{"name": "fetch_price", "args": {"item": "tea"}}]},
                "Tea costs {{last_tool}}",
            )
        ]
    }


def _fetch_price(behaviour: Callable[[int], str]) -> tuple[Any, list[int]]:
    attempts: list[int] = []

    @tool
    async def fetch_price(item: str) -> str:
        """Look up the price of an item.

        Args:
            item: Item name.
        """
        attempts.append(1)
        return behaviour(len(attempts))

    fetch_price.metadata = {"service": "pricing-api"}  # the backend its breaker is keyed by
    return fetch_price, attempts


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry backoffs instead of waiting them."""
    import langgraph.pregel._retry as retry_module

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, result: Any = None) -> Any:
        if delay > 0:
            waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(retry_module.asyncio, "sleep", record)  # type: ignore[attr-defined]
    return waits


async def test_a_tool_failing_transiently_twice_is_retried_and_reports_each_attempt(
    use_script: Callable[[Any], Any], no_backoff: list[float]
) -> None:
    def flaky(attempt: int) -> str:
        if attempt <= 2:
            raise httpx.ConnectError("connection refused")
        return "12.50"

    fetch_price, attempts = _fetch_price(flaky)
    server = use_script(_tool_script())
    events: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    data: Any
    async for mode, data in build_graph(tools=[fetch_price]).astream(
        {"messages": [HumanMessage("price of tea?")]},
        context=Context(model="openai:tool-model"),
        stream_mode=["custom", "values"],
    ):
        if mode == "custom" and data.get("event") == "tool_called":
            events.append(data)
        elif mode == "values":
            final = data

    assert len(attempts) == 3 and len(no_backoff) == 2
    assert final["final_answer"] == "Tea costs 12.50"
    assert len(server.requests) == 2, "a tool retry does not re-run the model"
    assert [(e["tool"], e["ok"], e["error_code"]) for e in events] == [
        ("fetch_price", False, "raised"),
        ("fetch_price", False, "raised"),
        ("fetch_price", True, None),
    ]
    assert events[0]["error"] == "ConnectError" and events[-1]["duration_ms"] >= 0
    assert len({e["call_id"] for e in events}) == 1
    assert [r["ok"] for r in final["tool_results"]] == [True]


async def test_a_permanent_tool_error_is_not_retried(
    use_script: Callable[[Any], Any], no_backoff: list[float]
) -> None:
    def broken(attempt: int) -> str:
        request = httpx.Request("GET", "http://pricing.test/tea")
        raise httpx.HTTPStatusError(
            "HTTP 404", request=request, response=httpx.Response(404, request=request)
        )

    fetch_price, attempts = _fetch_price(broken)
    use_script(_tool_script())
    with pytest.raises(httpx.HTTPStatusError):
        await build_graph(tools=[fetch_price]).ainvoke(
            {"messages": [HumanMessage("price of tea?")]},
            context=Context(model="openai:tool-model"),
        )
    assert attempts == [1] and no_backoff == []
    assert BREAKERS.get("service:pricing-api").state is CircuitState.CLOSED


async def test_the_tool_breaker_opens_and_the_model_is_told_the_service_is_unavailable(
    use_script: Callable[[Any], Any], no_backoff: list[float]
) -> None:
    def down(attempt: int) -> str:
        raise httpx.ConnectError("connection refused")

    fetch_price, attempts = _fetch_price(down)
    server = use_script(_tool_script())
    context = Context(model="openai:tool-model", circuit_failure_threshold=2)
    result = await build_graph(tools=[fetch_price]).ainvoke(
        {"messages": [HumanMessage("price of tea?")]}, context=context
    )

    assert len(attempts) == 2, "the third attempt was refused by the open circuit"
    assert BREAKERS.get("service:pricing-api").state is CircuitState.OPEN
    tool_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert tool_message.status == "error"
    assert "'service:pricing-api' is unavailable (circuit open" in str(tool_message.content)
    assert [r["error_code"] for r in result["tool_results"]] == ["circuit_open"]
    # The model got the refusal as a tool result and answered with it.
    assert server.requests[-1]["messages"][-1]["role"] == "tool"
    assert isinstance(result["messages"][-1], AIMessage)
