"""The tool registry: LangChain tools plus the metadata the gates and the executor need.

Every tool is a LangChain `BaseTool`. Its metadata is read from `tool.metadata` and `tool.tags`
(convention in `tools/builtin.py`):

    side_effect  "read" | "write" | "irreversible"   (default "read", see below)
    idempotent   bool                                 (default: True for read, else False)
    timeout_s    float                                (default DEFAULT_TIMEOUT_S)
    rate_limit   "10/min" | "100/h" | "5/s" | None    (sliding window, process-wide)
    fallback     name of another tool | None
    consequences one sentence for reviewers | None    (default: derived from side_effect)

A tool that declares nothing is treated as `read`: plain LangChain tools carry no metadata, and
a caller who hands one to `build_agent` chose it. Declare `write`/`irreversible` to get reviews
(the lint test makes every built-in declare it).

Also here, because tools themselves may need them without importing graph code:
`RATE_LIMITER` (process-wide sliding windows) and `current_idempotency_key()`.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from langchain_core.tools import BaseTool

SideEffect = Literal["read", "write", "irreversible"]
SIDE_EFFECTS: tuple[str, ...] = get_args(SideEffect)

DEFAULT_TIMEOUT_S = 30.0
"""Timeout for a tool that does not declare `timeout_s`."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hr|hour|d|day)\s*$")
_WINDOW_S = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_VERB_NOUN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
# Names fixed by the product spec that are a lone verb; the object is implied ("calculate").
LINT_NAME_EXCEPTIONS = frozenset({"calculate"})

_CONSEQUENCES = {
    "read": "Reads data only; no lasting change.",
    "write": "Changes data or state outside the conversation; it can be undone.",
    "irreversible": "Acts in the outside world and cannot be undone once executed.",
}


class UnknownToolError(LookupError):
    """A tool name (or tag) that the registry does not hold."""


class ToolMetadataError(ValueError):
    """A tool declares metadata the registry cannot use."""


@dataclass(frozen=True)
class RateLimit:
    """At most `calls` calls in any window of `window_s` seconds."""

    calls: int
    window_s: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse '10/min', '100/h', '5/s' or '1000/day'.

        Raises ToolMetadataError quoting the text and the accepted forms.
        """
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1:
            raise ToolMetadataError(
                f"rate limit {text!r} is not understood; expected '<calls>/<unit>' with calls "
                "≥ 1 and unit s, min, h or day (e.g. '10/min')"
            )
        return cls(int(match.group(1)), float(_WINDOW_S[match.group(2)]))

    def __str__(self) -> str:
        return f"{self.calls} per {self.window_s:g} s"


@dataclass(frozen=True)
class ToolSpec:
    """A tool and the metadata the gates and the executor act on."""

    tool: BaseTool
    side_effect: SideEffect
    idempotent: bool
    timeout_s: float
    rate_limit: RateLimit | None
    fallback: str | None
    tags: tuple[str, ...]
    consequences: str
    risky_override: bool | None = None
    """The tool's own `risky` metadata, when it declares one (see `risky`)."""

    @property
    def name(self) -> str:
        """The tool's name (what the model calls)."""
        return self.tool.name

    @property
    def risky(self) -> bool:
        """True when a call changes something outside the conversation, so that
        `approval_mode="risky"` sends it to review.

        A `write` tool whose changes stay inside the caller's own agent state (e.g.
        `save_memory`, which writes only the run's user's memory namespace) may declare
        `"risky": False`; the policy and the audit log still apply to it. An `irreversible`
        tool is always risky.
        """
        if self.side_effect == "irreversible":
            return True
        if self.risky_override is not None:
            return self.risky_override
        return self.side_effect != "read"

    @classmethod
    def of(cls, tool: BaseTool) -> ToolSpec:
        """Read a tool's metadata, applying the documented defaults."""
        meta: dict[str, Any] = dict(tool.metadata or {})
        side_effect = meta.get("side_effect") or "read"
        if side_effect not in SIDE_EFFECTS:
            raise ToolMetadataError(
                f"tool {tool.name!r} declares side_effect {side_effect!r}; "
                f"expected one of {', '.join(SIDE_EFFECTS)}"
            )
        timeout = meta.get("timeout_s")
        timeout_s = DEFAULT_TIMEOUT_S if timeout is None else float(timeout)
        if timeout_s <= 0:
            raise ToolMetadataError(
                f"tool {tool.name!r} declares timeout_s {timeout!r}; expected a positive number"
            )
        raw_limit = meta.get("rate_limit")
        idempotent = meta.get("idempotent")
        risky = meta.get("risky")
        if risky is not None and not isinstance(risky, bool):
            raise ToolMetadataError(
                f"tool {tool.name!r} declares risky {risky!r}; expected true or false"
            )
        return cls(
            tool=tool,
            side_effect=cast(SideEffect, side_effect),
            idempotent=side_effect == "read" if idempotent is None else bool(idempotent),
            timeout_s=timeout_s,
            rate_limit=RateLimit.parse(str(raw_limit)) if raw_limit else None,
            fallback=meta.get("fallback") or None,
            tags=tuple(tool.tags or ()),
            consequences=str(meta.get("consequences") or _CONSEQUENCES[side_effect]),
            risky_override=risky,
        )

    def describe_consequences(self) -> str:
        """What a reviewer should know before approving a call."""
        # "Idempotent" is about retries: a repeated call has no further effect.
        repeat = "a retry has no further effect" if self.idempotent else "a retry repeats it"
        return f"{self.side_effect}: {self.consequences} ({repeat})"


