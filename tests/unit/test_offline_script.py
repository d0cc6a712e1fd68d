"""Script format, validation and reply selection (pure, no I/O except files)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from nodes.offline import Script, ScriptExhausted, ScriptReply, load_script
from nodes.offline.script import ScriptValidationError


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def assistant(text: str | None = None, calls: int = 0) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        msg["tool_calls"] = [
            {
                "id": f"call_x{i}",
                "type": "function",
                "function": {"name": "t", "arguments": "{}"},
            }
            for i in range(calls)
        ]
    return msg


def tool(text: str, call_id: str = "call_x0") -> dict[str, Any]:
    return {"role": "tool", "content": text, "tool_call_id": call_id}


def req(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1-mini", "messages": list(messages), **extra}


def fn_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
    }


# -- turn indexing -----------------------------------------------------------


def test_sequence_is_indexed_by_turn_after_last_user_message() -> None:
    script = Script.sequence(["first", "second", "third"])
    assert script.choose(req(user("hi"))).content == "first"
    assert script.choose(req(user("hi"), assistant(calls=1), tool("r"))).content == "second"
    convo = [user("hi"), assistant(calls=1), tool("r"), assistant(calls=1), tool("r")]
    assert script.choose(req(*convo)).content == "third"
    # A new user message starts the count again: same answer on every replay.
    convo += [assistant("done"), user("again")]
    chosen = script.choose(req(*convo))
    assert chosen.content == "first"
    assert chosen.turn == 0


def test_turn_counts_all_assistant_messages_without_user_message() -> None:
    script = Script.sequence(["a", "b", "c"])
    chosen = script.choose(req(system("s"), assistant("x"), assistant("y")))
    assert (chosen.content, chosen.turn) == ("c", 2)


def test_choose_is_stateless() -> None:
    script = Script.sequence(["a", "b"])
    request = req(user("hi"))
    assert [script.choose(request).content for _ in range(3)] == ["a", "a", "a"]


# -- conditions ----------------------------------------------------------------


def test_first_matching_rule_wins_and_all_conditions_must_hold() -> None:
    script = Script.from_dict(
        {
            "rules": [
                {"match": {"user": "weather", "model": "other-model"}, "replies": ["r0"]},
                {"match": {"user": "weather"}, "replies": ["r1"]},
                {"match": {"any": "."}, "replies": ["r2"]},
            ]
        }
    )
    chosen = script.choose(req(user("what's the weather?")))
    assert (chosen.content, chosen.rule) == ("r1", "rule 1")
    assert script.choose(req(user("hello"))).content == "r2"


@pytest.mark.parametrize(
    ("match", "request_body", "matches"),
    [
        ({"system": "calculator"}, req(system("You are a calculator."), user("x")), True),
        ({"system": "calculator"}, req(system("You are a poet."), user("calculator")), False),
        # system messages (and developer messages) are concatenated
        (
            {"system": "alpha.*beta"},
            req(system("alpha"), {"role": "developer", "content": "beta"}, user("x")),
            True,
        ),
        ({"last": r"\d+ \* \d+"}, req(user("6 * 7"), assistant("?"), user("what is 6 * 7")), True),
        ({"last": r"\d+ \* \d+"}, req(user("6 * 7"), assistant("?")), False),
        ({"user": "^second$"}, req(user("first"), assistant("a"), user("second")), True),
        ({"user": "^first$"}, req(user("first"), assistant("a"), user("second")), False),
        ({"user": "x"}, req(system("x")), False),
        ({"any": "needle"}, req(system("a"), assistant("the needle"), user("b")), True),
        ({"any": "needle"}, req(system("a"), user("b")), False),
        ({"last": "line1.line2"}, req(user("line1\nline2")), True),  # re.S
        ({"model": "gpt-4.1-mini"}, req(user("x")), True),
        ({"model": "gpt-4.1"}, req(user("x")), False),
        (
            {"tool": "calculate"},
            req(user("x"), tools=[fn_tool("search"), fn_tool("calculate")]),
            True,
        ),
        ({"tool": "calculate"}, req(user("x"), tools=[fn_tool("search")]), False),
        (
            {"schema": "Plan"},
            req(
                user("x"),
                response_format={"type": "json_schema", "json_schema": {"name": "Plan"}},
            ),
            True,
        ),
        (
            {"schema": "Plan"},
            req(
                user("x"),
                tools=[fn_tool("Plan"), fn_tool("Other")],
                tool_choice={"type": "function", "function": {"name": "Plan"}},
            ),
            True,
        ),
        ({"schema": "Plan"}, req(user("x"), tools=[fn_tool("Plan")], tool_choice="required"), True),
        ({"schema": "Plan"}, req(user("x"), tools=[fn_tool("Plan")]), False),
        # content given as a list of text parts is flattened for matching
        (
            {"user": "hello world"},
            req({"role": "user", "content": [{"type": "text", "text": "hello world"}]}),
            True,
        ),
    ],
)
def test_conditions(match: dict[str, str], request_body: dict[str, Any], matches: bool) -> None:
    script = Script.from_dict({"rules": [{"match": match, "replies": ["hit"]}], "default": "miss"})
    assert script.choose(request_body).content == ("hit" if matches else "miss")


# -- after_last, default, exhaustion ------------------------------------------------


def test_after_last_repeat_repeats_the_last_reply() -> None:
    script = Script.from_dict({"rules": [{"replies": ["a", "b"], "after_last": "repeat"}]})
    convo = [user("q"), assistant("1"), assistant("2"), assistant("3")]
    assert script.choose(req(*convo)).content == "b"


def test_after_last_error_is_the_default_and_is_loud() -> None:
    script = Script.from_dict(
        {"name": "demo", "rules": [{"name": "calc", "match": {"any": "q"}, "replies": ["a"]}]}
    )
    long_text = "z" * 500
    with pytest.raises(ScriptExhausted) as info:
        script.choose(req(user("q"), assistant("1"), tool(long_text)))
    text = str(info.value)
    assert "rule 0 ('calc')" in text
    assert "turn 1" in text
    assert "demo" in text
    assert "last message (tool)" in text
    assert "z" * 200 in text
    assert "z" * 201 not in text


def test_default_answers_when_no_rule_matches() -> None:
    script = Script.from_dict(
        {"rules": [{"match": {"user": "x"}, "replies": ["x"]}], "default": {"content": "dunno"}}
    )
    chosen = script.choose(req(user("y")))
    assert (chosen.content, chosen.rule) == ("dunno", "default")


def test_no_match_without_default_names_rules_and_quotes_last_message() -> None:
    script = Script.from_dict(
        {
            "rules": [
                {"match": {"user": "weather"}, "replies": ["w"]},
                {"name": "math", "match": {"tool": "calculate"}, "replies": ["m"]},
            ]
        }
    )
    with pytest.raises(ScriptExhausted) as info:
        script.choose(req(user("tell me a joke")))
    text = str(info.value)
    assert "no rule matched at turn 0" in text
    assert "rule 0: user /weather/ not found" in text
    assert "rule 1 ('math'): tool 'calculate' not offered" in text
    assert "'tell me a joke'" in text


# -- reply resolution ---------------------------------------------------------------


def test_tool_call_ids_are_generated_and_unique_per_conversation() -> None:
    calls = [{"name": "t", "args": {"i": 1}}, {"name": "t", "args": {"i": 2}, "id": "mine"}]
    script = Script.sequence([{"tool_calls": calls}, {"tool_calls": calls}])
    first = script.choose(req(user("q")))
    assert [c.id for c in first.tool_calls] == ["call_1", "mine"]
    assert first.finish_reason == "tool_calls"
    # Numbering continues after the tool calls already in the conversation.
    second = script.choose(req(user("q"), assistant(calls=2), tool("a"), tool("b")))
    assert [c.id for c in second.tool_calls] == ["call_3", "mine"]


def test_json_becomes_content_for_response_format() -> None:
    script = Script.sequence([{"json": {"steps": ["a"]}}])
    rf = {"type": "json_schema", "json_schema": {"name": "Plan", "schema": {}}}
    chosen = script.choose(req(user("q"), response_format=rf, tools=[fn_tool("Plan")]))
    assert json.loads(chosen.content or "") == {"steps": ["a"]}
    assert chosen.tool_calls == ()
    assert chosen.finish_reason == "stop"


@pytest.mark.parametrize(
    "extra",
    [
        {
            "tools": [fn_tool("x"), fn_tool("Plan")],
            "tool_choice": {"type": "function", "function": {"name": "Plan"}},
        },
        {"tools": [fn_tool("Plan")], "tool_choice": "required"},
        {"tools": [fn_tool("Plan")]},
    ],
)
def test_json_becomes_call_to_forced_or_only_tool(extra: dict[str, Any]) -> None:
    script = Script.sequence([{"json": {"steps": ["a"]}}])
    chosen = script.choose(req(user("q"), **extra))
    assert chosen.content is None
    assert [(c.name, dict(c.args), c.id) for c in chosen.tool_calls] == [
        ("Plan", {"steps": ["a"]}, "call_1")
    ]


def test_json_without_schema_or_tool_is_plain_content() -> None:
    script = Script.sequence([{"json": [1, 2]}])
    assert script.choose(req(user("q"))).content == "[1, 2]"


def test_non_object_json_cannot_be_tool_arguments() -> None:
    script = Script.sequence([{"json": [1, 2]}])
    with pytest.raises(ScriptValidationError, match="'json' must be an object"):
        script.choose(req(user("q"), tools=[fn_tool("Plan")], tool_choice="required"))


def test_usage_estimates_and_overrides() -> None:
    script = Script.sequence(
        [
            {"content": "x" * 9, "tool_calls": [{"name": "t", "args": {"a": 1}}]},
            {"content": "ok", "usage": {"prompt_tokens": 100}},
        ]
    )
    first = script.choose(req(system("s" * 10), user("u" * 7)))
    assert first.usage is not None
    assert first.usage.prompt_tokens == math.ceil(17 / 4)
    assert first.usage.completion_tokens == math.ceil((9 + len('{"a": 1}')) / 4)
    second = script.choose(req(user("u"), assistant("x")))
    assert second.usage is not None
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (100, 1)
    assert second.usage.total_tokens == 101


def test_usage_minimum_is_one_token() -> None:
    chosen = Script.sequence([{"content": ""}]).choose(req({"role": "user", "content": ""}))
    assert chosen.usage is not None
    assert (chosen.usage.prompt_tokens, chosen.usage.completion_tokens) == (1, 1)


def test_error_and_delay_replies_are_kept() -> None:
    script = Script.sequence(
        [{"error": {"status": 429, "message": "slow down", "retry_after": 2}, "delay": 0.5}]
    )
    chosen = script.choose(req(user("q")))
    assert chosen.error is not None
    assert (chosen.error.status, chosen.error.message, chosen.error.retry_after) == (
        429,
        "slow down",
        2.0,
    )
    assert chosen.error.body()["error"]["code"] == "rate_limit_exceeded"
    assert chosen.delay == 0.5


def test_reply_is_frozen() -> None:
    reply = Script.sequence(["a"]).choose(req(user("q")))
    assert isinstance(reply, ScriptReply)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.content = "b"  # type: ignore[misc]


def test_model_names() -> None:
    script = Script.from_dict(
        {
            "rules": [
                {"match": {"model": "m2"}, "replies": ["a"]},
                {"match": {"model": "m1"}, "replies": ["a"]},
                {"replies": ["a"]},
            ]
        }
    )
    assert script.model_names == ["m1", "m2"]


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"rules": [{"replies": ["a"]}, {"replies": ["a"]}, {"replies": []}]},
            "rule 2: 'replies' must be a non-empty list",
        ),
        ({"rules": [{"match": {"user": "x"}}]}, "rule 0: 'replies' must be a non-empty list"),
        (
            {"rules": [{"match": {"usr": "x"}, "replies": ["a"]}]},
            "rule 0: match: unknown condition 'usr'",
        ),
        (
            {"rules": [{"match": {"user": "("}, "replies": ["a"]}]},
            "rule 0: 'match.user' is not a valid regex",
        ),
        (
            {"rules": [{"match": {"model": 3}, "replies": ["a"]}]},
            "rule 0: 'match.model' must be a string",
        ),
        (
            {"rules": [{"replies": ["a"], "after_last": "cycle"}]},
            "rule 0: 'after_last' must be 'repeat' or 'error'",
        ),
        (
            {"rules": [{"name": "n", "replies": [{"contents": "a"}]}]},
            "rule 0 ('n') reply 0: unknown field 'contents'",
        ),
        ({"rules": [{"replies": [{}]}]}, "rule 0 reply 0: must define at least one of"),
        ({"rules": [{"replies": [{"content": 1}]}]}, "rule 0 reply 0: 'content' must be a string"),
        (
            {"rules": [{"replies": ["a", {"json": {}, "content": "x"}]}]},
            "rule 0 reply 1: 'json' cannot be combined",
        ),
        (
            {"rules": [{"replies": [{"tool_calls": [{"args": {}}]}]}]},
            "rule 0 reply 0: tool_calls[0]: 'name' must be a non-empty string",
        ),
        (
            {"rules": [{"replies": [{"tool_calls": [{"name": "t", "args": [1]}]}]}]},
            "tool_calls[0]: 'args' must be a mapping",
        ),
        (
            {"rules": [{"replies": [{"error": {"status": 200, "message": "m"}}]}]},
            "'error.status' must be an integer in 400..599",
        ),
        (
            {"rules": [{"replies": [{"error": {"status": 500}}]}]},
            "'error.message' must be a non-empty string",
        ),
        (
            {"rules": [{"replies": [{"content": "a", "delay": -1}]}]},
            "'delay' must be a number >= 0",
        ),
        (
            {"rules": [{"replies": [{"content": "a", "usage": {"prompt_tokens": -1}}]}]},
            "'usage.prompt_tokens' must be an integer >= 0",
        ),
        (
            {"rules": [{"replies": [{"content": "a", "usage": {"tokens": 1}}]}]},
            "usage: unknown field 'tokens'",
        ),
        ({"rules": ["nope"]}, "rule 0: must be a mapping"),
        ({"rule": []}, "script: unknown key 'rule'"),
        ({"rules": []}, "script: needs at least one rule or a 'default'"),
        ({"rules": [], "default": {"bogus": 1}}, "default: unknown field 'bogus'"),
    ],
)
def test_validation_errors_name_rule_and_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScriptValidationError) as info:
        Script.from_dict(data)
    assert message in str(info.value)


def test_sequence_rejects_empty_and_validates_replies() -> None:
    with pytest.raises(ScriptValidationError, match="non-empty"):
        Script.sequence([])
    with pytest.raises(ScriptValidationError, match="rule 0 reply 1: unknown field 'x'"):
        Script.sequence(["a", {"x": 1}])


# -- loading --------------------------------------------------------------------------


SCRIPT_YAML = """
name: react-demo
rules:
  - match:
      system: "calculator"
      last: "\\\\d+ \\\\* \\\\d+"
    replies:
      - tool_calls: [{name: calculate, args: {expression: "6*7"}}]
      - content: "6 * 7 = 42"
    after_last: repeat
