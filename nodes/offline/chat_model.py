"""In-process LangChain chat model that answers from a script.

:class:`ScriptedChatModel` converts LangChain messages to the OpenAI request
shape and asks the same :meth:`nodes.offline.script.Script.choose` the HTTP
server uses, so one script drives both. It is meant for unit tests that need
no sockets; integration tests should prefer the real ``ChatOpenAI`` against
:class:`nodes.offline.server.ScriptedLLMServer`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
import openai
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCall,
    ToolCallChunk,
    UsageMetadata,
    convert_to_openai_messages,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from nodes.offline.script import (
    Script,
    ScriptError,
    ScriptExhausted,
    ScriptReply,
    ScriptToolCall,
    load_script,
    message_text,
    resolve_reply,
)

__all__ = ["ScriptedChatModel"]

_SNIPPET_CHARS = 200
_FAKE_URL = "http://scripted.invalid/v1/chat/completions"


class ScriptedChatModel(BaseChatModel):
    """Chat model whose answers come from a :class:`Script` or a reply list.

    Give exactly one of:

    * ``script``: a :class:`Script` (or its dict form); replies are chosen
      statelessly by rule and turn, exactly like the HTTP server.
    * ``replies``: a plain in-order sequence (``AIMessage``, script reply dict
      or ``str`` for content only), one per call regardless of turns. Running
      out raises :class:`ScriptExhausted`; it never cycles.

    Every call's input messages are recorded in :attr:`calls`, shared by all
    runnables derived from this instance via ``bind``/``bind_tools``.

    Attributes:
        model_name: Name reported in ``response_metadata`` and requests.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    script: Script | None = None
    replies: list[ScriptReply] | None = None
    model_name: str = Field(default="scripted", alias="model")

    _state: _SharedState = PrivateAttr(default_factory=lambda: _SharedState())

    def __init__(
        self,
        *,
        script: Script | Mapping[str, Any] | str | Path | None = None,
        replies: Sequence[AIMessage | ScriptReply | Mapping[str, Any] | str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the model from a script (or its dict/file form) or a reply list.

        Args:
            script: Rules answering by turn, exactly like the HTTP server.
            replies: Plain in-order replies, one per call.
            **kwargs: Other fields, e.g. ``model_name``.
        """
        # Passed as a dict: BaseChatModel's typed __init__ does not know our fields.
        super().__init__(**{"script": script, "replies": replies, **kwargs})

    @field_validator("script", mode="before")
    @classmethod
    def _coerce_script(cls, value: Any) -> Any:
        if value is None or isinstance(value, Script):
            return value
        return load_script(value)

    @field_validator("replies", mode="before")
    @classmethod
    def _coerce_replies(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise ValueError("'replies' must be a list of AIMessage, dict or str")
        return [_to_script_reply(item, i) for i, item in enumerate(value)]

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ScriptedChatModel:
        if (self.script is None) == (self.replies is None):
            raise ValueError("ScriptedChatModel needs exactly one of 'script' or 'replies'")
        return self

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """Snapshot of the message lists received so far, in call order."""
        with self._state.lock:
            return [list(c) for c in self._state.calls]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of the OpenAI-shaped request bodies built for each call.

        Same shape as :attr:`ScriptedLLMServer.requests`: ``model``,
        ``messages`` and, when bound, ``tools``/``tool_choice``/``response_format``.
        """
        with self._state.lock:
            return list(self._state.requests)

    @property
    def bound_tools(self) -> list[dict[str, Any]]:
        """OpenAI-format tools from the most recent :meth:`bind_tools` call."""
        with self._state.lock:
            return list(self._state.bound_tools)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools so the script sees ``tools``/``tool_choice`` like the server.

        ``tool_choice`` follows ``ChatOpenAI``: a tool name forces that tool,
        ``"any"``/``True`` become ``"required"``, ``"auto"``/``"none"`` pass through.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        with self._state.lock:
            self._state.bound_tools = list(formatted)
        names = [f["function"]["name"] for f in formatted if "function" in f]
        if tool_choice is not None and tool_choice is not False:
            if isinstance(tool_choice, bool) or tool_choice == "any":
                tool_choice = "required"
            elif isinstance(tool_choice, str) and tool_choice in names:
                tool_choice = {"type": "function", "function": {"name": tool_choice}}
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    # -- generation ------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._choose(messages, kwargs)
        if reply.delay:
            time.sleep(reply.delay)
        return ChatResult(generations=[ChatGeneration(message=self._message(reply))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._choose(messages, kwargs)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return ChatResult(generations=[ChatGeneration(message=self._message(reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._choose(messages, kwargs)
        if reply.delay:
            time.sleep(reply.delay)
        chunk = self._chunk(reply)
        if run_manager is not None:
            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self._choose(messages, kwargs)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        chunk = self._chunk(reply)
        if run_manager is not None:
            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
        yield chunk

    # -- internals -------------------------------------------------------

    def _choose(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> ScriptReply:
        """Record the call, pick the reply, and raise scripted errors."""
        request = self._request(messages, kwargs)
        if self.replies is None:
            assert self.script is not None  # guaranteed by _exactly_one_source
            with self._state.lock:
                self._state.calls.append(list(messages))
                self._state.requests.append(request)
            reply = self.script.choose(request)
        else:
            with self._state.lock:
                self._state.calls.append(list(messages))
                self._state.requests.append(request)
                index = self._state.next_reply
                # Claim the slot under the lock so concurrent calls never share a reply.
                if index < len(self.replies):
                    self._state.next_reply += 1
            if index >= len(self.replies):
                raise ScriptExhausted(
                    f"script exhausted after {index} calls; last input: "
                    f"{_describe_last(request['messages'])}"
                )
            reply = resolve_reply(self.replies[index], request, rule=f"reply {index}", turn=index)
        if reply.error is not None:
            raise _status_error(reply.error)
        return reply

    def _request(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model_name,
            "messages": convert_to_openai_messages(messages),
        }
        for key in ("tools", "tool_choice", "response_format", "parallel_tool_calls"):
            if kwargs.get(key) is not None:
                request[key] = kwargs[key]
        rf = request.get("response_format")
        if isinstance(rf, type):
            # A Pydantic class bound directly is what the OpenAI SDK would expand
            # into a strict json_schema named after the class.
            schema = convert_to_openai_tool(rf)["function"]
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema["name"],
                    "schema": schema.get("parameters", {}),
                    "strict": True,
                },
            }
        return request

    def _usage(self, reply: ScriptReply) -> UsageMetadata:
        prompt = reply.usage.prompt_tokens if reply.usage else None
        completion = reply.usage.completion_tokens if reply.usage else None
        prompt = prompt or 0
        completion = completion or 0
        return UsageMetadata(
            input_tokens=prompt,
            output_tokens=completion,
            total_tokens=prompt + completion,
            input_token_details={},
            output_token_details={},
        )

    def _metadata(self, reply: ScriptReply) -> dict[str, Any]:
        return {"model_name": self.model_name, "finish_reason": reply.finish_reason}

    def _message(self, reply: ScriptReply) -> AIMessage:
        return AIMessage(
            content=reply.content or "",
            tool_calls=[_tool_call(c) for c in reply.tool_calls],
            usage_metadata=self._usage(reply),
            response_metadata=self._metadata(reply),
        )

    def _chunk(self, reply: ScriptReply) -> ChatGenerationChunk:
        # One complete chunk: LangGraph's "messages" stream mode still sees the
        # tool-call-only answers, and merging is trivially correct.
        chunks = [
            ToolCallChunk(
                name=c.name, args=c.arguments_json(), id=c.id, index=i, type="tool_call_chunk"
            )
            for i, c in enumerate(reply.tool_calls)
        ]
        message = AIMessageChunk(
            content=reply.content or "",
            tool_call_chunks=chunks,
            usage_metadata=self._usage(reply),
            response_metadata=self._metadata(reply),
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)


class _SharedState:
    """Mutable call state shared by a model and every copy of it.

    Copies (``model_copy``, ``deepcopy`` as done by some graph builders) keep
    pointing at the same state so tests can assert on one ``calls`` list and a
    reply sequence is never replayed by a copy.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[list[BaseMessage]] = []
        self.requests: list[dict[str, Any]] = []
        self.bound_tools: list[dict[str, Any]] = []
        self.next_reply = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedState:
        return self

    def __copy__(self) -> _SharedState:
        return self


def _tool_call(call: ScriptToolCall) -> ToolCall:
    return ToolCall(name=call.name, args=dict(call.args), id=call.id, type="tool_call")


def _to_script_reply(item: Any, index: int) -> ScriptReply:
    where = f"replies[{index}]"
    if isinstance(item, AIMessage):
        calls = tuple(
            ScriptToolCall(name=tc["name"], args=dict(tc["args"]), id=tc.get("id"))
            for tc in item.tool_calls
        )
        usage = item.usage_metadata
        reply = ScriptReply.from_dict(
            {"content": item.text}
            if not usage
            else {
                "content": item.text,
                "usage": {
                    "prompt_tokens": usage["input_tokens"],
                    "completion_tokens": usage["output_tokens"],
                },
            },
            where=where,
        )
        return ScriptReply(content=reply.content, tool_calls=calls, usage=reply.usage)
    return ScriptReply.from_dict(item, where=where)


def _describe_last(messages: Sequence[Mapping[str, Any]]) -> str:
    if not messages:
        return "(no messages)"
    last = messages[-1]
    text = message_text(last.get("content"))
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "..."
    return f"({last.get('role')}) {text!r}"


def _status_error(error: ScriptError) -> openai.APIStatusError:
    """Build the exception ``ChatOpenAI`` would raise for this HTTP error."""
    headers: dict[str, str] = {"x-request-id": "req_scripted"}
    if error.retry_after is not None:
        ra = error.retry_after
        headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    response = httpx2.Response(
        error.status,
        json=error.body(),
        headers=headers,
        request=httpx2.Request("POST", _FAKE_URL),
    )
    message = f"Error code: {error.status} - {error.message}"
    body = error.body()["error"]
    return _error_class(error.status)(message, response=response, body=body)


def _error_class(status: int) -> type[openai.APIStatusError]:
    """Map a status to ChatOpenAI's exception class (LangChain-classified when available)."""
    try:
        from langchain_openai.chat_models import base as lc_openai
    except ImportError:  # pragma: no cover - langchain-openai is a project dependency
        lc_openai = None  # type: ignore[assignment]
    if lc_openai is not None:
        lc_classes: dict[int, type[openai.APIStatusError]] = {
            400: lc_openai.OpenAIInvalidRequestError,
            401: lc_openai.OpenAIAuthenticationError,
            403: lc_openai.OpenAIPermissionDeniedError,
            404: lc_openai.OpenAIModelNotFoundError,
            429: lc_openai.OpenAIRateLimitError,
        }
        if status in lc_classes:
            return lc_classes[status]
        if status >= 500:
            return lc_openai.OpenAIAPIError
    classes: dict[int, type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        409: openai.ConflictError,
        422: openai.UnprocessableEntityError,
        429: openai.RateLimitError,
    }
    if status in classes:
        return classes[status]
    if status >= 500:
        return openai.InternalServerError
    return openai.APIStatusError
