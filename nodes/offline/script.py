"""Script format and reply selection for the offline LLM stand-in.

A *script* decides, purely from an OpenAI Chat Completions request body, what a
fake model answers. The same script drives the HTTP server
(:mod:`nodes.offline.server`) and the in-process chat model
(:mod:`nodes.offline.chat_model`), so a graph behaves identically whether it
talks to ``ChatOpenAI`` over HTTP or to :class:`ScriptedChatModel` directly.

Selection is stateless on purpose: the reply index (the *turn*) is the number
of assistant messages after the last user message. Parallel branches, retries
of an already-answered conversation and server restarts therefore all get the
same answer for the same conversation.

Example (YAML)::

    name: react-demo
    rules:
      - match: {system: "calculator", last: "\\d+ \\* \\d+"}
        replies:
          - tool_calls: [{name: calculate, args: {expression: "6*7"}}]
          - content: "6 * 7 = 42"
        after_last: repeat
    default:
      content: "I don't know."
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

__all__ = [
    "AfterLast",
    "Match",
    "Rule",
    "Script",
    "ScriptError",
    "ScriptExhausted",
    "ScriptReply",
    "ScriptToolCall",
    "ScriptUsage",
    "ScriptValidationError",
    "load_script",
    "resolve_reply",
]

AfterLast = Literal["repeat", "error"]

_TOP_KEYS = frozenset({"name", "rules", "default"})
_RULE_KEYS = frozenset({"name", "match", "replies", "after_last"})
_REGEX_CONDITIONS = ("system", "last", "user", "any")
_EXACT_CONDITIONS = ("model", "tool", "schema")
_MATCH_KEYS = frozenset(_REGEX_CONDITIONS + _EXACT_CONDITIONS)
_REPLY_KEYS = frozenset({"content", "tool_calls", "json", "usage", "delay", "error"})
_TOOL_CALL_KEYS = frozenset({"name", "args", "id"})
_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens"})
_ERROR_KEYS = frozenset({"status", "message", "retry_after", "type", "code"})
_SNIPPET_CHARS = 200


class ScriptValidationError(ValueError):
    """A script (or one of its replies) is malformed.

    The message always names where the problem is, e.g.
    ``"rule 2: 'replies' must be a non-empty list"``.
    """


class ScriptExhausted(RuntimeError):  # noqa: N818 - public name fixed by the API contract
    """No scripted reply exists for a request.

    Raised when no rule matches and there is no default, when a rule with
    ``after_last: error`` runs out of replies, or when an in-process reply
    sequence is used up. The message names the rule and turn and quotes the
    last message so the failing step can be found from the error alone.
    """


@dataclass(frozen=True)
class ScriptToolCall:
    """One tool call a reply asks for.

    Attributes:
        name: Function name.
        args: JSON object passed as the call's arguments.
        id: Explicit call id; ``None`` means "generate ``call_<n>``".
    """

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """Return the arguments serialised the way they go over the wire."""
        return json.dumps(self.args, ensure_ascii=False)


@dataclass(frozen=True)
class ScriptUsage:
    """Token counts reported for a reply.

    In a script a field left as ``None`` means "use the estimate"; replies
    returned by :meth:`Script.choose` always have both fields set.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        """Sum of prompt and completion tokens (missing counts as 0)."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(frozen=True)
class ScriptError:
    """An HTTP error the fake provider answers with instead of a completion.

    Attributes:
        status: HTTP status code (400-599).
        message: Human-readable error message (OpenAI ``error.message``).
        retry_after: Seconds for the ``Retry-After`` header, if any.
        type: OpenAI ``error.type``; derived from the status when ``None``.
        code: OpenAI ``error.code``; derived from the status when ``None``.
    """

    status: int
    message: str
    retry_after: float | None = None
    type: str | None = None
    code: str | None = None

    @property
    def error_type(self) -> str:
        """The OpenAI ``error.type`` for this error."""
        if self.type:
            return self.type
        if self.status == 429:
            return "requests"
        if self.status >= 500:
            return "server_error"
        return "invalid_request_error"

    @property
    def error_code(self) -> str | None:
        """The OpenAI ``error.code`` for this error."""
        if self.code:
            return self.code
        if self.status == 429:
            return "rate_limit_exceeded"
        if self.status >= 500:
            return "server_error"
        return None

    def body(self) -> dict[str, Any]:
        """Return the OpenAI-style error body ``{"error": {...}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": None,
                "code": self.error_code,
            }
        }


