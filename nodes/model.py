"""The one way nodes obtain chat models.

`resolve_model(role, context, override)` picks the model for a role (planner, judge, ...): an
object or id given to `build_graph(model=...)` wins, then the context's per-role override, then
`Context.model`. Ids look like `"openai:gpt-4.1-mini"` and are served by `ChatOpenAI`, so any
OpenAI-compatible endpoint works through `OPENAI_BASE_URL` (Ollama, vLLM, llama.cpp, LM Studio,
OpenRouter, or `weft mock-llm`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from nodes.context import Context, ModelRole

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
    model_id: str, *, temperature: float = 0.0, timeout_s: float = 60.0, max_retries: int = 2
) -> BaseChatModel:
    """Build (or reuse) the chat model for `model_id` from the environment's credentials.

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
    # Local OpenAI-compatible servers ignore the key, but the openai client insists on one.
    return _cached_chat_openai(
        name, temperature, timeout_s, max_retries, base_url, api_key or "not-needed"
    )


@functools.lru_cache(maxsize=64)
def _cached_chat_openai(
    name: str,
    temperature: float,
    timeout_s: float,
    max_retries: int,
    base_url: str | None,
    api_key: str,
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
    )


def model_name_of(model: BaseChatModel) -> str:
    """A readable id for usage accounting of an injected model object."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def resolve_model(
    role: ModelRole, context: Context, override: ModelOverride = None
) -> tuple[BaseChatModel, str]:
    """Return `(model, model_id)` for `role`; `model_id` keys the `usage` channel."""
    spec: ModelSpec | None
    if isinstance(override, Mapping):
        spec = override.get(role) or override.get("default")
    else:
        spec = override
    if isinstance(spec, BaseChatModel):
        return spec, model_name_of(spec)
    model_id = spec or context.model_for(role)
    model = load_chat_model(
        model_id,
        temperature=context.temperature,
        timeout_s=context.request_timeout_s,
        max_retries=context.max_retries,
    )
    return model, model_id


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
