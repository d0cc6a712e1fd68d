"""Built-in tools: web search and fetch (local HTTP server), database, outbox, catalogue."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import ToolNode, ToolRuntime
from pydantic import ValidationError

from tools import database, web
from tools.builtin import all_builtin_tools
from tools.database import (
    QueryRejected,
    connect_read_only,
    create_demo_database,
    query_database,
    run_query,
)
from tools.outbox import Outbox, create_ticket, send_email
from tools.web import (
    FixtureSearchBackend,
    HttpSearchBackend,
    fetch_url,
    html_to_text,
    search_web,
    set_search_backend,
)

pytestmark = pytest.mark.anyio


# --- a local HTTP server for search and fetch ------------------------------------------------

PAGES: dict[str, tuple[int, str, bytes]] = {
    "/page": (
        200,
        "text/html; charset=utf-8",
        b"<html><head><title>Hello page</title><style>p{}</style></head><body>"
        b"<h1>Welcome</h1><script>alert(1)</script><p>Some &amp; text.</p></body></html>",
    ),
    "/data.json": (200, "application/json", b'{"b": 1, "a": [1, 2]}'),
    "/image.png": (200, "image/png", b"\x89PNG\r\n\x1a\n"),
    "/big.txt": (200, "text/plain", b"x" * 3_000_000),
    "/broken": (500, "text/plain", b"boom"),
}


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        type(self).requests.append(
            {"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers)}
        )
        if parts.path == "/redirect":
            self._send(302, "text/plain", b"", {"Location": "/page"})
        elif parts.path == "/loop":
            self._send(302, "text/plain", b"", {"Location": "/loop"})
        elif parts.path == "/search":
            query = parse_qs(parts.query)["q"][0]
            count = int(parse_qs(parts.query)["n"][0])
            hits = [
                {"title": f"{query} #{i}", "url": f"https://r.example/{i}", "content": "snippet"}
                for i in range(count + 3)
            ]
            self._send(200, "application/json", json.dumps({"results": hits}).encode())
        elif parts.path in PAGES:
            self._send(*PAGES[parts.path])
        else:
            self._send(404, "text/plain", b"not found")

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allow_local_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEFT_FETCH_ALLOW_PRIVATE", "1")


@pytest.fixture(autouse=True)
def _env_selected_search_backend() -> Iterator[None]:
    set_search_backend(None)
    yield
    set_search_backend(None)


# --- search_web ------------------------------------------------------------------------------


async def test_search_uses_the_fixture_backend_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEFT_SEARCH_URL", raising=False)
    results = await search_web.ainvoke({"query": "langgraph interrupt resume", "max_results": 2})
    assert [r["url"] for r in results] == [
        "https://docs.example.org/langgraph/interrupts",
        "https://docs.example.org/langgraph/persistence",
    ]
    assert await search_web.ainvoke({"query": "zzzz unknown words"}) == []


async def test_search_http_backend_from_env(
    http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEFT_SEARCH_URL", f"{http_server}/search")
    monkeypatch.setenv("WEFT_SEARCH_API_KEY", "k-123")
    _Handler.requests.clear()
    results = await search_web.ainvoke({"query": "weather paris", "max_results": 3})

    assert [r["title"] for r in results] == [
        "weather paris #0",
        "weather paris #1",
        "weather paris #2",
    ]
    assert results[0] == {
        "title": "weather paris #0",
        "url": "https://r.example/0",
        "snippet": "snippet",
    }
    sent = _Handler.requests[-1]
    assert sent["query"] == {"q": ["weather paris"], "n": ["3"]}
    assert sent["headers"]["Authorization"] == "Bearer k-123"


async def test_search_http_backend_errors_are_for_the_model(http_server: str) -> None:
    set_search_backend(HttpSearchBackend(f"{http_server}/broken"))
    with pytest.raises(ToolException, match="HTTP 500"):
        await search_web.ainvoke({"query": "x"})
    set_search_backend(HttpSearchBackend(f"{http_server}/page"))
    with pytest.raises(ToolException, match="did not return JSON"):
        await search_web.ainvoke({"query": "x"})
    set_search_backend(HttpSearchBackend("http://127.0.0.1:9/nothing-listens"))
    with pytest.raises(ToolException, match="unreachable"):
        await search_web.ainvoke({"query": "x"})


async def test_search_argument_bounds() -> None:
    set_search_backend(FixtureSearchBackend([]))
    for bad in ({"query": ""}, {"query": "x" * 501}, {"query": "x", "max_results": 0},
                {"query": "x", "max_results": 21}):  # fmt: skip
        with pytest.raises(ValidationError):
            await search_web.ainvoke(bad)
    assert await search_web.ainvoke({"query": "x" * 500, "max_results": 20}) == []


# --- fetch_url -------------------------------------------------------------------------------


async def test_fetch_html_strips_tags_scripts_and_styles(
    http_server: str, allow_local_fetch: None
) -> None:
    result = await fetch_url.ainvoke({"url": f"{http_server}/page"})
    assert result["status"] == 200 and result["content_type"] == "text/html"
    assert result["title"] == "Hello page"
    assert result["text"] == "Welcome\nSome & text."
    assert result["truncated"] is False


async def test_fetch_json_follows_redirects_and_caps_size(
    http_server: str, allow_local_fetch: None
) -> None:
    data = await fetch_url.ainvoke({"url": f"{http_server}/data.json"})
    assert json.loads(data["text"]) == {"b": 1, "a": [1, 2]}

    redirected = await fetch_url.ainvoke({"url": f"{http_server}/redirect"})
    assert redirected["url"] == f"{http_server}/page" and redirected["title"] == "Hello page"

    big = await fetch_url.ainvoke({"url": f"{http_server}/big.txt", "max_chars": 1000})
    assert big["truncated"] is True and len(big["text"]) == 1000


async def test_fetch_refusals(http_server: str, allow_local_fetch: None) -> None:
    with pytest.raises(ToolException, match="'image/png'.*not text"):
        await fetch_url.ainvoke({"url": f"{http_server}/image.png"})
    with pytest.raises(ToolException, match="HTTP 404"):
        await fetch_url.ainvoke({"url": f"{http_server}/missing"})
    with pytest.raises(ToolException, match="redirected more than 5 times"):
        await fetch_url.ainvoke({"url": f"{http_server}/loop"})
    with pytest.raises(ValidationError):
        await fetch_url.ainvoke({"url": "file:///etc/passwd"})


async def test_fetch_refuses_private_addresses_by_default(
    http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEFT_FETCH_ALLOW_PRIVATE", raising=False)
    _Handler.requests.clear()
    with pytest.raises(ToolException, match="private or local network"):
        await fetch_url.ainvoke({"url": f"{http_server}/page"})
    assert _Handler.requests == []


async def test_fetch_times_out(monkeypatch: pytest.MonkeyPatch, allow_local_fetch: None) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    monkeypatch.setattr(web, "FETCH_TIMEOUT_S", 0.5)
    try:
        with pytest.raises(ToolException, match="did not answer within 0.5 s"):
            await fetch_url.ainvoke({"url": f"http://127.0.0.1:{silent.getsockname()[1]}/"})
    finally:
        silent.close()


def test_html_to_text_keeps_blocks_apart() -> None:
    text, title = html_to_text("<title> T </title><div>a</div><div>b<br>c</div>")
    assert (text, title) == ("a\nb\nc", "T")


# --- query_database --------------------------------------------------------------------------


@pytest.fixture
def demo_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = create_demo_database(tmp_path / "demo.sqlite")
    monkeypatch.setenv("WEFT_DATABASE", str(path))
    return path


async def test_parameterised_select(demo_db: Path) -> None:
    result = await query_database.ainvoke(
        {
            "table": "customers",
            "sql": "SELECT id, name, country FROM customers WHERE country = ? ORDER BY id",
            "params": ["FR"],
        }
    )
    assert result["columns"] == ["id", "name", "country"]
    assert result["rows"] == [[5, "Customer 5", "FR"], [10, "Customer 10", "FR"],
                              [15, "Customer 15", "FR"], [20, "Customer 20", "FR"]]  # fmt: skip
    assert result["truncated"] is False


async def test_row_limit_is_enforced(demo_db: Path) -> None:
    result = await query_database.ainvoke(
        {"table": "customers", "sql": "SELECT id FROM customers", "max_rows": 3}
    )
    assert result["rows"] == [[1], [2], [3]] and result["row_count"] == 3
    assert result["truncated"] is True
    with pytest.raises(ValidationError):
        await query_database.ainvoke({"table": "customers", "sql": "SELECT 1", "max_rows": 501})


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (id, name, email, country, tier) VALUES (?, ?, ?, ?, ?)",
        "UPDATE customers SET name = ? WHERE id = ?",
        "DELETE FROM customers WHERE id = ?",
        "DROP TABLE customers",
        "CREATE TABLE customers_copy (x)",
        "ATTACH DATABASE ? AS other",
        "PRAGMA writable_schema = 1",
    ],
)
async def test_writes_and_admin_statements_are_rejected(demo_db: Path, sql: str) -> None:
    params = [1] * sql.count("?")
    with pytest.raises(ToolException, match="only a single SELECT"):
        await query_database.ainvoke({"table": "customers", "sql": sql, "params": params})
    count = sqlite3.connect(demo_db).execute("SELECT count(*) FROM customers").fetchone()[0]
    assert count == 20


def test_connection_is_read_only_at_the_sqlite_level(demo_db: Path) -> None:
    connection = connect_read_only(demo_db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connection.execute("DELETE FROM customers")
    connection.close()
    with pytest.raises(FileNotFoundError):
        connect_read_only(demo_db.with_name("absent.sqlite"))
    assert not demo_db.with_name("absent.sqlite").exists()


async def test_literal_injection_is_refused_and_params_are_data(demo_db: Path) -> None:
    injected = "SELECT * FROM customers WHERE name = 'x' OR '1'='1'"
    with pytest.raises(ToolException, match="use \\? placeholders"):
        await query_database.ainvoke({"table": "customers", "sql": injected})
    with pytest.raises(ToolException, match="quote character"):
        await query_database.ainvoke(
            {"table": "customers", "sql": 'SELECT * FROM customers WHERE name = "Customer 1"'}
        )
    as_data = await query_database.ainvoke(
        {
            "table": "customers",
            "sql": "SELECT id FROM customers WHERE name = ?",
            "params": ["x' OR '1'='1"],
        }
    )
    assert as_data["rows"] == []
    with pytest.raises(ToolException, match="exactly one SQL statement"):
        await query_database.ainvoke(
            {"table": "customers", "sql": "SELECT 1 FROM customers; DELETE FROM customers"}
        )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM billing",
        "SELECT count(*) FROM billing",
        "SELECT c.name FROM customers c JOIN billing b ON b.customer_id = c.id",
        "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM billing)",
        "WITH b AS (SELECT * FROM billing) SELECT * FROM b",
    ],
)
async def test_the_table_argument_bounds_what_the_sql_reads(demo_db: Path, sql: str) -> None:
    with pytest.raises(ToolException, match="reads 'billing' but 'table' is 'customers'"):
        await query_database.ainvoke({"table": "customers", "sql": sql})


async def test_unknown_table_lists_the_tables(demo_db: Path) -> None:
    with pytest.raises(ToolException, match="tables: billing, customers, orders"):
        await query_database.ainvoke({"table": "users", "sql": "SELECT * FROM users"})


def test_query_time_limit(demo_db: Path) -> None:
    # 20**6 = 64 million joined rows: far more than 0.2 s of work.
    slow = "SELECT count(*) FROM " + ", ".join(f"customers c{i}" for i in range(6))
    with pytest.raises(QueryRejected, match="longer than 0.2 s"):
        run_query(demo_db, slow, [], table="customers", max_rows=5, time_limit_s=0.2)


async def test_missing_database_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEFT_DATABASE", str(tmp_path / "nope.sqlite"))
    with pytest.raises(ToolException, match="not available"):
        await query_database.ainvoke({"table": "customers", "sql": "SELECT 1"})
    assert database.database_path() == tmp_path / "nope.sqlite"


# --- outbox ----------------------------------------------------------------------------------


def _runtime(call_id: str, thread_id: str | None = "t-1") -> ToolRuntime[Any, Any]:
    configurable = {"thread_id": thread_id} if thread_id else {}
    return ToolRuntime(
        state={},
        context=None,
        config={"configurable": configurable},
        stream_writer=lambda _: None,
        tool_call_id=call_id,
        store=None,
    )


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Outbox:
    path = tmp_path / "outbox.sqlite"
    monkeypatch.setenv("WEFT_OUTBOX", str(path))
    return Outbox(path)


async def test_send_email_once_per_idempotency_key(outbox: Outbox) -> None:
    args = {"to": "ann@example.com", "subject": "Hi", "body": "Hello Ann"}
    first = await send_email.ainvoke({**args, "runtime": _runtime("call-1")})
    again = await send_email.ainvoke({**args, "runtime": _runtime("call-1")})
    other_thread = await send_email.ainvoke({**args, "runtime": _runtime("call-1", "t-2")})

    assert first == "Email sent to ann@example.com (message 1)."
    assert again == "Already sent earlier as message 1; not sent again."
    assert other_thread == "Email sent to ann@example.com (message 2)."
    sent = outbox.messages("email")
    keys = [(m["idempotency_key"], m["attempts"]) for m in sent]
    assert keys == [("t-1:call-1", 2), ("t-2:call-1", 1)]
    assert sent[0]["payload"] == args


async def test_outbox_tools_validate_arguments(outbox: Outbox) -> None:
    with pytest.raises(ValidationError):
        await send_email.ainvoke(
            {"to": "not-an-address", "subject": "s", "body": "b", "runtime": _runtime("c")}
        )
    with pytest.raises(ValidationError):
        await create_ticket.ainvoke(
            {"title": "Refund", "description": "d", "priority": "asap", "runtime": _runtime("c")}
        )
    assert outbox.messages() == []


async def test_tool_node_supplies_the_key_and_a_replayed_call_sends_nothing(
    outbox: Outbox,
) -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([send_email, create_ticket]))
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    graph: Any = builder.compile(checkpointer=InMemorySaver())
    request = AIMessage(
        "",
        tool_calls=[
            {"name": "send_email", "id": "e1", "type": "tool_call",
             "args": {"to": "bob@example.com", "subject": "Order", "body": "Shipped."}},
            {"name": "create_ticket", "id": "k1", "type": "tool_call",
             "args": {"title": "Refund order 7", "description": "Customer asks", "customer_id": 7}},
        ],
    )  # fmt: skip
    config = {"configurable": {"thread_id": "thread-9"}}
    first = await graph.ainvoke({"messages": [HumanMessage("go"), request]}, config)
    replay = await graph.ainvoke({"messages": [request]}, config)

    # The two calls run concurrently, so which row gets id 1 is not fixed.
    rows = sorted(outbox.messages(), key=lambda r: r["kind"])
    ids = {r["kind"]: r["id"] for r in rows}
    replies = [m.content for m in first["messages"] if isinstance(m, ToolMessage)]
    assert replies == [
        f"Email sent to bob@example.com (message {ids['email']}).",
        f"Ticket {ids['ticket']} created (normal).",
    ]
    replayed = [m.content for m in replay["messages"] if isinstance(m, ToolMessage)][-2:]
    assert replayed == [
        f"Already sent earlier as message {ids['email']}; not sent again.",
        f"Ticket {ids['ticket']} already exists for this request; no new ticket created.",
    ]
    assert [(r["kind"], r["idempotency_key"], r["attempts"]) for r in rows] == [
        ("email", "thread-9:e1", 2),
        ("ticket", "thread-9:k1", 2),
    ]


# --- the catalogue ---------------------------------------------------------------------------


def test_every_builtin_declares_metadata_and_tags() -> None:
    tools = {t.name: t for t in all_builtin_tools()}
    expected = {
        "search_web": "read", "fetch_url": "read", "query_database": "read",
        "read_file": "read", "list_directory": "read", "write_file": "write",
        "run_python": "read", "send_email": "irreversible", "create_ticket": "write",
    }  # fmt: skip
    for name, side_effect in expected.items():
        meta = tools[name].metadata or {}
        assert meta["side_effect"] == side_effect, name
        assert meta["timeout_s"] > 0 and isinstance(meta["idempotent"], bool), name
        assert "rate_limit" in meta and "fallback" in meta, name
        assert tools[name].tags, name


def test_model_facing_schemas_hide_the_runtime_and_describe_every_argument() -> None:
    for tool in all_builtin_tools():
        schema = tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        assert "runtime" not in schema.get("properties", {}), tool.name
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    db = query_database.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert "table" in db["required"]


async def test_key_falls_back_to_the_registry_executor_key(outbox: Outbox) -> None:
    from tools.registry import reset_idempotency_key, set_idempotency_key

    args = {"title": "Broken login", "description": "Customer cannot log in"}
    with pytest.raises(ToolException, match="idempotency key"):
        await create_ticket.ainvoke({**args, "runtime": _runtime("")})
    token = set_idempotency_key("t-5:exec-1")
    try:
        first = await create_ticket.ainvoke({**args, "runtime": _runtime("")})
        again = await create_ticket.ainvoke({**args, "runtime": _runtime("")})
    finally:
        reset_idempotency_key(token)
    assert first == "Ticket 1 created (normal)."
    assert again == "Ticket 1 already exists for this request; no new ticket created."
    assert [m["idempotency_key"] for m in outbox.messages("ticket")] == ["t-5:exec-1"]


async def test_default_demo_database_is_created_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEFT_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = await query_database.ainvoke(
        {"table": "orders", "sql": "SELECT count(*) FROM orders WHERE status = ?",
         "params": ["shipped"]}
    )  # fmt: skip
    assert result["rows"] == [[10]]
    assert (tmp_path / ".weft" / "demo.sqlite").is_file()


async def test_fixture_corpus_carries_a_planted_injection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEFT_SEARCH_URL", raising=False)
    results = await search_web.ainvoke({"query": "shipping delays", "max_results": 1})
    assert "attacker@evil.com" in results[0]["snippet"]
