"""Audit log: keyed argument digests, the per-installation key, file modes, run ids, comments."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tools.audit as audit_module
from nodes.approval import audit_comment
from nodes.tool_gate import run_ids
from tools.audit import (
    AuditKeyError,
    FileAuditSink,
    MemoryAuditSink,
    audit,
    audit_key_path,
    digest,
    set_audit_sink,
)

KEY = "k" * 40


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WEFT_AUDIT_LOG", str(tmp_path / "data" / "audit.jsonl"))
    monkeypatch.delenv("WEFT_AUDIT_KEY", raising=False)
    monkeypatch.delenv("WEFT_AUDIT_KEY_FILE", raising=False)
    monkeypatch.setattr(audit_module, "_keys", {})
    return tmp_path / "data"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_digests_are_keyed_so_a_guessed_value_cannot_be_checked_without_the_key(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEFT_AUDIT_KEY", KEY)
    first = digest("ceo@corp.com")
    assert first == digest("ceo@corp.com")  # stable: records still correlate
    assert first.startswith("hmac-sha256:") and len(first) == len("hmac-sha256:") + 32
    unkeyed = hashlib.sha256(json.dumps("ceo@corp.com").encode()).hexdigest()
    assert unkeyed[:16] not in first and unkeyed[:32] not in first
    monkeypatch.setenv("WEFT_AUDIT_KEY", "z" * 40)
    assert digest("ceo@corp.com") != first


def test_a_short_env_key_is_refused(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEFT_AUDIT_KEY", "short")
    with pytest.raises(AuditKeyError, match="WEFT_AUDIT_KEY must be at least 32 characters, got 5"):
        digest("x")


def test_key_file_is_created_private_next_to_the_log_and_reused(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = digest({"to": "a@b.com"})
    key_file = log_dir / "audit.key"
    assert audit_key_path() == key_file
    assert mode(key_file) == 0o600
    assert len(key_file.read_text(encoding="utf-8").strip()) == 64
    assert [p.name for p in log_dir.iterdir()] == ["audit.key"]  # no temp file left behind
    monkeypatch.setattr(audit_module, "_keys", {})  # as a new process would
    assert digest({"to": "a@b.com"}) == first


def test_another_process_reads_the_same_key(log_dir: Path) -> None:
    here = digest("same value")
    code = "from tools.audit import digest; print(digest('same value'))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other.stdout.strip() == here


def test_key_file_location_can_be_set(
    tmp_path: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEFT_AUDIT_KEY_FILE", str(tmp_path / "secrets" / "weft.key"))
    digest("x")
    assert mode(tmp_path / "secrets" / "weft.key") == 0o600
    assert not (log_dir / "audit.key").exists()


def test_an_open_or_broken_key_file_is_reported(
    log_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_dir.mkdir(parents=True)
    key_file = log_dir / "audit.key"
    key_file.write_text("a" * 64, encoding="utf-8")
    key_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="tools.audit"):
        digest("x")
    assert "mode 644; restrict it with chmod 600" in caplog.text

    audit_module._keys.clear()
    key_file.write_text("tooshort", encoding="utf-8")
    with pytest.raises(AuditKeyError, match="holds 8 characters, expected at least 32"):
        digest("x")


def test_a_record_that_cannot_be_digested_is_not_written(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = MemoryAuditSink()
    previous = set_audit_sink(sink)
    monkeypatch.setenv("WEFT_AUDIT_KEY", "short")
    try:
        with pytest.raises(AuditKeyError):
            audit("tool_executed", tool="send_email", args={"to": "a@b.com"})
    finally:
        set_audit_sink(previous)
    assert sink.records == []


def test_the_audit_log_file_is_created_private_and_appended(log_dir: Path) -> None:
    sink = FileAuditSink()
    previous = set_audit_sink(sink)
    try:
        audit("policy_decision", tool="t", args={"a": 1}, decision="allow")
        sink.close()
        audit("policy_decision", tool="t", args={"a": 2}, decision="deny")
    finally:
        set_audit_sink(previous)
        sink.close()
    log = log_dir / "audit.jsonl"
    assert mode(log) == 0o600
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["decision"] for r in lines] == ["allow", "deny"]
    assert lines[0]["args"]["a"] != lines[1]["args"]["a"]


def test_run_ids_prefer_metadata_then_the_invocation_run_id() -> None:
    assert run_ids(None) == {"thread_id": None, "run_id": None}
    config: dict[str, Any] = {
        "configurable": {"thread_id": "t1"},
        "metadata": {"run_id": "from-server"},
        "run_id": "from-config",
    }
    assert run_ids(config) == {"thread_id": "t1", "run_id": "from-server"}  # type: ignore[arg-type]
    del config["metadata"]
    assert run_ids(config)["run_id"] == "from-config"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (
            {"decision": "reject", "comment": "not to jane@corp.com, card 4111 1111 1111 1111"},
            "not to [REDACTED EMAIL], card [REDACTED CARD]",
        ),
        ({"decision": "approve"}, None),
        ("approve", None),
        ({"decision": "reject", "comment": "x" * 900}, None),
    ],
)
def test_reviewer_comments_are_kept_with_pii_masked_and_capped(answer: Any, kept: Any) -> None:
    comment = audit_comment(answer)
    if isinstance(answer, dict) and len(str(answer.get("comment", ""))) > 500:
        assert comment is not None and len(comment) <= 500
    else:
        assert comment == kept
