"""Model ids, credentials and role resolution."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.context import Context
from nodes.model import ModelConfigurationError, load_chat_model, parse_model_id, resolve_model


def test_model_ids_parse_and_bad_ones_explain_the_format() -> None:
    assert parse_model_id("openai:gpt-4.1-mini") == ("openai", "gpt-4.1-mini")
    assert parse_model_id("gpt-4.1") == ("openai", "gpt-4.1")
    with pytest.raises(ModelConfigurationError, match="supported: openai"):
        parse_model_id("anthropic:claude")
    with pytest.raises(ModelConfigurationError, match="has no model name"):
        parse_model_id("openai:")


def test_missing_credentials_is_one_sentence_saying_what_to_set() -> None:
    with pytest.raises(ModelConfigurationError) as info:
        load_chat_model("openai:gpt-4.1-mini")
    text = str(info.value)
    assert "set OPENAI_API_KEY" in text and "OPENAI_BASE_URL" in text and "\n" not in text


def test_a_base_url_alone_is_enough_for_local_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = load_chat_model("openai:llama3", temperature=0.2, timeout_s=5, max_retries=1)
    assert model.model_name == "llama3"  # type: ignore[attr-defined]
    assert model.max_retries == 1  # type: ignore[attr-defined]
    assert model.request_timeout == 5  # type: ignore[attr-defined]


def test_build_graph_override_beats_context(
    scripted_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    judge = scripted_model("x", model_name="judge-model")
    ctx = Context(model="openai:base")
    model, model_id = resolve_model("judge", ctx, {"judge": judge})
    assert model.primary is judge and model_id == "judge-model"
    _, model_id = resolve_model("planner", ctx, {"judge": judge})
    assert model_id == "openai:base"
