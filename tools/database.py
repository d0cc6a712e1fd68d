"""`query_database`: one read-only, parameterised SELECT against a SQLite database.

The database is `WEFT_DATABASE` or `./.weft/demo.sqlite` (created with `create_demo_database`
on first use when that default is missing), opened with the URI `mode=ro`, so SQLite itself
refuses writes.

Table-level policy: the tool takes a required `table` argument, the one table the query may
read, and enforces it with SQLite's authorizer while the statement is prepared. The authorizer
sees every table the statement actually reads (joins, sub-queries, views, CTEs) from SQLite's
own parser, so a policy rule on the `table` argument (e.g. deny `billing.*`) cannot be
sidestepped by naming another table inside the SQL. The same authorizer refuses anything that
is not a plain read (writes, PRAGMA, ATTACH, triggers). A query that needs two tables becomes two
calls; that is the price of a policy that can match one argument exactly.

Parameterised only: the SQL may not contain quote characters (so no string literals, where
injection lives); values go in `params` and bind to `?` placeholders. Numbers may appear inline.
Limits: at most `max_rows` rows (1-500) come back, and a statement is interrupted after
`QUERY_TIME_LIMIT_S` seconds through SQLite's progress handler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

DATABASE_ENV = "WEFT_DATABASE"
DEFAULT_DATABASE = Path(".weft") / "demo.sqlite"
QUERY_TIME_LIMIT_S = 5.0
MAX_ROWS = 500
MAX_SQL_CHARS = 4000
MAX_CELL_CHARS = 2000
# Checked every this many SQLite VM instructions; small enough to stop a runaway join quickly.
_PROGRESS_EVERY = 10_000

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
# Recursive CTEs are reads too; the constant exists on every SQLite since 3.8.3.
_ALLOWED_ACTIONS.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

logger = logging.getLogger(__name__)


class QueryRejected(ToolException):
    """The SQL or its arguments break a rule; the text tells the model how to fix the call."""


def database_path() -> Path:
    """The database file the tool reads (`WEFT_DATABASE`, else `./.weft/demo.sqlite`)."""
    return Path(os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE).expanduser()


def _database_for_call() -> Path:
    path = database_path()
    # Only the default demo file is ever created for the caller, so demos work out of the box;
    # a configured WEFT_DATABASE that is missing stays an error.
    if not os.environ.get(DATABASE_ENV) and not path.exists():
        logger.info("creating the demo database at %s", path)
        create_demo_database(path)
    return path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open `path` read-only through SQLite's URI `mode=ro` (SQLite refuses any write).

    Raises:
        FileNotFoundError: when the file does not exist (mode=ro never creates one).
    """
    resolved = path.resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"database {str(path)!r} does not exist")
    return sqlite3.connect(f"{resolved.as_uri()}?mode=ro", uri=True, check_same_thread=False)


def table_names(connection: sqlite3.Connection) -> list[str]:
    """User tables and views in the database, sorted."""
    rows = connection.execute(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def check_sql_text(sql: str) -> None:
    """Refuse quote characters (string literals) so every value arrives as a bound parameter.

    Raises:
        QueryRejected: naming the rule and the fix.
    """
    if "'" in sql or '"' in sql:
        raise QueryRejected(
            "Error: the SQL contains a quote character. Values must not be written into the "
            "SQL: use ? placeholders and pass the values in 'params', e.g. sql='SELECT * FROM "
            "customers WHERE email = ?', params=['ann@example.com']. Quote identifiers with "
            "[brackets] if needed."
        )


def _authorizer(table: str, seen: set[str], refused: list[str]) -> Any:
    def authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action not in _ALLOWED_ACTIONS:
            refused.append(f"action {action}")
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and arg1 is not None:
            seen.add(arg1)
            if arg1.lower() != table.lower():
                refused.append(arg1)
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


def run_query(
    path: Path,
    sql: str,
    params: list[Any],
    *,
    table: str,
    max_rows: int,
    time_limit_s: float = QUERY_TIME_LIMIT_S,
) -> dict[str, Any]:
    """Run one checked, read-only query (blocking; the tool calls it in a worker thread).

    Raises:
        QueryRejected: for quotes in the SQL, a table other than `table`, a non-read
            statement, more than one statement, a SQL error, or the time limit.
    """
    check_sql_text(sql)
    try:
        connection = connect_read_only(path)
    except FileNotFoundError:
        raise ToolException(
            f"Error: the database is not available ({path.name!r} is missing)."
        ) from None
    try:
        known = table_names(connection)
        if table not in known:
            raise QueryRejected(
                f"Error: unknown table {table!r}; tables: {', '.join(known) or '(none)'}."
            )
        seen: set[str] = set()
        refused: list[str] = []
        connection.set_authorizer(_authorizer(table, seen, refused))
        deadline = time.monotonic() + time_limit_s
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_EVERY)
        try:
            cursor = connection.execute(sql, params)
            rows = cursor.fetchmany(max_rows + 1)
        except sqlite3.DatabaseError as exc:
            raise _explain(exc, table, refused, time_limit_s) from None
        columns = [d[0] for d in cursor.description or []]
    finally:
        connection.close()
    return {
        "table": table,
        "columns": columns,
        "rows": [[_cell(v) for v in row] for row in rows[:max_rows]],
        "row_count": min(len(rows), max_rows),
        "truncated": len(rows) > max_rows,
    }


