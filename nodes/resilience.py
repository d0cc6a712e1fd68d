"""Retries for transient errors only, circuit breakers per service, and model fallbacks.

Retry layering (one layer retries each failure, never two):

* The OpenAI client inside `ChatOpenAI` already retries connection errors, timeouts, 408/409/
  429/5xx `Context.max_retries` times with backoff, honouring `Retry-After`. It stamps every
  request with how many retries it has taken (`x-stainless-retry-count`), so an error that
  reaches a node tells us whether the client already retried it.
* `MODEL_RETRY` (model nodes) therefore retries a transient error only when no HTTP client
  retried it: errors the client gave up on after its own retries fail fast (to a fallback model
  or the circuit breaker), errors from a client configured with `max_retries=0` or from any
  other source (a stream cut mid-body, a gateway without retries) get up to 2 more attempts.
* `TOOL_RETRY` (tool nodes) retries transient errors raised by tools (which have no retry layer
  of their own) up to 3 attempts. Retrying the tools node re-runs every call of that step, so
  side-effecting tools must use their idempotency key (thread id + tool call id).
* Anything else — bad requests, auth, validation, `ToolException`, an open circuit — is not
  retried: repeating it cannot succeed, or (open circuit) the point is to stop calling.

Both policies honour `Retry-After` (seconds, milliseconds or an HTTP date) by waiting at least
that long before the next attempt; a `Retry-After` longer than `MAX_RETRY_AFTER_S` is not
retried at all, so the run can fall back instead of stalling.

Circuit breakers (`breaker_for(service)`) are process-wide, keyed by service name, and never in
graph state: after `failure_threshold` consecutive transient failures the circuit opens and
every call fails fast with `CircuitOpenError` for `reset_timeout_s`; then one probe call is let
through (half-open) and its outcome closes or re-opens the circuit. The model gateway
(`nodes/model.py`) keys them by endpoint and model (`model_service`), the tool executor
(`nodes/tool_node.py`) by the tool's `service` metadata or its name (`tool_service`).

Timeouts, innermost first: each HTTP request (`Context.request_timeout_s`, per read for
streams); each model call through the gateway, client retries included
(`model_call_deadline_s`, async calls only; `ModelDeadlineExceeded`, which goes to the fallback
and is not retried again); and a progress-based backstop on model-calling nodes
(`MODEL_NODE_TIMEOUT`, fixed when the graph is compiled).

When a model stays unavailable after all of that, a node's `error_handler`
(`on_model_failure(goto=...)`) can route the run to a fallback path instead of failing it.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import enum
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import ToolException
from langgraph.errors import NodeError, NodeTimeoutError
from langgraph.types import Command, RetryPolicy, TimeoutPolicy

from nodes.context import Context

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying (any other 5xx counts too)."""
MAX_RETRY_AFTER_S = 60.0
"""A longer `Retry-After` is not waited for: the error fails fast to a fallback instead."""
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_TIMEOUT_S = 60.0

_CLIENT_RETRY_HEADER = "x-stainless-retry-count"


# --- classification ------------------------------------------------------------------------


