"""The policy engine: which tool calls may run, must be reviewed, or are refused.

A policy is an ordered list of rules. Each rule has:

    id          unique name, quoted in audit records and denials
    tool        regex that must match the WHOLE tool name (`re.fullmatch`; `search_.*`)
    args        optional argument constraints, all of which must hold (see below)
    side_effect optional list of side-effect levels the tool must declare
                (`read`, `write`, `irreversible`; an extension over name patterns, so a
                policy can say "reads are fine, writes need review" without listing tools)
    decision    `allow` | `deny` | `require_approval`
    priority    lower is checked first (ties keep file order)
    reason      optional text shown to the model on denial and to reviewers

Rules are checked in priority order and the first match wins; a call no rule matches is
**denied** (`rule_id` `default_deny`).

Argument constraints (`args: {name: constraint}`); a missing argument never matches:

    "regex"                       string arguments, full match (`re.fullmatch`)
    42 / true                     equality (numbers, booleans)
    [a, b, c]                     membership: the argument is one of these values
    {min: 1, max: 10}             numeric range, inclusive (either bound optional)
    {in: [...]}                   membership, as the list form
    {regex: "..."} / {equals: x}  explicit forms
    {contains: x}                 a list argument contains `x`

When the argument itself is a list, a regex/equality/range/membership constraint matches if
ANY element does, so a `deny` rule catches one forbidden element among many.

Policies load from YAML or JSON files, from a built-in name (`tools/policies/<name>.yaml`), or
are built in Python (`Policy(name=..., rules=[Rule(...)])`). Nothing here imports graph code.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

logger = logging.getLogger(__name__)

PolicyVerdict = Literal["allow", "deny", "require_approval"]
VERDICTS: tuple[str, ...] = get_args(PolicyVerdict)
DEFAULT_DENY_RULE = "default_deny"
POLICY_DIR = Path(__file__).with_name("policies")
DEFAULT_POLICY = "default"

_CONSTRAINT_KEYS = frozenset({"regex", "equals", "in", "min", "max", "contains"})
_RULE_KEYS = frozenset({"id", "tool", "args", "side_effect", "decision", "priority", "reason"})
_SIDE_EFFECTS = ("read", "write", "irreversible")


class PolicyError(ValueError):
    """A policy file or rule is malformed, or a policy name is unknown."""


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome for one call: what to do, which rule said so, and why."""

    decision: PolicyVerdict
    rule_id: str
    reason: str