class ToolRegistry:
    """Name → tool with metadata; hands out least-privilege subsets.

    Raises:
        ToolMetadataError: a tool's metadata is invalid.
        ValueError: two tools share a name.
    """

    def __init__(self, tools: Iterable[BaseTool]) -> None:
        specs: dict[str, ToolSpec] = {}
        for tool in tools:
            if tool.name in specs:
                raise ValueError(f"two tools are named {tool.name!r}; tool names must be unique")
            specs[tool.name] = ToolSpec.of(tool)
        self._specs = specs

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        """Tool names in registration order."""
        return list(self._specs)

    def spec(self, name: str) -> ToolSpec:
        """The spec of `name`; raises UnknownToolError listing the known names."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownToolError(
                f"unknown tool {name!r}; known: {', '.join(self._specs) or '(none)'}"
            ) from None

    def get(self, name: str) -> BaseTool:
        """The tool called `name`; raises UnknownToolError listing the known names."""
        return self.spec(name).tool

    def tools(self) -> list[BaseTool]:
        """Every tool, in registration order."""
        return [s.tool for s in self._specs.values()]

    def subset(
        self, names: Sequence[str] | None = None, *, tags: Sequence[str] | None = None
    ) -> list[BaseTool]:
        """Least-privilege selection: tools named in `names` plus tools carrying any of `tags`.

        With neither given, every tool. Raises UnknownToolError for a name or tag that selects
        nothing, listing the known ones.
        """
        if names is None and tags is None:
            return self.tools()
        chosen: dict[str, BaseTool] = {}
        for name in names or ():
            chosen[name] = self.get(name)
        known_tags = sorted({t for s in self._specs.values() for t in s.tags})
        for tag in tags or ():
            if tag not in known_tags:
                raise UnknownToolError(
                    f"no tool is tagged {tag!r}; known tags: {', '.join(known_tags) or '(none)'}"
                )
            for spec in self._specs.values():
                if tag in spec.tags:
                    chosen.setdefault(spec.name, spec.tool)
        return [s.tool for s in self._specs.values() if s.name in chosen]


def default_registry() -> ToolRegistry:
    """A registry over every built-in tool (read from `tools.builtin` at call time)."""
    from tools.builtin import all_builtin_tools

    return ToolRegistry(all_builtin_tools())


def lint_tool(tool: BaseTool) -> list[str]:
    """Problems that make a tool hard for a model to use well; empty when it is fine.

    Checks: a verb_noun snake_case name, a description, a description for every argument the
    model fills in, a declared side effect and timeout, and a parseable rate limit.
    """
    problems: list[str] = []
    if not _VERB_NOUN.match(tool.name) and tool.name not in LINT_NAME_EXCEPTIONS:
        problems.append(f"name {tool.name!r} is not verb_noun snake_case (e.g. 'search_web')")
    if not (tool.description or "").strip():
        problems.append("has no description")
    schema = tool.tool_call_schema
    json_schema: dict[str, Any] = (
        schema if isinstance(schema, dict) else cast(Any, schema).model_json_schema()
    )
    for arg, prop in (json_schema.get("properties") or {}).items():
        if not str(prop.get("description", "")).strip():
            problems.append(f"argument {arg!r} has no description")
    meta = dict(tool.metadata or {})
    if meta.get("side_effect") not in SIDE_EFFECTS:
        problems.append(f"metadata side_effect must be one of {', '.join(SIDE_EFFECTS)}")
    if not isinstance(meta.get("timeout_s"), int | float) or meta["timeout_s"] <= 0:
        problems.append("metadata timeout_s must be a positive number")
    if meta.get("rate_limit"):
        try:
            RateLimit.parse(str(meta["rate_limit"]))
        except ToolMetadataError as exc:
            problems.append(str(exc))
    return problems


class RateLimiter:
    """Process-wide sliding-window counters; check-and-record is one atomic step.

    Lives outside graph state on purpose: a limit protects a real backend, shared by every
    thread and run in this process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, key: str, limit: RateLimit, *, now: float | None = None) -> float | None:
        """Record one call under `key` if the window has room; else return seconds to wait."""
        at = time.monotonic() if now is None else now
        with self._lock:
            window = self._calls.setdefault(key, deque())
            while window and at - window[0] >= limit.window_s:
                window.popleft()
            if len(window) >= limit.calls:
                return max(limit.window_s - (at - window[0]), 0.0)
            window.append(at)
            return None

    def reset(self, key: str | None = None) -> None:
        """Forget recorded calls (for one key, or all); for tests and operators."""
        with self._lock:
            if key is None:
                self._calls.clear()
            else:
                self._calls.pop(key, None)


