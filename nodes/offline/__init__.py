"""Offline stand-in for an LLM provider.

A script engine (:mod:`nodes.offline.script`), an OpenAI-compatible HTTP
server answering from a script (:mod:`nodes.offline.server`) and an in-process
LangChain chat model answering from the same scripts
(:mod:`nodes.offline.chat_model`).
"""

from nodes.offline.chat_model import ScriptedChatModel
from nodes.offline.script import (
    Script,
    ScriptExhausted,
    ScriptReply,
    ScriptValidationError,
    load_script,
)
from nodes.offline.server import ScriptedLLMServer, serve_forever

__all__ = [
    "Script",
    "ScriptExhausted",
    "ScriptReply",
    "ScriptValidationError",
    "ScriptedChatModel",
    "ScriptedLLMServer",
    "load_script",
    "serve_forever",
]
