"""OpenAI-compatible HTTP server that answers chat completions from a script.

Point the real ``langchain_openai.ChatOpenAI`` (or the ``openai`` SDK) at
:attr:`ScriptedLLMServer.base_url` and every request is answered by
:meth:`nodes.offline.script.Script.choose`. Only the standard library is used
so the server can run anywhere the project runs.

Example::

    with ScriptedLLMServer(script) as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model="gpt-4.1-mini")
        llm.invoke("hi")
        assert srv.requests[0]["messages"][-1]["content"] == "hi"
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from nodes.offline.script import (
    Script,
    ScriptError,
    ScriptExhausted,
    ScriptReply,
    ScriptValidationError,
    load_script,
)

__all__ = ["ScriptedLLMServer", "serve_forever"]

logger = logging.getLogger(__name__)

_DEFAULT_MODEL = "scripted"
# Small pieces make clients exercise their delta-merging code like a real stream.
_ARGS_PIECE_CHARS = 16
_WORD_RE = re.compile(r"\S+\s*|\s+")


class ScriptedLLMServer:
    """Serve the OpenAI Chat Completions API from a :class:`Script`.

    Runs a ``ThreadingHTTPServer`` in a daemon thread. Usable as a context
    manager or with :meth:`start`/:meth:`stop`.

    Attributes:
        host: Interface the server binds to (only that one).
        requests: Every request body received on ``/v1/chat/completions``,
            in arrival order.
    """

    def __init__(
        self,
        script: Script | Mapping[str, Any] | str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keep_alive: bool = False,
    ) -> None:
        """Create a server; nothing listens until :meth:`start`.

        Args:
            script: A script, a script mapping or a path to a script file.
            host: Interface to bind.
            port: TCP port; ``0`` picks a free one.
            keep_alive: Let clients reuse connections. Off by default because
                ``langchain_openai`` caches its async HTTP client per base URL
                for the whole process: a pooled connection opened under one
                event loop (one async test) then breaks the next test's loop
                with "Event loop is closed". Closing after every response
                avoids that at a negligible cost on loopback.
        """
        self.host = host
        self._requested_port = port
        self.keep_alive = keep_alive
        self._script = load_script(script)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def script(self) -> Script:
        """The script currently answering requests (swappable at runtime)."""
        with self._lock:
            return self._script

    @script.setter
    def script(self, value: Script | Mapping[str, Any] | str | Path) -> None:
        new = load_script(value)
        with self._lock:
            self._script = new

    @property
    def port(self) -> int:
        """The bound port (only meaningful once started)."""
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:8765/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> ScriptedLLMServer:
        """Bind and start serving in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"owner": self})
        httpd = _Server((self.host, self._requested_port), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"scripted-llm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("scripted LLM server started at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        logger.debug("scripted LLM server stopped")

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, body: dict[str, Any]) -> Script:
        with self._lock:
            self.requests.append(body)
            return self._script


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Tests start and stop many servers quickly; don't trip over TIME_WAIT.
    allow_reuse_address = True
    # The stdlib default backlog of 5 resets connections when parallel graph
    # branches open many at once.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver's default prints a traceback to stderr; clients closing
        # keep-alive connections is routine, anything else is worth a log record.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            logger.debug("connection from %s closed: %s", client_address, exc)
        else:
            logger.exception("scripted LLM server failed handling %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """Request handler; ``owner`` is set on a per-server subclass."""

    owner: ScriptedLLMServer
    protocol_version = "HTTP/1.1"
    server_version = "weftgraph-scripted-llm/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- routing ---------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            self._send_json(HTTPStatus.OK, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            names = [*self.owner.script.model_names, _DEFAULT_MODEL]
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": "weftgraph"}
                for name in dict.fromkeys(names)
            ]
            self._send_json(HTTPStatus.OK, {"object": "list", "data": data})
        else:
            self._send_error_body(404, f"Unknown path {path!r}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0].rstrip("/")
        body_bytes = self._read_body()
        if path in ("/v1/embeddings", "/embeddings"):
            self._send_embeddings(body_bytes)
            return
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error_body(404, f"Unknown path {path!r}", "invalid_request_error")
            return
        try:
            body = json.loads(body_bytes or b"null")
        except ValueError as exc:
            self._send_error_body(400, f"Request body is not JSON: {exc}", "invalid_request_error")
            return
        if not isinstance(body, dict):
            self._send_error_body(
                400, "Request body must be a JSON object", "invalid_request_error"
            )
            return
        script = self.owner._record(body)
        try:
            reply = script.choose(body)
        except (ScriptExhausted, ScriptValidationError) as exc:
            # Script mistakes are never transient: tell the SDK not to retry so
            # the failure surfaces at once with this text.
            logger.error("scripted LLM cannot answer: %s", exc)
            self._send_error_body(
                500,
                f"scripted LLM: {exc}",
                "script_error",
                code="script_exhausted",
                headers={"x-should-retry": "false"},
            )
            return
        if reply.delay:
            time.sleep(reply.delay)
        model = body.get("model") if isinstance(body.get("model"), str) else _DEFAULT_MODEL
        try:
            if reply.error is not None:
                self._send_scripted_error(reply.error)
            elif body.get("stream"):
                options = body.get("stream_options")
                include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
                self._send_stream(reply, str(model), include_usage)
            else:
                self._send_json(HTTPStatus.OK, _completion(reply, str(model)))
        except (BrokenPipeError, ConnectionResetError):
            # A client that cancels mid-answer is expected in cancellation tests.
            logger.debug("client went away before the answer was sent")
            self.close_connection = True

    # -- helpers ---------------------------------------------------------

    def _send_embeddings(self, body_bytes: bytes) -> None:
        # Deterministic hashed vectors (nodes/offline/embeddings.py); not scripted, not recorded.
        from nodes.offline.embeddings import embeddings_response

        try:
            body = json.loads(body_bytes or b"null")
            payload = embeddings_response(body if isinstance(body, dict) else {})
        except ValueError as exc:
            self._send_error_body(
                400, f"Invalid embeddings request: {exc}", "invalid_request_error"
            )
            return
        self._send_json(HTTPStatus.OK, payload)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self._end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error_body(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._send_json(status, body, headers)

    def _send_scripted_error(self, error: ScriptError) -> None:
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            ra = error.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        self._send_json(error.status, error.body(), headers)

    def _send_stream(self, reply: ScriptReply, model: str, include_usage: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        # Chunked encoding keeps the connection reusable without knowing the length.
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self._end_headers()
        for chunk in _stream_chunks(reply, model, include_usage):
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _end_headers(self) -> None:
        if not self.owner.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


def _usage_body(reply: ScriptReply) -> dict[str, int]:
    usage = reply.usage
    prompt = usage.prompt_tokens if usage and usage.prompt_tokens is not None else 0
    completion = usage.completion_tokens if usage and usage.completion_tokens is not None else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(reply: ScriptReply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.tool_calls
        ]
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage_body(reply),
    }


def _stream_chunks(reply: ScriptReply, model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    """Yield the ``chat.completion.chunk`` objects of a streamed answer.

    Mirrors OpenAI: a role chunk, content pieces, tool-call deltas (id/name
    first, then argument fragments), a finish chunk, and - only when
    ``stream_options.include_usage`` was requested - a final chunk with empty
    ``choices`` carrying ``usage`` (every earlier chunk then has ``usage: null``).
    """
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = None
        return out

    content = reply.content or ""
    first: dict[str, Any] = {"role": "assistant", "content": "" if content else None}
    if content or not reply.tool_calls:
        first["refusal"] = None
    yield chunk(first)
    for piece in _WORD_RE.findall(content):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        args = call.arguments_json()
        for start in range(0, len(args), _ARGS_PIECE_CHARS):
            piece = args[start : start + _ARGS_PIECE_CHARS]
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage_body(reply),
        }


def serve_forever(script_path: str, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``script_path`` until interrupted (``weft mock-llm``).

    Logs the base URL once started and blocks until ``KeyboardInterrupt``.

    Args:
        script_path: Path to a ``.yaml``/``.yml``/``.json`` script.
        host: Interface to bind.
        port: TCP port (``0`` picks a free one; the log line shows which).
    """
    server = ScriptedLLMServer(Script.from_file(script_path), host=host, port=port)
    server.start()
    logger.info("scripted LLM serving %s at %s", script_path, server.base_url)
    stop = threading.Event()
    try:
        # Short waits keep the main thread responsive to Ctrl-C on every platform.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        logger.info("scripted LLM shutting down")
    finally:
        server.stop()
