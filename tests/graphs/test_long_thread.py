"""A 200-turn thread: the model input stays in budget, the summary keeps early facts, and the
checkpoint grows linearly (not quadratically) because summarised turns leave the state."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from memory.testing import ExtractiveSummarizer, stored_bytes
from memory.tokens import count_message_tokens
from nodes.agent import build_agent
from nodes.context import Context
from nodes.offline import ScriptedChatModel

pytestmark = pytest.mark.anyio

TURNS = 200
FACTS = ["FACT: the user's name is Ada Lovelace.", "FACT: the user's favourite colour is teal."]
CONTEXT = Context(
    context_window_tokens=1_500,
    reserve_output_tokens=300,
    summarize_after_tokens=900,
    summary_keep_tokens=400,
)
BUDGET = 1_200


def user_turn(i: int) -> str:
    if i < len(FACTS):
        return FACTS[i]
    return f"Turn {i}: please note the weather report number {i} " + "and more detail " * 12


async def drive(turns: int, context: Context) -> dict[str, Any]:
    agent_model = ScriptedChatModel(
        script={"rules": [], "default": {"content": "Noted, thank you."}}
    )
    summarizer = ExtractiveSummarizer()
    saver = InMemorySaver()
    graph = build_agent(model={"agent": agent_model, "summarizer": summarizer}, checkpointer=saver)
    config = {"configurable": {"thread_id": "long"}}
    sizes: dict[int, int] = {}
    result: dict[str, Any] = {}
    for i in range(turns):
        result = await graph.ainvoke(
            {"messages": [HumanMessage(user_turn(i))]}, config, context=context
        )
        if (i + 1) % 25 == 0:  # walking the saver is O(size): sample it
            sizes[i] = stored_bytes(saver)
    state = (await graph.aget_state(config)).values
    return {
        "result": result,
        "state": state,
        "sizes": sizes,
        "agent": agent_model,
        "summarizer": summarizer,
    }


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def summarised() -> dict[str, Any]:
    return await drive(TURNS, CONTEXT)


async def test_every_model_input_stays_under_the_budget(summarised: dict[str, Any]) -> None:
    calls = summarised["agent"].calls
    assert len(calls) == TURNS
    assert max(count_message_tokens(c) for c in calls) <= BUDGET
    records = summarised["result"]["context_windows"]
    assert all(r["utilisation"] <= BUDGET / 1_500 for r in records)


async def test_the_summary_carries_the_early_facts(summarised: dict[str, Any]) -> None:
    state = summarised["state"]
    for fact in FACTS:
        assert fact in state["summary"]
    # The facts left the message list long ago but still reach the model.
    assert not any("FACT:" in str(m.content) for m in state["messages"])
    last_system = summarised["agent"].calls[-1][0]
    assert isinstance(last_system, SystemMessage)
    assert "<conversation_summary>" in str(last_system.content)
    assert all(fact in str(last_system.content) for fact in FACTS)
    requests = summarised["summarizer"].requests
    assert len(requests) > 10  # summarised many times, extending each time
    assert all("FACT:" in str(r[-1].content) for r in requests[1:])


async def test_checkpoint_growth_is_linear_with_summarisation(summarised: dict[str, Any]) -> None:
    sizes = summarised["sizes"]
    state_messages = len(summarised["state"]["messages"])
    assert state_messages < 30  # bounded, not 400+
    per_turn_mid = (sizes[99] - sizes[49]) / 50
    per_turn_late = (sizes[199] - sizes[149]) / 50
    assert per_turn_late < 1.25 * per_turn_mid  # constant cost per turn
    assert sizes[199] / sizes[99] < 2.3  # total ~doubles when turns double


async def test_without_summarisation_growth_is_quadratic() -> None:
    # The same measure on the same thread shape detects quadratic growth when nothing is
    # removed from state, so the linear result above is not an artefact of the measure.
    unsummarised = await drive(100, Context(summarize_after_tokens=None))
    sizes = unsummarised["sizes"]
    per_turn_early = (sizes[49] - sizes[24]) / 25
    per_turn_late = (sizes[99] - sizes[74]) / 25
    assert per_turn_late > 1.8 * per_turn_early
    assert len(unsummarised["state"]["messages"]) == 200
