"""Shared fixtures: offline guard, scripted models and the scripted OpenAI-compatible server."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest_plugins = [
    "tests.postgres_fixture",  # `postgres_url`, `postgres_db`
    "tests.safety_fixtures",  # `audit_sink`, `fresh_rate_limits`
]

_LOOPBACK_NAMES = {"localhost", "ip6-localhost", ""}


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # AF_UNIX paths and other local families
    if isinstance(host, str) and host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block non-loopback connections and keep real credentials/tracing out of tests."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: refused connection to {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests are offline: refused connection to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LANGSMITH_API_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _private_weft_files(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audit log, outbox and file sandbox live in a temp dir, never in the repo's ./.weft."""
    home = tmp_path_factory.mktemp("weft-home")
    monkeypatch.setenv("WEFT_AUDIT_LOG", str(home / "audit.jsonl"))
    monkeypatch.setenv("WEFT_OUTBOX", str(home / "outbox.sqlite"))
    monkeypatch.setenv("WEFT_SANDBOX_ROOT", str(home / "sandbox"))


@pytest.fixture
def scripted_model() -> Callable[..., Any]:
    """Factory: `scripted_model(*replies)` or `scripted_model(script={...})`.

    Replies replay in order and the model fails "script exhausted" rather than cycling.
    """
    from nodes.offline import ScriptedChatModel

    def make(*replies: Any, script: Any = None, **kwargs: Any) -> Any:
        if script is not None:
            return ScriptedChatModel(script=script, **kwargs)
        return ScriptedChatModel(replies=list(replies), **kwargs)

    return make


@pytest.fixture(scope="session")
def llm_server() -> Iterator[Any]:
    """A scripted OpenAI-compatible server on 127.0.0.1 for the whole session.

    Tests set `llm_server.script = ...` before use (see `use_script`).
    """
    from nodes.offline import Script, ScriptedLLMServer

    with ScriptedLLMServer(Script.from_dict({"rules": [], "default": {"content": "ok"}})) as srv:
        yield srv


@pytest.fixture
def use_script(llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Any]:
    """Point OPENAI_BASE_URL at the session's scripted server and load a script into it."""
    from nodes.offline import load_script

    def apply(script: Any) -> Any:
        llm_server.script = load_script(script)
        llm_server.requests.clear()
        monkeypatch.setenv("OPENAI_BASE_URL", llm_server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        return llm_server

    return apply