@dataclass(frozen=True)
class ScriptReply:
    """One scripted answer.

    In a script this is the reply *as written*. :meth:`Script.choose` returns a
    *resolved* copy: ``json`` has been turned into ``content`` or a tool call
    for this request, tool-call ids are filled in, ``usage`` is complete, and
    ``rule``/``turn`` say where the reply came from.

    Attributes:
        content: Assistant text (``None`` for none).
        tool_calls: Tool calls to make, possibly several in parallel.
        json: Structured-output answer (only meaningful if ``has_json``).
        has_json: Whether ``json`` was given (``null`` is a valid JSON answer).
        usage: Token usage override (partial in scripts, complete when resolved).
        delay: Seconds to wait before answering.
        error: Answer with this error instead of a completion.
        rule: Label of the rule that produced the reply, e.g. ``"rule 0"``.
        turn: Turn index the reply was chosen for.
    """

    content: str | None = None
    tool_calls: tuple[ScriptToolCall, ...] = ()
    json: Any = None
    has_json: bool = False
    usage: ScriptUsage | None = None
    delay: float = 0.0
    error: ScriptError | None = None
    rule: str | None = None
    turn: int = 0

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "reply") -> ScriptReply:
        """Validate and build a reply from its script form.

        Args:
            data: Mapping with ``content``/``tool_calls``/``json``/``usage``/
                ``delay``/``error``, or a bare string meaning content only.
            where: Location prefix for error messages.

        Raises:
            ScriptValidationError: If the reply is malformed.
        """
        if isinstance(data, ScriptReply):
            return data
        if isinstance(data, str):
            return cls(content=data)
        if not isinstance(data, Mapping):
            raise ScriptValidationError(
                f"{where}: must be a mapping or a string, got {type(data).__name__}"
            )
        _reject_unknown(data, _REPLY_KEYS, where, "field")
        if not ({"content", "tool_calls", "json", "error"} & data.keys()):
            raise ScriptValidationError(
                f"{where}: must define at least one of 'content', 'tool_calls', 'json', 'error'"
            )
        content = data.get("content")
        if content is not None and not isinstance(content, str):
            raise ScriptValidationError(f"{where}: 'content' must be a string")
        tool_calls = _parse_tool_calls(data.get("tool_calls"), where)
        has_json = "json" in data
        if has_json:
            if content is not None or tool_calls:
                raise ScriptValidationError(
                    f"{where}: 'json' cannot be combined with 'content' or 'tool_calls'"
                )
            _require_json_serialisable(data["json"], f"{where}: 'json'")
        usage = _parse_usage(data.get("usage"), where)
        delay = data.get("delay", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ScriptValidationError(f"{where}: 'delay' must be a number >= 0")
        error = _parse_error(data.get("error"), where)
        if error is not None and (content is not None or tool_calls or has_json):
            raise ScriptValidationError(
                f"{where}: 'error' cannot be combined with 'content', 'tool_calls' or 'json'"
            )
        return cls(
            content=content,
            tool_calls=tool_calls,
            json=data.get("json"),
            has_json=has_json,
            usage=usage,
            delay=float(delay),
            error=error,
        )

    @property
    def finish_reason(self) -> str:
        """OpenAI ``finish_reason`` for this reply."""
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class Match:
    """Conditions of a rule; every ``None`` condition always holds.

    Attributes:
        system: Regex searched in the concatenated system/developer messages.
        last: Regex searched in the content of the request's last message.
        user: Regex searched in the last user message.
        any: Regex searched in every message; one hit suffices.
        model: Exact model name of the request.
        tool: Name of a tool the request must offer.
        schema: Name of the requested structured-output schema.
    """

    system: re.Pattern[str] | None = None
    last: re.Pattern[str] | None = None
    user: re.Pattern[str] | None = None
    any: re.Pattern[str] | None = None
    model: str | None = None
    tool: str | None = None
    schema: str | None = None

    def failure(self, view: _RequestView) -> str | None:
        """Return why the request does not match, or ``None`` if it does."""
        for key in _REGEX_CONDITIONS:
            pattern = cast("re.Pattern[str] | None", getattr(self, key))
            if pattern is None:
                continue
            texts = view.texts_for(key)
            if not any(pattern.search(text) for text in texts):
                return f"{key} /{pattern.pattern}/ not found"
        if self.model is not None and view.model != self.model:
            return f"model {self.model!r} != {view.model!r}"
        if self.tool is not None and self.tool not in view.tool_names:
            return f"tool {self.tool!r} not offered"
        if self.schema is not None and self.schema != view.schema_name:
            return f"schema {self.schema!r} != {view.schema_name!r}"
        return None


@dataclass(frozen=True)
class Rule:
    """A guarded list of replies indexed by turn.

    Attributes:
        index: Position of the rule in the script (for messages).
        replies: Replies; reply ``i`` answers turn ``i``.
        match: Conditions that must all hold.
        after_last: ``"repeat"`` the last reply or ``"error"`` past the end.
        name: Optional name used in messages.
    """

    index: int
    replies: tuple[ScriptReply, ...]
    match: Match = field(default_factory=Match)
    after_last: AfterLast = "error"
    name: str | None = None

    @property
    def label(self) -> str:
        """Human label such as ``rule 1 ('lookup')``."""
        return f"rule {self.index}" + (f" ({self.name!r})" if self.name else "")


@dataclass(frozen=True)
class Script:
    """A validated script: ordered rules plus an optional default reply.

    Build with :meth:`from_dict`, :meth:`from_file`, :meth:`sequence` or
    :func:`load_script`; answer requests with :meth:`choose`.
    """

    rules: tuple[Rule, ...] = ()
    default: ScriptReply | None = None
    name: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Script:
        """Validate a script given as a mapping (the parsed YAML/JSON).

        Raises:
            ScriptValidationError: Naming the rule index and field at fault.
        """
        if not isinstance(data, Mapping):
            raise ScriptValidationError(f"script: must be a mapping, got {type(data).__name__}")
        _reject_unknown(data, _TOP_KEYS, "script", "key")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise ScriptValidationError("script: 'name' must be a string")
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise ScriptValidationError("script: 'rules' must be a list")
        rules = tuple(_parse_rule(i, raw) for i, raw in enumerate(raw_rules))
        default = None
        if data.get("default") is not None:
            default = ScriptReply.from_dict(data["default"], where="default")
        if not rules and default is None:
            raise ScriptValidationError("script: needs at least one rule or a 'default'")
        return cls(rules=rules, default=default, name=name)

    @classmethod
    def from_file(cls, path: str | Path) -> Script:
        """Load a script from a ``.json``, ``.yaml`` or ``.yml`` file.

        Raises:
            ScriptValidationError: On unknown extension, parse error or invalid script.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml"):
            raise ScriptValidationError(
                f"{path}: unknown script extension {suffix!r} (use .json, .yaml or .yml)"
            )
        text = path.read_text(encoding="utf-8")
        try:
            if suffix == ".json":
                data = json.loads(text)
            else:
                import yaml  # local: only file loading needs pyyaml

                data = yaml.safe_load(text)
        except Exception as exc:  # parse errors come in many library-specific types
            raise ScriptValidationError(f"{path}: cannot parse script: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ScriptValidationError as exc:
            raise ScriptValidationError(f"{path}: {exc}") from exc

    @classmethod
    def sequence(
        cls,
        replies: Sequence[ScriptReply | Mapping[str, Any] | str],
        *,
        name: str | None = None,
        after_last: AfterLast = "error",
    ) -> Script:
        """Shorthand: one unconditional rule whose replies are indexed by turn.

        Args:
            replies: Replies as dicts (script form), strings (content only) or
                :class:`ScriptReply` objects.
            name: Optional script name.
            after_last: Behaviour past the last reply.
        """
        if not replies:
            raise ScriptValidationError("rule 0: 'replies' must be a non-empty list")
        if after_last not in ("repeat", "error"):
            raise ScriptValidationError("rule 0: 'after_last' must be 'repeat' or 'error'")
        parsed = tuple(
            ScriptReply.from_dict(r, where=f"rule 0 reply {i}") for i, r in enumerate(replies)
        )
        return cls(rules=(Rule(index=0, replies=parsed, after_last=after_last),), name=name)

    @property
    def model_names(self) -> list[str]:
        """Model names the script mentions in ``match.model`` (sorted, unique)."""
        return sorted({r.match.model for r in self.rules if r.match.model is not None})

    def choose(self, request: Mapping[str, Any]) -> ScriptReply:
        """Pick and resolve the reply for an OpenAI chat-completions request body.

        Args:
            request: The request body (``messages``, ``model``, ``tools``,
                ``tool_choice``, ``response_format`` ...).

        Returns:
            The resolved reply (see :class:`ScriptReply`).

        Raises:
            ScriptExhausted: No rule matches and there is no default, or the
                matching rule ran out of replies with ``after_last: error``.
            ScriptValidationError: The request is malformed or the chosen reply
                cannot be rendered for it.
        """
        view = _RequestView.of(request)
        turn = view.turn
        failures: list[str] = []
        for rule in self.rules:
            why = rule.match.failure(view)
            if why is not None:
                failures.append(f"{rule.label}: {why}")
                continue
            if turn < len(rule.replies):
                reply = rule.replies[turn]
            elif rule.after_last == "repeat":
                reply = rule.replies[-1]
            else:
                raise ScriptExhausted(
                    f"{self._label()}{rule.label} exhausted at turn {turn}: it has "
                    f"{len(rule.replies)} repl{'y' if len(rule.replies) == 1 else 'ies'} "
                    f"and after_last is 'error'; {view.describe_last()}"
                )
            return resolve_reply(reply, request, rule=rule.label, turn=turn)
        if self.default is not None:
            return resolve_reply(self.default, request, rule="default", turn=turn)
        tried = "; ".join(failures) if failures else "no rules"
        raise ScriptExhausted(
            f"{self._label()}no rule matched at turn {turn} and there is no default "
            f"({tried}); {view.describe_last()}"
        )

    def _label(self) -> str:
        return f"script {self.name!r}: " if self.name else ""


def load_script(source: Script | Mapping[str, Any] | str | Path) -> Script:
    """Return a :class:`Script` from a script, a mapping or a file path."""
    if isinstance(source, Script):
        return source
    if isinstance(source, Mapping):
        return Script.from_dict(source)
    if isinstance(source, str | Path):
        return Script.from_file(source)
    raise TypeError(f"cannot load a script from {type(source).__name__}")


def resolve_reply(
    reply: ScriptReply,
    request: Mapping[str, Any],
    *,
    rule: str | None = None,
    turn: int = 0,
) -> ScriptReply:
    """Render a scripted reply for one concrete request.

    Turns ``json`` into message content (when the request asks for a
    ``response_format``) or into a single call to the forced/only tool (the
    ``function_calling`` structured-output method), assigns ``call_<n>`` ids,
    and fills usage with deterministic estimates where the script gives none.

    Raises:
        ScriptValidationError: If ``json`` must become tool arguments but is
            not a JSON object.
    """
    view = _RequestView.of(request)
    where = rule or "reply"
    if reply.error is not None:
        return ScriptReply(error=reply.error, delay=reply.delay, rule=rule, turn=turn)
    content = render_template(reply.content, request) if reply.content else reply.content
    calls = reply.tool_calls
    if reply.has_json:
        target = None if view.response_format_type else view.json_tool_target
        if target is None:
            content = json.dumps(reply.json, ensure_ascii=False)
        elif isinstance(reply.json, Mapping):
            calls = (ScriptToolCall(name=target, args=reply.json),)
        else:
            raise ScriptValidationError(
                f"{where} turn {turn}: 'json' must be an object to be returned as a "
                f"call to tool {target!r}, got {type(reply.json).__name__}"
            )
    # Ids continue the count of tool calls already in the conversation so they
    # are unique per conversation yet identical on every replay of it.
    first = view.prior_tool_calls + 1
    calls = tuple(
        c if c.id else ScriptToolCall(name=c.name, args=c.args, id=f"call_{first + i}")
        for i, c in enumerate(calls)
    )
    out_chars = len(content or "") + sum(len(c.arguments_json()) for c in calls)
    given = reply.usage or ScriptUsage()
    usage = ScriptUsage(
        prompt_tokens=(
            given.prompt_tokens
            if given.prompt_tokens is not None
            else max(1, math.ceil(view.content_chars / 4))
        ),
        completion_tokens=(
            given.completion_tokens
            if given.completion_tokens is not None
            else max(1, math.ceil(out_chars / 4))
        ),
    )
    return ScriptReply(
        content=content,
        tool_calls=calls,
        json=reply.json,
        has_json=reply.has_json,
        usage=usage,
        delay=reply.delay,
        rule=rule,
        turn=turn,
    )


_PLACEHOLDER = re.compile(r"\{\{\s*(tool:[\w.-]+|last_tool|last_user)\s*\}\}")


def render_template(content: str, request: Mapping[str, Any]) -> str:
    """Fill `{{tool:NAME}}`, `{{last_tool}}` and `{{last_user}}` from the request's messages.

    Lets a scripted answer quote what a real tool returned (a clock, a search fixture) so demos
    show genuine tool output; a placeholder with nothing to fill becomes "(none)".
    """
    if "{{" not in content:
        return content
    messages = list(request.get("messages") or [])
    names: dict[str, str] = {}
    latest: dict[str, str] = {}
    last_tool = last_user = None
    for message in messages:
        role = message.get("role")
        for call in message.get("tool_calls") or []:
            names[str(call.get("id"))] = str((call.get("function") or {}).get("name", ""))
        if role == "tool":
            text = _tool_output_text(message_text(message.get("content")))
            name = message.get("name") or names.get(str(message.get("tool_call_id")), "")
            latest[name] = last_tool = text
        elif role == "user":
            last_user = message_text(message.get("content"))

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "last_tool":
            value = last_tool
        elif key == "last_user":
            value = last_user
        else:
            value = latest.get(key.removeprefix("tool:"))
        return value if value is not None else "(none)"

    return _PLACEHOLDER.sub(fill, content)


# The agent loop wraps tool output as untrusted data (nodes/tool_node.py); placeholders quote
# the tool's own text, without the delimiters.
_TOOL_OUTPUT = re.compile(r"(?s)(?:.*?\n)?<tool_output [^>]*>\n(.*)\n</tool_output>")


def _tool_output_text(text: str) -> str:
    match = _TOOL_OUTPUT.fullmatch(text)
    return match.group(1) if match else text


def message_text(content: Any) -> str:
    """Flatten OpenAI message content (string or parts list) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


@dataclass(frozen=True)
class _RequestView:
    """The parts of a request body that selection looks at."""

    messages: tuple[Mapping[str, Any], ...]
    model: str | None
    tool_names: tuple[str, ...]
    tool_choice: Any
    response_format: Mapping[str, Any] | None

    @classmethod
    def of(cls, request: Mapping[str, Any]) -> _RequestView:
        if not isinstance(request, Mapping):
            raise ScriptValidationError("request: must be a mapping")
        messages = request.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
            raise ScriptValidationError("request: 'messages' must be a list of objects")
        tools = request.get("tools") or []
        names: list[str] = []
        for tool in tools if isinstance(tools, list) else []:
            if not isinstance(tool, Mapping):
                continue
            fn = tool.get("function")
            name = fn.get("name") if isinstance(fn, Mapping) else tool.get("name")
            if isinstance(name, str):
                names.append(name)
        rf = request.get("response_format")
        model = request.get("model")
        return cls(
            messages=tuple(messages),
            model=model if isinstance(model, str) else None,
            tool_names=tuple(names),
            tool_choice=request.get("tool_choice"),
            response_format=rf if isinstance(rf, Mapping) else None,
        )

    @property
    def turn(self) -> int:
        count = 0
        for msg in reversed(self.messages):
            role = msg.get("role")
            if role == "user":
                return count
            if role == "assistant":
                count += 1
        return count

    @property
    def prior_tool_calls(self) -> int:
        return sum(
            len(m.get("tool_calls") or []) for m in self.messages if m.get("role") == "assistant"
        )

    @property
    def content_chars(self) -> int:
        return sum(len(message_text(m.get("content"))) for m in self.messages)

    @property
    def response_format_type(self) -> str | None:
        if self.response_format is None:
            return None
        kind = self.response_format.get("type")
        return kind if isinstance(kind, str) and kind != "text" else None

    @property
    def forced_tool(self) -> str | None:
        choice = self.tool_choice
        if isinstance(choice, Mapping):
            fn = choice.get("function")
            name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
            return name if isinstance(name, str) else None
        # "required" with a single tool is how a forced call looks after
        # LangChain maps tool_choice="any" for the default with_structured_output.
        if choice in ("required", "any") and len(self.tool_names) == 1:
            return self.tool_names[0]
        return None

    @property
    def json_tool_target(self) -> str | None:
        if self.forced_tool is not None:
            return self.forced_tool
        if self.tool_choice != "none" and len(self.tool_names) == 1:
            return self.tool_names[0]
        return None

    @property
    def schema_name(self) -> str | None:
        rf = self.response_format
        if rf is not None and rf.get("type") == "json_schema":
            spec = rf.get("json_schema")
            if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
                return cast(str, spec["name"])
        return self.forced_tool

    def texts_for(self, key: str) -> list[str]:
        if key == "system":
            return [
                "\n".join(
                    message_text(m.get("content"))
                    for m in self.messages
                    if m.get("role") in ("system", "developer")
                )
            ]
        if key == "last":
            return [message_text(self.messages[-1].get("content"))] if self.messages else []
        if key == "user":
            for msg in reversed(self.messages):
                if msg.get("role") == "user":
                    return [message_text(msg.get("content"))]
            return []
        return [message_text(m.get("content")) for m in self.messages]

    def describe_last(self) -> str:
        if not self.messages:
            return "the request has no messages"
        last = self.messages[-1]
        text = message_text(last.get("content"))
        if not text and last.get("tool_calls"):
            text = json.dumps(last.get("tool_calls"), ensure_ascii=False)
        if len(text) > _SNIPPET_CHARS:
            text = text[:_SNIPPET_CHARS] + "..."
        return f"last message ({last.get('role')}): {text!r}"


def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str], where: str, what: str) -> None:
    allowed_set = frozenset(allowed)
    unknown = sorted(str(k) for k in data if k not in allowed_set)
    if unknown:
        raise ScriptValidationError(
            f"{where}: unknown {what} {unknown[0]!r} (expected one of {sorted(allowed_set)})"
        )