@dataclass(frozen=True)
class ArgConstraint:
    """One argument constraint in its normalised form (see the module docstring)."""

    regex: re.Pattern[str] | None = None
    equals: Any = None
    has_equals: bool = False
    members: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    contains: Any = None
    has_contains: bool = False

    @classmethod
    def parse(cls, raw: Any, where: str) -> ArgConstraint:
        """Normalise a constraint as written in a policy; raises PolicyError naming `where`."""
        if isinstance(raw, str):
            return cls(regex=_compile(raw, where))
        if isinstance(raw, bool | int | float):
            return cls(equals=raw, has_equals=True)
        if isinstance(raw, list | tuple):
            return cls(members=tuple(raw))
        if isinstance(raw, Mapping):
            unknown = sorted(set(raw) - _CONSTRAINT_KEYS)
            if unknown or not raw:
                raise PolicyError(
                    f"{where}: constraint keys {unknown or '(none)'} not understood; "
                    f"use {', '.join(sorted(_CONSTRAINT_KEYS))}"
                )
            for bound in ("min", "max"):
                if bound in raw and not _is_number(raw[bound]):
                    raise PolicyError(f"{where}: {bound!r} must be a number, got {raw[bound]!r}")
            members = raw.get("in")
            if members is not None and not isinstance(members, list | tuple):
                raise PolicyError(f"{where}: 'in' must be a list, got {members!r}")
            return cls(
                regex=_compile(raw["regex"], where) if "regex" in raw else None,
                equals=raw.get("equals"),
                has_equals="equals" in raw,
                members=tuple(members) if members is not None else None,
                min=raw.get("min"),
                max=raw.get("max"),
                contains=raw.get("contains"),
                has_contains="contains" in raw,
            )
        raise PolicyError(
            f"{where}: constraint {raw!r} must be a regex string, a number, a list or a mapping"
        )

    def matches(self, value: Any) -> bool:
        """True when `value` satisfies every part of this constraint."""
        if self.has_contains and not (isinstance(value, list | tuple) and self.contains in value):
            return False
        values = list(value) if isinstance(value, list | tuple) else [value]
        checks = [self._scalar_ok(v) for v in values]
        if not self._has_scalar_checks():
            return True
        return any(checks)

    def _has_scalar_checks(self) -> bool:
        return (
            self.regex is not None
            or self.has_equals
            or self.members is not None
            or self.min is not None
            or self.max is not None
        )

    def _scalar_ok(self, value: Any) -> bool:
        if self.regex is not None and not (isinstance(value, str) and self.regex.fullmatch(value)):
            return False
        if self.has_equals and not (
            type(value) is type(self.equals) or _both_numbers(value, self.equals)
        ):
            return False
        if self.has_equals and value != self.equals:
            return False
        if self.members is not None and value not in self.members:
            return False
        if self.min is not None or self.max is not None:
            if not _is_number(value):
                return False
            if self.min is not None and value < self.min:
                return False
            if self.max is not None and value > self.max:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    """One policy rule (see the module docstring for the fields)."""

    id: str
    tool: str
    decision: PolicyVerdict
    priority: int = 100
    args: Mapping[str, Any] = field(default_factory=dict)
    side_effect: tuple[str, ...] | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        where = f"rule {self.id!r}"
        if self.decision not in VERDICTS:
            raise PolicyError(
                f"{where}: decision {self.decision!r} is not one of {', '.join(VERDICTS)}"
            )
        if self.side_effect is not None:
            bad = [s for s in self.side_effect if s not in _SIDE_EFFECTS]
            if bad:
                raise PolicyError(
                    f"{where}: side_effect {bad!r} not understood; use {', '.join(_SIDE_EFFECTS)}"
                )
        object.__setattr__(self, "_tool_re", _compile(self.tool, where))
        object.__setattr__(
            self,
            "_constraints",
            {
                name: ArgConstraint.parse(raw, f"{where}, argument {name!r}")
                for name, raw in self.args.items()
            },
        )

    def matches(self, tool: str, args: Mapping[str, Any], side_effect: str | None = None) -> bool:
        """True when the tool name, the side effect and every argument constraint match."""
        if not cast(re.Pattern[str], self._tool_re).fullmatch(tool):  # type: ignore[attr-defined]
            return False
        if self.side_effect is not None and (side_effect or "read") not in self.side_effect:
            return False
        constraints: dict[str, ArgConstraint] = self._constraints  # type: ignore[attr-defined]
        for name, constraint in constraints.items():
            if name not in args or not constraint.matches(args[name]):
                return False
        return True


