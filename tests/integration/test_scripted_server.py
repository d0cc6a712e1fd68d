"""The scripted OpenAI-compatible server, exercised through the real ChatOpenAI client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from nodes.offline import Script, ScriptedChatModel, ScriptedLLMServer

REPO_ROOT = Path(__file__).resolve().parents[2]


class Plan(BaseModel):
    """A plan."""

    steps: list[str]


@tool
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "42"


@tool
def search(query: str) -> str:
    """Search the web."""
    return "nothing"


SCRIPT: dict[str, Any] = {
    "name": "server-tests",
    "rules": [
        {"name": "plan", "match": {"schema": "Plan"}, "replies": [{"json": {"steps": ["a", "b"]}}]},
        {
            "name": "calc",
            "match": {"tool": "calculate", "user": r"6 \* 7"},
            "replies": [
                {
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6*7"}},
                        {"name": "search", "args": {"query": "meaning of 42"}},
                    ]
                },
                {"content": "6 * 7 = 42, the answer to everything."},
            ],
        },
        {"name": "limited", "match": {"user": "^limited$"}, "replies": ["only once"]},
        {
            "name": "ratelimit",
            "match": {"user": "^rate$"},
            "replies": [{"error": {"status": 429, "message": "Slow down!", "retry_after": 7}}],
        },
        {
            "name": "flaky",
            "match": {"user": "^flaky$"},
            "replies": [{"error": {"status": 503, "message": "busy", "retry_after": 0.01}}],
        },
        {"name": "slow", "match": {"user": "^slow$"}, "replies": [{"content": "late", "delay": 2}]},
        {"match": {"model": "gpt-4.1"}, "replies": ["big model"]},
        {
            "name": "greeting",
            "match": {"user": "hello"},
            "replies": [{"content": "Hello there, how can I help you today?"}],
        },
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(Script.from_dict(SCRIPT)) as srv:
        yield srv


@pytest.fixture
def srv(server: ScriptedLLMServer) -> ScriptedLLMServer:
    server.script = Script.from_dict(SCRIPT)
    server.requests.clear()
    return server


def llm(srv: ScriptedLLMServer, **kwargs: Any) -> ChatOpenAI:
    params: dict[str, Any] = {"model": "gpt-4.1-mini", "max_retries": 0}
    params.update(kwargs)
    return ChatOpenAI(base_url=srv.base_url, api_key="test", **params)


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    assert chunks, "no chunks streamed"
    out = chunks[0]
    for chunk in chunks[1:]:
        out = out + chunk
    return out


# -- basics ------------------------------------------------------------------------


def test_binds_only_requested_host_and_reports_base_url(srv: ScriptedLLMServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", srv.base_url)
    assert srv.port > 0


def test_invoke_text(srv: ScriptedLLMServer) -> None:
    msg = llm(srv).invoke("hello")
    assert isinstance(msg, AIMessage)
    assert msg.content == "Hello there, how can I help you today?"
    assert msg.tool_calls == []
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.response_metadata["model_name"] == "gpt-4.1-mini"
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["input_tokens"] == 2  # ceil(len("hello") / 4)
    assert msg.usage_metadata["output_tokens"] == 10  # ceil(38 / 4)
    assert msg.usage_metadata["total_tokens"] == 12
    assert srv.requests[0]["messages"] == [{"role": "user", "content": "hello"}]
    assert srv.requests[0]["model"] == "gpt-4.1-mini"


def test_response_ids_are_unique(srv: ScriptedLLMServer) -> None:
    model = llm(srv)
    ids = {model.invoke("hello").response_metadata["id"] for _ in range(3)}
    assert len(ids) == 3


def test_model_condition_uses_request_model(srv: ScriptedLLMServer) -> None:
    assert llm(srv, model="gpt-4.1").invoke("anything").content == "big model"


@pytest.mark.anyio
async def test_ainvoke_text(srv: ScriptedLLMServer) -> None:
    msg = await llm(srv).ainvoke("hello")
    assert msg.content == "Hello there, how can I help you today?"
    assert msg.usage_metadata is not None and msg.usage_metadata["total_tokens"] == 12


def test_models_and_health_endpoints(srv: ScriptedLLMServer) -> None:
    with urllib.request.urlopen(f"{srv.base_url}/models") as resp:
        models = json.load(resp)
    assert [m["id"] for m in models["data"]] == ["gpt-4.1", "scripted"]
    health_url = srv.base_url.removesuffix("/v1") + "/health"
    with urllib.request.urlopen(health_url) as resp:
        assert json.load(resp) == {"status": "ok"}
    # The OpenAI SDK can list them too.
    client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
    assert {m.id for m in client.models.list()} == {"gpt-4.1", "scripted"}


def test_chat_model_reads_openai_base_url_from_env(
    srv: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    assert (
        ChatOpenAI(model="gpt-4.1-mini", max_retries=0)
        .invoke("hello")
        .content.startswith("Hello there")
    )


# -- tools -------------------------------------------------------------------------


def test_bind_tools_round_trip_with_parallel_calls(srv: ScriptedLLMServer) -> None:
    model = llm(srv).bind_tools([calculate, search])
    history: list[Any] = [HumanMessage("what is 6 * 7?")]
    first = model.invoke(history)
    assert isinstance(first, AIMessage)
    assert first.response_metadata["finish_reason"] == "tool_calls"
    assert [(c["name"], c["args"], c["id"]) for c in first.tool_calls] == [
        ("calculate", {"expression": "6*7"}, "call_1"),
        ("search", {"query": "meaning of 42"}, "call_2"),
    ]
    offered = [t["function"]["name"] for t in srv.requests[0]["tools"]]
    assert offered == ["calculate", "search"]

    history += [first] + [ToolMessage(content="42", tool_call_id=c["id"]) for c in first.tool_calls]
    second = model.invoke(history)
    assert second.content == "6 * 7 = 42, the answer to everything."
    # The client sent our tool calls back verbatim, so the ids round-trip.
    sent = srv.requests[1]["messages"]
    assert [tc["id"] for tc in sent[1]["tool_calls"]] == ["call_1", "call_2"]
    assert [m.get("tool_call_id") for m in sent[2:]] == ["call_1", "call_2"]


def test_stream_text_with_usage(srv: ScriptedLLMServer) -> None:
    chunks = list(llm(srv, stream_usage=True).stream("hello"))
    assert len(chunks) > 3  # really streamed in pieces
    merged = merge(chunks)
    assert merged.content == "Hello there, how can I help you today?"
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["total_tokens"] == 12
    assert merged.response_metadata["finish_reason"] == "stop"
    assert srv.requests[0]["stream"] is True
    assert srv.requests[0]["stream_options"] == {"include_usage": True}


def test_stream_without_usage_request_sends_no_usage(srv: ScriptedLLMServer) -> None:
    # ChatOpenAI with a custom base_url does not ask for usage unless stream_usage=True;
    # like OpenAI, the server then sends none.
    merged = merge(list(llm(srv).stream("hello")))
    assert "stream_options" not in srv.requests[0]
    assert merged.content == "Hello there, how can I help you today?"
    assert merged.usage_metadata is None


def test_stream_parallel_tool_calls(srv: ScriptedLLMServer) -> None:
    model = llm(srv, stream_usage=True).bind_tools([calculate, search])
    chunks = list(model.stream("what is 6 * 7?"))
    # Arguments arrive in several fragments per call.
    assert sum(1 for c in chunks for tc in c.tool_call_chunks if tc.get("args")) > 2
    merged = merge(chunks)
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        ("calculate", {"expression": "6*7"}, "call_1"),
        ("search", {"query": "meaning of 42"}, "call_2"),
    ]
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert merged.usage_metadata is not None and merged.usage_metadata["output_tokens"] > 0


@pytest.mark.anyio
async def test_astream_tool_calls_and_usage(srv: ScriptedLLMServer) -> None:
    model = llm(srv, stream_usage=True).bind_tools([calculate, search])
    chunks = [c async for c in model.astream("what is 6 * 7?")]
    merged = merge(chunks)
    assert [c["id"] for c in merged.tool_calls] == ["call_1", "call_2"]
    assert merged.usage_metadata is not None
    sync_usage = llm(srv).bind_tools([calculate, search]).invoke("what is 6 * 7?").usage_metadata
    assert sync_usage is not None
    assert merged.usage_metadata["total_tokens"] == sync_usage["total_tokens"]


@pytest.mark.anyio
async def test_astream_text(srv: ScriptedLLMServer) -> None:
    chunks = [c async for c in llm(srv, stream_usage=True).astream("hello")]
    merged = merge(chunks)
    assert merged.content == "Hello there, how can I help you today?"
    assert merged.usage_metadata is not None


# -- structured output -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_invoke(srv: ScriptedLLMServer, method: str) -> None:
    structured = llm(srv).with_structured_output(Plan, method=method)  # type: ignore[arg-type]
    assert structured.invoke("make a plan") == Plan(steps=["a", "b"])
    request = srv.requests[0]
    if method == "json_schema":
        assert request["response_format"]["json_schema"]["name"] == "Plan"
    else:
        assert request["tool_choice"] == {"type": "function", "function": {"name": "Plan"}}


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_output_ainvoke_include_raw(srv: ScriptedLLMServer, method: str) -> None:
    structured = llm(srv).with_structured_output(
        Plan,
        method=method,  # type: ignore[arg-type]
        include_raw=True,
    )
    out = await structured.ainvoke("make a plan")
    assert isinstance(out, dict)
    assert out["parsed"] == Plan(steps=["a", "b"])
    assert out["parsing_error"] is None
    raw = out["raw"]
    assert isinstance(raw, AIMessage)
    if method == "json_schema":
        assert json.loads(str(raw.content)) == {"steps": ["a", "b"]}
    else:
        assert raw.tool_calls[0]["name"] == "Plan"
        assert raw.tool_calls[0]["args"] == {"steps": ["a", "b"]}


def test_structured_output_dict_schema_streams(srv: ScriptedLLMServer) -> None:
    schema = {
        "title": "Plan",
        "description": "A plan.",
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
        "required": ["steps"],
    }
    parts = list(llm(srv).with_structured_output(schema).stream("make a plan"))
    assert parts[-1] == {"steps": ["a", "b"]}


# -- errors ------------------------------------------------------------------------------


def test_scripted_rate_limit_surfaces_as_rate_limit_error(srv: ScriptedLLMServer) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        llm(srv).invoke("rate")
    assert "Slow down!" in str(info.value)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.code == "rate_limit_exceeded"


def test_scripted_server_error_is_retried_by_the_client(srv: ScriptedLLMServer) -> None:
    with pytest.raises(openai.InternalServerError, match="busy"):
        llm(srv, max_retries=2).invoke("flaky")
    assert len(srv.requests) == 3  # the SDK honoured its retry policy


def test_scripted_error_on_stream_request(srv: ScriptedLLMServer) -> None:
    with pytest.raises(openai.RateLimitError, match="Slow down!"):
        list(llm(srv).stream("rate"))


def test_exhaustion_is_loud_and_not_retried(srv: ScriptedLLMServer) -> None:
    history = [HumanMessage("limited"), AIMessage("only once"), HumanMessage("limited")]
    assert llm(srv).invoke(history).content == "only once"  # new user turn: turn 0 again
    history = [HumanMessage("limited"), AIMessage("only once"), AIMessage("and again?")]
    with pytest.raises(openai.InternalServerError) as info:
        llm(srv, max_retries=2).invoke(history)
    text = str(info.value)
    assert "rule 2 ('limited') exhausted at turn 2" in text
    assert "'and again?'" in text
    assert len(srv.requests) == 2  # x-should-retry: false stops SDK retries


def test_no_match_is_loud_and_quotes_last_message(srv: ScriptedLLMServer) -> None:
    srv.script = Script.from_dict({"rules": [{"match": {"user": "^x$"}, "replies": ["x"]}]})
    long_question = "why? " * 100
    with pytest.raises(openai.InternalServerError) as info:
        llm(srv).invoke(long_question)
    text = str(info.value)
    assert "no rule matched at turn 0" in text
    assert "rule 0: user /^x$/ not found" in text
    assert long_question[:200] in text
    assert long_question[:201] not in text


def test_no_match_is_loud_when_streaming(srv: ScriptedLLMServer) -> None:
    srv.script = {"rules": [{"match": {"user": "^x$"}, "replies": ["x"]}]}
    with pytest.raises(openai.InternalServerError, match="no rule matched"):
        list(llm(srv, stream_usage=True).stream("y"))


def test_delay_lets_client_time_out(srv: ScriptedLLMServer) -> None:
    with pytest.raises(openai.APITimeoutError):
        llm(srv, timeout=0.2).invoke("slow")


# -- parity with the in-process model -------------------------------------------------------


def test_in_process_model_gives_the_same_messages(srv: ScriptedLLMServer) -> None:
    local = ScriptedChatModel(script=SCRIPT, model_name="gpt-4.1-mini")
    for model in (llm(srv), local):
        assert isinstance(model, ChatOpenAI | ScriptedChatModel)
    remote_bound = llm(srv).bind_tools([calculate, search])
    local_bound = local.bind_tools([calculate, search])
    history: list[Any] = [HumanMessage("what is 6 * 7?")]
    for _ in range(2):
        remote = remote_bound.invoke(history)
        mine = local_bound.invoke(history)
        assert mine.content == remote.content
        assert mine.tool_calls == remote.tool_calls
        assert mine.usage_metadata == remote.usage_metadata
        assert mine.response_metadata["finish_reason"] == remote.response_metadata["finish_reason"]
        assert mine.response_metadata["model_name"] == remote.response_metadata["model_name"]
        history += [remote] + [
            ToolMessage(content="42", tool_call_id=c["id"]) for c in remote.tool_calls
        ]
    assert history[-1].content == "6 * 7 = 42, the answer to everything."
    assert local.with_structured_output(Plan).invoke("plan") == llm(srv).with_structured_output(
        Plan
    ).invoke("plan")


# -- concurrency, swapping, recording -----------------------------------------------------


def test_parallel_requests_get_per_conversation_answers(srv: ScriptedLLMServer) -> None:
    srv.script = {
        "rules": [
            {
                "match": {"user": f"^conv {i}$"},
                "replies": [f"answer {i} turn 0", f"answer {i} turn 1"],
            }
            for i in range(8)
        ]
    }
    model = llm(srv)

    def run(job: tuple[int, int]) -> tuple[int, int, Any]:
        conv, turn = job
        history: list[Any] = [HumanMessage(f"conv {conv}")]
        if turn:
            history.append(AIMessage(f"answer {conv} turn 0"))
        return conv, turn, model.invoke(history).content

    jobs = [(c, t) for c in range(8) for t in (0, 1)] * 2
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, jobs))
    assert all(content == f"answer {c} turn {t}" for c, t, content in results)
    assert len(srv.requests) == len(jobs)


def test_script_can_be_swapped_at_runtime(srv: ScriptedLLMServer) -> None:
    assert llm(srv).invoke("hello").content.startswith("Hello there")
    srv.script = Script.sequence(["swapped"])
    assert llm(srv).invoke("hello").content == "swapped"
    assert [r["messages"][-1]["content"] for r in srv.requests] == ["hello", "hello"]


def test_async_calls_from_successive_event_loops(srv: ScriptedLLMServer) -> None:
    # langchain-openai caches its async HTTP client per base URL; with pooled
    # connections the second loop would hit "Event loop is closed".
    for _ in range(2):
        msg = asyncio.run(llm(srv).ainvoke("hello"))
        assert msg.content == "Hello there, how can I help you today?"


def test_keep_alive_reuses_connections() -> None:
    with ScriptedLLMServer(Script.from_dict(SCRIPT), keep_alive=True) as server:
        with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/health") as resp:
            assert resp.headers.get("Connection") != "close"
        client = httpx2.Client()
        try:
            model = ChatOpenAI(
                base_url=server.base_url,
                api_key="t",
                model="gpt-4.1-mini",
                max_retries=0,
                stream_usage=True,
                http_client=client,
            )
            for _ in range(2):
                assert merge(list(model.stream("hello"))).usage_metadata is not None
                assert str(model.invoke("hello").content).startswith("Hello there")
        finally:
            client.close()
    with ScriptedLLMServer(Script.from_dict(SCRIPT)) as server:
        with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/health") as resp:
            assert resp.headers.get("Connection") == "close"


def test_start_stop_without_context_manager() -> None:
    server = ScriptedLLMServer({"default": "ok"}, port=0).start()
    try:
        assert llm(server).invoke("x").content == "ok"
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(openai.APIConnectionError):
        ChatOpenAI(base_url=server.base_url, api_key="t", max_retries=0).invoke("x")


def test_serve_forever_logs_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    script_path = tmp_path / "s.yaml"
    script_path.write_text("default:\n  content: from the CLI\n", encoding="utf-8")
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(message)s')\n"
        "from nodes.offline.server import serve_forever\n"
        f"serve_forever({str(script_path)!r}, port=0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        found = None
        while found is None and len(seen) < 20:
            seen.append(proc.stderr.readline())
            found = re.search(r"http://127\.0\.0\.1:\d+/v1", seen[-1])
        assert found, seen
        model = ChatOpenAI(base_url=found.group(0), api_key="t", max_retries=0)
        assert model.invoke("hi").content == "from the CLI"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
