"""Policy engine: priority order, deny by default, anchored matching, argument constraints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.policy import (
    DEFAULT_DENY_RULE,
    Policy,
    PolicyError,
    Rule,
    builtin_policy_names,
    load_policy,
)


def policy(*rules: dict[str, Any]) -> Policy:
    return Policy.from_dict({"name": "test", "rules": list(rules)})


def test_lower_priority_number_wins_regardless_of_file_order() -> None:
    p = policy(
        {"id": "late_allow", "tool": ".*", "decision": "allow", "priority": 50},
        {"id": "early_deny", "tool": "send_.*", "decision": "deny", "priority": 5},
    )
    assert p.decide("send_email", {}).rule_id == "early_deny"
    assert p.decide("send_email", {}).decision == "deny"
    assert p.decide("search_web", {}).rule_id == "late_allow"


def test_equal_priorities_keep_file_order_and_first_match_wins() -> None:
    p = policy(
        {"id": "first", "tool": ".*", "decision": "require_approval", "priority": 10},
        {"id": "second", "tool": ".*", "decision": "allow", "priority": 10},
    )
    decision = p.decide("anything", {})
    assert (decision.rule_id, decision.decision) == ("first", "require_approval")


def test_unmatched_calls_and_empty_policies_are_denied() -> None:
    p = policy({"id": "only_search", "tool": "search_web", "decision": "allow"})
    denied = p.decide("send_email", {"to": "x"})
    assert (denied.decision, denied.rule_id) == ("deny", DEFAULT_DENY_RULE)
    assert "send_email" in denied.reason
    assert Policy(name="empty", rules=[]).decide("search_web", {}).decision == "deny"


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("search", "search_web", False),  # a prefix is not enough
        ("search_web", "xsearch_web", False),  # nor a suffix
        ("search_web", "search_web", True),
        ("search_.*", "search_web", True),
        (".*(delete|remove|drop).*", "drop_table", True),
        (".*(delete|remove|drop).*", "query_database", False),
        ("calculate|get_current_time", "get_current_time", True),
        ("calculate|get_current_time", "calculate_tax", False),  # alternation is anchored too
    ],
)
def test_tool_patterns_must_match_the_whole_name(pattern: str, name: str, matches: bool) -> None:
    p = policy({"id": "r", "tool": pattern, "decision": "allow"})
    assert (p.decide(name, {}).decision == "allow") is matches


@pytest.mark.parametrize(
    ("constraint", "value", "matches"),
    [
        ("customer.*", "customers", True),
        ("customer.*", "old_customers", False),  # full match, not search
        ("customer.*", 7, False),  # a regex only matches strings
        (5, 5, True),
        (5, 5.0, True),
        (5, 6, False),
        (True, True, True),
        (True, 1, False),  # booleans are not numbers here
        ({"min": 1, "max": 10}, 10, True),
        ({"min": 1, "max": 10}, 11, False),
        ({"min": 1}, "5", False),  # a range needs a number
        (["a", "b"], "b", True),
        (["a", "b"], "c", False),
        ({"in": [1, 2]}, 2, True),
        ({"contains": "x"}, ["y", "x"], True),
        ({"contains": "x"}, ["y"], False),
        ("billing.*", ["customers", "billing_2024"], True),  # any element of a list argument
        ("billing.*", ["customers"], False),
        ({"regex": "a+", "min": 0}, "aaa", False),  # every part must hold
    ],
)
def test_argument_constraints(constraint: Any, value: Any, matches: bool) -> None:
    p = policy({"id": "r", "tool": "t", "args": {"x": constraint}, "decision": "allow"})
    assert (p.decide("t", {"x": value}).decision == "allow") is matches


def test_a_missing_argument_does_not_match() -> None:
    p = policy(
        {
            "id": "deny_billing",
            "tool": "q",
            "args": {"table": "billing"},
            "decision": "deny",
            "priority": 1,
        },
        {"id": "allow_q", "tool": "q", "decision": "allow", "priority": 2},
    )
    assert p.decide("q", {}).rule_id == "allow_q"
    assert p.decide("q", {"table": "billing"}).rule_id == "deny_billing"


def test_side_effect_condition() -> None:
    p = policy(
        {
            "id": "review",
            "tool": ".*",
            "side_effect": ["write", "irreversible"],
            "decision": "require_approval",
        },
        {"id": "reads", "tool": ".*", "side_effect": "read", "decision": "allow"},
    )
    assert p.decide("x", {}, side_effect="irreversible").rule_id == "review"
    assert p.decide("x", {}, side_effect="read").rule_id == "reads"
    assert p.decide("x", {}).rule_id == "reads"  # undeclared counts as read


def test_customer_service_policy_from_the_issue() -> None:
    cs = load_policy("customer_service")
    billing = cs.decide("query_database", {"table": "billing", "sql": "SELECT 1"})
    assert (billing.decision, billing.rule_id) == ("deny", "deny_financial_tables")
    assert cs.decide("query_database", {"table": "Payments"}).decision == "deny"
    assert cs.decide("query_database", {"table": "customers"}).rule_id == "allow_customer_tables"
    assert cs.decide("query_database", {"table": "orders"}).rule_id == DEFAULT_DENY_RULE
    assert cs.decide("delete_customer", {}).rule_id == "deny_destructive"
    assert cs.decide("create_ticket", {"title": "x"}).decision == "allow"
    assert cs.decide("search_web", {"query": "x"}).decision == "allow"
    assert cs.decide("send_email", {"to": "a@b.c"}).rule_id == DEFAULT_DENY_RULE


def test_default_policy_reads_run_writes_need_review_destruction_is_refused() -> None:
    default = load_policy(None)
    assert default.name == "default"
    assert default.decide("search_web", {}, side_effect="read").decision == "allow"
    assert default.decide("write_file", {}, side_effect="write").decision == "require_approval"
    assert default.decide("send_email", {}, side_effect="irreversible").decision == (
        "require_approval"
    )
    assert default.decide("delete_rows", {}, side_effect="read").decision == "deny"


def test_policies_load_from_yaml_json_and_python(tmp_path: Path) -> None:
    data = {"name": "mine", "rules": [{"id": "a", "tool": "t", "decision": "allow"}]}
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(data), encoding="utf-8")
    as_yaml = tmp_path / "p.yaml"
    as_yaml.write_text("name: mine\nrules:\n  - {id: a, tool: t, decision: allow}\n")
    in_python = Policy(name="mine", rules=[Rule(id="a", tool="t", decision="allow")])
    for source in (as_json, str(as_yaml), in_python, data):
        loaded = load_policy(source)
        assert loaded.decide("t", {}).decision == "allow"
        assert loaded.decide("u", {}).decision == "deny"
    assert {"default", "customer_service"} <= set(builtin_policy_names())


def test_edited_policy_file_is_reloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.policy

    monkeypatch.setattr(tools.policy, "RECHECK_S", 0.0)
    path = tmp_path / "p.yaml"
    path.write_text("rules:\n  - {id: a, tool: t, decision: allow}\n")
    assert load_policy(path).decide("t", {}).decision == "allow"
    path.write_text("rules:\n  - {id: a, tool: t, decision: deny}\n# longer\n")
    import os

    os.utime(path, ns=(1, 10**18))
    assert load_policy(path).decide("t", {}).decision == "deny"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"id": "x", "tool": "(", "decision": "allow"}], "rule 'x': invalid regex"),
        ([{"id": "x", "tool": "t", "decision": "maybe"}], "not one of allow, deny"),
        ([{"id": "x", "tool": "t", "decision": "allow", "when": 1}], "unknown keys ['when']"),
        ([{"id": "x", "decision": "allow"}], "missing ['tool']"),
        (
            [{"id": "x", "tool": "t", "args": {"a": {"between": 1}}, "decision": "allow"}],
            "argument 'a'",
        ),
        (
            [
                {"id": "x", "tool": "t", "decision": "allow"},
                {"id": "x", "tool": "u", "decision": "deny"},
            ],
            "duplicate rule ids",
        ),
    ],
)
def test_malformed_policies_fail_with_a_pointed_message(
    rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("(", r"\(")):
        policy(*rules)


def test_unknown_policy_name_lists_the_builtins() -> None:
    with pytest.raises(PolicyError, match="built-in policies: .*customer_service"):
        load_policy("no_such_policy")
