"""Pure helpers of the pipeline and reflection families: stage specs, validators, plain outputs,
critique arithmetic. (Reflexion's lesson memory: tests/unit/test_reflexion_memory.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ValidationError

from graphs.pipeline import build_pipeline
from nodes.critique import Critique, best_draft_index
from nodes.pipelines import (
    PipelineSpecError,
    StageContext,
    StageResult,
    StageSpec,
    StageValidationError,
    all_of,
    check_stage_list,
    require_model,
    require_non_empty,
    review_wanted,
    to_plain,
    validate_output,
)

pytestmark = pytest.mark.anyio


class Point(BaseModel):
    x: int
    y: int


async def _identity(value: Any, stage: StageContext) -> Any:
    return value


@pytest.mark.parametrize("name", ["Research", "2nd", "finish", "review_gate", "with space", ""])
def test_bad_stage_names_are_refused_with_the_reason(name: str) -> None:
    with pytest.raises(PipelineSpecError, match="lower snake_case"):
        StageSpec(name, _identity)


def test_stage_run_must_be_callable() -> None:
    with pytest.raises(PipelineSpecError, match="'run' must be an async function or a runnable"):
        StageSpec("a", "not callable")  # type: ignore[arg-type]


def test_stage_list_needs_stages_with_unique_names() -> None:
    with pytest.raises(PipelineSpecError, match="at least one stage"):
        check_stage_list([])
    with pytest.raises(PipelineSpecError, match="duplicate stage name 'a'; stage names: a, b, a"):
        check_stage_list(
            [StageSpec("a", _identity), StageSpec("b", _identity), StageSpec("a", _identity)]
        )


def test_to_plain_dumps_models_and_messages() -> None:
    plain = to_plain({"p": Point(x=1, y=2), "m": AIMessage("hi"), "t": (1, [Point(x=0, y=0)])})
    assert plain["p"] == {"x": 1, "y": 2}
    assert plain["m"]["role"] == "assistant" and plain["m"]["content"] == "hi"
    assert plain["t"] == [1, [{"x": 0, "y": 0}]]


def test_require_model_names_the_schema_and_the_failing_field() -> None:
    check = require_model(Point)
    assert check({"x": 1, "y": 2}) is None
    problem = check({"x": 1})
    assert problem is not None
    assert problem.startswith("expected a Point, got {'x': 1}")
    assert "y: Field required" in problem


def test_require_non_empty_and_all_of() -> None:
    check = all_of(require_non_empty("a"), require_non_empty("b"))
    assert check({"a": 1, "b": [1]}) is None
    assert check({"a": "", "b": 1}) == "'a' must not be empty; got {'a': '', 'b': 1}"
    assert check({"a": 1, "b": []}) == "'b' must not be empty; got {'a': 1, 'b': []}"
    assert check("text") == "expected a mapping with 'a', got 'text'"


def test_validator_may_raise_stage_validation_error() -> None:
    def strict(output: Any) -> str | None:
        raise StageValidationError("nope")

    assert validate_output(StageSpec("a", _identity, output_validator=strict), 1) == "nope"
    assert validate_output(StageSpec("a", _identity), 1) is None


def test_review_wanted() -> None:
    assert review_wanted("a", ("*",))
    assert review_wanted("a", ("b", "a"))
    assert not review_wanted("a", ())
    assert not review_wanted("a", ("b",))


async def test_deterministic_pipeline_passes_outputs_along_and_counts_nothing() -> None:
    async def add_one(value: int, stage: StageContext) -> StageResult:
        return StageResult(output=value + 1)

    graph = build_pipeline(
        [
            StageSpec("parse", _parse, input_transform=lambda v: v.task),
            StageSpec("inc", add_one),
            StageSpec("check", _identity, output_validator=lambda n: None if n < 5 else "big"),
        ],
        name="numbers",
    )
    ok = await graph.ainvoke({"task": "3"})
    assert ok["success"] is True and ok["final_answer"] == "4"
    assert ok["stage_outputs"] == {"parse": 3, "inc": 4, "check": 4}
    assert ok.get("usage") in (None, {})

    bad = await graph.ainvoke({"task": "9"})
    assert bad["failed_stage"] == "check"
    assert bad["error"] == "stage 'check' produced an invalid output: big"
    assert bad["stage_outputs"] == {"parse": 9, "inc": 10}


async def _parse(text: str, stage: StageContext) -> int:
    return int(text)


def test_critique_average_and_score_bounds() -> None:
    critique = Critique(correctness=5, completeness=4, clarity=3, efficiency=4)
    assert critique.scores == {"correctness": 5, "completeness": 4, "clarity": 3, "efficiency": 4}
    assert critique.average == 4.0
    with pytest.raises(ValidationError):
        Critique(correctness=6, completeness=4, clarity=3, efficiency=4)


def test_best_draft_prefers_the_highest_then_the_latest() -> None:
    assert best_draft_index([3.0, 3.5, 2.5]) == 1
    assert best_draft_index([3.5, 3.5]) == 1
    assert best_draft_index([None, 2.0]) == 1
    assert best_draft_index([None]) is None
