"""Router: classify a request into one of a declared set of intents and hand it to that intent's
subgraph.

One structured call (`IntentDecision`: intent restricted to the declared names, confidence,
reason) picks the route; below `Context.router_confidence_threshold`, or when the model cannot
produce a valid decision, the request goes to the fallback intent. Each intent is a subgraph
that takes `messages` (usually the shared ReAct loop with its own tools and prompt).

The default intents are a customer-service desk over a sample shop: `order_status` (ReAct with
`look_up_order`), `refund` (ReAct with `look_up_order`, `check_refund_eligibility`),
`product_info` (ReAct with `search_products`) and `general` (no tools; the fallback).

Model calls: 1 to classify (2 when the first reply does not fit the schema), plus whatever the
chosen subgraph makes (for the ReAct specialists: one per iteration).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired

from langchain_core.messages import SystemMessage
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from nodes.agent import AgentInput, AgentOutput, build_agent
from nodes.context import Context, context_of
from nodes.finish import (
    budget_stop,
    child_accounting,
    child_context,
    load_price_table,
    make_finish_run,
    stopped_outcome,
)
from nodes.model import ModelOverride
from nodes.prompts.router import (
    GENERAL_PROMPT,
    INTENT_LINE,
    ORDER_STATUS_PROMPT,
    PRODUCT_INFO_PROMPT,
    REFUND_PROMPT,
    ROUTER_SYSTEM_PROMPT,
)
from nodes.resilience import MODEL_NODE_TIMEOUT, MODEL_RETRY, on_model_failure
from nodes.routing import (
    choose_route,
    classification_view,
    intent_lines,
    intent_schema,
    validate_intents,
)
from nodes.state import RunClockChannel, start_clock
from nodes.structured import StructuredOutputError, ask_structured
from nodes.tool_gate import PolicyRef
from nodes.tracing import traced

logger = logging.getLogger(__name__)

DEFAULT_FALLBACK = "general"


@dataclass(frozen=True)
class Intent:
    """One declared intent: what it covers (shown to the classifier) and who handles it.

    Attributes:
        description: One line telling the classifier which requests belong here.
        handler: A compiled graph (or runnable) taking `{"messages": [...]}` and returning at
            least `messages`; `final_answer`, `success`, `error`, `usage` and `tool_results`
            are passed through when it reports them (the shared agent loop does).
    """

    description: str
    handler: Runnable[Any, Any]


class RouterOutput(AgentOutput):
    """What the router reports: the chosen handler's outcome plus the routing decision."""

    intent: NotRequired[str | None]
    """The intent the classifier chose."""
    confidence: NotRequired[float | None]
    """The classifier's confidence, 0-1."""
    route_reason: NotRequired[str | None]
    """The classifier's reason (or why the fallback was used)."""
    routed_to: NotRequired[str]
    """The intent whose handler answered: `intent`, or the fallback."""


class RouterState(RouterOutput, RunClockChannel):
    """Full state of the router graph."""


# What a handler's output carries into the router's state besides its spending.
_HANDLER_KEYS = ("messages", "final_answer", "success", "error", "iterations", "context_windows")