RATE_LIMITER = RateLimiter()

_IDEMPOTENCY_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "weft_idempotency_key", default=None
)


def current_idempotency_key() -> str | None:
    """The key of the tool call being executed: '<thread_id>:<tool_call_id>'.

    Set by the agent loop's tool executor around every call; a side-effecting tool stores it
    with its effect and skips a call whose key it has already seen (crash, retry, replay).
    None outside a tool call.
    """
    return _IDEMPOTENCY_KEY.get()


def idempotency_key(thread_id: str | None, tool_call_id: str) -> str:
    """Build the idempotency key for one tool call on one thread."""
    return f"{thread_id or 'no-thread'}:{tool_call_id}"


def set_idempotency_key(key: str | None) -> contextvars.Token[str | None]:
    """Set the current key (the executor does this); returns a token for `reset_idempotency_key`."""
    return _IDEMPOTENCY_KEY.set(key)


def reset_idempotency_key(token: contextvars.Token[str | None]) -> None:
    """Restore the key that was current before `set_idempotency_key`."""
    _IDEMPOTENCY_KEY.reset(token)


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "RATE_LIMITER",
    "RateLimit",
    "RateLimiter",
    "SideEffect",
    "ToolMetadataError",
    "ToolRegistry",
    "ToolSpec",
    "UnknownToolError",
    "current_idempotency_key",
    "default_registry",
    "idempotency_key",
    "lint_tool",
    "reset_idempotency_key",
    "set_idempotency_key",
]
