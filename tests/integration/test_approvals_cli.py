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

pytestmark = pytest.mark.usefixtures("fresh_rate_limits")

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


def test_resume_json_edit_runs_the_reviewers_arguments(
    use_script: Any, tmp_path: Path, audit_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_script(SCRIPT)
    db = str(tmp_path / "edit.sqlite")
    start = ["run", "react", "What is 6 * 7?", "--thread", "cli3", "--db", db]
    assert main([*start, "--context", "approval_mode=always"]) == EXIT_WAITING
    capsys.readouterr()

    answer = json.dumps(
        {"calc1": {"decision": "edit", "args": {"expression": "6 * 8"}, "reviewer": "ops"}}
    )
    assert main(["run", "react", "--thread", "cli3", "--db", db, "--resume", answer]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "The tool said 48."  # 6 * 8, not the model's 6 * 7
    assert ("approval_decision", "edit") in audit_events(audit_log)


EMAIL_SCRIPT = {
    "rules": [
        {
            "match": {"user": "email the boss"},
            "replies": [
                {
                    "content": "Sending the summary to the boss.",
                    "tool_calls": [
                        {
                            "name": "send_email",
                            "args": {"to": "boss@corp.com", "subject": "Summary", "body": "Done."},
                            "id": "mail1",
                        }
                    ],
                },
                {"content": "The tool said {{last_tool}}."},
            ],
        }
    ]
}


def test_interactive_prompt_approves_an_email_which_is_sent_once(
    use_script: Any,
    tmp_path: Path,
    audit_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tools
    from tools.outbox import Outbox, send_email

    use_script(EMAIL_SCRIPT)
    # The ReAct graph built by `weft run` takes its default tools from tools.builtin_tools().
    monkeypatch.setattr(tools, "builtin_tools", lambda: [send_email])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    prompts: list[str] = []

    def answer(prompt: str = "") -> str:
        prompts.append(prompt)
        return '{"mail1": {"decision": "approve", "reviewer": "ops"}}'

    monkeypatch.setattr(builtins, "input", answer)
    db = str(tmp_path / "mail.sqlite")
    code = main(["run", "react", "email the boss", "--thread", "mail", "--db", db])

    assert code == EXIT_OK and len(prompts) == 1  # the default policy asked once
    captured = capsys.readouterr()
    assert '"send_email"' in captured.err and "irreversible" in captured.err
    assert "Email sent to boss@corp.com" in captured.out
    (row,) = Outbox().messages("email")
    assert (row["idempotency_key"], row["attempts"]) == ("mail:mail1", 1)
    assert audit_events(audit_log) == [
        ("policy_decision", "review"),
        ("approval_requested", "pending"),
        ("approval_decision", "approve"),
        ("tool_executed", "executed"),
    ]
    records = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    assert {r["thread_id"] for r in records} == {"mail"}
    assert {r["agent"] for r in records} == {"react"}
    assert all(r["run_id"] and not r["run_id"].startswith("local-") for r in records)
    assert "boss@corp.com" not in audit_log.read_text(encoding="utf-8")

    # Asking the same thread to go on does not send the email again.
    assert main(["run", "react", "--thread", "mail", "--db", db, "--resume", "approve"]) == EXIT_OK
    assert Outbox().messages("email")[0]["attempts"] == 1


def test_one_answer_covers_parallel_tasks_waiting_for_review(
    use_script: Any,
    tmp_path: Path,
    audit_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tools
    from tools.outbox import Outbox, send_email

    def email(task_id: str, to: str) -> dict[str, Any]:
        args = {"to": to, "subject": "Update", "body": "Done."}
        return {
            "id": task_id,
            "description": f"email {to}",
            "depends_on": [],
            "tool": "send_email",
            "tool_args": args,
        }

    plan = {"tasks": [email("t1", "ann@corp.com"), email("t2", "bo@corp.com")]}
    use_script(
        {
            "rules": [
                {"match": {"schema": "Plan"}, "replies": [{"json": plan}]},
                {
                    "match": {"schema": "FinalAnswer"},
                    "replies": [{"json": {"answer": "Both sent.", "cited_task_ids": ["t1"]}}],
                },
            ]
        }
    )
    monkeypatch.setattr(tools, "builtin_tools", lambda: [send_email])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda *_: answers.append("approve") or "approve")
    db = str(tmp_path / "plan.sqlite")
    code = main(["run", "plan_execute", "email ann and bo", "--thread", "par", "--db", db])

    assert code == EXIT_OK and capsys.readouterr().out.strip() == "Both sent."
    assert len(answers) == 1  # two interrupts (one per task), one answer
    rows = Outbox().messages("email")
    assert sorted(r["payload"]["to"] for r in rows) == ["ann@corp.com", "bo@corp.com"]
    assert all(r["attempts"] == 1 for r in rows)
    assert [e for e in audit_events(audit_log) if e[0] == "approval_decision"] == [
        ("approval_decision", "approve"),
        ("approval_decision", "approve"),
    ]
