"""`weft eval`: the bundled suite over every pattern (real ChatOpenAI over HTTP to the scripted
server), failing and crashing scenarios, interrupts, live mode and usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphs.cli import main

REPO = Path(__file__).resolve().parents[2]
# Every pattern with a `weft demo` has at least one scenario in the smoke suite.
PATTERNS = {path.stem for path in (REPO / "graphs" / "demo_scripts").glob("*.json")}
REACT_QUESTION = "What is 17.5% of 2,480, and what time is it in Tokyo right now?"
PLAN_QUESTION = (
    "What is 17.5% of 2,480, what is double that, and what time is it in Tokyo right now?"
)


def write_suite(path: Path, *scenarios: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"scenarios": list(scenarios)}, sort_keys=False))
    return str(path)


def react_scenario(id_: str, **expect: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "graph": "react",
        "input": REACT_QUESTION,
        "model": "scripted",
        "script": "demo:react",
        "expect": expect,
    }


def test_smoke_suite_passes_every_pattern_k_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    report_file = tmp_path / "report.json"
    assert main(["eval", "evals/smoke.yaml", "-k", "2", "--json", str(report_file)]) == 0
    captured = capsys.readouterr()
    report = json.loads(report_file.read_text())
    assert report["ok"] is True and report["k"] == 2 and report["trials_per_scenario"] == 2
    assert len(PATTERNS) >= 10 and set(report["patterns"]) >= PATTERNS
    for graph_id, pattern in report["patterns"].items():
        assert pattern["completion_rate"] == 1.0, graph_id
        assert pattern["pass_hat_k"] == 1.0, graph_id
        assert pattern["mean_tokens"] > 0, graph_id
        assert pattern["mean_cost_usd"] is None, "no price table given: cost unknown"
    # The tool-error scenario's failed first call is counted: 2 errors in 8 react tool calls.
    assert report["patterns"]["react"]["tool_error_rate"] == 0.25
    assert all(s["passes"] == s["trials"] == 2 for s in report["scenarios"])
    for graph_id in PATTERNS:
        assert f"│ {graph_id}" in captured.out
    assert "[1/22] react-percent-and-clock · react · trial 1 · pass" in captured.err
    assert "11/11 scenarios reach the minimum pass rate 1.00" in captured.out
    assert "OPENAI_BASE_URL" not in os.environ, "the scripted endpoint is not left behind"


def test_a_failing_check_exits_1_and_says_which_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(
        tmp_path / "suite.yaml",
        react_scenario("right", final_answer_contains="434"),
        react_scenario("wrong", final_answer_contains="435", tool_not_called="calculate"),
    )
    report_file = tmp_path / "report.json"
    assert main(["eval", suite, "-k", "2", "--json", str(report_file)]) == 1
    out = capsys.readouterr().out
    assert "✗ wrong trial 1: final_answer_contains: '435' not in '17.5% of 2,480 is 434." in out
    assert "✗ wrong trial 2: tool_not_called: 'calculate' called 1 time(s)" in out
    assert "1/2 scenarios reach the minimum pass rate" in out
    report = json.loads(report_file.read_text())
    right, wrong = report["scenarios"]
    assert right["passes"] == 2 and right["meets_min_pass_rate"]
    assert wrong["passes"] == 0 and wrong["pass_hat_k"] == 0.0
    assert wrong["failed_checks"] == {"final_answer_contains": 2, "tool_not_called": 2}
    assert report["patterns"]["react"]["completion_rate"] == 1.0, "it ran fine; checks failed"
    assert main(["eval", suite, "--min-pass-rate", "0"]) == 0


def test_python_checks_may_live_next_to_the_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A module name no other test uses: sys.modules keeps what a test imported.
    (tmp_path / "eval_checks_next_to_suite.py").write_text(
        "def cites_tokyo(state):\n"
        "    return None if 'Tokyo' in state['final_answer'] else 'no Tokyo'\n"
        "def wants_paris(state):\n"
        "    return None if 'Paris' in state['final_answer'] else 'Paris is not mentioned'\n"
    )
    suite = write_suite(
        tmp_path / "suite.yaml",
        react_scenario("tokyo", python="eval_checks_next_to_suite:cites_tokyo"),
        react_scenario("paris", python="eval_checks_next_to_suite:wants_paris"),
    )
    assert main(["eval", suite]) == 1
    out = capsys.readouterr().out
    assert "✗ paris trial 1: python: eval_checks_next_to_suite:wants_paris: Paris is not" in out
    assert "tokyo trial 1" not in out


def test_a_crashing_trial_is_a_failed_result_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tool call, then HTTP 400 (permanent, so not retried): the run raises mid-loop.
    script = {
        "rules": [
            {
                "match": {"system": "capable assistant"},
                "replies": [
                    {"tool_calls": [{"name": "calculate", "args": {"expression": "1"}}]},
                    {"error": {"status": 400, "message": "prompt too long for this model"}},
                ],
            }
        ]
    }
    suite = write_suite(
        tmp_path / "suite.yaml",
        {"id": "crash", "graph": "react", "input": "hi", "model": "scripted", "script": script},
        react_scenario("fine"),
    )
    report_file = tmp_path / "report.json"
    assert main(["eval", suite, "--json", str(report_file)]) == 1
    out = capsys.readouterr().out
    assert "✗ crash trial 1: run: the run did not finish: " in out
    assert "prompt too long for this model" in out
    crash, fine = json.loads(report_file.read_text())["scenarios"]
    (trial,) = crash["trial_results"]
    assert trial["completed"] is False and "Error code: 400" in trial["error"]
    assert trial["metrics"]["model_calls"] == 1, "the partial state is still accounted for"
    assert trial["metrics"]["tool_calls"] == 1
    assert fine["passes"] == 1, "the next scenario still ran"


def test_interrupts_are_answered_from_the_scenarios_resume_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewed = {
        "graph": "plan_execute",
        "input": PLAN_QUESTION,
        "context": {"review_plan": True},
        "model": "scripted",
        "script": "demo:plan_execute",
        "expect": {"final_answer_contains": "868"},
    }
    suite = write_suite(
        tmp_path / "suite.yaml",
        {"id": "approved", **reviewed, "resume": [{"action": "approve"}]},
        {"id": "unanswered", **reviewed},
    )
    report_file = tmp_path / "report.json"
    assert main(["eval", suite, "--json", str(report_file)]) == 1
    approved, unanswered = json.loads(report_file.read_text())["scenarios"]
    assert approved["passes"] == 1
    assert unanswered["failed_checks"]["run"] == 1
    assert "paused on 1 interrupt(s)" in capsys.readouterr().out


def test_live_scenarios_use_the_configured_endpoint(
    use_script: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = use_script({"rules": [], "default": {"content": "Hello from the endpoint."}})
    suite = write_suite(
        tmp_path / "suite.yaml",
        {
            "id": "live-hello",
            "graph": "react",
            "input": "hi",
            "model": "live",
            "expect": {"final_answer_contains": "from the endpoint"},
        },
    )
    assert main(["eval", suite]) == 0
    assert server.requests, "the user's OPENAI_BASE_URL answered"


def test_bundled_suite_by_name_from_any_directory_with_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    prices = tmp_path / "prices.yaml"
    prices.write_text("gpt-4.1-mini: {input_per_1m: 1000000, output_per_1m: 0}\n")
    report_file = tmp_path / "report.json"
    code = main(
        ["eval", "smoke", "--graph", "router", "--prices", str(prices), "--json", str(report_file)]
    )
    assert code == 0
    router = json.loads(report_file.read_text())["patterns"]["router"]
    (trial,) = json.loads(report_file.read_text())["scenarios"][0]["trial_results"]
    # $1 per input token makes the cost equal the input token count.
    assert router["mean_cost_usd"] == pytest.approx(trial["metrics"]["input_tokens"])
    assert "$" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchsuite"], "suite 'nosuchsuite' is neither a file nor a bundled suite (bundled: "),
        (["smoke", "-k", "3", "--trials", "2"], "--trials (2) must be >= k (3)"),
        (["smoke", "-k", "0"], "-k must be >= 1"),
        (["smoke", "--min-pass-rate", "2"], "--min-pass-rate must be in 0..1"),
        (["smoke", "--scenario", "nope"], "no scenario matches the filter; the suite has: "),
        (["smoke", "--prices", "/nonexistent/prices.yaml"], "--prices: no such file"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", *args]) == 2
    assert message in capsys.readouterr().err


def test_an_invalid_suite_exits_2_naming_scenario_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = react_scenario("bad-regex", final_answer_matches="(")
    suite = write_suite(tmp_path / "suite.yaml", bad)
    assert main(["eval", suite]) == 2
    err = " ".join(capsys.readouterr().err.split())  # the error console wraps at its width
    assert "scenario 'bad-regex' expect.final_answer_matches: not a valid regular expression" in err


def test_live_scenarios_without_credentials_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = {"id": "live-x", "graph": "react", "input": "hi", "model": "live"}
    assert main(["eval", write_suite(tmp_path / "suite.yaml", live)]) == 2
    assert "live scenario(s) live-x need a model: set OPENAI_API_KEY" in capsys.readouterr().err


def test_the_installed_weft_command_finds_the_bundled_suite(tmp_path: Path) -> None:
    weft = Path(sys.executable).with_name("weft")
    result = subprocess.run(
        [str(weft), "eval", "smoke", "--graph", "tot", "--json", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["patterns"]) == ["tot"]
    assert report["suite_files"][0].endswith("evals/smoke.yaml")
