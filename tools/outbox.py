"""`send_email` (irreversible) and `create_ticket` (write) against a local SQLite outbox.

Nothing leaves the machine: each call becomes one row in the `outbox` table of
`WEFT_OUTBOX` (default `./.weft/outbox.sqlite`), which tests and demos read back through
`Outbox`. The tools exist to demonstrate and test approvals and exactly-once side effects.

Idempotency contract: the key is `"<thread_id>:<tool_call_id>"`, taken from the hidden
`runtime: ToolRuntime` parameter LangGraph's ToolNode injects (`thread_id` from
`runtime.config["configurable"]["thread_id"]`, or `"no-thread"` without a checkpointer). The
`idempotency_key` column is UNIQUE: a second execution of the same call (a retry, a crash
replay, a resumed run re-running the tool node) inserts nothing, bumps that row's `attempts`
counter and tells the model it was already done. A second call under the same key with other
content is delivered under a derived key (see `Outbox.deliver`), never silently dropped.
Callers invoking the tools outside a graph must pass a `ToolRuntime` themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import ToolException, tool
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from tools.registry import current_idempotency_key
from tools.registry import idempotency_key as build_key

logger = logging.getLogger(__name__)

OUTBOX_ENV = "WEFT_OUTBOX"
DEFAULT_OUTBOX = Path(".weft") / "outbox.sqlite"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
OutboxKind = Literal["email", "ticket"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
)
"""


def outbox_path() -> Path:
    """The outbox database (`WEFT_OUTBOX`, else `./.weft/outbox.sqlite`)."""
    return Path(os.environ.get(OUTBOX_ENV) or DEFAULT_OUTBOX).expanduser()


def idempotency_key(runtime: ToolRuntime[Any, Any] | None) -> str:
    """`"<thread_id>:<tool_call_id>"` for this tool call (see the module docstring).

    Falls back to the key the registry's executor publishes (`current_idempotency_key()`)
    when the runtime carries no tool call id.

    Raises:
        ToolException: when neither source gives a key.
    """
    call_id = getattr(runtime, "tool_call_id", None)
    if not call_id:
        published = current_idempotency_key()
        if published:
            return published
        raise ToolException(
            "Error: this tool must be called through a tool call (no tool_call_id); "
            "it cannot run without an idempotency key."
        )
    config = getattr(runtime, "config", None) or {}
    return build_key((config.get("configurable") or {}).get("thread_id"), call_id)


@dataclass(frozen=True)
class Delivery:
    """The outcome of one outbox write."""

    id: int
    key: str
    duplicate: bool
    """True when this key was already in the outbox (nothing new was sent)."""