def _attr(obj: Any, name: str) -> Any:
    # httpx raises RuntimeError from `.request` on errors built without one.
    try:
        return getattr(obj, name, None)
    except RuntimeError:
        return None


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (openai, httpx and most SDK errors), or None."""
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    value = _attr(_attr(exc, "response"), "status_code")
    return value if isinstance(value, int) else None


def _headers_of(exc: BaseException) -> Any:
    return _attr(_attr(exc, "response"), "headers") or _attr(exc, "headers")


def retry_after_s(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (`Retry-After`/`retry-after-ms`), or None."""
    headers = _headers_of(exc)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(header)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / divisor)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(raw) if raw else None
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def client_retries_taken(exc: BaseException) -> int:
    """How many retries the OpenAI client made before raising `exc` (0 if it is not its error)."""
    request = _attr(exc, "request") or _attr(_attr(exc, "response"), "request")
    headers = _attr(request, "headers")
    raw = headers.get(_CLIENT_RETRY_HEADER) if headers is not None else None
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _transient_types() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [TimeoutError, ConnectionError]
    for module_name in ("httpx", "httpx2"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found += [module.TimeoutException, module.NetworkError, module.RemoteProtocolError]
    try:
        import openai

        found.append(openai.APIConnectionError)  # includes APITimeoutError
    except ImportError:  # pragma: no cover - langchain-openai depends on openai
        pass
    return tuple(found)


_TRANSIENT_TYPES = _transient_types()


def is_transient(exc: BaseException) -> bool:
    """True for errors a later attempt may not hit: connection errors, timeouts, 429 and 5xx.

    LangChain's provider-neutral `ModelError`s answer through `is_retryable`; an open circuit
    is never transient (failing fast is its purpose).
    """
    if isinstance(exc, CircuitOpenError):
        return False
    retryable = getattr(exc, "is_retryable", None)
    if isinstance(retryable, bool) and retryable:
        return True
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    status = status_code_of(exc)
    return status is not None and (status in TRANSIENT_STATUS_CODES or status >= 500)


def should_retry_tool(exc: BaseException) -> bool:
    """`TOOL_RETRY`'s predicate: transient, and not asking for an over-long wait."""
    if not is_transient(exc):
        return False
    wait = retry_after_s(exc)
    return wait is None or wait <= MAX_RETRY_AFTER_S


def should_retry_model(exc: BaseException) -> bool:
    """`MODEL_RETRY`'s predicate: like tools, but not when the HTTP client already retried.

    A `ModelDeadlineExceeded` is not retried either: its deadline already covered the client's
    retries.
    """
    if isinstance(exc, ModelDeadlineExceeded) or not should_retry_tool(exc):
        return False
    taken = client_retries_taken(exc)
    if taken:
        logger.debug("not retrying %s: the HTTP client already retried %d times", exc, taken)
    return taken == 0


# --- RetryPolicy that honours Retry-After ----------------------------------------------------

# Set by the predicate, read by the interval right after it, in the same task: LangGraph's retry
# loop calls `retry_on(exc)` and then computes the wait from the same policy object.
_SERVER_WAIT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "weft_retry_after", default=None
)


class RetryAfterPolicy(RetryPolicy):
    """A `RetryPolicy` whose wait before the next attempt is at least the server's `Retry-After`.

    Build it like a RetryPolicy with a callable `retry_on`; without a `Retry-After` on the error
    it behaves exactly like one (exponential backoff with jitter).
    """

    __slots__ = ()

    def __new__(cls, **kwargs: Any) -> RetryAfterPolicy:
        predicate = kwargs.pop("retry_on")

        def retry_on(exc: Exception) -> bool:
            decision = bool(predicate(exc))
            _SERVER_WAIT.set(retry_after_s(exc) if decision else None)
            return decision

        return super().__new__(cls, retry_on=retry_on, **kwargs)

    @property
    def initial_interval(self) -> float:
        """The server's Retry-After for the error just seen, else the configured interval."""
        wait = _SERVER_WAIT.get()
        return max(wait, self[0]) if wait is not None else float(self[0])

    @property
    def backoff_factor(self) -> float:
        """1 while honouring a Retry-After (the server chose the wait), else the configured one."""
        return 1.0 if _SERVER_WAIT.get() is not None else float(self[1])

    @property
    def max_interval(self) -> float:
        """Never cap below the server's Retry-After."""
        wait = _SERVER_WAIT.get()
        return max(wait, self[2]) if wait is not None else float(self[2])


TOOL_RETRY = RetryAfterPolicy(
    initial_interval=0.5,
    backoff_factor=2.0,
    max_interval=10.0,
    max_attempts=3,
    retry_on=should_retry_tool,
)
"""Retry policy for tool nodes: transient errors, 3 attempts in all."""

MODEL_RETRY = RetryAfterPolicy(
    initial_interval=1.0,
    backoff_factor=2.0,
    max_interval=10.0,
    max_attempts=3,
    retry_on=should_retry_model,
)
"""Retry policy for model nodes: transient errors no HTTP client retried, 3 attempts in all."""


def model_retry_for(action: Any) -> RetryAfterPolicy | None:
    """`MODEL_RETRY` for a step that calls models itself; None for a runnable such as a compiled
    subgraph (an agent loop), whose own nodes already retry: retrying both would multiply."""
    return None if isinstance(action, Runnable) else MODEL_RETRY


