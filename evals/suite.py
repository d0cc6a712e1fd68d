"""The scenario-suite format of `weft eval`, validated with Pydantic.

A suite is a YAML or JSON file holding a list of scenarios, either bare or under `scenarios:`
(with an optional `name` and `description`)::

    name: smoke
    scenarios:
      - id: react-percent-and-clock
        graph: react                 # or a list: the same scenario on several graphs
        input: "What is 17.5% of 2,480?"   # text, a list of {role, content}, or the input dict
        context: {max_iterations: 4}       # run settings (nodes/context.py)
        model: scripted              # scripted: `script` answers; live: whatever OPENAI_* sets
        script: demo:react           # inline script, a file next to the suite, or demo:GRAPH
        resume: []                   # answers for interrupts, in order
        expect:
          success: true              # the default
          final_answer_contains: "434"
          tool_called: calculate

Every problem is reported with the scenario id and the field at fault, all at once, as a
`SuiteError`. A scenario with a list of graphs becomes one case per graph, with the id
`ID@GRAPH`.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from graphs import GRAPHS
from nodes.context import Context, context_from_mapping
from nodes.offline.script import Script, load_script

_DEMO_PREFIX = "demo:"
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class SuiteError(ValueError):
    """A suite file cannot be used; the message lists every problem with scenario and field."""


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def resolve_python_check(ref: str) -> Callable[..., Any]:
    """Import the `module:function` a scenario names as its Python check.

    Raises:
        ValueError: When the reference is malformed, the module cannot be imported or the
            attribute is missing or not callable.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:function', got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"module {module_name!r} has no function {attr!r}")
    return function  # type: ignore[no-any-return]


class Message(BaseModel):
    """One input message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant", "system"]
    content: str


class Expectations(BaseModel):
    """What a trial must show to pass; every set check must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    success: bool = True
    """The run's `success` (a budget stop or failed pattern reports False)."""
    final_answer_contains: list[str] = Field(default_factory=list)
    """Substrings the final answer must contain (case-sensitive)."""
    final_answer_matches: str | None = None
    """A regular expression searched in the final answer."""
    tool_called: list[str] = Field(default_factory=list)
    """Tools that must have been called at least once."""
    tool_not_called: list[str] = Field(default_factory=list)
    """Tools that must not have been called."""
    max_iterations: int | None = Field(default=None, ge=0)
    max_tool_errors: int | None = Field(default=None, ge=0)
    max_model_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    state: dict[str, Any] = Field(default_factory=dict)
    """Dotted paths into the final state and the value each must equal (`verdict.decision`)."""
    python: str | None = None
    """`module:function` called with the final state; see evals/checks.py for the contract."""

    _split = field_validator(
        "final_answer_contains", "tool_called", "tool_not_called", mode="before"
    )(_one_or_many)

    @field_validator("final_answer_matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern

    @field_validator("state")
    @classmethod
    def _paths(cls, paths: dict[str, Any]) -> dict[str, Any]:
        for path in paths:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"state path {path!r} has an empty segment")
        return paths

    @field_validator("python")
    @classmethod
    def _importable(cls, ref: str | None) -> str | None:
        if ref is not None:
            resolve_python_check(ref)
        return ref


class Scenario(BaseModel):
    """One task to run k times on one or more graphs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID_PATTERN)
    graph: list[str] = Field(min_length=1)
    description: str | None = None
    input: str | list[Message] | dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)
    model: Literal["scripted", "live"]
    script: dict[str, Any] | str | None = None
    """Inline script, `demo:GRAPH`, or a script file (relative to the suite file)."""
    resume: list[Any] = Field(default_factory=list)
    expect: Expectations = Field(default_factory=Expectations)

    _split = field_validator("graph", mode="before")(_one_or_many)

    @field_validator("graph")
    @classmethod
    def _registered(cls, graphs: list[str]) -> list[str]:
        for graph_id in graphs:
            if graph_id not in GRAPHS:
                raise ValueError(
                    f"unknown graph {graph_id!r}; registered graphs: {', '.join(sorted(GRAPHS))}"
                )
        return graphs

    @field_validator("context")
    @classmethod
    def _valid_context(cls, values: dict[str, Any]) -> dict[str, Any]:
        context_of_mapping(values)
        return values

    @field_validator("script")
    @classmethod
    def _loadable(cls, script: dict[str, Any] | str | None, info: ValidationInfo) -> Any:
        if script is None:
            return None
        if isinstance(script, str) and not script.startswith(_DEMO_PREFIX):
            base = Path((info.context or {}).get("base_dir", "."))
            path = Path(script).expanduser()
            script = str(path if path.is_absolute() else (base / path).resolve())
            if not Path(script).is_file():
                raise ValueError(f"script file {script!r} does not exist")
        _load(script)  # ScriptValidationError is a ValueError: reported with the field
        return script

    @model_validator(mode="after")
    def _script_matches_model(self) -> Scenario:
        if self.model == "scripted" and self.script is None:
            raise ValueError("model 'scripted' needs a 'script' (inline, a file or demo:GRAPH)")
        if self.model == "live" and self.script is not None:
            raise ValueError("model 'live' calls the configured provider; remove 'script'")
        return self

    def run_context(self) -> Context:
        """The scenario's run settings as a `Context` (defaults for the fields it leaves out)."""
        return context_of_mapping(self.context)

    def load_script(self) -> Script:
        """The validated script of a scripted scenario."""
        if self.script is None:
            raise ValueError(f"scenario {self.id!r} is not scripted")
        return _load(self.script)


