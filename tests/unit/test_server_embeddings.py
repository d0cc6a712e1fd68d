"""The server store's embedder (graphs/server/embeddings.py): an explicit, logged choice."""

from __future__ import annotations

import logging
import math

import pytest

from graphs.server.embeddings import INDEX_DIMS, server_choice, server_embeddings
from memory.embeddings import HashingEmbeddings, ZeroPaddedEmbeddings, minilm_available
from memory.settings import MemorySettings

LOGGER = "graphs.server.embeddings"


def test_openai_when_a_key_is_configured() -> None:
    settings = MemorySettings(openai_api_key="sk-test", openai_base_url="http://127.0.0.1:9")
    embedder = server_embeddings(settings)
    assert type(embedder).__name__ == "OpenAIEmbeddings"
    assert embedder.dimensions == INDEX_DIMS  # type: ignore[attr-defined]


def test_auto_without_key_or_extra_warns_and_uses_hash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("graphs.server.embeddings.minilm_available", lambda: False)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        embedder = server_embeddings(MemorySettings())
    assert isinstance(embedder, HashingEmbeddings) and embedder.dims == INDEX_DIMS
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "LEXICAL" in record.getMessage()


def test_hash_chosen_on_purpose_is_logged_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        server_embeddings(MemorySettings(embeddings="hash"))
    assert [r.levelno for r in caplog.records if r.name == LOGGER] == [logging.INFO]


def test_auto_prefers_the_offline_extra_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("graphs.server.embeddings.minilm_available", lambda: True)
    assert server_choice(MemorySettings()) == "minilm"
    assert server_choice(MemorySettings(openai_api_key="k")).startswith("openai:")


def test_padding_keeps_every_cosine_similarity() -> None:
    inner = HashingEmbeddings(64)
    padded = ZeroPaddedEmbeddings(inner, INDEX_DIMS)
    texts = ["the user likes teal", "teal is the user's colour", "taxes are due"]

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    small, big = inner.embed_documents(texts), padded.embed_documents(texts)
    assert all(len(v) == INDEX_DIMS for v in big)
    assert cos(big[0], big[1]) == pytest.approx(cos(small[0], small[1]))
    assert cos(big[0], big[2]) == pytest.approx(cos(small[0], small[2]))
    with pytest.raises(ValueError, match="cannot pad a 64-d vector to 8 dims"):
        ZeroPaddedEmbeddings(inner, 8).embed_query("x")


@pytest.mark.skipif(not minilm_available(), reason="offline embeddings extra not installed")
def test_minilm_is_padded_to_the_index_size() -> None:
    embedder = server_embeddings(MemorySettings(embeddings="minilm"))
    assert isinstance(embedder, ZeroPaddedEmbeddings)
    vector = embedder.embed_query("teal")
    assert len(vector) == INDEX_DIMS and any(vector[:384]) and not any(vector[384:])
