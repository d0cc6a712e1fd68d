"""`weft eval` suite files: validation errors name the scenario and field; the bundled suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals import bundled_suite, bundled_suites
from evals.suite import SuiteError, context_of_mapping, load_suite, parse_suite

REPO = Path(__file__).resolve().parents[2]
PATTERNS = {
    "react",
    "plan_execute",
    "supervisor",
    "team",
    "debate",
    "tot",
    "router",
    "pipeline",
    "refine",
    "reflexion",
}


def scenario(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "s1",
        "graph": "react",
        "input": "hi",
        "model": "scripted",
        "script": {"default": "hello"},
    }
    return {**base, **overrides}


def problems_of(*scenarios: dict[str, Any], base_dir: Path = REPO) -> list[str]:
    _, problems = parse_suite({"scenarios": list(scenarios)}, source="s.yaml", base_dir=base_dir)
    return problems


def test_a_valid_scenario_has_defaults_and_single_values_become_lists() -> None:
    scenarios, problems = parse_suite(
        [scenario(expect={"tool_called": "calculate", "final_answer_contains": "434"})],
        source="s.yaml",
        base_dir=REPO,
    )
    assert problems == []
    (only,) = scenarios
    assert only.graph == ["react"]
    assert only.expect.tool_called == ["calculate"]
    assert only.expect.final_answer_contains == ["434"]
    assert only.expect.success is True
    assert only.load_script().default is not None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"graph": "reactt"}, "scenario 's1' graph: unknown graph 'reactt'; registered graphs: "),
        ({"context": {"max_iterations": "many"}}, "scenario 's1' context: context field "),
        ({"context": {"nope": 1}}, "unknown context field(s) 'nope'; valid fields: "),
        ({"expect": {"final_answer_matches": "("}}, "expect.final_answer_matches: not a valid"),
        ({"expect": {"max_iterations": -1}}, "expect.max_iterations: Input should be greater"),
        ({"expect": {"python": "no_such_module:f"}}, "expect.python: cannot import module"),
        ({"expect": {"python": "evals.smoke_checks"}}, "expected 'module:function'"),
        ({"expect": {"python": "evals.smoke_checks:nope"}}, "has no function 'nope'"),
        ({"expect": {"state": {"a..b": 1}}}, "expect.state: state path 'a..b' has an empty"),
        ({"expect": {"sucess": True}}, "expect.sucess: Extra inputs are not permitted"),
        ({"script": {"rules": [{"replies": []}]}}, "script: rule 0: 'replies' must be"),
        ({"script": "demo:nothere"}, "script: no demo for 'nothere'; demos exist for: "),
        ({"script": "missing.yaml"}, "script: script file "),
        ({"script": None}, "model 'scripted' needs a 'script'"),
        ({"model": "live"}, "model 'live' calls the configured provider; remove 'script'"),
        ({"model": "gpt"}, "scenario 's1' model: Input should be 'scripted' or 'live'"),
        ({"id": "has space"}, "scenario 'has space' id: String should match pattern"),
    ],
)
def test_problems_name_the_scenario_and_field(overrides: dict[str, Any], expected: str) -> None:
    problems = problems_of(scenario(**overrides))
    assert len(problems) == 1, problems
    assert problems[0].startswith("s.yaml: ")
    assert expected in problems[0]


def test_a_scenario_without_id_is_named_by_position() -> None:
    bad = scenario()
    del bad["id"]
    assert problems_of(scenario(), bad) == ["s.yaml: scenario #2 (no id) id: Field required"]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(json.dumps([scenario(), scenario(id="s2", graph="nope")]))
    second = tmp_path / "b.json"
    second.write_text(
        json.dumps({"scenarios": [scenario(), scenario(id="s3", expect={"max_tokens": "lots"})]})
    )
    with pytest.raises(SuiteError) as caught:
        load_suite([first, second])
    message = str(caught.value)
    assert message.startswith("invalid suite (3 problems):")
    assert f"{first}: scenario 's2' graph: unknown graph 'nope'" in message
    assert f"{second}: scenario 's3' expect.max_tokens: Input should be a valid integer" in message
    assert f"{second}: scenario 's1' id: already used in {first}" in message


def test_unparsable_and_misshapen_files_say_which_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios: [unclosed\n")
    with pytest.raises(SuiteError, match=r"broken.yaml: cannot parse"):
        load_suite([broken])
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: nothing\n")
    with pytest.raises(SuiteError, match=r"expected a non-empty list of scenarios"):
        load_suite([empty])
    typo = tmp_path / "typo.yaml"
    typo.write_text("senarios: []\n")
    with pytest.raises(SuiteError, match=r"unknown top-level key\(s\) \['senarios'\]"):
        load_suite([typo])
    with pytest.raises(SuiteError, match=r"suite file .*nowhere.yaml' does not exist"):
        load_suite([tmp_path / "nowhere.yaml"])


def test_script_files_resolve_next_to_the_suite(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "hi.yaml").write_text("default: hello\n")
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(json.dumps([scenario(script="scripts/hi.yaml")]))
    (case,) = load_suite([suite_file]).cases
    assert case.scenario.script == str(tmp_path / "scripts" / "hi.yaml")
    assert case.scenario.load_script().default is not None


def test_a_scenario_on_several_graphs_becomes_one_case_per_graph(tmp_path: Path) -> None:
    suite_file = tmp_path / "suite.json"
    suite_file.write_text(json.dumps([scenario(graph=["react", "router"]), scenario(id="s2")]))
    suite = load_suite([suite_file])
    assert [(c.case_id, c.graph_id) for c in suite.cases] == [
        ("s1@react", "react"),
        ("s1@router", "router"),
        ("s2", "react"),
    ]
    assert [c.case_id for c in suite.select(graphs=["router"]).cases] == ["s1@router"]
    assert [c.case_id for c in suite.select(ids=["s1"]).cases] == ["s1@react", "s1@router"]
    with pytest.raises(SuiteError, match="no scenario matches the filter; the suite has: s1@react"):
        suite.select(ids=["zzz"])


def test_context_values_are_converted_to_the_field_types() -> None:
    context = context_of_mapping({"max_iterations": "5", "tools": ["calculate"]})
    assert context.max_iterations == 5
    assert context.tools == ("calculate",)
    with pytest.raises(ValueError, match="context field 'debate_convergence': Input should be"):
        context_of_mapping({"debate_convergence": "sometimes"})


def test_the_bundled_smoke_suite_is_valid_and_covers_every_pattern() -> None:
    path = bundled_suite("smoke")
    assert path is not None and path.is_relative_to(REPO / "evals")
    assert "smoke" in bundled_suites()
    assert bundled_suite("nope") is None
    suite = load_suite([path])
    assert {case.graph_id for case in suite.cases} >= PATTERNS
    assert all(case.scenario.model == "scripted" for case in suite.cases)


def test_evals_package_resolves_to_this_repo_and_ships_its_suites() -> None:
    import evals

    assert Path(evals.__file__).resolve().is_relative_to(REPO)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"evals*"' in pyproject, "evals must be packaged"
    assert 'evals = ["*.yaml", "*.json"]' in pyproject, "the suites are package data"
