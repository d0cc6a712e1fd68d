"""Tool registry: metadata, subsets, lint of every built-in, rate limits, audit sink."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, tool

from tools.audit import FileAuditSink, MemoryAuditSink, audit, set_audit_sink
from tools.registry import (
    DEFAULT_TIMEOUT_S,
    RateLimit,
    RateLimiter,
    ToolMetadataError,
    ToolRegistry,
    UnknownToolError,
    current_idempotency_key,
    default_registry,
    lint_tool,
    reset_idempotency_key,
    set_idempotency_key,
)


def make_tool(name: str, **metadata: Any) -> BaseTool:
    @tool(name)
    def _t(query: str) -> str:
        """Do something.

        Args:
            query: what to do.
        """
        return query

    _t.metadata = metadata or None
    return _t


def test_every_builtin_tool_passes_the_lint() -> None:
    registry = default_registry()
    assert len(registry) >= 2
    problems = {spec.name: lint_tool(spec.tool) for spec in registry}
    assert problems == {name: [] for name in registry.names}


def test_lint_catches_bad_names_missing_descriptions_and_metadata() -> None:
    @tool("Lookup")
    def bad(x: str) -> str:
        """Look something up."""
        return x

    problems = " | ".join(lint_tool(bad))
    assert "not verb_noun" in problems
    assert "argument 'x' has no description" in problems
    assert "side_effect" in problems
    assert "timeout_s" in problems


def test_metadata_is_read_and_defaults_apply() -> None:
    declared = make_tool(
        "send_email",
        side_effect="irreversible",
        timeout_s=3,
        rate_limit="10/min",
        fallback="create_ticket",
        consequences="Emails a customer.",
    )
    declared.tags = ["email"]
    bare = make_tool("look_up")
    registry = ToolRegistry([declared, bare])

    spec = registry.spec("send_email")
    assert (spec.side_effect, spec.idempotent, spec.timeout_s) == ("irreversible", False, 3.0)
    assert spec.rate_limit == RateLimit(10, 60.0)
    assert spec.fallback == "create_ticket" and spec.tags == ("email",)
    assert spec.risky and "Emails a customer." in spec.describe_consequences()
    plain = registry.spec("look_up")
    assert (plain.side_effect, plain.idempotent, plain.timeout_s) == (
        "read",
        True,
        DEFAULT_TIMEOUT_S,
    )
    assert not plain.risky


def test_a_write_confined_to_the_callers_own_state_may_declare_itself_not_risky() -> None:
    own = make_tool("save_note", side_effect="write", risky=False)
    outside = make_tool("send_fax", side_effect="irreversible", risky=False)
    registry = ToolRegistry([own, outside])
    assert registry.spec("save_note").risky is False
    assert registry.spec("send_fax").risky is True  # irreversible is always reviewed
    with pytest.raises(ToolMetadataError, match="declares risky 'no'; expected true or false"):
        ToolRegistry([make_tool("odd", side_effect="write", risky="no")])


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"side_effect": "dangerous"}, "side_effect 'dangerous'"),
        ({"timeout_s": 0}, "timeout_s 0"),
        ({"rate_limit": "lots"}, "rate limit 'lots'"),
    ],
)
def test_invalid_metadata_is_refused(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolMetadataError, match=message):
        ToolRegistry([make_tool("look_up", **metadata)])


def test_subsets_by_name_and_tag_and_unknown_names() -> None:
    a, b, c = make_tool("get_a"), make_tool("get_b"), make_tool("get_c")
    a.tags, b.tags, c.tags = ["x"], ["y"], ["x", "y"]
    registry = ToolRegistry([a, b, c])
    assert [t.name for t in registry.subset(["get_b"])] == ["get_b"]
    assert [t.name for t in registry.subset(tags=["x"])] == ["get_a", "get_c"]
    assert [t.name for t in registry.subset(["get_b"], tags=["x"])] == ["get_a", "get_b", "get_c"]
    assert len(registry.subset()) == 3
    with pytest.raises(UnknownToolError, match="unknown tool 'get_d'; known: get_a, get_b, get_c"):
        registry.subset(["get_d"])
    with pytest.raises(UnknownToolError, match="known tags: x, y"):
        registry.subset(tags=["z"])
    with pytest.raises(ValueError, match="two tools are named 'get_a'"):
        ToolRegistry([a, a])


@pytest.mark.parametrize(
    ("text", "calls", "window"),
    [("10/min", 10, 60), ("100/h", 100, 3600), ("5/s", 5, 1), ("2 / day", 2, 86400)],
)
def test_rate_limit_parsing(text: str, calls: int, window: float) -> None:
    assert RateLimit.parse(text) == RateLimit(calls, window)


def test_sliding_window_counts_only_recent_calls() -> None:
    limiter, limit = RateLimiter(), RateLimit(2, 60)
    assert limiter.acquire("t", limit, now=0) is None
    assert limiter.acquire("t", limit, now=10) is None
    assert limiter.acquire("t", limit, now=30) == pytest.approx(30)  # oldest leaves at 60
    assert limiter.acquire("other", limit, now=30) is None  # per key
    assert limiter.acquire("t", limit, now=60) is None  # the call at 0 has left the window
    assert limiter.acquire("t", limit, now=61) is not None


def test_check_and_record_is_atomic_across_threads() -> None:
    limiter, limit = RateLimiter(), RateLimit(25, 3600)
    granted: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            granted.append(limiter.acquire("t", limit) is None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 25


def test_idempotency_key_is_scoped_to_the_call() -> None:
    assert current_idempotency_key() is None
    token = set_idempotency_key("thread:call")
    assert current_idempotency_key() == "thread:call"
    reset_idempotency_key(token)
    assert current_idempotency_key() is None


def test_file_audit_sink_appends_redacted_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    monkeypatch.setenv("WEFT_AUDIT_LOG", str(path))
    previous = set_audit_sink(FileAuditSink())
    try:
        audit("policy_decision", tool="send_email", args={"to": "ceo@corp.com"}, decision="deny")
        audit("policy_decision", tool="search_web", args={"query": "x"}, decision="allow")
    finally:
        set_audit_sink(previous)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["event"] == "policy_decision" and first["decision"] == "deny"
    assert first["args"]["to"].startswith("hmac-sha256:")
    assert "ceo@corp.com" not in lines[0]
    assert first["time"].endswith("+00:00")


def test_memory_sink_collects_records() -> None:
    sink = MemoryAuditSink()
    previous = set_audit_sink(sink)
    try:
        audit("tool_executed", tool="t", args={})
    finally:
        set_audit_sink(previous)
    assert [r["event"] for r in sink.records] == ["tool_executed"]


def test_tools_package_is_this_repo() -> None:
    import tools

    assert Path(tools.__file__).resolve().parent == Path(__file__).resolve().parents[2] / "tools"
