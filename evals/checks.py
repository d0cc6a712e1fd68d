"""A scenario's expectations checked against one trial's outcome.

Every failed check becomes a `CheckFailure(check, reason)`; a trial passes when there is none.
A run that raised, timed out or is left waiting on an interrupt fails the `run` check and the
others are still evaluated on its partial state, so the report shows everything that went wrong.

Python checks (`expect.python: "module:function"`) are called with the final state values (a
dict: do not modify it) and may be async. They pass by returning None or True, and fail by
returning False, returning a string (the reason) or raising AssertionError (its message is
the reason). Any other exception is a bug in the check and propagates.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evals.outcome import TrialOutcome
from evals.suite import Expectations, resolve_python_check

_QUOTE_CHARS = 120
_MISSING = object()


@dataclass(frozen=True)
class CheckFailure:
    """One expectation a trial did not meet."""

    check: str
    """The check's name, e.g. `final_answer_contains` or `state.verdict.decision`."""
    reason: str

    def as_dict(self) -> dict[str, str]:
        """JSON-able form for the report."""
        return {"check": self.check, "reason": self.reason}


def _quote(text: str | None) -> str:
    if text is None:
        return "no final answer"
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…")


def state_at(values: Any, path: str) -> Any:
    """The value at a dotted path: mapping keys, list indices (`-1` too) or attributes.

    Raises:
        LookupError: Saying which segment is missing and what was there instead.
    """
    current = values
    walked: list[str] = []
    for part in path.split("."):
        found: Any = _MISSING
        if isinstance(current, Mapping):
            found = current.get(part, _MISSING)
        elif isinstance(current, Sequence) and not isinstance(current, str):
            if re.fullmatch(r"-?\d+", part) and -len(current) <= int(part) < len(current):
                found = current[int(part)]
        elif current is not None and not part.startswith("_"):
            found = getattr(current, part, _MISSING)
        if found is _MISSING:
            where = ".".join(walked) or "the state"
            if isinstance(current, Mapping):
                have = f"keys: {', '.join(map(str, list(current)[:12])) or 'none'}"
            elif isinstance(current, Sequence) and not isinstance(current, str):
                have = f"a list of {len(current)}"
            else:
                have = type(current).__name__
            raise LookupError(f"{where} has no {part!r} ({have})")
        walked.append(part)
        current = found
    return current


def _run_failure(outcome: TrialOutcome) -> CheckFailure | None:
    if outcome.error is not None:
        return CheckFailure("run", f"the run did not finish: {outcome.error}")
    if outcome.waiting:
        return CheckFailure(
            "run",
            f"the run is paused on {len(outcome.waiting)} interrupt(s) and the scenario's "
            "'resume' has no answer left",
        )
    return None


def _limit_failures(expect: Expectations, outcome: TrialOutcome) -> list[CheckFailure]:
    metrics = outcome.metrics
    failures = []
    limits = {
        "max_iterations": metrics.iterations,
        "max_tool_errors": metrics.tool_errors,
        "max_model_calls": metrics.model_calls,
        "max_tokens": metrics.total_tokens,
    }
    for name, used in limits.items():
        allowed = getattr(expect, name)
        if allowed is None:
            continue
        if used is None:
            failures.append(
                CheckFailure(name, f"this graph reports no {name.removeprefix('max_')}")
            )
        elif used > allowed:
            failures.append(CheckFailure(name, f"{used} > {allowed}"))
    return failures


def builtin_failures(expect: Expectations, outcome: TrialOutcome) -> list[CheckFailure]:
    """Every declarative check that fails (all but `python`), in a fixed order."""
    failures = [f for f in [_run_failure(outcome)] if f is not None]
    success = outcome.values.get("success")
    if success is not expect.success:
        error = outcome.values.get("error")
        why = f" ({error})" if error else ""
        failures.append(CheckFailure("success", f"expected {expect.success}, got {success}{why}"))
    answer = outcome.final_answer
    for text in expect.final_answer_contains:
        if answer is None or text not in answer:
            failures.append(
                CheckFailure("final_answer_contains", f"{text!r} not in {_quote(answer)}")
            )
    pattern = expect.final_answer_matches
    if pattern is not None and (answer is None or re.search(pattern, answer) is None):
        failures.append(
            CheckFailure("final_answer_matches", f"/{pattern}/ not found in {_quote(answer)}")
        )
    called = {name for name, counts in outcome.metrics.tools.items() if counts.get("calls")}
    for name in expect.tool_called:
        if name not in called:
            have = ", ".join(sorted(called)) or "none"
            failures.append(CheckFailure("tool_called", f"{name!r} never called (called: {have})"))
    for name in expect.tool_not_called:
        if name in called:
            count = outcome.metrics.tools[name].get("calls", 0)
            failures.append(CheckFailure("tool_not_called", f"{name!r} called {count} time(s)"))
    failures.extend(_limit_failures(expect, outcome))
    for path, expected in expect.state.items():
        try:
            actual = state_at(outcome.values, path)
        except LookupError as exc:
            failures.append(CheckFailure(f"state.{path}", str(exc)))
            continue
        if actual != expected:
            failures.append(CheckFailure(f"state.{path}", f"expected {expected!r}, got {actual!r}"))
    return failures


async def python_failure(ref: str, values: Mapping[str, Any]) -> CheckFailure | None:
    """Run a `module:function` check (contract in the module docstring)."""
    function = resolve_python_check(ref)
    try:
        result = function(dict(values))
        if inspect.isawaitable(result):
            result = await result
    except AssertionError as exc:
        return CheckFailure("python", f"{ref}: {exc or 'assertion failed'}")
    if result is None or result is True:
        return None
    if result is False:
        return CheckFailure("python", f"{ref} returned False")
    if isinstance(result, str):
        return CheckFailure("python", f"{ref}: {result}")
    raise TypeError(
        f"python check {ref} must return None, a bool or a reason string, "
        f"got {type(result).__name__}"
    )


async def evaluate(expect: Expectations, outcome: TrialOutcome) -> list[CheckFailure]:
    """Every failed check of one trial (empty: the trial passed)."""
    failures = builtin_failures(expect, outcome)
    if expect.python is not None:
        failure = await python_failure(expect.python, outcome.values)
        if failure is not None:
            failures.append(failure)
    return failures


__all__ = ["CheckFailure", "builtin_failures", "evaluate", "python_failure", "state_at"]