@functools.cache
def _context_adapter() -> TypeAdapter[Context]:
    return TypeAdapter(Context)


def context_of_mapping(values: Mapping[str, Any]) -> Context:
    """A `Context` from suite values, converted and checked against each field's type.

    Raises:
        ValueError: Naming the unknown field (and the valid ones) or the field whose value
            does not fit its type.
    """
    context_from_mapping(dict(values))  # its message lists the valid field names
    try:
        return _context_adapter().validate_python(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(
            f"context field {field!r}: {first['msg']}, got {first.get('input')!r}"
        ) from None


def _load(script: dict[str, Any] | str) -> Script:
    if isinstance(script, str) and script.startswith(_DEMO_PREFIX):
        from graphs.cli import CliError, load_demo

        try:
            return load_script(load_demo(script.removeprefix(_DEMO_PREFIX))["script"])
        except CliError as exc:
            raise ValueError(str(exc)) from exc
    return load_script(script)


@dataclass(frozen=True)
class Case:
    """One scenario on one graph: the unit that runs k times."""

    case_id: str
    graph_id: str
    scenario: Scenario


@dataclass(frozen=True)
class Suite:
    """Validated scenarios from one or more files, expanded to cases."""

    files: tuple[str, ...]
    cases: tuple[Case, ...]

    def select(self, *, graphs: Sequence[str] = (), ids: Sequence[str] = ()) -> Suite:
        """The cases on `graphs` whose case or scenario id is in `ids` (empty: no filter).

        Raises:
            SuiteError: When the filter leaves nothing to run, naming what exists.
        """
        chosen = tuple(
            case
            for case in self.cases
            if (not graphs or case.graph_id in graphs)
            and (not ids or case.case_id in ids or case.scenario.id in ids)
        )
        if not chosen:
            known = ", ".join(case.case_id for case in self.cases)
            raise SuiteError(f"no scenario matches the filter; the suite has: {known}")
        return Suite(self.files, chosen)


def _where(raw: Any, index: int) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return f"scenario {raw['id']!r}"
    return f"scenario #{index + 1} (no id)"


def _problems(error: ValidationError, where: str) -> list[str]:
    lines = []
    for item in error.errors():
        # Union members add their type name to the location; it is noise for the reader.
        loc = ".".join(
            str(part)
            for part in item["loc"]
            if not (isinstance(part, str) and ("[" in part or part in {"str", "list", "dict"}))
        )
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where} {loc or '(scenario)'}: {message}")
    return lines


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SuiteError(f"{path}: cannot parse: {exc}") from exc


def parse_suite(data: Any, *, source: str, base_dir: Path) -> tuple[list[Scenario], list[str]]:
    """Validate one file's parsed content; returns its scenarios and the problems found."""
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {"name", "description", "scenarios"})
        if unknown:
            return [], [f"{source}: unknown top-level key(s) {unknown}; expected 'scenarios'"]
        data = data.get("scenarios")
    if not isinstance(data, list) or not data:
        return [], [f"{source}: expected a non-empty list of scenarios (or 'scenarios: [...]')"]
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for index, raw in enumerate(data):
        try:
            scenarios.append(Scenario.model_validate(raw, context={"base_dir": str(base_dir)}))
        except ValidationError as exc:
            problems.extend(f"{source}: {line}" for line in _problems(exc, _where(raw, index)))
    return scenarios, problems


def _importable_from(folder: Path) -> None:
    # `weft` runs as a console script, whose sys.path holds neither the working directory nor
    # the suite's folder: without this, a Python check module kept next to its suite would
    # not import.
    where = str(folder.resolve())
    if where not in sys.path:
        sys.path.append(where)


def load_suite(paths: Sequence[str | Path]) -> Suite:
    """Load and validate suite files; scenario ids must be unique across them.

    Python check modules (`expect.python`) may live next to a suite file: its folder is
    added to the end of `sys.path`.

    Raises:
        SuiteError: Listing every problem (file, scenario id, field, what was expected).
    """
    problems: list[str] = []
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for raw_path in paths:
        path = Path(raw_path)
        if not path.is_file():
            raise SuiteError(f"suite file {str(path)!r} does not exist")
        _importable_from(path.parent)
        scenarios, found = parse_suite(_read(path), source=str(path), base_dir=path.parent)
        problems.extend(found)
        for scenario in scenarios:
            if scenario.id in seen:
                problems.append(
                    f"{path}: scenario {scenario.id!r} id: already used in {seen[scenario.id]}"
                )
                continue
            seen[scenario.id] = str(path)
            for graph_id in scenario.graph:
                case_id = scenario.id if len(scenario.graph) == 1 else f"{scenario.id}@{graph_id}"
                cases.append(Case(case_id, graph_id, scenario))
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise SuiteError(f"invalid suite ({count}):\n  " + "\n  ".join(problems))
    return Suite(tuple(str(p) for p in paths), tuple(cases))


__all__ = [
    "Case",
    "Expectations",
    "Message",
    "Scenario",
    "Suite",
    "SuiteError",
    "context_of_mapping",
    "load_suite",
    "parse_suite",
    "resolve_python_check",
]