default:
  content: "I don't know."
"""


def test_from_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(SCRIPT_YAML, encoding="utf-8")
    script = Script.from_file(yaml_path)
    assert script.name == "react-demo"
    chosen = script.choose(req(system("You are a calculator"), user("what is 6 * 7?")))
    assert chosen.tool_calls[0].name == "calculate"
    assert dict(chosen.tool_calls[0].args) == {"expression": "6*7"}
    assert script.choose(req(user("hi"))).content == "I don't know."

    json_path = tmp_path / "s.json"
    json_path.write_text(json.dumps({"rules": [{"replies": ["j"]}]}), encoding="utf-8")
    assert load_script(str(json_path)).choose(req(user("q"))).content == "j"


def test_from_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - replies: []\n", encoding="utf-8")
    with pytest.raises(ScriptValidationError, match=r"bad\.yaml: rule 0: 'replies'"):
        Script.from_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ScriptValidationError, match="cannot parse"):
        Script.from_file(broken)
    with pytest.raises(ScriptValidationError, match="unknown script extension"):
        Script.from_file(tmp_path / "x.txt")


def test_load_script_accepts_script_dict_and_path(tmp_path: Path) -> None:
    script = Script.sequence(["a"])
    assert load_script(script) is script
    assert load_script({"default": "d"}).choose(req(user("q"))).content == "d"
    with pytest.raises(TypeError):
        load_script(42)  # type: ignore[arg-type]


def test_malformed_request_is_rejected() -> None:
    with pytest.raises(ScriptValidationError, match="'messages'"):
        Script.sequence(["a"]).choose({"model": "m"})
