"""Router: structure, routing to the right specialist, low-confidence and invalid fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphs.router import Intent, build_graph
from nodes.context import Context
from nodes.routing import RouterConfigurationError

pytestmark = pytest.mark.anyio

MERMAID_FILE = Path(__file__).with_name("router.mmd")


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def classification(
    user: str, intent: str, confidence: float, after_last: str = "error", where: str = "user"
) -> dict[str, Any]:
    return {
        "name": f"classify {intent}",
        "match": {"schema": "IntentDecision", where: user},
        "replies": [{"json": {"intent": intent, "confidence": confidence, "reason": "scripted"}}],
        "after_last": after_last,
    }


ORDER_DESK = {
    "name": "order desk",
    "match": {"system": "order-status desk"},
    "replies": [
        {"tool_calls": [{"name": "look_up_order", "args": {"order_id": "A-1001"}}]},
        {"content": "Order A-1001 has shipped with DHL and should arrive on 2026-11-27."},
    ],
}
REFUND_DESK = {
    "name": "refund desk",
    "match": {"system": "returns and refunds desk"},
    "replies": [{"content": "Happy to help with a return: what is your order id?"}],
}
FRONT_DESK = {
    "name": "front desk",
    "match": {"system": "front desk"},
    "replies": [{"content": "Could you tell me a bit more, including any order id?"}],
}


def script(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": "router-test", "rules": [*rules, ORDER_DESK, REFUND_DESK, FRONT_DESK]}


def test_structure_matches_checked_in_mermaid() -> None:
    drawn = build_graph().get_graph().draw_mermaid()
    assert drawn == MERMAID_FILE.read_text(encoding="utf-8")
    for intent in ("order_status", "refund", "product_info", "general"):
        assert f"classify -.-> {intent};" in drawn


async def test_routes_to_the_order_desk_which_uses_its_tool(scripted_model: Any) -> None:
    model = scripted_model(script=script(classification("A-1001", "order_status", 0.93)))
    result = await build_graph(model=model).ainvoke(ask("Where is my order A-1001?"))

    assert result["intent"] == "order_status" and result["routed_to"] == "order_status"
    assert result["confidence"] == 0.93 and result["route_reason"] == "scripted"
    assert result["final_answer"].startswith("Order A-1001 has shipped")
    assert result["success"] is True and result["error"] is None
    assert [(r["tool"], r["ok"]) for r in result["tool_results"]] == [("look_up_order", True)]
    # classify + two ReAct iterations
    assert len(model.calls) == 3
    assert result["usage"]["scripted"]["calls"] == 3
    classify_request, specialist_request = model.requests[0], model.requests[1]
    enum = classify_request["tools"][0]["function"]["parameters"]["properties"]["intent"]["enum"]
    assert enum == ["order_status", "refund", "product_info", "general"]
    assert [t["function"]["name"] for t in specialist_request["tools"]] == ["look_up_order"]
    tool_message = model.calls[2][-1]
    assert "2026-11-27" in str(tool_message.content)


async def test_low_confidence_goes_to_the_fallback(scripted_model: Any) -> None:
    model = scripted_model(script=script(classification("money", "refund", 0.3)))
    result = await build_graph(model=model).ainvoke(ask("Something about money?"))

    assert result["intent"] == "refund" and result["confidence"] == 0.3
    assert result["routed_to"] == "general"
    assert "below 0.50" in result["route_reason"] and "'general'" in result["route_reason"]
    assert result["final_answer"] == "Could you tell me a bit more, including any order id?"
    assert len(model.calls) == 2
    assert "front desk" in str(model.calls[1][0].content)


async def test_the_confidence_threshold_is_a_context_setting(scripted_model: Any) -> None:
    model = scripted_model(script=script(classification("money", "refund", 0.3)))
    result = await build_graph(model=model).ainvoke(
        ask("Something about money?"), context=Context(router_confidence_threshold=0.25)
    )
    assert result["routed_to"] == "refund"
    assert result["final_answer"].startswith("Happy to help with a return")


async def test_an_undeclared_intent_is_re_asked_then_falls_back(scripted_model: Any) -> None:
    model = scripted_model(
        script=script(classification("invoice", "billing", 0.9, after_last="repeat", where="any"))
    )
    result = await build_graph(model=model).ainvoke(ask("Send me an invoice"))

    # Two classification attempts (the schema only allows declared intents), then the fallback.
    assert len(model.calls) == 3
    assert "did not match the required IntentDecision" in str(model.calls[1][-1].content)
    assert result["intent"] is None and result["routed_to"] == "general"
    assert "classification failed" in result["route_reason"]
    assert result["success"] is True


class EchoState(TypedDict):
    messages: list[Any]
    final_answer: str


def echo_handler(prefix: str) -> Any:
    """A plain answer node (no model): shows that any messages-in subgraph can be a handler."""

    def answer(state: EchoState) -> dict[str, Any]:
        text = f"{prefix}: {state['messages'][-1].content}"
        return {"messages": [AIMessage(text)], "final_answer": text}

    builder = StateGraph(EchoState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile()


async def test_custom_intents_and_fallback(scripted_model: Any) -> None:
    model = scripted_model(
        script={"rules": [classification("invoice", "billing", 0.8)], "default": "unused"}
    )
    graph = build_graph(
        model=model,
        intents={
            "billing": Intent("Invoices and payments.", echo_handler("billing")),
            "other": Intent("Everything else.", echo_handler("other")),
        },
        fallback="other",
    )
    result = await graph.ainvoke(ask("Send me an invoice"))

    assert result["routed_to"] == "billing"
    assert result["final_answer"] == "billing: Send me an invoice"
    assert len(model.calls) == 1
    system = str(model.calls[0][0].content)
    assert "- billing: Invoices and payments." in system and "choose other" in system
    assert "billing" in graph.get_graph().draw_mermaid()


async def test_classifier_and_specialists_can_use_different_models(scripted_model: Any) -> None:
    classifier = scripted_model(
        script={"rules": [classification("", "general", 0.9)]}, model_name="router-model"
    )
    specialist = scripted_model(script={"rules": [FRONT_DESK]}, model_name="desk-model")
    result = await build_graph(model={"router": classifier, "agent": specialist}).ainvoke(
        ask("Hello!")
    )
    assert result["usage"]["router-model"]["calls"] == 1
    assert result["usage"]["desk-model"]["calls"] == 1


async def test_second_turn_is_classified_on_the_conversation(scripted_model: Any) -> None:
    model = scripted_model(
        script=script(
            classification("A-1001", "order_status", 0.9),
            classification("Hello", "general", 0.9),
        )
    )
    graph = build_graph(model=model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke(ask("Hello"), config)
    result = await graph.ainvoke(ask("Where is A-1001?"), config)

    assert result["routed_to"] == "order_status"
    # Thread totals: classify + front desk, then classify + two order-desk iterations.
    assert result["usage"]["scripted"]["calls"] == 5
    assert result["final_answer"].startswith("Order A-1001 has shipped")
    second_classification = model.calls[2]
    kinds = [type(m).__name__ for m in second_classification]
    # No tool traffic reaches the classifier; both user turns and the first answer do.
    assert kinds == ["SystemMessage", "HumanMessage", "AIMessage", "HumanMessage"]


def test_invalid_intent_declarations_are_refused() -> None:
    handler = echo_handler("x")
    with pytest.raises(RouterConfigurationError, match="fallback intent 'general' is not declared"):
        build_graph(intents={"billing": Intent("b", handler)})
    with pytest.raises(RouterConfigurationError, match="intent name 'classify'"):
        build_graph(intents={"classify": Intent("c", handler)}, fallback="classify")
    with pytest.raises(RouterConfigurationError, match="at least one intent"):
        build_graph(intents={}, fallback="x")


async def test_the_classifier_call_counts_against_the_handlers_budget(
    scripted_model: Any,
) -> None:
    model = scripted_model(script=script(classification("A-1001", "order_status", 0.93)))
    result = await build_graph(model=model).ainvoke(
        ask("Where is my order A-1001?"), context=Context(max_model_calls=2)
    )

    # classify (1) + the desk's first call (1), which asks for a tool: with no call left to
    # read its result, the tool is not run at all.
    assert len(model.calls) == 2
    assert result["routed_to"] == "order_status"
    assert result["success"] is False
    assert result["error"] == "max_model_calls (1) reached: 1 used"
    assert result["metrics"]["model_calls"] == 2
    assert result["metrics"]["tool_calls"] == 0
