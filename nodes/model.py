"""The one way nodes obtain chat models: the model gateway.

`resolve_model(role, context, override)` picks the model for a role (planner, judge, ...): an
object or id given to `build_graph(model=...)` wins, then the context's per-role override, then
`Context.model`. Ids look like `"openai:gpt-4.1-mini"` and are served by `ChatOpenAI`, so any
OpenAI-compatible endpoint works through `OPENAI_BASE_URL` (Ollama, vLLM, llama.cpp, LM Studio,
OpenRouter, or `weft mock-llm`).

What it returns is a `ChatGateway`, used like the chat model itself (`ainvoke`, `bind_tools`,
`with_structured_output`), which adds in one place, for every model call of every pattern:

* **Fallback** — `Context.fallback_model` answers when the primary is unavailable (transient
  error after the client's retries, open circuit, deadline, model not found): tools and
  structured output are bound to both models, then combined with `with_fallbacks`.
* **Circuit breakers** — one per endpoint and model, process-wide (`nodes/resilience.py`); an
  open primary circuit goes straight to the fallback without a request.
* **A deadline per call** — `request_timeout_s x (max_retries + 1)` plus backoff (async calls).
* **Rate limiting** — `Context.model_requests_per_second`: one LangChain `InMemoryRateLimiter`
  per endpoint and model, shared by every run in the process (built models only).
* **Response cache** — `Context.response_cache` at temperature 0: repeated identical requests
  are answered from `nodes/response_cache.py` (built models only).
* **Accounting** — each reply is marked with the model id that answered, so `usage` is
  counted for the backup when the backup answered, and cache hits cost zero tokens
  (`nodes.state.usage_update`).

A model object passed to `build_graph(model=...)` is used as configured (its own rate limiter
and cache, if any); fallback, breaker and deadline still apply.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from langchain_core.caches import BaseCache
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.runnables import Runnable, RunnableConfig

from nodes.context import Context, ModelRole
from nodes.resilience import (
    breaker_for,
    endpoint_service,
    model_call_deadline_s,
    model_service,
    with_breaker,
    with_model_fallback,
)
from nodes.response_cache import RESPONSE_CACHE
from nodes.state import ANSWERED_BY_KEY

logger = logging.getLogger(__name__)

SUPPORTED_PROVIDERS = ("openai",)

ModelSpec = BaseChatModel | str
ModelOverride = ModelSpec | Mapping[str, ModelSpec] | None
"""What `build_graph(model=...)` accepts: one model (object or id) for every role, or a mapping
from role name to model; roles missing from the mapping use the context."""


class ModelConfigurationError(RuntimeError):
    """The model cannot be built: unknown provider, malformed id or missing credentials."""


def parse_model_id(model_id: str) -> tuple[str, str]:
    """Split `"provider:name"` into its parts; a bare name means provider `openai`."""
    provider, sep, name = model_id.partition(":")
    if not sep:
        provider, name = "openai", model_id
    provider, name = provider.strip().lower(), name.strip()
    if not name:
        raise ModelConfigurationError(
            f"model id {model_id!r} has no model name; expected 'provider:name', "
            "e.g. 'openai:gpt-4.1-mini'"
        )
    if provider not in SUPPORTED_PROVIDERS:
        raise ModelConfigurationError(
            f"unknown model provider {provider!r} in {model_id!r}; supported: "
            f"{', '.join(SUPPORTED_PROVIDERS)} (any OpenAI-compatible server works as 'openai:' "
            "with OPENAI_BASE_URL)"
        )
    return provider, name


def load_chat_model(
    model_id: str,
    *,
    temperature: float = 0.0,
    timeout_s: float = 60.0,
    max_retries: int = 2,
    requests_per_second: float | None = None,
    cache: bool = False,
) -> BaseChatModel:
    """Build (or reuse) the chat model for `model_id` from the environment's credentials.

    Args:
        model_id: `"provider:name"`.
        temperature: Sampling temperature.
        timeout_s: HTTP timeout per request.
        max_retries: Retries of the HTTP client on transient errors.
        requests_per_second: Client-side rate limit shared by every model object for the same
            endpoint and model (`rate_limiter_for`); None for no limit.
        cache: Attach the process-wide response cache; honoured only at temperature 0.

    Raises:
        ModelConfigurationError: with one sentence saying what to set, when neither
            OPENAI_API_KEY nor OPENAI_BASE_URL is present.
    """
    _, name = parse_model_id(model_id)
    api_key = os.environ.get("OPENAI_API_KEY") or None
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    if api_key is None and base_url is None:
        raise ModelConfigurationError(
            f"No credentials for model {model_id!r}: set OPENAI_API_KEY (and OPENAI_BASE_URL "
            "to use another OpenAI-compatible server such as Ollama or vLLM), or run "
            "`weft demo react` to see a graph work offline with scripted answers."
        )
    limiter = (
        rate_limiter_for(endpoint_service(base_url, name), requests_per_second)
        if requests_per_second is not None
        else None
    )
    # A cached answer to a sampled (temperature > 0) request would hide the sampling.
    response_cache = RESPONSE_CACHE if cache and temperature == 0 else None
    # Local OpenAI-compatible servers ignore the key, but the openai client insists on one.
    return _cached_chat_openai(
        name,
        temperature,
        timeout_s,
        max_retries,
        base_url,
        api_key or "not-needed",
        limiter,
        response_cache,
    )


@functools.lru_cache(maxsize=64)
def _cached_chat_openai(
    name: str,
    temperature: float,
    timeout_s: float,
    max_retries: int,
    base_url: str | None,
    api_key: str,
    rate_limiter: InMemoryRateLimiter | None,
    cache: BaseCache | None,
) -> BaseChatModel:
    # Imported lazily: langchain_openai pulls in openai and tiktoken, which most unit tests
    # (scripted models) never need.
    from langchain_openai import ChatOpenAI

    logger.debug("building ChatOpenAI model=%s base_url=%s", name, base_url)
    return ChatOpenAI(
        model=name,
        temperature=temperature,
        timeout=timeout_s,
        max_retries=max_retries,
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]
        stream_usage=True,
        rate_limiter=rate_limiter,
        # False, not None: None would make LangChain fall back to a global cache if one is set.
        cache=cache if cache is not None else False,
    )


_LIMITERS_LOCK = threading.Lock()
_LIMITERS: dict[tuple[str, float], InMemoryRateLimiter] = {}


def rate_limiter_for(service: str, requests_per_second: float) -> InMemoryRateLimiter:
    """The process-wide token bucket for `service` at this rate (created on first use).

    Raises:
        ValueError: naming `Context.model_requests_per_second` when the rate is not positive.
    """
    if not requests_per_second > 0:
        raise ValueError(
            "context field 'model_requests_per_second' must be > 0 (or None for no limit), "
            f"got {requests_per_second!r}"
        )
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((service, requests_per_second))
        if limiter is None:
            limiter = InMemoryRateLimiter(
                requests_per_second=requests_per_second,
                # Poll often enough not to add a whole interval of latency at high rates.
                check_every_n_seconds=min(0.1, 0.25 / requests_per_second),
            )
            _LIMITERS[(service, requests_per_second)] = limiter
        return limiter


def model_name_of(model: BaseChatModel) -> str:
    """A readable id for usage accounting of an injected model object."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def _mark_answered_by(output: Any, model_id: str) -> Any:
    """Stamp the reply (or an `include_raw` result's raw reply) with the model that answered."""
    message = output.get("raw") if isinstance(output, dict) else output
    if not isinstance(message, AIMessage):
        return output
    usage: dict[str, Any] = dict(message.usage_metadata or {})
    usage.setdefault("input_tokens", 0)
    usage.setdefault("output_tokens", 0)
    usage.setdefault("total_tokens", 0)
    usage[ANSWERED_BY_KEY] = model_id
    marked = message.model_copy(update={"usage_metadata": usage})
    return {**output, "raw": marked} if isinstance(output, dict) else marked


