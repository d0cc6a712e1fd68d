"""Stage specs for pipelines, and how one stage runs and is checked.

A pipeline (graphs/pipeline.py `build_pipeline`) is an ordered list of `StageSpec`s. Each stage
has a runner (an async function or any runnable, e.g. a compiled subgraph such as the ReAct agent),
an optional input transform (what the stage receives, built from the task and earlier outputs),
an optional output transform (what is kept from the runner's result) and an optional output
validator. Outputs are stored as plain JSON-able data, so a human can inspect and fix them with
`update_state` (in Python or through the server's API).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_openai_messages
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ValidationError

from nodes.context import Context
from nodes.model import ModelOverride
from nodes.state import ModelUsage, ToolResult

logger = logging.getLogger(__name__)

RESERVED_STAGE_NAMES = frozenset(
    {"prepare", "review_gate", "finish", "finish_run", "__start__", "__end__"}
)
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PipelineSpecError(ValueError):
    """The stage list cannot form a pipeline (no stages, duplicate or reserved names, ...)."""


class StageValidationError(Exception):
    """Raised by a stage runner or validator: the stage's output is not acceptable.

    The pipeline stops at that stage with `failed_stage` and this message as `error`.
    """


class ReviewAnswerError(ValueError):
    """A human review answer the pipeline's review gate does not understand."""


@dataclass(frozen=True)
class PipelineView:
    """What an input transform sees when it builds a stage's input."""

    task: str
    """The pipeline's request."""
    data: Mapping[str, Any]
    """Structured input given with the request (`data` in the input), possibly empty."""
    outputs: Mapping[str, Any]
    """Outputs of the stages that already completed, by stage name."""
    previous: Any
    """Output of the stage just before (the task itself for the first stage)."""


@dataclass(frozen=True)
class StageContext:
    """Plumbing a stage runner may use: run settings, model override, config and store."""

    stage: str
    context: Context
    model: ModelOverride
    config: RunnableConfig
    store: BaseStore | None


@dataclass(frozen=True)
class StageResult:
    """A stage runner's output plus what producing it cost."""

    output: Any
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    tool_results: list[ToolResult] = field(default_factory=list)


StageFunction = Callable[[Any, StageContext], Awaitable[Any]]
"""`async def run(stage_input, stage_context) -> output | StageResult`."""
InputTransform = Callable[[PipelineView], Any]
OutputTransform = Callable[[Any], Any]
OutputValidator = Callable[[Any], str | None]
"""Returns None when the output is acceptable, else one sentence saying what is wrong (it may
also raise `StageValidationError`)."""


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage.

    Attributes:
        name: Node name and key in `stage_outputs` (lower snake_case).
        run: An async function `(stage_input, StageContext) -> output | StageResult`, or a
            runnable such as a compiled subgraph, invoked with the stage input; a subgraph's
            `usage` and `tool_results` are added to the pipeline's.
        input_transform: Builds the stage input from a `PipelineView`; default: the previous
            stage's output (the task for the first stage).
        output_transform: Reduces the runner's result to what is kept (e.g. drop a
            sub-agent's messages); applied before validation.
        output_validator: Checks the (plain-data) output; a problem stops the pipeline here.
        description: One line for humans (review prompts, docs).
    """

    name: str
    run: StageFunction | Runnable[Any, Any]
    input_transform: InputTransform | None = None
    output_transform: OutputTransform | None = None
    output_validator: OutputValidator | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not _STAGE_NAME.match(self.name) or self.name in RESERVED_STAGE_NAMES:
            raise PipelineSpecError(
                f"stage name {self.name!r} is not allowed; expected lower snake_case, not one "
                f"of {', '.join(sorted(RESERVED_STAGE_NAMES))}"
            )
        if not (isinstance(self.run, Runnable) or callable(self.run)):
            raise PipelineSpecError(
                f"stage {self.name!r}: 'run' must be an async function or a runnable, got "
                f"{type(self.run).__name__}"
            )


def check_stage_list(stages: list[StageSpec]) -> None:
    """Raise PipelineSpecError unless `stages` is a non-empty list with unique names."""
    if not stages:
        raise PipelineSpecError("a pipeline needs at least one stage, got none")
    seen: set[str] = set()
    for spec in stages:
        if spec.name in seen:
            raise PipelineSpecError(
                f"duplicate stage name {spec.name!r}; stage names: "
                f"{', '.join(s.name for s in stages)}"
            )
        seen.add(spec.name)


def default_input(view: PipelineView) -> Any:
    """The previous stage's output (the task for the first stage)."""
    return view.previous


