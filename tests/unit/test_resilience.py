"""Transient-only retries, Retry-After, circuit breakers and model fallback (injected faults)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException, tool

from graphs.react import build_graph
from nodes.resilience import (
    BREAKERS,
    MODEL_RETRY,
    TOOL_RETRY,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    breaker_for,
    client_retries_taken,
    is_transient,
    model_service,
    retry_after_s,
    should_retry_model,
    should_retry_tool,
    with_model_fallback,
)

pytestmark = pytest.mark.anyio


def _status_error(
    cls: type[openai.APIStatusError],
    status: int,
    *,
    headers: dict[str, str] | None = None,
    retries: int | None = None,
) -> openai.APIStatusError:
    request_headers = {} if retries is None else {"x-stainless-retry-count": str(retries)}
    request = httpx2.Request("POST", "http://llm.test/v1/chat", headers=request_headers)
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return cls(f"Error code: {status}", response=response, body=None)


def _http_status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://api.test/items")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


def _lc_error(status: int) -> Exception:
    """What ChatOpenAI raises (LangChain-classified subclasses), via the scripted model."""
    from nodes.offline.chat_model import _status_error as scripted_status_error
    from nodes.offline.script import ScriptError

    return scripted_status_error(ScriptError(status=status, message="scripted"))


TRANSIENT = {
    "openai connection": lambda: openai.APIConnectionError(
        request=httpx2.Request("POST", "http://llm.test")
    ),
    "openai timeout": lambda: openai.APITimeoutError(
        request=httpx2.Request("POST", "http://llm.test")
    ),
    "openai 429": lambda: _status_error(openai.RateLimitError, 429),
    "openai 503": lambda: _status_error(openai.InternalServerError, 503),
    "langchain 429": lambda: _lc_error(429),
    "langchain 500": lambda: _lc_error(500),
    "httpx connect": lambda: httpx.ConnectError("refused"),
    "httpx read timeout": lambda: httpx.ReadTimeout("slow"),
    "httpx 502": lambda: _http_status_error(502),
    "httpx 429": lambda: _http_status_error(429),
    "connection reset": lambda: ConnectionResetError("reset by peer"),
    "timeout": lambda: TimeoutError(),
    "asyncio timeout": lambda: TimeoutError(),
}
PERMANENT = {
    "openai 400": lambda: _status_error(openai.BadRequestError, 400),
    "openai 401": lambda: _status_error(openai.AuthenticationError, 401),
    "langchain 404": lambda: _lc_error(404),
    "httpx 404": lambda: _http_status_error(404),
    "tool exception": lambda: ToolException("bad argument"),
    "value error": lambda: ValueError("bug"),
    "open circuit": lambda: CircuitOpenError("x", failures=5, retry_in_s=60, probing=False),
    "unsupported protocol": lambda: httpx.UnsupportedProtocol("ftp://"),
}


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    BREAKERS.reset()
    yield
    BREAKERS.reset()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record (instead of waiting) every asyncio.sleep during the test, e.g. retry backoff."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:  # zero-length sleeps are event-loop yields, not waits
            recorded.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


# --- classification --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_transient_errors_are_retried(name: str) -> None:
    exc = TRANSIENT[name]()
    assert is_transient(exc)
    assert should_retry_tool(exc) and should_retry_model(exc)


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_permanent_errors_are_not_retried(name: str) -> None:
    exc = PERMANENT[name]()
    assert not is_transient(exc)
    assert not should_retry_tool(exc) and not should_retry_model(exc)


def test_retry_after_in_seconds_milliseconds_and_http_date() -> None:
    assert retry_after_s(_http_status_error(429, {"retry-after": "7"})) == 7.0
    assert retry_after_s(_http_status_error(429, {"retry-after-ms": "1500"})) == 1.5
    dated = _http_status_error(503, {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"})
    assert retry_after_s(dated, now=1445412500.0) == 10.0
    assert retry_after_s(_http_status_error(503)) is None
    assert retry_after_s(ValueError()) is None


def test_an_over_long_retry_after_fails_fast_instead_of_stalling() -> None:
    exc = _status_error(openai.RateLimitError, 429, headers={"retry-after": "3600"})
    assert is_transient(exc) and not should_retry_tool(exc)


def test_model_errors_the_http_client_already_retried_are_not_retried_again() -> None:
    exhausted = _status_error(openai.InternalServerError, 503, retries=2)
    assert client_retries_taken(exhausted) == 2
    assert should_retry_tool(exhausted) and not should_retry_model(exhausted)
    first_try = _status_error(openai.InternalServerError, 503, retries=0)
    assert should_retry_model(first_try)


def test_policy_waits_at_least_the_server_retry_after() -> None:
    exc = _status_error(openai.RateLimitError, 429, headers={"retry-after": "30"})
    assert TOOL_RETRY.retry_on(exc) is True  # type: ignore[operator]
    assert (TOOL_RETRY.initial_interval, TOOL_RETRY.backoff_factor) == (30.0, 1.0)
    assert TOOL_RETRY.max_interval >= 30.0
    assert TOOL_RETRY.retry_on(httpx.ConnectError("x")) is True  # type: ignore[operator]
    assert (TOOL_RETRY.initial_interval, TOOL_RETRY.backoff_factor) == (0.5, 2.0)
    assert MODEL_RETRY.max_attempts == 3 and TOOL_RETRY.max_attempts == 3


# --- retries in the agent loop ---------------------------------------------------------


def _calls_tool(name: str, args: dict[str, Any]) -> Any:
    from nodes.offline import ScriptedChatModel

    return ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[{"name": name, "args": args, "id": "c1"}]),
            AIMessage("done"),
        ]
    )


async def test_a_tool_failing_transiently_twice_is_retried_and_succeeds(
    sleeps: list[float],
) -> None:
    attempts: list[int] = []

    @tool
    async def fetch_price(item: str) -> str:
        """Look up the price of an item.

        Args:
            item: Item name.
        """
        attempts.append(1)
        if len(attempts) <= 2:
            raise httpx.ConnectError("connection refused")
        return "12.50"

    model = _calls_tool("fetch_price", {"item": "tea"})
    graph = build_graph(model=model, tools=[fetch_price])
    result = await graph.ainvoke({"messages": [HumanMessage("price of tea?")]})

    assert len(attempts) == 3
    assert len(sleeps) == 2, "one backoff before each retry"
    assert result["final_answer"] == "done"
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1 and "12.50" in str(tool_messages[0].content)
    assert len(model.calls) == 2, "the model node is not re-run by a tool retry"


async def test_a_permanent_tool_error_is_not_retried(sleeps: list[float]) -> None:
    attempts: list[int] = []

    @tool
    async def fetch_price(item: str) -> str:
        """Look up the price of an item.

        Args:
            item: Item name.
        """
        attempts.append(1)
        raise _http_status_error(404)

    graph = build_graph(model=_calls_tool("fetch_price", {"item": "tea"}), tools=[fetch_price])
    with pytest.raises(httpx.HTTPStatusError):
        await graph.ainvoke({"messages": [HumanMessage("price of tea?")]})
    assert attempts == [1] and sleeps == []


async def test_a_tool_retry_honours_retry_after(sleeps: list[float]) -> None:
    attempts: list[int] = []

    @tool
    async def fetch_price(item: str) -> str:
        """Look up the price of an item.

        Args:
            item: Item name.
        """
        attempts.append(1)
        if len(attempts) == 1:
            raise _http_status_error(429, {"retry-after": "7"})
        return "12.50"

    graph = build_graph(model=_calls_tool("fetch_price", {"item": "tea"}), tools=[fetch_price])
    result = await graph.ainvoke({"messages": [HumanMessage("price of tea?")]})
    assert result["success"] is True and len(attempts) == 2
    assert len(sleeps) == 1 and sleeps[0] >= 7.0


async def test_a_model_failing_transiently_twice_is_retried(
    scripted_model: Any, sleeps: list[float]
) -> None:
    model = scripted_model(
        {"error": {"status": 503, "message": "overloaded"}},
        {"error": {"status": 429, "message": "slow down", "retry_after": 2}},
        AIMessage("recovered"),
    )
    result = await build_graph(model=model).ainvoke({"messages": [HumanMessage("hi")]})
    assert result["final_answer"] == "recovered"
    assert len(model.calls) == 3
    assert len(sleeps) == 2 and sleeps[1] >= 2.0


async def test_a_permanent_model_error_is_not_retried(
    scripted_model: Any, sleeps: list[float]
) -> None:
    model = scripted_model({"error": {"status": 400, "message": "bad request"}}, "unused")
    with pytest.raises(openai.BadRequestError):
        await build_graph(model=model).ainvoke({"messages": [HumanMessage("hi")]})
    assert len(model.calls) == 1 and sleeps == []


# --- circuit breaker -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: CircuitBreaker, exc: Exception | None = None) -> None:
    def boom() -> None:
        raise exc or ConnectionError("down")

    with pytest.raises(type(exc or ConnectionError("down"))):
        breaker.call(boom)


def test_breaker_opens_after_the_threshold_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker("weather-api", failure_threshold=3, reset_timeout_s=10, clock=clock)
    for _ in range(2):
        _fail(breaker)
    assert breaker.state is CircuitState.CLOSED
    _fail(breaker)
    assert breaker.state is CircuitState.OPEN

    called: list[int] = []
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: called.append(1))
    assert called == [], "an open circuit never calls the service"
    message = str(refused.value)
    assert "'weather-api'" in message and "3 times" in message and "10s" in message
    assert "use another tool or model" in message


def test_half_open_lets_exactly_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker("search", failure_threshold=1, reset_timeout_s=60, clock=clock)
    _fail(breaker)
    clock.now += 59.9
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN

    with breaker.guard():  # the probe
        with pytest.raises(CircuitOpenError, match="probe"):
            breaker.call(lambda: "second caller during the probe")
    assert breaker.state is CircuitState.CLOSED
    assert breaker.call(lambda: "ok") == "ok"


def test_a_failed_probe_reopens_for_another_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker("search", failure_threshold=2, reset_timeout_s=60, clock=clock)
    _fail(breaker)
    _fail(breaker)
    clock.now += 60
    _fail(breaker, TimeoutError("still down"))
    assert breaker.state is CircuitState.OPEN
    clock.now += 59
    assert breaker.state is CircuitState.OPEN
    clock.now += 1
    assert breaker.state is CircuitState.HALF_OPEN


def test_permanent_errors_do_not_count_towards_the_threshold() -> None:
    breaker = CircuitBreaker("api", failure_threshold=2, clock=Clock())
    _fail(breaker)
    _fail(breaker, ValueError("bad input"))  # the service answered: failures reset
    _fail(breaker)
    assert breaker.state is CircuitState.CLOSED


async def test_async_calls_and_the_process_wide_registry() -> None:
    breaker = breaker_for("svc", failure_threshold=1, reset_timeout_s=30)
    assert breaker_for("svc") is breaker

    async def down() -> None:
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        await breaker.acall(down)
    assert BREAKERS.degraded() == ["svc"]
    assert [s.state for s in BREAKERS.snapshots()] == [CircuitState.OPEN]
    with pytest.raises(CircuitOpenError):
        await breaker.acall(down)


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="failure_threshold must be >= 1, got 0"):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError, match="reset_timeout_s must be > 0"):
        CircuitBreaker("x", reset_timeout_s=0)


async def test_an_open_circuit_inside_a_tool_reaches_the_model_as_an_error_result(
    scripted_model: Any,
) -> None:
    breaker_for("pricing-api", failure_threshold=1)
    BREAKERS.get("pricing-api").record_failure(ConnectionError("down"))
    service_calls: list[int] = []

    @tool
    async def fetch_price(item: str) -> str:
        """Look up the price of an item.

        Args:
            item: Item name.
        """

        async def request() -> str:
            service_calls.append(1)
            return "12.50"

        return await breaker_for("pricing-api").acall(request)

    model = _calls_tool("fetch_price", {"item": "tea"})
    result = await build_graph(model=model, tools=[fetch_price]).ainvoke(
        {"messages": [HumanMessage("price of tea?")]}
    )
    assert service_calls == []
    seen_by_model = model.calls[1][-1]
    assert isinstance(seen_by_model, ToolMessage) and seen_by_model.status == "error"
    assert "'pricing-api' is unavailable (circuit open" in str(seen_by_model.content)
    assert result["final_answer"] == "done"


# --- model fallback --------------------------------------------------------------------


async def test_falls_back_to_the_backup_model_when_the_primary_fails(scripted_model: Any) -> None:
    primary = scripted_model({"error": {"status": 503, "message": "down"}}, model_name="primary")
    backup = scripted_model(AIMessage("answer from backup"), model_name="backup")
    reply = await with_model_fallback(primary, backup).ainvoke([HumanMessage("hi")])
    assert reply.content == "answer from backup"
    assert len(primary.calls) == 1 and len(backup.calls) == 1


async def test_no_fallback_on_a_bad_request(scripted_model: Any) -> None:
    primary = scripted_model({"error": {"status": 400, "message": "bad"}}, model_name="primary")
    backup = scripted_model(AIMessage("unused"), model_name="backup")
    with pytest.raises(openai.BadRequestError):
        await with_model_fallback(primary, backup).ainvoke([HumanMessage("hi")])
    assert backup.calls == []


async def test_the_gateway_skips_an_open_primary_and_uses_the_backup(
    scripted_model: Any,
) -> None:
    from nodes.model import ChatGateway

    primary = scripted_model(
        *[{"error": {"status": 503, "message": "down"}}] * 2, model_name="primary"
    )
    backup = scripted_model(*["from backup"] * 3, model_name="backup")
    model = ChatGateway(
        primary, "primary", backup=backup, failure_threshold=2, reset_timeout_s=60, deadline_s=None
    )

    for _ in range(3):
        assert (await model.ainvoke([HumanMessage("hi")])).content == "from backup"
    assert len(primary.calls) == 2, "after 2 failures the primary's circuit is open"
    assert BREAKERS.degraded() == [model_service(primary)]


# --- deadlines, error handlers, tool breaker keys -----------------------------------------


def test_the_model_call_deadline_covers_every_client_attempt_and_its_backoff() -> None:
    from nodes.resilience import MODEL_NODE_TIMEOUT, model_call_deadline_s

    assert model_call_deadline_s(60, 2) == 60 * 3 + 8 * 2 + 5
    assert model_call_deadline_s(10, 0) == 15
    with pytest.raises(ValueError, match="request_timeout_s must be > 0"):
        model_call_deadline_s(0, 2)
    assert MODEL_NODE_TIMEOUT.idle_timeout == 2 * model_call_deadline_s(60, 2)
    assert MODEL_NODE_TIMEOUT.run_timeout is None


def test_a_missed_deadline_is_transient_for_fallback_and_breaker_but_not_retried() -> None:
    from nodes.resilience import FALLBACK_ERRORS, ModelDeadlineExceeded

    exc = ModelDeadlineExceeded("model:h/m", 5.0)
    assert is_transient(exc) and isinstance(exc, FALLBACK_ERRORS)
    assert should_retry_tool(exc) and not should_retry_model(exc)
    assert "'model:h/m' did not answer within 5s" in str(exc)


async def test_a_hung_call_misses_its_deadline_and_counts_against_the_circuit() -> None:
    from langchain_core.runnables import RunnableLambda

    from nodes.resilience import ModelDeadlineExceeded, with_breaker

    async def hang(_: Any) -> str:
        await asyncio.Event().wait()
        return "never"

    async def inner_timeout(_: Any) -> str:
        raise TimeoutError("the call's own timeout")

    breaker = CircuitBreaker("model:h/m", failure_threshold=2, clock=Clock())
    with pytest.raises(ModelDeadlineExceeded):
        await with_breaker(RunnableLambda(hang), breaker, deadline_s=0.01).ainvoke("x")
    with pytest.raises(TimeoutError, match="own timeout") as raised:
        await with_breaker(RunnableLambda(inner_timeout), breaker, deadline_s=60).ainvoke("x")
    assert not isinstance(raised.value, ModelDeadlineExceeded)
    assert breaker.state is CircuitState.OPEN


def test_neutral_errors_neither_open_nor_close_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker("api", failure_threshold=2, reset_timeout_s=10, clock=clock)
    _fail(breaker)
    with pytest.raises(KeyError), breaker.guard(neutral=(KeyError,)):
        raise KeyError("bad arguments, nothing was sent")
    _fail(breaker)
    assert breaker.state is CircuitState.OPEN, "the neutral error did not reset the count"
    clock.now += 10
    with pytest.raises(KeyError), breaker.guard(neutral=(KeyError,)):  # the probe
        raise KeyError("bad arguments")
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "next probe") == "next probe"
    assert breaker.state is CircuitState.CLOSED


def test_tools_share_a_breaker_through_their_service() -> None:
    from nodes.resilience import tool_service

    assert tool_service("fetch_price", {"service": "pricing-api"}) == "service:pricing-api"
    assert tool_service("calculate", None) == tool_service("calculate", {}) == "tool:calculate"


def _failing_graph(exc: Exception, goto_seen: list[str]) -> Any:
    from langgraph.graph import END, START, StateGraph

    from nodes.resilience import on_model_failure
    from nodes.state import RunOutcome

    async def ask(state: RunOutcome) -> RunOutcome:
        raise exc

    async def wrap_up(state: RunOutcome) -> RunOutcome:
        goto_seen.append("wrap_up")
        return {}

    builder = StateGraph(RunOutcome)
    builder.add_node(
        "ask", ask, retry_policy=MODEL_RETRY, error_handler=on_model_failure("wrap_up")
    )
    builder.add_node("wrap_up", wrap_up)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    builder.add_edge("wrap_up", END)
    return builder.compile()


async def test_a_lasting_model_outage_routes_to_the_finalize_step(sleeps: list[float]) -> None:
    from nodes.resilience import MODEL_UNAVAILABLE_ANSWER

    seen: list[str] = []
    outage = _status_error(openai.InternalServerError, 503, retries=2)
    result = await _failing_graph(outage, seen).ainvoke({})
    assert seen == ["wrap_up"]
    assert result["success"] is False and result["final_answer"] == MODEL_UNAVAILABLE_ANSWER
    assert result["error"].startswith("model unavailable in step 'ask': InternalServerError")
    assert sleeps == [], "the client had already retried: no node retry before the handler"


async def test_an_error_handler_re_raises_bugs_and_bad_requests() -> None:
    seen: list[str] = []
    with pytest.raises(ValueError, match="bug"):
        await _failing_graph(ValueError("bug"), seen).ainvoke({})
    with pytest.raises(openai.BadRequestError):
        await _failing_graph(_status_error(openai.BadRequestError, 400), seen).ainvoke({})
    assert seen == []