class ChatGateway(Runnable[LanguageModelInput, BaseMessage]):
    """A role's chat model with fallback, breakers, deadline, rate limit and cache (module doc).

    Use it like the chat model: `await gateway.ainvoke(messages)`,
    `gateway.bind_tools(tools)`, `gateway.with_structured_output(Schema, include_raw=True)`.
    """

    def __init__(
        self,
        primary: BaseChatModel,
        model_id: str,
        *,
        backup: BaseChatModel | None = None,
        backup_id: str | None = None,
        failure_threshold: int,
        reset_timeout_s: float,
        deadline_s: float | None,
    ) -> None:
        self.primary = primary
        self.model_id = model_id
        self.backup = backup
        self.backup_id = backup_id or (model_name_of(backup) if backup is not None else None)
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.deadline_s = deadline_s
        self.name = f"gateway[{model_id}]"
        # Bound runnables by tool set: building them (breakers, fallback, the models' own
        # bind_tools) on every call was most of the agent loop's overhead.
        self._bound: dict[tuple[Any, ...], tuple[Runnable[LanguageModelInput, Any], Any]] = {}
        self._plain: Runnable[LanguageModelInput, Any] | None = None

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, BaseMessage]:
        """Both models with `tools` bound, behind their breakers, primary then backup."""
        tool_list = list(tools)
        key = (tuple(id(t) for t in tool_list), tuple(sorted(kwargs.items(), key=str)))
        cached = self._bound.get(key)
        if cached is None:
            runnable = self._route(lambda m: m.bind_tools(tool_list, **kwargs))
            # The tools are kept with the entry so their ids cannot be reused by other objects.
            cached = self._bound[key] = (runnable, tool_list)
        return cast(Runnable[LanguageModelInput, BaseMessage], cached[0])

    def with_structured_output(
        self, schema: Any, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Both models asked for `schema` (`with_structured_output`), primary then backup."""
        return self._route(lambda m: m.with_structured_output(schema, **kwargs))

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        """One plain call (sync: no deadline, the HTTP client's timeouts apply)."""
        return cast(BaseMessage, self._plain_route().invoke(input, config, **kwargs))

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        """One plain call."""
        return cast(BaseMessage, await self._plain_route().ainvoke(input, config, **kwargs))

    def _plain_route(self) -> Runnable[LanguageModelInput, Any]:
        if self._plain is None:
            self._plain = self._route(lambda m: m)
        return self._plain

    def _route(
        self, prepare: Callable[[BaseChatModel], Runnable[LanguageModelInput, Any]]
    ) -> Runnable[LanguageModelInput, Any]:
        primary = self._guarded(prepare(self.primary), self.primary, self.model_id)
        backup = (
            self._guarded(prepare(self.backup), self.backup, self.backup_id or "backup")
            if self.backup is not None
            else None
        )
        return with_model_fallback(primary, backup)

    def _guarded(
        self, runnable: Runnable[LanguageModelInput, Any], model: BaseChatModel, model_id: str
    ) -> Runnable[LanguageModelInput, Any]:
        breaker = functools.partial(
            breaker_for,
            model_service(model),
            failure_threshold=self.failure_threshold,
            reset_timeout_s=self.reset_timeout_s,
        )
        mark = functools.partial(_mark_answered_by, model_id=model_id)
        return with_breaker(runnable, breaker, deadline_s=self.deadline_s, after=mark)


def resolve_model(
    role: ModelRole, context: Context, override: ModelOverride = None
) -> tuple[ChatGateway, str]:
    """Return `(gateway, model_id)` for `role`; `model_id` keys the `usage` channel.

    Raises:
        ModelConfigurationError: an id is malformed or has no credentials.
        ValueError: `Context.model_requests_per_second` is not positive.
    """
    spec: ModelSpec | None
    if isinstance(override, Mapping):
        spec = override.get(role) or override.get("default")
    else:
        spec = override
    if isinstance(spec, BaseChatModel):
        primary, model_id = spec, model_name_of(spec)
    else:
        model_id = spec or context.model_for(role)
        primary = _build(model_id, context)
    backup_id = context.fallback_model
    backup = _build(backup_id, context) if backup_id and backup_id != model_id else None
    settings = (
        model_id,
        backup_id if backup is not None else None,
        context.circuit_failure_threshold,
        context.circuit_reset_s,
        model_call_deadline_s(context.request_timeout_s, context.max_retries),
    )
    # Same models and settings, same gateway: its bound runnables are then reused across calls.
    key = (id(primary), id(backup), *settings)
    with _GATEWAYS_LOCK:
        cached = _GATEWAYS.get(key)
    if cached is not None and cached.primary is primary and cached.backup is backup:
        return cached, model_id
    gateway = ChatGateway(
        primary,
        model_id,
        backup=backup,
        backup_id=settings[1],
        failure_threshold=settings[2],
        reset_timeout_s=settings[3],
        deadline_s=settings[4],
    )
    with _GATEWAYS_LOCK:
        if len(_GATEWAYS) >= MAX_CACHED_GATEWAYS:
            _GATEWAYS.pop(next(iter(_GATEWAYS)))  # the oldest entry
        _GATEWAYS[key] = gateway
    return gateway, model_id


MAX_CACHED_GATEWAYS = 256
_GATEWAYS: dict[tuple[Any, ...], ChatGateway] = {}
_GATEWAYS_LOCK = threading.Lock()


def _build(model_id: str, context: Context) -> BaseChatModel:
    return load_chat_model(
        model_id,
        temperature=context.temperature,
        timeout_s=context.request_timeout_s,
        max_retries=context.max_retries,
        requests_per_second=context.model_requests_per_second,
        cache=context.response_cache,
    )


def message_text(content: Any) -> str:
    """Plain text of a message `content` (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return str(content)
