"""The response cache for deterministic model calls (temperature 0), process-wide.

It plugs into LangChain's own cache hook (`BaseChatModel(cache=...)`), which checks the cache
before the rate limiter and before any HTTP request, for plain, tool-bound
(`bind_tools`) and structured (`with_structured_output`) calls alike, streaming or not. What
LangChain passes in is a `prompt` (the serialised messages) and an `llm_string` (the model's
serialised settings — provider class, model name, base URL, temperature — plus the call's
parameters: `tools`, `tool_choice`, `response_format`, `stop`, ...). Three things in LangChain's
`InMemoryCache` would be wrong for us, so this class does them differently:

* **Key.** LangChain's prompt string includes each earlier reply's `response_metadata`
  (completion id, fingerprint) and `usage_metadata`, which the provider never sees; every
  multi-turn request would miss. The key here keeps only what is sent: message type, content,
  name, tool calls (name, arguments, id) and tool-call ids, plus the whole `llm_string`.
* **Message ids.** A hit would return the first reply's message id, and `add_messages` would
  then *replace* that earlier message instead of appending. Hits come back without an id.
* **Accounting.** A hit keeps its token counts (the conversation really is that long, which
  context-window accounting needs) but is marked with `CACHE_HIT_KEY` in its `usage_metadata`,
  so `nodes.state.usage_update` counts it as a call with zero tokens and one `cache_hits`.

Only models the gateway builds at temperature 0 with `Context.response_cache` on get this
cache (`nodes/model.py`); entries are kept least-recently-used, at most `maxsize`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.outputs import ChatGeneration, Generation

from nodes.state import CACHE_HIT_KEY

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 1024

# Message fields that are not part of the request a provider receives.
_NOT_SENT = frozenset({"id", "response_metadata", "usage_metadata"})


def _canonical(node: Any) -> Any:
    """The request-relevant part of LangChain's serialised messages (see module doc)."""
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("lc") == 1 and node.get("type") == "constructor":
        kwargs = {
            key: _canonical(value)
            for key, value in (node.get("kwargs") or {}).items()
            if key not in _NOT_SENT
        }
        return {"class": (node.get("id") or [""])[-1], **kwargs}
    return {key: _canonical(value) for key, value in node.items()}


def request_key(prompt: str, llm_string: str) -> str:
    """A digest of the canonical request: messages as sent, model, parameters and tools."""
    try:
        messages: Any = _canonical(json.loads(prompt))
    except ValueError:
        messages = prompt  # not LangChain JSON (e.g. a plain-text LLM prompt): use it verbatim
    canonical = json.dumps({"messages": messages, "model": llm_string}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _as_hit(generation: Generation) -> Generation:
    if not isinstance(generation, ChatGeneration):
        return generation.model_copy(deep=True)
    message = generation.message
    usage = dict(getattr(message, "usage_metadata", None) or {})
    usage[CACHE_HIT_KEY] = True
    update: dict[str, Any] = {"id": None}
    if hasattr(message, "usage_metadata"):
        update["usage_metadata"] = usage
    return ChatGeneration(
        message=message.model_copy(update=update, deep=True),
        generation_info=generation.generation_info,
    )


class ResponseCache(BaseCache):
    """LRU cache of chat results keyed on the canonical request; hits are marked, id-less."""

    def __init__(self, *, maxsize: int = DEFAULT_MAX_ENTRIES) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, list[Generation]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Copies of the cached generations marked as hits, or None."""
        key = request_key(prompt, llm_string)
        with self._lock:
            stored = self._entries.get(key)
            if stored is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        logger.debug("response cache hit %s", key[:12])
        return [_as_hit(g) for g in stored]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store copies (callers go on to use, and LangChain mutates, the originals)."""
        key = request_key(prompt, llm_string)
        stored = [g.model_copy(deep=True) for g in return_val]
        with self._lock:
            self._entries[key] = stored
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    # In memory and lock-protected: no need for BaseCache's default thread-pool hop.
    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Async `lookup`."""
        return self.lookup(prompt, llm_string)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Async `update`."""
        self.update(prompt, llm_string, return_val)

    def clear(self, **kwargs: Any) -> None:
        """Forget every entry and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


RESPONSE_CACHE = ResponseCache()
"""The process-wide cache the gateway attaches to deterministic models."""

__all__ = ["DEFAULT_MAX_ENTRIES", "RESPONSE_CACHE", "ResponseCache", "request_key"]
