"""Approvals through `weft run`: a paused run, then --resume JSON or the interactive prompt.

The graphs call the real ChatOpenAI against the scripted OpenAI-compatible server.
"""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from graphs.cli import EXIT_OK, EXIT_WAITING, main

SCRIPT = {
    "rules": [
        {
            "match": {"user": "6 \\* 7"},
            "replies": [
                {
                    "content": "Let me compute it.",
                    "tool_calls": [
                        {"name": "calculate", "args": {"expression": "6 * 7"}, "id": "calc1"}
                    ],
                },
                {"content": "The tool said {{last_tool}}."},
            ],
        }
    ]
}


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("WEFT_AUDIT_LOG", str(path))
    return path


def audit_events(path: Path) -> list[tuple[str, str]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["event"], r["decision"]) for r in records]


def test_run_pauses_then_resume_json_approves(
    use_script: Any, tmp_path: Path, audit_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_script(SCRIPT)
    db = str(tmp_path / "weft.sqlite")
    start = [
        "run",
        "react",
        "What is 6 * 7?",
        "--thread",
        "cli1",
        "--db",
        db,
        "--context",
        "approval_mode=always",
    ]
    assert main(start) == EXIT_WAITING
    paused = capsys.readouterr()
    assert '"tool_approval"' in paused.err and '"calc1"' in paused.err
    assert "--resume" in paused.err
    assert paused.out == ""

    answer = json.dumps({"calc1": {"decision": "approve", "reviewer": "ops"}})
    assert main(["run", "react", "--thread", "cli1", "--db", db, "--resume", answer]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "The tool said 42."
    assert audit_events(audit_log) == [
        ("policy_decision", "review"),
        ("approval_requested", "pending"),
        ("approval_decision", "approve"),
    ]


def test_interactive_prompt_can_reject(
    use_script: Any,
    tmp_path: Path,
    audit_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_script(SCRIPT)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["reject"])
    monkeypatch.setattr(builtins, "input", lambda *_: next(answers))
    code = main(
        [
            "run",
            "react",
            "What is 6 * 7?",
            "--thread",
            "cli2",
            "--db",
            str(tmp_path / "w.sqlite"),
            "--context",
            "approval_mode=always",
        ]
    )
    assert code == EXIT_OK
    out = capsys.readouterr().out.strip()
    assert out.startswith("The tool said Error: a reviewer (unnamed) rejected")
    assert ("approval_decision", "reject") in audit_events(audit_log)
