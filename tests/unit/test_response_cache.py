"""The deterministic-call cache: canonical keys, id-less marked hits, LRU bound, accounting."""

from __future__ import annotations

from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration

from nodes.response_cache import ResponseCache, request_key
from nodes.state import ANSWERED_BY_KEY, CACHE_HIT_KEY, usage_update

LLM = '{"model": "m", "temperature": 0.0}---[("tools", [])]'


def _history(completion_id: str, tokens: int, *, args: str = "6*7") -> str:
    return dumps(
        [
            HumanMessage("6*7?", id="h1"),
            AIMessage(
                "",
                id=f"run-{completion_id}",
                tool_calls=[{"name": "calculate", "args": {"expression": args}, "id": "c1"}],
                response_metadata={"id": completion_id, "system_fingerprint": "fp"},
                usage_metadata={
                    "input_tokens": tokens,
                    "output_tokens": 1,
                    "total_tokens": tokens + 1,
                },
            ),
            ToolMessage("42", tool_call_id="c1"),
        ]
    )


def test_the_key_ignores_what_the_provider_never_sees() -> None:
    assert request_key(_history("chatcmpl-1", 10), LLM) == request_key(
        _history("chatcmpl-2", 99), LLM
    )


def test_the_key_follows_messages_tool_calls_and_model_settings() -> None:
    base = request_key(_history("a", 1), LLM)
    assert request_key(_history("a", 1, args="6*8"), LLM) != base
    assert request_key(_history("a", 1), LLM.replace('"m"', '"other"')) != base
    assert request_key(_history("a", 1), LLM.replace("[]", "['calculate']")) != base
    assert request_key(dumps([HumanMessage("6*7 ?")]), LLM) != request_key(
        dumps([HumanMessage("6*7?")]), LLM
    )


def _answer(text: str) -> list[ChatGeneration]:
    message = AIMessage(
        text, id="run-1", usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    )
    return [ChatGeneration(message=message)]


def test_hits_are_marked_copies_without_the_original_id() -> None:
    cache = ResponseCache()
    prompt = dumps([HumanMessage("hi")])
    assert cache.lookup(prompt, LLM) is None
    cache.update(prompt, LLM, _answer("hello"))

    first, second = cache.lookup(prompt, LLM), cache.lookup(prompt, LLM)
    assert first is not None and second is not None
    hit = first[0].message  # type: ignore[attr-defined]
    assert hit.content == "hello" and hit.id is None
    assert hit.usage_metadata["input_tokens"] == 5, "the conversation really is that long"
    assert hit.usage_metadata[CACHE_HIT_KEY] is True
    hit.content = "mutated by a caller"
    assert second[0].message.content == "hello"  # type: ignore[attr-defined]
    assert (cache.hits, cache.misses) == (2, 1)


def test_entries_are_evicted_least_recently_used_first() -> None:
    cache = ResponseCache(maxsize=2)
    prompts = [dumps([HumanMessage(f"q{i}")]) for i in range(3)]
    cache.update(prompts[0], LLM, _answer("a0"))
    cache.update(prompts[1], LLM, _answer("a1"))
    assert cache.lookup(prompts[0], LLM) is not None  # q0 is now the most recent
    cache.update(prompts[2], LLM, _answer("a2"))
    assert len(cache) == 2
    assert cache.lookup(prompts[1], LLM) is None
    assert cache.lookup(prompts[0], LLM) is not None


def test_usage_counts_a_hit_as_a_call_with_zero_tokens_for_the_model_that_answered() -> None:
    meta = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    assert usage_update("openai:a", {**meta, CACHE_HIT_KEY: True}) == {
        "openai:a": {
            "calls": 1,
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "cache_hits": 1,
        }
    }
    assert usage_update("openai:a", {**meta, ANSWERED_BY_KEY: "openai:b"}) == {
        "openai:b": {"calls": 1, "input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    }
