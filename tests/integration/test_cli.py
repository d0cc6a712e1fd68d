"""The `weft` CLI: list, run (SQLite threads), demo, and its error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphs.cli import main

NAME_SCRIPT = {
    "rules": [
        {"match": {"user": "I am Ada"}, "replies": ["Nice to meet you, Ada."]},
        {"match": {"user": "my name", "any": "I am Ada"}, "replies": ["Your name is Ada."]},
        {"match": {"user": "my name"}, "replies": ["I don't know your name."]},
        {
            "match": {"user": "loop"},
            "replies": [{"tool_calls": [{"name": "calculate", "args": {"expression": "1"}}]}],
            "after_last": "repeat",
        },
    ]
}


def test_graphs_lists_each_graph_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graphs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("react ") and "ReAct" in line for line in lines)


def test_demo_runs_offline_and_says_it_is_scripted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "react"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("17.5% of 2,480 is 434. In Tokyo it is now ")
    assert "scripted answers" in captured.err
    assert "calculate" in captured.err and "get_current_time" in captured.err


def test_demo_takes_run_settings_and_reports_the_budget_stop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "react", "--context", "max_model_calls=1"]) == 1
    captured = capsys.readouterr()
    assert "within the limit of max_model_calls (1)" in captured.out
    assert "this run — 1 model call · 0 tool calls" in captured.err
    assert "stopped: max_model_calls (1) reached: 1 used" in captured.err


def test_json_logs_carry_the_thread_and_node(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    assert main(["-v", "--log-format", "json", "demo", "react"]) == 0
    records = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    in_agent = [r for r in records if r.get("node") == "agent"]
    assert in_agent and all(r["thread_id"].startswith("demo-") for r in in_agent)


def test_run_continues_a_thread_in_sqlite(
    use_script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_script(NAME_SCRIPT)
    db = str(tmp_path / "weft.sqlite")
    assert main(["run", "react", "I am Ada.", "--thread", "t1", "--db", db]) == 0
    assert main(["run", "react", "What is my name?", "--thread", "t1", "--db", db]) == 0
    assert main(["run", "react", "What is my name?", "--thread", "t2", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["Nice to meet you, Ada.", "Your name is Ada.", "I don't know your name."]


def test_unsuccessful_run_exits_1_and_says_why(
    use_script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_script(NAME_SCRIPT)
    code = main(
        [
            "run",
            "react",
            "loop",
            "--db",
            str(tmp_path / "w.sqlite"),
            "--context",
            "max_iterations=2",
        ]
    )
    assert code == 1
    assert "max_iterations (2)" in capsys.readouterr().err


def test_bad_usage_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "w.sqlite")
    assert main(["run", "react", "hi", "--db", db]) == 2
    assert "set OPENAI_API_KEY" in capsys.readouterr().err
    assert main(["run", "react", "hi", "--db", db, "--context", "max_iterations=many"]) == 2
    assert "'max_iterations' expects int, got 'many'" in capsys.readouterr().err
    assert main(["run", "nope", "hi", "--db", db]) == 2
    assert "registered graphs: " in capsys.readouterr().err