def transient_retry(
    *,
    max_attempts: int = 3,
    initial_interval: float = 0.5,
    max_interval: float = 10.0,
    jitter: bool = True,
    for_models: bool = False,
) -> RetryAfterPolicy:
    """A custom-sized transient-only policy (`for_models` skips errors the client retried)."""
    return RetryAfterPolicy(
        initial_interval=initial_interval,
        backoff_factor=2.0,
        max_interval=max_interval,
        max_attempts=max_attempts,
        jitter=jitter,
        retry_on=should_retry_model if for_models else should_retry_tool,
    )


# --- timeouts --------------------------------------------------------------------------------

# The openai client waits up to 8 s between its own retries; a little more covers scheduling.
_CLIENT_BACKOFF_S = 8.0
_DEADLINE_MARGIN_S = 5.0


class ModelDeadlineExceeded(TimeoutError):
    """A model call (the HTTP client's retries included) ran past its wall-clock deadline.

    A `TimeoutError`, so it counts against the endpoint's circuit and hands over to the
    fallback model; `MODEL_RETRY` does not retry it (the deadline already allowed for retries).
    """

    def __init__(self, service: str, deadline_s: float) -> None:
        self.service = service
        self.deadline_s = deadline_s
        super().__init__(
            f"model {service!r} did not answer within {deadline_s:.0f}s "
            "(request_timeout_s x (max_retries + 1) plus retry backoff)"
        )


def model_call_deadline_s(request_timeout_s: float, max_retries: int) -> float:
    """Wall-clock budget of one model call: every attempt the HTTP client makes, plus backoff.

    The HTTP timeout alone does not bound a call: it applies per attempt and, for streams, per
    read, so a slowly trickling stream never hits it.
    """
    if request_timeout_s <= 0:
        raise ValueError(f"request_timeout_s must be > 0, got {request_timeout_s!r}")
    retries = max(0, max_retries)
    return request_timeout_s * (retries + 1) + _CLIENT_BACKOFF_S * retries + _DEADLINE_MARGIN_S


def _default_node_timeout() -> TimeoutPolicy:
    defaults = Context()
    per_call = model_call_deadline_s(defaults.request_timeout_s, defaults.max_retries)
    # Idle (not run) timeout: every model call emits callback events, so a node that makes
    # several calls in a row (ToT, debate rounds, re-asks) is only cut when one of them hangs.
    # Twice a call's deadline leaves room for runs that raise the per-call settings.
    return TimeoutPolicy(idle_timeout=2 * per_call, refresh_on="auto")


MODEL_NODE_TIMEOUT = _default_node_timeout()
"""Backstop `timeout=` for async model-calling nodes, from the `Context` defaults (compiled into
the graph, so it cannot follow a run's context; the per-call deadline does)."""


# --- circuit breakers ------------------------------------------------------------------------


class CircuitState(enum.StrEnum):
    """Where a circuit is: calls flow (closed), fail fast (open), or one probe (half-open)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(ToolException):
    """A call was refused without trying because the service's circuit is open.

    The message is written for a model or a fallback: which service, why, and for how long.
    It is a `ToolException`, so inside a tool the agent's tool node hands it to the model as an
    error result; on a model call it triggers the fallback model (`FALLBACK_ERRORS`).
    """

    def __init__(self, service: str, *, failures: int, retry_in_s: float, probing: bool) -> None:
        self.service = service
        self.failures = failures
        self.retry_in_s = retry_in_s
        why = (
            "a probe call is already testing whether it recovered"
            if probing
            else f"it failed {failures} times in a row; the next try is allowed in "
            f"{retry_in_s:.0f}s"
        )
        super().__init__(
            f"Error: service {service!r} is unavailable (circuit open: {why}). "
            "Do not retry it now; use another tool or model, or answer without it."
        )


@dataclass(frozen=True)
class BreakerSnapshot:
    """A circuit's state, for metrics and `weft inspect`."""

    service: str
    state: CircuitState
    consecutive_failures: int
    opened_at: float | None