@dataclass(frozen=True)
class Policy:
    """Ordered rules; `decide` returns the first match, or a default denial."""

    name: str
    rules: Sequence[Rule]
    description: str = ""

    def __post_init__(self) -> None:
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise PolicyError(f"policy {self.name!r}: duplicate rule ids {duplicates}")
        ordered = tuple(sorted(self.rules, key=lambda r: r.priority))  # stable: file order
        object.__setattr__(self, "rules", ordered)

    def decide(
        self, tool: str, args: Mapping[str, Any], *, side_effect: str | None = None
    ) -> PolicyDecision:
        """The decision for one call: the first matching rule by priority, else deny."""
        for rule in self.rules:
            if rule.matches(tool, args, side_effect):
                reason = rule.reason or f"rule {rule.id!r} of policy {self.name!r}"
                return PolicyDecision(rule.decision, rule.id, reason)
        return PolicyDecision(
            "deny",
            DEFAULT_DENY_RULE,
            f"no rule of policy {self.name!r} allows {tool!r} with these arguments",
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Policy:
        """Build a policy from its YAML/JSON form; raises PolicyError naming the problem."""
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
            raise PolicyError(f"{source}: a policy is a mapping with a 'rules' list")
        rules = []
        for index, raw in enumerate(data["rules"]):
            if not isinstance(raw, Mapping):
                raise PolicyError(f"{source}: rule {index} must be a mapping, got {raw!r}")
            unknown = sorted(set(raw) - _RULE_KEYS)
            missing = [k for k in ("tool", "decision") if k not in raw]
            if unknown or missing:
                raise PolicyError(
                    f"{source}: rule {index} has unknown keys {unknown} / missing {missing}; "
                    f"valid keys: {', '.join(sorted(_RULE_KEYS))}"
                )
            side_effect = raw.get("side_effect")
            if isinstance(side_effect, str):
                side_effect = [side_effect]
            rules.append(
                Rule(
                    id=str(raw.get("id") or f"rule_{index}"),
                    tool=str(raw["tool"]),
                    decision=raw["decision"],
                    priority=int(raw.get("priority", 100)),
                    args=dict(raw.get("args") or {}),
                    side_effect=tuple(side_effect) if side_effect is not None else None,
                    reason=raw.get("reason"),
                )
            )
        return cls(
            name=str(data.get("name") or source),
            rules=rules,
            description=str(data.get("description") or ""),
        )


def builtin_policy_names() -> list[str]:
    """Names of the policies shipped in `tools/policies/`."""
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))


def load_policy(ref: str | Path | Policy | Mapping[str, Any] | None = None) -> Policy:
    """Resolve a policy: a Policy, a mapping, a built-in name, or a .yaml/.yml/.json path.

    None means the built-in `default` policy. Files are cached by path and modification time.
    Raises PolicyError for unknown names (listing the built-ins) and malformed files.
    """
    if isinstance(ref, Policy):
        return ref
    if isinstance(ref, Mapping):
        return Policy.from_dict(ref)
    text = str(ref) if ref is not None else DEFAULT_POLICY
    cached = _recent.get(text)
    if cached is not None and time.monotonic() - cached[0] < RECHECK_S:
        return cached[1]
    path = Path(text)
    builtin = path.suffix.lower() not in {".yaml", ".yml", ".json"}
    if builtin:
        path = POLICY_DIR / f"{text}.yaml"
    # Only a stat on the hot path: async nodes on the server may not list directories or
    # resolve relative paths (both count as blocking calls there).
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        if builtin:
            raise PolicyError(
                f"unknown policy {text!r}; built-in policies: "
                f"{', '.join(builtin_policy_names())}, or give a .yaml/.json path"
            ) from None
        raise PolicyError(f"cannot read policy file {str(path)!r}: {exc.strerror}") from None
    policy = _load_file(str(path), mtime)
    _recent[text] = (time.monotonic(), policy)
    return policy


# The agent loop asks for the policy on every model step; a file is re-checked for edits at
# most this often.
RECHECK_S = 2.0
_recent: dict[str, tuple[float, Policy]] = {}


@lru_cache(maxsize=64)
def _load_file(path: str, mtime_ns: int) -> Policy:
    raw = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(raw) if path.endswith(".json") else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {path!r} is not valid: {exc}") from None
    policy = Policy.from_dict(data, source=path)
    logger.debug("loaded policy %r (%d rules) from %s", policy.name, len(policy.rules), path)
    return policy


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise PolicyError(f"{where}: pattern {pattern!r} must be a string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"{where}: invalid regex {pattern!r}: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _both_numbers(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b)


__all__ = [
    "DEFAULT_DENY_RULE",
    "DEFAULT_POLICY",
    "ArgConstraint",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyVerdict",
    "Rule",
    "builtin_policy_names",
    "load_policy",
]
