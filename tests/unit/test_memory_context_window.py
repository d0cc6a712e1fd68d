"""Token counting, the lexical test embedder, the model window and summary cut points."""

from __future__ import annotations

import math

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from memory.embeddings import HashingEmbeddings, make_embeddings
from memory.settings import MemorySettings, MemorySettingsError
from memory.tokens import count_message_tokens, count_tokens, tokenizer_name
from nodes.context_window import model_window, summary_cut, transcript
from nodes.state import add_context_windows, merge_degraded


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_tokens_come_from_tiktoken_not_the_estimate() -> None:
    assert tokenizer_name() == "tiktoken"
    # cl100k: "hello world" is 2 tokens; the chars/4 estimate would say 3.
    assert count_tokens("hello world") == 2


def test_message_tokens_include_tool_calls_and_overhead() -> None:
    plain = AIMessage("x")
    calling = AIMessage(
        "x",
        tool_calls=[
            {"name": "calculate", "args": {"expression": "6*7"}, "id": "c1", "type": "tool_call"}
        ],
    )
    assert count_message_tokens([plain]) == 4 + count_tokens("x")
    assert count_message_tokens([calling]) > count_message_tokens([plain])


def test_hash_embeddings_are_deterministic_unit_vectors_with_lexical_similarity() -> None:
    emb = HashingEmbeddings(128)
    a, b, c = emb.embed_documents(
        ["the user prefers teal", "teal is what the user prefers", "quarterly tax deadline"]
    )
    assert a == emb.embed_query("the user prefers teal")
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-9)
    assert cosine(a, b) > 0.6 > 0.2 > cosine(a, c)
    assert len(emb.embed_query("")) == 128


def test_settings_pick_the_hash_embedder_offline_and_reject_unknown_choices() -> None:
    settings = MemorySettings.from_env({"WEFT_EMBEDDINGS": "hash", "WEFT_EMBEDDING_DIMS": "32"})
    embeddings, dims = make_embeddings(settings)
    assert isinstance(embeddings, HashingEmbeddings) and dims == 32
    with pytest.raises(MemorySettingsError, match="'bert'.*auto, openai:<model>, minilm, hash"):
        MemorySettings.from_env({"WEFT_EMBEDDINGS": "bert"})
    with pytest.raises(MemorySettingsError, match="got 'many'"):
        MemorySettings.from_env({"WEFT_EMBEDDING_DIMS": "many"})


def test_openai_embeddings_honour_the_base_url() -> None:
    settings = MemorySettings.from_env(
        {
            "WEFT_EMBEDDINGS": "auto",
            "OPENAI_API_KEY": "k",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    embeddings, dims = make_embeddings(settings)
    assert type(embeddings).__name__ == "OpenAIEmbeddings"
    assert embeddings.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    assert dims == 1536


def conversation(turns: int, words: int = 40) -> list:
    messages: list = [SystemMessage("system prompt")]
    for i in range(turns):
        messages.append(HumanMessage(f"question {i} " + "word " * words, id=f"h{i}"))
        call = {
            "name": "calculate",
            "args": {"expression": str(i)},
            "id": f"c{i}",
            "type": "tool_call",
        }
        messages.append(AIMessage("", tool_calls=[call], id=f"a{i}"))
        messages.append(ToolMessage(str(i), tool_call_id=f"c{i}", id=f"t{i}"))
        messages.append(AIMessage(f"answer {i} " + "word " * words, id=f"r{i}"))
    return messages


def test_model_window_is_unchanged_under_budget() -> None:
    messages = conversation(2)
    assert model_window(messages, 10_000) == messages


def test_model_window_fits_budget_keeps_system_and_whole_turns() -> None:
    messages = conversation(20)
    budget = 400
    window = model_window(messages, budget)

    assert count_message_tokens(window) <= budget
    assert window[0] == messages[0]
    assert isinstance(window[1], HumanMessage)
    assert window[-1] == messages[-1]
    kept_calls = {c["id"] for m in window if isinstance(m, AIMessage) for c in m.tool_calls}
    kept_results = {m.tool_call_id for m in window if isinstance(m, ToolMessage)}
    assert kept_calls == kept_results


def test_model_window_falls_back_inside_a_huge_turn() -> None:
    messages = [SystemMessage("s"), HumanMessage("word " * 2000)]
    for i in range(5):
        call = {
            "name": "calculate",
            "args": {"expression": "1"},
            "id": f"c{i}",
            "type": "tool_call",
        }
        messages += [AIMessage("", tool_calls=[call]), ToolMessage("1", tool_call_id=f"c{i}")]
    window = model_window(messages, 200)
    assert count_message_tokens(window) <= 200
    assert isinstance(window[1], AIMessage)  # starts at a call, never at an orphan result


def test_summary_cut_keeps_whole_recent_turns_within_the_keep_budget() -> None:
    messages = conversation(10)[1:]
    cut = summary_cut(messages, keep_tokens=300)
    assert isinstance(messages[cut], HumanMessage)
    assert count_message_tokens(messages[cut:]) <= 300
    assert count_message_tokens(messages[cut - 4 :]) > 300
    # A single turn larger than the keep budget is still kept whole.
    assert summary_cut(messages, keep_tokens=1) == len(messages) - 4
    assert summary_cut([AIMessage("only")], keep_tokens=10) == 0


def test_transcript_names_speakers_and_tools() -> None:
    text = transcript(conversation(1, words=1)[1:])
    assert text.splitlines() == [
        "User: question 0 word",
        "Assistant:  [called calculate]",
        "Tool result: 0",
        "Assistant: answer 0 word",
    ]


def test_reducers_dedupe_degraded_and_bound_window_records() -> None:
    assert merge_degraded(["memory"], ["memory", "tools"]) == ["memory", "tools"]
    records = [
        {
            "model": "m",
            "input_tokens": i,
            "window_tokens": 1,
            "utilisation": 0.0,
            "trimmed_messages": 0,
        }
        for i in range(80)
    ]
    kept = add_context_windows(records[:40], records[40:])  # type: ignore[arg-type]
    assert [r["input_tokens"] for r in kept] == list(range(30, 80))