def _explain(
    exc: sqlite3.DatabaseError, table: str, refused: list[str], time_limit_s: float
) -> QueryRejected:
    text = str(exc)
    other_tables = [name for name in refused if not name.startswith("action ")]
    if other_tables:
        return QueryRejected(
            f"Error: the query reads {other_tables[0]!r} but 'table' is {table!r}. Query one "
            "table per call and set 'table' to it."
        )
    if refused or "not authorized" in text:
        return QueryRejected(
            "Error: only a single SELECT that reads data is allowed (no writes, PRAGMA, ATTACH "
            "or schema changes)."
        )
    if "interrupted" in text:
        return QueryRejected(
            f"Error: the query took longer than {time_limit_s:g} s and was stopped; add a "
            "WHERE clause or a LIMIT."
        )
    if "one statement" in text:
        return QueryRejected("Error: send exactly one SQL statement per call (no ';' chains).")
    if "bindings" in text:
        return QueryRejected(f"Error: {text}. Give one value in 'params' per ? placeholder.")
    return QueryRejected(f"Error: SQLite rejected the query: {text}.")


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + "…"
    return value


class QueryDatabaseArgs(BaseModel):
    """Arguments of `query_database`."""

    table: str = Field(
        pattern=_TABLE_NAME.pattern,
        description="The one table the query reads, e.g. 'customers'. The query may not "
        "read any other table.",
    )
    sql: str = Field(
        min_length=1,
        max_length=MAX_SQL_CHARS,
        description="One SELECT statement with ? placeholders for values and no quotes, e.g. "
        "'SELECT id, name FROM customers WHERE country = ? LIMIT 10'.",
    )
    params: list[str | int | float | None] = Field(
        default_factory=list,
        max_length=50,
        description="Values for the ? placeholders, in order.",
    )
    max_rows: int = Field(default=50, ge=1, le=MAX_ROWS, description="Most rows to return (1-500).")


@tool("query_database", args_schema=QueryDatabaseArgs)
async def query_database(
    table: str, sql: str, params: list[Any] | None = None, max_rows: int = 50
) -> dict[str, Any]:
    """Run one read-only SELECT on one table of the SQL database and return the rows.

    Put values in params with ? placeholders; never write values or quotes into the SQL.
    Returns columns, rows (lists of values), row_count and whether rows were cut off.
    """
    path = await asyncio.to_thread(_database_for_call)
    return await asyncio.to_thread(
        run_query, path, sql, list(params or []), table=table, max_rows=max_rows
    )


def create_demo_database(path: Path, *, customers: int = 20) -> Path:
    """Create (or replace) a small demo database with `customers`, `orders` and `billing`.

    Deterministic content, for tests and `weft demo`; `billing` holds the sensitive card data
    the example policy denies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(
            """
            CREATE TABLE customers (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
                country TEXT NOT NULL, tier TEXT NOT NULL);
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                item TEXT NOT NULL, amount_cents INTEGER NOT NULL, status TEXT NOT NULL);
            CREATE TABLE billing (
                customer_id INTEGER PRIMARY KEY REFERENCES customers(id),
                card_last4 TEXT NOT NULL, iban TEXT NOT NULL, balance_cents INTEGER NOT NULL);
            """
        )
        countries = ["FR", "DE", "US", "JP", "BR"]
        tiers = ["free", "pro", "enterprise"]
        items = ["widget", "gadget", "gizmo", "doohickey"]
        statuses = ["shipped", "pending", "refunded"]
        for i in range(1, customers + 1):
            connection.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                (i, f"Customer {i}", f"customer{i}@example.com", countries[i % 5], tiers[i % 3]),
            )
            connection.execute(
                "INSERT INTO billing VALUES (?, ?, ?, ?)",
                (i, f"{(i * 7919) % 10000:04d}", f"FR76{i:020d}", i * 1250),
            )
            for j in range(i % 4):
                connection.execute(
                    "INSERT INTO orders (customer_id, item, amount_cents, status) "
                    "VALUES (?, ?, ?, ?)",
                    (i, items[(i + j) % 4], 500 + 250 * j + i, statuses[(i + j) % 3]),
                )
        connection.commit()
    finally:
        connection.close()
    return path
