"""Run settings shared by every graph (the `context_schema` Studio edits).

Precedence, stated once: an argument given to `build_graph(...)` wins, then the per-run
context (Studio, `weft run --context key=value`, `graph.invoke(..., context=Context(...))`),
then the field default below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.runtime import Runtime

ModelRole = Literal["agent", "planner", "worker", "judge", "router", "critic"]

DEFAULT_MODEL = "openai:gpt-4.1-mini"


@dataclass(kw_only=True, frozen=True)
class Context:
    """Per-run settings for every weftgraph graph. All fields are optional."""

    # --- models ---
    model: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "description": "Default chat model as 'provider:name' (e.g. 'openai:gpt-4.1-mini'). "
            "Any OpenAI-compatible endpoint works through OPENAI_BASE_URL."
        },
    )
    planner_model: str | None = field(
        default=None,
        metadata={"description": "Model for planning and synthesis; falls back to `model`."},
    )
    worker_model: str | None = field(
        default=None,
        metadata={"description": "Model for workers and sub-agents; falls back to `model`."},
    )
    judge_model: str | None = field(
        default=None,
        metadata={
            "description": "Model for judges, critics and evaluators; falls back to `model`."
        },
    )
    router_model: str | None = field(
        default=None,
        metadata={"description": "Model for routing/classification; falls back to `model`."},
    )
    temperature: float = field(
        default=0.0,
        metadata={"description": "Sampling temperature for every model call (0-2)."},
    )
    request_timeout_s: float = field(
        default=60.0,
        metadata={"description": "Timeout in seconds for one model HTTP request."},
    )
    max_retries: int = field(
        default=2,
        metadata={"description": "Retries of the HTTP client on transient model errors."},
    )

    # --- limits ---
    max_iterations: int = field(
        default=10,
        metadata={
            "description": "Most model calls the agent loop may make for one request before it "
            "stops with success=false."
        },
    )

    # --- who and how ---
    user_id: str = field(
        default="anonymous",
        metadata={"description": "User the run acts for (namespaces memory and audit records)."},
    )
    system_prompt: str | None = field(
        default=None,
        metadata={"description": "Replaces the agent's default system prompt when set."},
    )
    tools: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "description": "Names of the tools the agent may use (a subset of the graph's "
            "tools). Empty means all of them."
        },
    )

    # --- patterns (planner-executor, supervisor, debate, pipeline, reflection, ToT, router) ---

    # --- tools, policy and approvals ---

    # --- memory ---

    # --- budgets, resilience and observability ---

    def model_for(self, role: ModelRole) -> str:
        """Return the model id for `role`, falling back to `model` when no override is set."""
        override = {
            "agent": None,
            "planner": self.planner_model,
            "worker": self.worker_model,
            "judge": self.judge_model,
            "critic": self.judge_model,
            "router": self.router_model,
        }[role]
        return override or self.model


def context_of(runtime: Runtime[Context] | None) -> Context:
    """Return the run's Context; a Python caller that passes none gets the defaults."""
    ctx = getattr(runtime, "context", None)
    if ctx is None:
        return Context()
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        return context_from_mapping(ctx)
    raise TypeError(f"context must be a Context or a dict, got {type(ctx).__name__}")


def context_from_mapping(values: dict[str, Any]) -> Context:
    """Build a Context from a plain mapping, naming any unknown field and the valid ones."""
    known = {f.name: f for f in dataclasses.fields(Context)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown context field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields: {', '.join(sorted(known))}"
        )
    coerced = dict(values)
    if isinstance(coerced.get("tools"), list):
        coerced["tools"] = tuple(coerced["tools"])
    return Context(**coerced)


def parse_context_assignments(pairs: list[str]) -> Context:
    """Parse CLI `key=value` pairs into a Context, converting each value to its field's type.

    Raises ValueError naming the field, the expected type and the value received.
    """
    fields = {f.name: f for f in dataclasses.fields(Context)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"context setting {pair!r} is not of the form key=value")
        if key not in fields:
            raise ValueError(
                f"unknown context field {key!r}; valid fields: {', '.join(sorted(fields))}"
            )
        values[key] = _convert(key, str(fields[key].type), raw)
    return context_from_mapping(values)


def _convert(key: str, type_name: str, raw: str) -> Any:
    if raw.lower() in {"none", "null"} and "None" in type_name:
        return None
    try:
        if type_name.startswith("bool"):
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"context field {key!r} expects {type_name}, got {raw!r}"
        ) from None
    return raw