def _require_json_serialisable(value: Any, where: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ScriptValidationError(f"{where} must be JSON-serialisable: {exc}") from exc


def _parse_rule(index: int, raw: Any) -> Rule:
    where = f"rule {index}"
    if not isinstance(raw, Mapping):
        raise ScriptValidationError(f"{where}: must be a mapping, got {type(raw).__name__}")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise ScriptValidationError(f"{where}: 'name' must be a string")
    if name:
        where = f"rule {index} ({name!r})"
    _reject_unknown(raw, _RULE_KEYS, where, "key")
    replies = raw.get("replies")
    if not isinstance(replies, list) or not replies:
        raise ScriptValidationError(f"{where}: 'replies' must be a non-empty list")
    parsed = tuple(
        ScriptReply.from_dict(r, where=f"{where} reply {i}") for i, r in enumerate(replies)
    )
    after_last = raw.get("after_last", "error")
    if after_last not in ("repeat", "error"):
        raise ScriptValidationError(
            f"{where}: 'after_last' must be 'repeat' or 'error', got {after_last!r}"
        )
    return Rule(
        index=index,
        replies=parsed,
        match=_parse_match(raw.get("match"), where),
        after_last=cast(AfterLast, after_last),
        name=name,
    )


def _parse_match(raw: Any, where: str) -> Match:
    if raw is None:
        return Match()
    if not isinstance(raw, Mapping):
        raise ScriptValidationError(f"{where}: 'match' must be a mapping")
    _reject_unknown(raw, _MATCH_KEYS, f"{where}: match", "condition")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise ScriptValidationError(f"{where}: 'match.{key}' must be a string")
        if key in _REGEX_CONDITIONS:
            try:
                values[key] = re.compile(value, re.S)
            except re.error as exc:
                raise ScriptValidationError(
                    f"{where}: 'match.{key}' is not a valid regex: {exc}"
                ) from exc
        else:
            values[key] = value
    return Match(**values)


def _parse_tool_calls(raw: Any, where: str) -> tuple[ScriptToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScriptValidationError(f"{where}: 'tool_calls' must be a list")
    calls: list[ScriptToolCall] = []
    for i, item in enumerate(raw):
        at = f"{where}: tool_calls[{i}]"
        if not isinstance(item, Mapping):
            raise ScriptValidationError(f"{at} must be a mapping")
        _reject_unknown(item, _TOOL_CALL_KEYS, at, "field")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ScriptValidationError(f"{at}: 'name' must be a non-empty string")
        args = item.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ScriptValidationError(f"{at}: 'args' must be a mapping")
        _require_json_serialisable(args, f"{at}: 'args'")
        call_id = item.get("id")
        if call_id is not None and (not isinstance(call_id, str) or not call_id):
            raise ScriptValidationError(f"{at}: 'id' must be a non-empty string")
        calls.append(ScriptToolCall(name=name, args=dict(args), id=call_id))
    return tuple(calls)


def _parse_usage(raw: Any, where: str) -> ScriptUsage | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ScriptValidationError(f"{where}: 'usage' must be a mapping")
    _reject_unknown(raw, _USAGE_KEYS, f"{where}: usage", "field")
    values: dict[str, int] = {}
    for key in _USAGE_KEYS:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ScriptValidationError(f"{where}: 'usage.{key}' must be an integer >= 0")
        values[key] = value
    return ScriptUsage(**values)


def _parse_error(raw: Any, where: str) -> ScriptError | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ScriptValidationError(f"{where}: 'error' must be a mapping")
    _reject_unknown(raw, _ERROR_KEYS, f"{where}: error", "field")
    status = raw.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ScriptValidationError(f"{where}: 'error.status' must be an integer in 400..599")
    message = raw.get("message")
    if not isinstance(message, str) or not message:
        raise ScriptValidationError(f"{where}: 'error.message' must be a non-empty string")
    retry_after = raw.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int | float) or retry_after < 0
    ):
        raise ScriptValidationError(f"{where}: 'error.retry_after' must be a number >= 0")
    for key in ("type", "code"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            raise ScriptValidationError(f"{where}: 'error.{key}' must be a string")
    return ScriptError(
        status=status,
        message=message,
        retry_after=float(retry_after) if retry_after is not None else None,
        type=raw.get("type"),
        code=raw.get("code"),
    )