def to_plain(value: Any) -> Any:
    """JSON-able copy of a stage output: Pydantic models dumped, messages in OpenAI form."""
    # Messages first: they are Pydantic models too, but their OpenAI form is what people read.
    if isinstance(value, BaseMessage):
        return convert_to_openai_messages(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


async def run_stage(spec: StageSpec, stage_input: Any, stage: StageContext) -> StageResult:
    """Run one stage and return its plain output (after `output_transform`) and its cost."""
    if isinstance(spec.run, Runnable):
        if isinstance(spec.run, Pregel):
            # A compiled graph gets the stage's context (its share of the run's budget).
            raw = await spec.run.ainvoke(stage_input, stage.config, context=stage.context)
        else:
            raw = await spec.run.ainvoke(stage_input, stage.config)
        usage: dict[str, ModelUsage] = {}
        tools: list[ToolResult] = []
        if isinstance(raw, Mapping):
            usage = dict(raw.get("usage") or {})
            tools = list(raw.get("tool_results") or [])
            raw = {k: v for k, v in raw.items() if k not in {"usage", "tool_results"}}
        result = StageResult(output=raw, usage=usage, tool_results=tools)
    else:
        returned = spec.run(stage_input, stage)
        if inspect.isawaitable(returned):
            returned = await returned
        result = returned if isinstance(returned, StageResult) else StageResult(output=returned)
    output = result.output
    if spec.output_transform is not None:
        output = spec.output_transform(output)
    return StageResult(
        output=to_plain(output), usage=result.usage, tool_results=result.tool_results
    )


def validate_output(spec: StageSpec, output: Any) -> str | None:
    """The validator's complaint about `output`, or None when it is acceptable."""
    if spec.output_validator is None:
        return None
    try:
        return spec.output_validator(output)
    except StageValidationError as exc:
        return str(exc)


def require_model(schema: type[BaseModel]) -> OutputValidator:
    """A validator accepting outputs that parse as `schema`."""

    def check(output: Any) -> str | None:
        try:
            schema.model_validate(output)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
            )
            return f"expected a {schema.__name__}, got {_short(output)} ({problems})"
        return None

    check.__name__ = f"require_{schema.__name__}"
    return check


def require_non_empty(*keys: str) -> OutputValidator:
    """A validator requiring a mapping whose `keys` hold non-empty values."""

    def check(output: Any) -> str | None:
        if not isinstance(output, Mapping):
            return f"expected a mapping with {', '.join(map(repr, keys))}, got {_short(output)}"
        empty = [k for k in keys if not output.get(k)]
        if empty:
            return f"{', '.join(map(repr, empty))} must not be empty; got {_short(output)}"
        return None

    return check


def all_of(*validators: OutputValidator) -> OutputValidator:
    """A validator that reports the first complaint of `validators`, checked in order."""

    def check(output: Any) -> str | None:
        for validator in validators:
            problem = validator(output)
            if problem:
                return problem
        return None

    return check


def review_wanted(stage: str, review_after: tuple[str, ...]) -> bool:
    """Whether the context asks for a human review after `stage` (`'*'` means every stage)."""
    return "*" in review_after or stage in review_after


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "InputTransform",
    "OutputTransform",
    "OutputValidator",
    "PipelineSpecError",
    "PipelineView",
    "ReviewAnswerError",
    "StageContext",
    "StageFunction",
    "StageResult",
    "StageSpec",
    "StageValidationError",
    "all_of",
    "check_stage_list",
    "default_input",
    "require_model",
    "require_non_empty",
    "review_wanted",
    "run_stage",
    "to_plain",
    "validate_output",
]