class Outbox:
    """The SQLite outbox: append messages once per idempotency key and read them back."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or outbox_path()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10.0)
        connection.execute(_SCHEMA)
        return connection

    def deliver(self, kind: OutboxKind, key: str, payload: dict[str, Any]) -> Delivery:
        """Insert `payload` under `key` unless that call already delivered it.

        A repeat is the same key with the same payload (a retry, a replay, a resumed run):
        nothing is inserted and the row's `attempts` grows. The same key with a *different*
        payload is not a repeat but another call whose model reused a tool call id (some
        models number ids per conversation, so two sub-agents on one thread can both send
        `call_1`): it is delivered under `<key>~<payload digest>` instead of being dropped.
        """
        body = json.dumps(payload, sort_keys=True)
        connection = self._connect()
        try:
            with connection:
                inserted = self._insert(connection, kind, key, payload)
                if not inserted and self._payload(connection, key) != payload:
                    key = f"{key}~{hashlib.sha256(body.encode()).hexdigest()[:12]}"
                    inserted = self._insert(connection, kind, key, payload)
                if not inserted:
                    connection.execute(
                        "UPDATE outbox SET attempts = attempts + 1 WHERE idempotency_key = ?",
                        (key,),
                    )
                row = connection.execute(
                    "SELECT id FROM outbox WHERE idempotency_key = ?", (key,)
                ).fetchone()
        finally:
            connection.close()
        return Delivery(id=int(row[0]), key=key, duplicate=not inserted)

    @staticmethod
    def _insert(
        connection: sqlite3.Connection, kind: str, key: str, payload: dict[str, Any]
    ) -> bool:
        # INSERT ... ON CONFLICT is atomic, so parallel deliveries of one key cannot both win.
        return bool(
            connection.execute(
                "INSERT INTO outbox (kind, idempotency_key, payload, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING",
                (kind, key, json.dumps(payload), datetime.now(UTC).isoformat()),
            ).rowcount
        )

    @staticmethod
    def _payload(connection: sqlite3.Connection, key: str) -> Any:
        row = connection.execute(
            "SELECT payload FROM outbox WHERE idempotency_key = ?", (key,)
        ).fetchone()
        return json.loads(row[0]) if row is not None else None

    def messages(self, kind: OutboxKind | None = None) -> list[dict[str, Any]]:
        """Every outbox row (optionally of one kind), oldest first, payload decoded."""
        if not self.path.exists():
            return []
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT id, kind, idempotency_key, payload, attempts, created_at FROM outbox "
                "WHERE ? IS NULL OR kind = ? ORDER BY id",
                (kind, kind),
            ).fetchall()
        finally:
            connection.close()
        return [
            {
                "id": r[0],
                "kind": r[1],
                "idempotency_key": r[2],
                "payload": json.loads(r[3]),
                "attempts": r[4],
                "created_at": r[5],
            }
            for r in rows
        ]


class SendEmailArgs(BaseModel):
    """Arguments of `send_email`."""

    to: str = Field(
        max_length=254, pattern=EMAIL_PATTERN, description="Recipient address, e.g. a@b.com."
    )
    subject: str = Field(min_length=1, max_length=200, description="Subject line.")
    body: str = Field(min_length=1, max_length=20_000, description="Plain-text message body.")


@tool("send_email", args_schema=SendEmailArgs)
async def send_email(to: str, subject: str, body: str, runtime: ToolRuntime) -> str:
    """Send an email. It cannot be recalled once sent, so send only what the user asked for.

    Returns a confirmation with the message id.
    """
    key = idempotency_key(runtime)
    payload = {"to": to, "subject": subject, "body": body}
    delivery = await asyncio.to_thread(Outbox().deliver, "email", key, payload)
    if delivery.duplicate:
        logger.info("send_email repeated for key %s; not sent again", key)
        return f"Already sent earlier as message {delivery.id}; not sent again."
    logger.info("send_email queued message %d", delivery.id)
    return f"Email sent to {to} (message {delivery.id})."


class CreateTicketArgs(BaseModel):
    """Arguments of `create_ticket`."""

    title: str = Field(min_length=3, max_length=200, description="One-line summary.")
    description: str = Field(
        min_length=1, max_length=10_000, description="What happened and what is needed."
    )
    priority: Literal["low", "normal", "high", "urgent"] = Field(
        default="normal", description="How soon someone must act."
    )
    customer_id: int | None = Field(
        default=None, ge=1, description="The customer this ticket is about, when known."
    )


@tool("create_ticket", args_schema=CreateTicketArgs)
async def create_ticket(
    title: str,
    description: str,
    runtime: ToolRuntime,
    priority: str = "normal",
    customer_id: int | None = None,
) -> str:
    """Open a support ticket for a human team to follow up. Returns the ticket number."""
    key = idempotency_key(runtime)
    payload = {
        "title": title,
        "description": description,
        "priority": priority,
        "customer_id": customer_id,
    }
    delivery = await asyncio.to_thread(Outbox().deliver, "ticket", key, payload)
    if delivery.duplicate:
        return f"Ticket {delivery.id} already exists for this request; no new ticket created."
    return f"Ticket {delivery.id} created ({priority})."