class CircuitBreaker:
    """Closed → (N consecutive transient failures) → open → (timeout) → half-open → one probe.

    A probe that succeeds (or fails with a non-transient error, which still proves the service
    answers) closes the circuit; a probe that fails transiently re-opens it for another timeout.
    Thread-safe; share one instance per service through `breaker_for`.
    """

    def __init__(
        self,
        service: str,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_timeout_s: float = DEFAULT_RESET_TIMEOUT_S,
        counts_as_failure: Callable[[BaseException], bool] = is_transient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s must be > 0, got {reset_timeout_s!r}")
        self.service = service
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._counts = counts_as_failure
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        """The current state (open turns half-open once the timeout has passed)."""
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def snapshot(self) -> BreakerSnapshot:
        """A copy of the state for reporting."""
        with self._lock:
            return BreakerSnapshot(
                self.service, self._state_locked(), self._failures, self._opened_at
            )

    def before_call(self) -> None:
        """Admit a call or raise `CircuitOpenError`; in half-open only one probe is admitted."""
        with self._lock:
            state = self._state_locked()
            if state is CircuitState.CLOSED:
                return
            if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                logger.info("circuit %r half-open: letting one probe through", self.service)
                return
            assert self._opened_at is not None
            retry_in = max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))
            raise CircuitOpenError(
                self.service,
                failures=self._failures,
                retry_in_s=retry_in,
                probing=state is CircuitState.HALF_OPEN,
            )

    def record_success(self) -> None:
        """The service answered: close the circuit and forget past failures."""
        with self._lock:
            if self._opened_at is not None:
                logger.info("circuit %r closed: the service answered", self.service)
            self._failures, self._opened_at, self._probe_in_flight = 0, None, False

    def record_failure(self, exc: BaseException) -> None:
        """Count `exc` if it says the service is failing; open the circuit at the threshold."""
        if not self._counts(exc):
            self.record_success()
            return
        with self._lock:
            self._failures += 1
            probe_failed = self._probe_in_flight
            self._probe_in_flight = False
            if probe_failed or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
                logger.warning(
                    "circuit %r open after %d consecutive failures (last: %s)",
                    self.service,
                    self._failures,
                    type(exc).__name__,
                )

    @contextmanager
    def guard(self, *, neutral: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Run the body as one call through the breaker (sync or async code inside).

        Args:
            neutral: Exceptions that say nothing about the service (e.g. arguments rejected
                before any request): neither a failure nor a success.
        """
        self.before_call()
        try:
            yield
        except CircuitOpenError:
            raise
        except neutral:
            self._release_probe()
            raise
        except Exception as exc:
            self.record_failure(exc)
            raise
        except BaseException:
            # Cancellation says nothing about the service either.
            self._release_probe()
            raise
        else:
            self.record_success()

    def _release_probe(self) -> None:
        with self._lock:
            self._probe_in_flight = False

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await `fn(*args, **kwargs)` through the breaker."""
        with self.guard():
            return await fn(*args, **kwargs)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)` through the breaker."""
        with self.guard():
            return fn(*args, **kwargs)


class BreakerRegistry:
    """Process-wide breakers by service name (never stored in graph state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(
        self,
        service: str,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_timeout_s: float = DEFAULT_RESET_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> CircuitBreaker:
        """The breaker for `service`, created with these thresholds (and clock) on first use."""
        with self._lock:
            breaker = self._breakers.get(service)
            if breaker is None:
                breaker = CircuitBreaker(
                    service,
                    failure_threshold=failure_threshold,
                    reset_timeout_s=reset_timeout_s,
                    clock=clock,
                )
                self._breakers[service] = breaker
            return breaker

    def snapshots(self) -> list[BreakerSnapshot]:
        """Every known breaker's state, sorted by service."""
        with self._lock:
            breakers = sorted(self._breakers.values(), key=lambda b: b.service)
        return [b.snapshot() for b in breakers]

    def degraded(self) -> list[str]:
        """Services whose circuit is not closed (for the `degraded` metric)."""
        return [s.service for s in self.snapshots() if s.state is not CircuitState.CLOSED]

    def reset(self, service: str | None = None) -> None:
        """Forget one breaker or all of them (tests, operator action)."""
        with self._lock:
            if service is None:
                self._breakers.clear()
            else:
                self._breakers.pop(service, None)


BREAKERS = BreakerRegistry()


def breaker_for(
    service: str,
    *,
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
    reset_timeout_s: float = DEFAULT_RESET_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> CircuitBreaker:
    """The process-wide breaker for `service` (settings apply when it is first created)."""
    return BREAKERS.get(
        service, failure_threshold=failure_threshold, reset_timeout_s=reset_timeout_s, clock=clock
    )


def model_service(model: Any) -> str:
    """Breaker and rate-limit key for a chat model: endpoint host (or class) plus model name.

    Per model, not per host: one deployment can be down or unknown while another on the same
    endpoint answers, which is exactly when a fallback model helps.
    """
    base_url = getattr(model, "openai_api_base", None) or getattr(model, "base_url", None)
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or "default"
    return endpoint_service(
        base_url if isinstance(base_url, str) else None, str(name), default=type(model).__name__
    )


def endpoint_service(base_url: str | None, model_name: str, *, default: str = "ChatOpenAI") -> str:
    """`model_service`'s key from its parts: `model:<host[:port] or default>/<model name>`."""
    where = base_url.split("://", 1)[-1].split("/", 1)[0] if base_url else default
    return f"model:{where}/{model_name}"


def tool_service(tool_name: str, metadata: Mapping[str, Any] | None) -> str:
    """Breaker key for a tool: its backend (`metadata["service"]`, shared by every tool that
    calls it) or, without one, the tool itself."""
    service = (metadata or {}).get("service")
    return f"service:{service}" if service else f"tool:{tool_name}"


class _BreakerGuarded(Runnable[Any, T]):
    """`runnable` behind `breaker` (and an async deadline), then `after` on the result.

    A plain Runnable rather than a RunnableLambda: it passes the caller's config straight to
    the wrapped runnable, so it adds no run of its own to traces and no per-call signature
    inspection to the hot path of every model call.
    """

    def __init__(
        self,
        runnable: Runnable[Any, Any],
        breaker: CircuitBreaker | Callable[[], CircuitBreaker],
        deadline_s: float | None,
        after: Callable[[Any], T] | None,
    ) -> None:
        self.runnable = runnable
        self._breaker = breaker
        self.deadline_s = deadline_s
        self.after = after
        self.name = "breaker"

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker for this call (looked up each time when given as a function, so a
        long-lived runnable follows `BREAKERS.reset()`)."""
        return self._breaker if isinstance(self._breaker, CircuitBreaker) else self._breaker()

    def _finish(self, result: Any) -> T:
        return self.after(result) if self.after is not None else cast(T, result)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> T:
        with self.breaker.guard():
            return self._finish(self.runnable.invoke(input, config, **kwargs))

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> T:
        breaker = self.breaker
        with breaker.guard():
            if self.deadline_s is None:
                return self._finish(await self.runnable.ainvoke(input, config, **kwargs))
            deadline = asyncio.timeout(self.deadline_s)
            try:
                async with deadline:
                    result = await self.runnable.ainvoke(input, config, **kwargs)
            except TimeoutError as exc:
                if not deadline.expired():  # a timeout from inside the call: keep it as is
                    raise
                raise ModelDeadlineExceeded(breaker.service, self.deadline_s) from exc
            return self._finish(result)


def with_breaker(
    runnable: Runnable[Any, Any],
    breaker: CircuitBreaker | Callable[[], CircuitBreaker],
    *,
    deadline_s: float | None = None,
    after: Callable[[Any], T] | None = None,
) -> Runnable[Any, T]:
    """Wrap a runnable (e.g. a tool-bound chat model) so every call goes through `breaker`.

    With `deadline_s`, an async call that takes longer is cancelled and raises
    `ModelDeadlineExceeded` (counted by the breaker); sync calls cannot be cancelled and rely
    on the HTTP client's own timeouts. `after`, when given, transforms each result (inside
    the breaker: an exception it raises counts as a failure of the call).
    """
    return _BreakerGuarded(runnable, breaker, deadline_s, after)


# --- model fallback --------------------------------------------------------------------------


def _fallback_error_types() -> tuple[type[BaseException], ...]:
    from langchain_core.exceptions import (
        ModelAPIError,
        ModelConnectionError,
        ModelNotFoundError,
        ModelRateLimitError,
        ModelTimeoutError,
    )

    found: list[type[BaseException]] = [
        *_TRANSIENT_TYPES,
        CircuitOpenError,
        ModelAPIError,
        ModelConnectionError,
        ModelNotFoundError,
        ModelRateLimitError,
        ModelTimeoutError,
    ]
    try:
        import openai

        found += [openai.RateLimitError, openai.InternalServerError, openai.NotFoundError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


FALLBACK_ERRORS = _fallback_error_types()
"""Errors that mean "this model is unavailable": transient, open circuit, model not found.
Bad requests and auth errors are not among them: the backup would most likely fail the same way."""


def with_model_fallback(
    primary: Runnable[Any, T], backup: Runnable[Any, T] | None
) -> Runnable[Any, T]:
    """`primary.with_fallbacks([backup])` on `FALLBACK_ERRORS`; `primary` when there is no backup.

    Bind tools to both models first (`model.bind_tools(tools)`), then combine: a fallback
    wrapper itself cannot bind tools.
    """
    if backup is None:
        return primary
    return primary.with_fallbacks([backup], exceptions_to_handle=FALLBACK_ERRORS)


def is_model_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the model could not be reached or did not answer in time (after
    retries and the fallback), rather than that the request or the code is wrong."""
    return isinstance(exc, (*FALLBACK_ERRORS, NodeTimeoutError)) or is_transient(exc)


MODEL_UNAVAILABLE_ANSWER = (
    "Sorry, I could not finish this request: the language model is not available right now. "
    "Please try again in a few minutes."
)
"""`final_answer` written by `on_model_failure`'s default update (for the end user)."""


def model_failure_update(node: str, exc: BaseException) -> dict[str, Any]:
    """The default `on_model_failure` update: a polite answer, success=False, which node/why."""
    return {
        "final_answer": MODEL_UNAVAILABLE_ANSWER,
        "success": False,
        "error": f"model unavailable in step {node!r}: {type(exc).__name__}: {exc}",
    }


def on_model_failure(
    goto: str,
    *,
    update: Callable[[Mapping[str, Any], NodeError], dict[str, Any]] | None = None,
) -> Callable[[Any, NodeError], Awaitable[Command[Any]]]:
    """A node `error_handler` for model-calling nodes: route a lasting model outage to `goto`.

    LangGraph calls it once the node's retry policy has given up. A model that stayed
    unavailable (`is_model_unavailable`: the fallback failed too, its circuit is open, the node
    timed out) sends the run to `goto` with `update(state, error)` (default:
    `model_failure_update`); any other error is re-raised, since a bug must not look like an
    outage.

    Args:
        goto: The node that continues without this step's answer (a fallback or finalize step).
        update: Builds the state update from the failed node's input state and the error.
    """

    async def handle_model_failure(state: Any, error: NodeError) -> Command[Any]:
        if not is_model_unavailable(error.error):
            raise error.error
        logger.warning(
            "step %r: model unavailable (%s); continuing at %r",
            error.node,
            type(error.error).__name__,
            goto,
        )
        values = update(state, error) if update else model_failure_update(error.node, error.error)
        return Command(goto=goto, update=values)

    return handle_model_failure


async def sleep_retry_after(exc: BaseException, *, cap_s: float = MAX_RETRY_AFTER_S) -> bool:
    """Wait out `exc`'s Retry-After (up to `cap_s`) in hand-written retry loops; True if waited."""
    wait = retry_after_s(exc)
    if wait is None or wait > cap_s:
        return False
    await asyncio.sleep(wait)
    return True


__all__ = [
    "BREAKERS",
    "FALLBACK_ERRORS",
    "MAX_RETRY_AFTER_S",
    "MODEL_NODE_TIMEOUT",
    "MODEL_RETRY",
    "MODEL_UNAVAILABLE_ANSWER",
    "TOOL_RETRY",
    "TRANSIENT_STATUS_CODES",
    "BreakerRegistry",
    "BreakerSnapshot",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ModelDeadlineExceeded",
    "RetryAfterPolicy",
    "breaker_for",
    "client_retries_taken",
    "endpoint_service",
    "is_model_unavailable",
    "is_transient",
    "model_call_deadline_s",
    "model_failure_update",
    "model_retry_for",
    "model_service",
    "on_model_failure",
    "retry_after_s",
    "should_retry_model",
    "should_retry_tool",
    "sleep_retry_after",
    "status_code_of",
    "tool_service",
    "transient_retry",
    "with_breaker",
    "with_model_fallback",
]
