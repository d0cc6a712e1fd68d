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

from nodes.identity import server_user_id

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
    max_model_calls: int | None = field(
        default=None,
        metadata={
            "description": "Most model calls one run may make, sub-agents included (None: "
            "no limit). The run ends through its finalize step with success=false."
        },
    )
    max_tool_calls: int | None = field(
        default=None,
        metadata={"description": "Most tool calls one run may make (None: no limit)."},
    )
    max_tokens: int | None = field(
        default=None,
        metadata={"description": "Most tokens (in + out, all models) one run may use."},
    )
    max_cost_usd: float | None = field(
        default=None,
        metadata={
            "description": "Most US dollars one run may spend, priced by `price_table`; a "
            "model without a price stops the run rather than spending blind."
        },
    )
    max_wall_time_s: float | None = field(
        default=None,
        metadata={
            "description": "Most seconds one run may take, not counting time paused on "
            "interrupts (approvals, reviews)."
        },
    )
    price_table: str | None = field(
        default=None,
        metadata={
            "description": "JSON/YAML file of USD prices per 1M tokens: {model: {input_per_1m, "
            "output_per_1m}} (see examples/prices.yaml). Needed for cost in metrics and for "
            "max_cost_usd."
        },
    )

    # --- who and how ---
    user_id: str = field(
        default="anonymous",
        metadata={"description": "User the run acts for (namespaces memory and audit records)."},
    )
    system_prompt: str | None = field(
        default=None,
        metadata={
            "description": "Replaces the agent's default system prompt when set; the clause "
            "saying tool output is data, never instructions, is always appended."
        },
    )
    tools: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "description": "Names of the tools the agent may use (a subset of the graph's "
            "tools). Empty means all of them."
        },
    )

    # --- patterns (planner-executor, supervisor, debate, pipeline, reflection, ToT, router) ---
    # planner-executor (graphs/plan_execute.py)
    max_plan_attempts: int = field(
        default=3,
        metadata={
            "description": "Plans the planner (or replanner) may draft per phase when validation "
            "finds problems (unknown/duplicate ids, cycles, unknown tools) before the run stops."
        },
    )
    max_concurrency: int = field(
        default=5,
        metadata={"description": "Most plan tasks running at the same time (>= 1)."},
    )
    max_replans: int = field(
        default=2,
        metadata={"description": "Most revisions of the remaining plan after failed tasks."},
    )
    review_plan: bool = field(
        default=False,
        metadata={
            "description": "Pause (interrupt) so a human can approve or edit each plan before "
            "it runs."
        },
    )
    # pipeline / reflection (graphs/pipeline.py, graphs/refine.py, graphs/reflexion.py)
    pipeline_review_after: tuple[str, ...] = field(
        default=(),
        metadata={
            "description": "Pipeline stages after which the run pauses (interrupt) for a human "
            "review of the stage output; '*' means every stage, empty means no review."
        },
    )
    refine_threshold: float = field(
        default=4.0,
        metadata={
            "description": "critic-refine stops when the critique's average score (1-5 over "
            "correctness, completeness, clarity, efficiency) reaches this value."
        },
    )
    refine_max_iterations: int = field(
        default=3,
        metadata={
            "description": "Most drafts critic-refine writes (first draft included) before it "
            "stops with success=false and the best draft."
        },
    )
    reflexion_max_trials: int = field(
        default=3,
        metadata={"description": "Most actor attempts Reflexion makes before giving up."},
    )
    reflexion_recall_limit: int = field(
        default=3,
        metadata={
            "description": "Most past reflections Reflexion recalls from long-term memory "
            "into the actor's prompt (0 turns recall off)."
        },
    )
    supervisor_router: Literal["model", "capability"] = field(
        default="model",
        metadata={
            "description": "Who routes a supervisor's handoffs: 'model' (a structured decision "
            "per step) or 'capability' (deterministic: match required capability tags to "
            "worker specs, tie-break on fewest handoffs so far; see nodes/supervision.py)."
        },
    )
    supervisor_max_handoffs: int = field(
        default=8,
        metadata={
            "description": "Most worker handoffs a supervisor may make for one request before "
            "it stops with success=false (each worker of a parallel step counts)."
        },
    )
    supervisor_ping_pong_window: int = field(
        default=4,
        metadata={
            "description": "A supervisor stops when its last N handoffs would alternate between "
            "the same two workers (4 means A,B,A,B); 0 disables the guard, else >= 3."
        },
    )
    debate_mode: Literal["debate", "vote"] = field(
        default="debate",
        metadata={
            "description": "debate: debaters revise over rounds, then a judge rules; vote: one "
            "independent answer each, majority vote, the judge only breaks ties."
        },
    )
    debate_debaters: int = field(
        default=3,
        metadata={"description": "Number of debaters (>= 2) when build_graph names none."},
    )
    debate_rounds: int = field(
        default=2,
        metadata={"description": "Revision rounds after the opening answers (debate mode)."},
    )
    debate_convergence: Literal["embedding", "judge", "off"] = field(
        default="embedding",
        metadata={
            "description": "How agreement is measured between rounds: mean pairwise cosine "
            "similarity of embeddings, a structured judge call, or never (all rounds run)."
        },
    )
    debate_agreement_threshold: float = field(
        default=0.8,
        metadata={"description": "Agreement (0-1) at which the debate stops early."},
    )
    debate_embedding_model: str = field(
        default="openai:text-embedding-3-small",
        metadata={
            "description": "Embedding model for convergence when build_graph gets no "
            "embeddings object (OpenAI-compatible /v1/embeddings)."
        },
    )
    tot_candidates: int = field(
        default=5,
        metadata={"description": "Tree of thoughts: candidate thoughts per frontier node (k)."},
    )
    tot_beam_width: int = field(
        default=2,
        metadata={"description": "Tree of thoughts: best thoughts kept per depth (b)."},
    )
    tot_max_depth: int = field(
        default=3,
        metadata={"description": "Tree of thoughts: deepest level searched (d)."},
    )
    tot_score_threshold: float = field(
        default=9.0,
        metadata={
            "description": "Tree of thoughts: a thought scoring at least this (0-10) ends the "
            "search early; above 10 never stops early."
        },
    )
    router_confidence_threshold: float = field(
        default=0.5,
        metadata={
            "description": "Router: below this classification confidence (0-1) the request "
            "goes to the fallback intent."
        },
    )

    # --- tools, policy and approvals ---
    policy: str = field(
        default="default",
        metadata={
            "description": "Tool policy: a built-in name from tools/policies/ ('default', "
            "'customer_service') or a .yaml/.json path. 'default' runs reads, sends writes and "
            "irreversible tools to approval, refuses destructive names, denies the rest."
        },
    )
    agent_policies: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "description": "Tool policy per agent name (e.g. {'task_worker': "
            "'customer_service', 'refund': 'default'}); agents not listed use `policy`. "
            "A policy fixed when the graph is built (build_graph(policy=...), "
            "WorkerSpec.policy) wins over both. CLI: agent_policies=name:policy,name:policy."
        },
    )
    approval_mode: Literal["never", "risky", "always"] = field(
        default="risky",
        metadata={
            "description": "Which policy-allowed tool calls also pause for a human: 'never' "
            "(only what the policy requires), 'risky' (write/irreversible tools), 'always'."
        },
    )
    approval_timeout_s: float = field(
        default=86400.0,
        metadata={
            "description": "Seconds a reviewer has to answer an approval request; a later "
            "answer counts as 'expired' (rejected)."
        },
    )
    plan_tools: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "description": "Plan-time allow-list: tools fixed before any untrusted data is "
            "read; calls to any other tool are denied. None means no plan-time limit."
        },
    )
    output_guardrail: Literal["off", "redact", "revise", "approve"] = field(
        default="off",
        metadata={
            "description": "What the output guardrail (graphs that include it) does when the "
            "answer holds PII, is too long or breaks a graph rule: 'off', 'redact' (mask it), "
            "'revise' (ask the model to fix it, bounded, then redact) or 'approve' (a human "
            "reviews it via interrupt)."
        },
    )

    # --- memory ---
    memory_enabled: bool = field(
        default=False,
        metadata={
            "description": "Use long-term memory: recall relevant memories before the model "
            "and record an episode after the answer (needs a store)."
        },
    )
    org_id: str | None = field(
        default=None,
        metadata={
            "description": "Organisation the user belongs to: memories then live under "
            "('org_memories', org, user, kind) instead of ('memories', user, kind). Users "
            "stay isolated either way; None means no organisation."
        },
    )
    memory_kinds: tuple[str, ...] = field(
        default=("semantic", "episodic", "procedural"),
        metadata={"description": "Memory kinds recall searches (semantic, episodic, procedural)."},
    )
    recall_k: int = field(
        default=8,
        metadata={"description": "Most memories injected before a model call."},
    )
    memory_token_budget: int = field(
        default=800,
        metadata={"description": "Most tokens the injected memories may take in the prompt."},
    )
    record_episodes: bool = field(
        default=True,
        metadata={
            "description": "When memory is on, store an episodic memory (task, outcome, "
            "tools, tokens) after each answer."
        },
    )
    context_window_tokens: int = field(
        default=128_000,
        metadata={"description": "The model's context window in tokens."},
    )
    reserve_output_tokens: int = field(
        default=4_096,
        metadata={
            "description": "Tokens kept free for the reply; the model input is trimmed to "
            "context_window_tokens minus this."
        },
    )
    summarize_after_tokens: int | None = field(
        default=64_000,
        metadata={
            "description": "When the thread's messages exceed this many tokens, older turns "
            "are folded into a running summary (one model call). None turns it off."
        },
    )
    summary_keep_tokens: int = field(
        default=8_000,
        metadata={"description": "Tokens of the most recent turns kept verbatim when summarising."},
    )

    # --- budgets, resilience and observability ---
    fallback_model: str | None = field(
        default=None,
        metadata={
            "description": "Backup model id ('provider:name') used when the primary model is "
            "unavailable (transient errors after retries, open circuit, model not found). "
            "None means no fallback."
        },
    )
    circuit_failure_threshold: int = field(
        default=5,
        metadata={
            "description": "Consecutive transient failures of an external service (model "
            "endpoint, tool backend) that open its circuit breaker (>= 1)."
        },
    )
    circuit_reset_s: float = field(
        default=60.0,
        metadata={
            "description": "Seconds an open circuit fails fast before one probe call may test "
            "the service again."
        },
    )
    model_requests_per_second: float | None = field(
        default=None,
        metadata={
            "description": "Client-side rate limit for model requests, shared process-wide by "
            "every run calling the same endpoint and model (cache hits are not counted). "
            "None means no limit."
        },
    )
    response_cache: bool = field(
        default=False,
        metadata={
            "description": "Answer a repeated identical request (same messages, tools, model, "
            "parameters and response format) from a process-wide cache, at zero token cost. "
            "Applies only when temperature is 0. Off by default: repeated runs (evaluations, "
            "'try again') would otherwise all get the first answer."
        },
    )

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
    """Return the run's Context; a Python caller that passes none gets the defaults.

    On a LangGraph server with auth on, `user_id` is the authenticated user (the thread owner),
    whatever the caller put in the context (see nodes/identity.py).
    """
    ctx = _declared_context(runtime)
    server_user = server_user_id()
    if server_user is None or server_user == ctx.user_id:
        return ctx
    return dataclasses.replace(ctx, user_id=server_user)


def _declared_context(runtime: Runtime[Context] | None) -> Context:
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
        if type_name.startswith("dict"):
            # name:value pairs, comma-separated (agent_policies=task_worker:customer_service)
            pairs = [part.partition(":") for part in raw.split(",") if part.strip()]
            if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
                raise ValueError(raw)
            return {k.strip(): v.strip() for k, _, v in pairs}
    except ValueError:
        raise ValueError(
            f"context field {key!r} expects {type_name}, got {raw!r}"
        ) from None
    return raw