def handler_node(name: str, handler: Runnable[Any, Any]) -> Any:
    """The node that runs one intent's handler within what is left of the run's budget.

    Reads `messages`; writes the handler's `messages` and outcome, plus its usage, tool
    results, degraded capabilities and pauses (`child_accounting`).
    """

    async def handle(state: RouterState, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = context_of(runtime)
        stop = budget_stop(state, ctx)
        if stop:
            return stopped_outcome(f"{stop} before the {name!r} handler could answer")
        # Only the router's own answer passes the output guardrail (in finish_run).
        child = dataclasses.replace(child_context(ctx, state), output_guardrail="off")
        request = {"messages": state["messages"]}
        if isinstance(handler, Pregel):
            output = await handler.ainvoke(request, context=child)
        else:
            output = await handler.ainvoke(request)
        passed = {key: output[key] for key in _HANDLER_KEYS if key in output}
        return {**passed, **child_accounting(output)}

    handle.__name__ = f"handle_{name}"
    return handle


def customer_service_intents(
    model: ModelOverride = None, *, policy: PolicyRef | None = None
) -> dict[str, Intent]:
    """The example desk: order status, refunds, product info and a general fallback.

    Each specialist is an agent named after its intent (its `Context.agent_policies` key);
    `policy`, when given, is fixed for all of them.
    """
    from tools.customer_service import check_refund_eligibility, look_up_order, search_products

    def specialist(
        name: str, tools: list[Any], prompt: str
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        return build_agent(tools=tools, model=model, system_prompt=prompt, name=name, policy=policy)

    return {
        "order_status": Intent(
            "Where an order is, its status, shipping or delivery date.",
            specialist("order_status", [look_up_order], ORDER_STATUS_PROMPT),
        ),
        "refund": Intent(
            "Returns, refunds, cancellations or money back for an order.",
            specialist("refund", [look_up_order, check_refund_eligibility], REFUND_PROMPT),
        ),
        "product_info": Intent(
            "Products: availability, prices, features, recommendations.",
            specialist("product_info", [search_products], PRODUCT_INFO_PROMPT),
        ),
        "general": Intent(
            "Anything else: greetings, opening hours, account or shop questions.",
            specialist("general", [], GENERAL_PROMPT),
        ),
    }


def build_graph(
    *,
    model: ModelOverride = None,
    intents: Mapping[str, Intent] | None = None,
    fallback: str = DEFAULT_FALLBACK,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    policy: PolicyRef | None = None,
) -> CompiledStateGraph[RouterState, Context, AgentInput, RouterOutput]:
    """Compile the router graph.

    Args:
        model: Chat model object or id (or role→model mapping: the classifier uses `router`,
            the example specialists `agent`) used instead of the context's model settings.
        intents: Intent name → `Intent` (description and handler subgraph), in the order shown
            to the classifier; default: `customer_service_intents(model)`.
        fallback: The intent that takes low-confidence and unclassifiable requests; must be
            one of `intents`.
        checkpointer: Saver for threads (None for the server, which brings its own).
        store: Long-term store (None for the server, which brings its own).
        policy: Tool policy of the default specialists (custom `intents` bring their own);
            default per run: `Context.agent_policies[<intent>]`, else `Context.policy`.

    Raises:
        RouterConfigurationError: an intent name is not snake_case or is reserved, or the
            fallback is not a declared intent.
    """
    declared = (
        dict(intents) if intents is not None else customer_service_intents(model, policy=policy)
    )
    names = list(declared)
    validate_intents(names, fallback)
    schema = intent_schema(names)
    system_prompt = ROUTER_SYSTEM_PROMPT.format(
        intents=intent_lines({n: i.description for n, i in declared.items()}, INTENT_LINE),
        fallback=fallback,
    )

    async def classify(state: RouterState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Classify the latest request into a declared intent; pick the handler.

        Reads `messages`; writes `intent`, `confidence`, `route_reason`, `routed_to`, `usage`.
        """
        ctx = context_of(runtime)
        clock = start_clock(state)
        await load_price_table(ctx)
        messages = [SystemMessage(system_prompt), *classification_view(state["messages"])]
        try:
            decision = await ask_structured(
                schema, messages, role="router", context=ctx, model=model
            )
        except StructuredOutputError as exc:
            logger.warning("intent classification failed; routing to %r: %s", fallback, exc)
            return {
                **clock,
                "intent": None,
                "confidence": None,
                "route_reason": f"classification failed, fallback used: {exc}",
                "routed_to": fallback,
            }
        value = decision.value.model_dump()
        routed_to = choose_route(
            value["intent"], value["confidence"], ctx.router_confidence_threshold, fallback
        )
        reason = value["reason"]
        if routed_to != value["intent"]:
            logger.info(
                "confidence %.2f for %r is below %.2f; routing to %r",
                value["confidence"],
                value["intent"],
                ctx.router_confidence_threshold,
                fallback,
            )
            reason = (
                f"{reason} (confidence {value['confidence']:.2f} below "
                f"{ctx.router_confidence_threshold:.2f}: fallback {fallback!r})"
            )
        runtime.stream_writer(
            {"event": "routed", "intent": value["intent"], "routed_to": routed_to}
        )
        return {
            **clock,
            "intent": value["intent"],
            "confidence": value["confidence"],
            "route_reason": reason,
            "routed_to": routed_to,
            "usage": decision.usage,
        }

    def route_to_handler(state: RouterState) -> str:
        """The declared intent chosen by `classify` (its node has the intent's name)."""
        return state["routed_to"]

    builder = StateGraph(
        RouterState, context_schema=Context, input_schema=AgentInput, output_schema=RouterOutput
    )
    builder.add_node(
        "classify",
        classify,
        retry_policy=MODEL_RETRY,
        timeout=MODEL_NODE_TIMEOUT,
        # A classifier that stays unavailable (fallback model included) hands the request to
        # the fallback intent, like an unclassifiable one.
        error_handler=on_model_failure(
            fallback,
            update=lambda _state, error: {
                "intent": None,
                "confidence": None,
                "route_reason": f"classifier unavailable, fallback used: {error.error}",
                "routed_to": fallback,
            },
        ),
    )
    for name, intent in declared.items():
        builder.add_node(name, handler_node(name, intent.handler))
        builder.add_edge(name, "finish_run")
    builder.add_node("finish_run", make_finish_run(model=model))
    builder.add_edge("finish_run", END)
    builder.add_edge(START, "classify")
    # The path map lists every declared intent, so Studio and Mermaid draw each route.
    builder.add_conditional_edges("classify", route_to_handler, names)
    return traced(
        builder.compile(name="router", checkpointer=checkpointer, store=store), pattern="router"
    )


# Loaded by `langgraph dev` and the server: no checkpointer or store, the platform supplies them.
graph = build_graph()

__all__ = [
    "DEFAULT_FALLBACK",
    "Intent",
    "RouterOutput",
    "RouterState",
    "build_graph",
    "customer_service_intents",
    "graph",
]
