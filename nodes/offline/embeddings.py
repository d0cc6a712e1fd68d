"""Deterministic stand-in for an OpenAI-compatible `/v1/embeddings` endpoint.

Used by the scripted server so that code which embeds through `OpenAIEmbeddings` (for example
the debate graph's convergence check) runs offline. Vectors are signed feature hashes of the
lower-cased words, L2-normalised: identical texts get identical vectors (cosine 1.0), texts that
share no words are near-orthogonal. That is a test fixture, not a semantic model.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

__all__ = ["EMBEDDING_DIMENSIONS", "embeddings_response", "hashed_embedding"]

EMBEDDING_DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def hashed_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A unit vector from signed hashes of the text's lower-cased words (zeros for no words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.casefold()):
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        vector[index] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def embeddings_response(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI embeddings response for a request body (`input`, `model`, `encoding_format`).

    Raises:
        ValueError: when `input` is not a string or a list of strings.
    """
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"'input' must be a string or a list of strings, got {type(raw).__name__}")
    as_base64 = body.get("encoding_format") == "base64"
    requested = body.get("dimensions")
    # OpenAI's text-embedding-3 models honour `dimensions`; so does this stand-in.
    dimensions = requested if isinstance(requested, int) and requested > 0 else EMBEDDING_DIMENSIONS
    data = []
    for index, text in enumerate(texts):
        vector = hashed_embedding(text, dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            if as_base64
            else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(_WORD.findall(t)) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model") or "scripted-embeddings"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
