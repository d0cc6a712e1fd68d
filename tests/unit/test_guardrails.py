"""Output guardrail: PII regexes (true and false positives), Luhn, redaction, and node modes."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from nodes.agent import AgentInput, AgentOutput, AgentState, build_agent
from nodes.context import Context, parse_context_assignments
from nodes.guardrails import (
    GuardrailRules,
    check_output,
    find_pii,
    luhn_valid,
    make_output_guardrail,
    redact,
)

pytestmark = pytest.mark.anyio


def kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.value) for m in find_pii(text)]


# --- detectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "write to ann.lee+x@mail.example.co.uk today",
            [("email", "ann.lee+x@mail.example.co.uk")],
        ),
        ("call (555) 123-4567 now", [("phone", "(555) 123-4567")]),
        ("call 555-123-4567.", [("phone", "555-123-4567")]),
        ("call 555.123.4567", [("phone", "555.123.4567")]),
        ("+44 20 7946 0958 is London", [("phone", "+44 20 7946 0958")]),
        ("ring +33 1 23 45 67 89", [("phone", "+33 1 23 45 67 89")]),
        ("+1-555-123-4567", [("phone", "+1-555-123-4567")]),
        ("SSN 123-45-6789.", [("ssn", "123-45-6789")]),
        ("card 4111 1111 1111 1111 exp", [("card", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
        ("amex 378282246310005", [("card", "378282246310005")]),
        ("a@b.io and 078-05-1120", [("email", "a@b.io"), ("ssn", "078-05-1120")]),
    ],
)
def test_true_positives(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 failed",  # fails the Luhn check
        "tracking 1234567890123",  # 13 digits, not Luhn-valid
        "the date 2024-11-25 and time 12:30",
        "version 1.2.3 of the app, IP 192.168.100.200",
        "ISBN 978-0-306-40615-7",
        "SSN-like 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567, 123-45-0000",
        "score +5 10 20",  # '+'-prefixed but only 5 digits
        "room 1234567 and id 5551234567",  # unformatted digit runs are not phones
        "user@localhost or @handle or a@b",
        "price 1,234,567.89 USD",
    ],
)
def test_false_positives_are_not_reported(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4012888888881881", True), ("79927398713", True),
     ("4111111111111112", False), ("1234567812345678", False)],
)  # fmt: skip
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_redact_masks_each_kind_rules_and_length() -> None:
    rules = GuardrailRules(
        max_chars=200,
        blocked_patterns={"internal_host": r"\b[\w-]+\.corp\.internal\b"},
        pii_allow=(r"support@example\.com",),
    )
    text = (
        "Mail ann@example.org or support@example.com, call 555-123-4567, "
        "card 4111 1111 1111 1111, host db1.corp.internal."
    )
    assert redact(text, rules) == (
        "Mail [REDACTED EMAIL] or support@example.com, call [REDACTED PHONE], "
        "card [REDACTED CARD], host [REDACTED INTERNAL HOST]."
    )
    long_text = "word " * 50
    cut = redact(long_text, rules)
    assert len(cut) == 200 and cut.endswith("[answer shortened to 200 characters]")
    assert [f.kind for f in check_output(long_text, rules)] == ["max_length"]


# --- the node --------------------------------------------------------------------------------


class AnswerState(TypedDict):
    messages: NotRequired[list[Any]]
    final_answer: NotRequired[str | None]
    success: NotRequired[bool | None]
    error: NotRequired[str | None]
    usage: NotRequired[dict[str, Any]]


LEAKY = "Customer 7 is ann@example.org, phone 555-123-4567."


def answer_graph(guardrail: Any, text: str = LEAKY, checkpointer: Any = None) -> Any:
    def answer(state: AnswerState) -> dict[str, Any]:
        return {"messages": [AIMessage(text, id="answer-1")], "final_answer": text}

    builder = StateGraph(AnswerState, context_schema=Context)
    builder.add_node("answer", answer)
    builder.add_node("output_guardrail", guardrail)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", "output_guardrail")
    builder.add_edge("output_guardrail", END)
    return builder.compile(checkpointer=checkpointer)


def test_context_field_defaults_off_and_parses() -> None:
    assert Context().output_guardrail == "off"
    assert parse_context_assignments(["output_guardrail=redact"]).output_guardrail == "redact"


async def test_off_mode_passes_the_answer_through() -> None:
    result = await answer_graph(make_output_guardrail()).ainvoke({})
    assert result["final_answer"] == LEAKY


async def test_redact_mode_rewrites_answer_and_message_in_place() -> None:
    graph = answer_graph(make_output_guardrail())
    result = await graph.ainvoke({}, context=Context(output_guardrail="redact"))
    expected = "Customer 7 is [REDACTED EMAIL], phone [REDACTED PHONE]."
    assert result["final_answer"] == expected
    assert [m.content for m in result["messages"]] == [expected]
    assert result["messages"][0].id == "answer-1"


async def test_redact_mode_works_with_sync_invoke_and_clean_answers_are_untouched() -> None:
    graph = answer_graph(make_output_guardrail(mode="redact"), text="All good, no PII here.")
    assert graph.invoke({})["final_answer"] == "All good, no PII here."


async def test_revise_mode_asks_the_model_and_rechecks(scripted_model: Any) -> None:
    model = scripted_model(
        {"json": {"answer": "Customer 7 can be reached at 555-123-4567."}},
        {"json": {"answer": "Customer 7 can be reached through the support portal."}},
    )
    graph = answer_graph(make_output_guardrail(model=model, max_revisions=3))
    result = await graph.ainvoke({}, context=Context(output_guardrail="revise"))

    assert result["final_answer"] == "Customer 7 can be reached through the support portal."
    assert len(model.calls) == 2  # exactly one call per revision, stops when clean
    first = model.calls[0]
    assert isinstance(first[0], SystemMessage)
    assert "pii email: 1 occurrence" in first[1].content and LEAKY in first[1].content
    assert "pii phone" in model.calls[1][1].content
    assert result["usage"]["scripted"]["calls"] == 2


async def test_revise_mode_is_bounded_then_redacts(scripted_model: Any) -> None:
    stubborn = {"json": {"answer": "Still: ann@example.org"}}
    model = scripted_model(stubborn, stubborn)
    graph = answer_graph(make_output_guardrail(model=model, max_revisions=2, mode="revise"))
    result = await graph.ainvoke({})
    assert len(model.calls) == 2
    assert result["final_answer"] == "Still: [REDACTED EMAIL]"


async def test_approve_mode_interrupts_and_applies_each_decision() -> None:
    graph = answer_graph(make_output_guardrail(), checkpointer=InMemorySaver())
    ctx = Context(output_guardrail="approve")

    for thread, resume, expected in [
        ("a", "approve", LEAKY),
        ("b", {"decision": "edit", "text": "Contact details sent privately."},
         "Contact details sent privately."),
        ("c", {"decision": "reject", "comment": "contains PII", "reviewer": "kim"},
         "I'm sorry, I can't share that answer: it was withheld by a reviewer (contains PII)."),
    ]:  # fmt: skip
        config = {"configurable": {"thread_id": thread}}
        paused = await graph.ainvoke({}, config, context=ctx)
        request = paused["__interrupt__"][0].value
        assert request["type"] == "output_review"
        assert request["findings"] == ["pii:email", "pii:phone"]
        assert request["redacted"] == "Customer 7 is [REDACTED EMAIL], phone [REDACTED PHONE]."
        result = await graph.ainvoke(Command(resume=resume), config, context=ctx)
        assert result["final_answer"] == expected
        assert result["messages"][-1].content == expected
    assert result["success"] is False and result["error"] == "output withheld: contains PII"


class GuardedAgentState(AgentState):
    pass


async def test_wiring_after_the_agent_loop(scripted_model: Any) -> None:
    """The documented wiring: one add_node and one edge after the node that answers."""
    model = scripted_model(AIMessage("Her card is 4111 1111 1111 1111."))
    builder = StateGraph(
        GuardedAgentState,
        context_schema=Context,
        input_schema=AgentInput,
        output_schema=AgentOutput,
    )
    builder.add_node("agent", build_agent(model=model))
    builder.add_node("output_guardrail", make_output_guardrail())
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "output_guardrail")
    builder.add_edge("output_guardrail", END)
    graph = builder.compile()

    result = await graph.ainvoke(
        {"messages": [HumanMessage("card?")]}, context=Context(output_guardrail="redact")
    )
    assert result["final_answer"] == "Her card is [REDACTED CARD]."
    assert result["messages"][-1].content == "Her card is [REDACTED CARD]."
    assert len(result["messages"]) == 2
