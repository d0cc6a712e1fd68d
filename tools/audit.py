"""The audit log: one JSON line per policy decision, review and side-effecting execution.

Records live outside graph state and outside the store, in an append-only sink. The default
sink appends to `WEFT_AUDIT_LOG` or `./.weft/audit.jsonl` (the path is looked up on each write,
so tests and operators can redirect it); `set_audit_sink(...)` plugs in anything with a
`write(record)` method (a SIEM forwarder, a database table, `MemoryAuditSink` in tests).

Tools never receive the sink: only the agent loop's gates and executor call `audit(...)`.
Arguments are never written in clear: each value is replaced by a short salted-free SHA-256
digest (`args_digest`), enough to correlate calls without storing what was said.

Record fields: `time` (ISO UTC), `event` (`policy_decision` | `approval_requested` |
`approval_decision` | `tool_executed`), `thread_id`, `run_id`, `agent`, `tool`, `call_id`,
`args` (digests), `decision`, `rule_id`, `reviewer`, plus event-specific extras.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

AUDIT_LOG_ENV = "WEFT_AUDIT_LOG"
DEFAULT_AUDIT_LOG = Path(".weft") / "audit.jsonl"


class AuditSink(Protocol):
    """Anything that stores audit records append-only."""

    def write(self, record: Mapping[str, Any]) -> None:
        """Persist one record; must not drop it silently."""


class FileAuditSink:
    """Appends JSON lines to a file (opened in append mode, flushed per record)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._fixed = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._handles: dict[Path, Any] = {}

    @property
    def path(self) -> Path:
        """Where the next record goes (fixed, or from `WEFT_AUDIT_LOG`, or the default)."""
        if self._fixed is not None:
            return self._fixed
        return Path(os.environ.get(AUDIT_LOG_ENV) or DEFAULT_AUDIT_LOG)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record as a JSON line."""
        line = json.dumps(record, default=str, ensure_ascii=False, sort_keys=True) + "\n"
        path = self.path
        with self._lock:
            handle = self._handles.get(path)
            if handle is None or handle.closed:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = path.open("a", encoding="utf-8")
                self._handles[path] = handle
            handle.write(line)
            handle.flush()

    def is_open(self) -> bool:
        """True when the next write only appends to an already open file (no directory or
        file creation), which is cheap enough to do on an event loop."""
        handle = self._handles.get(self.path)
        return handle is not None and not handle.closed

    def close(self) -> None:
        """Close every open file (a later write reopens in append mode)."""
        with self._lock:
            for handle in self._handles.values():
                handle.close()
            self._handles.clear()


class MemoryAuditSink:
    """Keeps records in a list; for tests and for embedding in another logger."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        """Store a copy of the record."""
        with self._lock:
            self.records.append(dict(record))


_sink: AuditSink = FileAuditSink()


def get_audit_sink() -> AuditSink:
    """The process-wide sink."""
    return _sink


def set_audit_sink(sink: AuditSink) -> AuditSink:
    """Replace the process-wide sink; returns the previous one (to restore it)."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def digest(value: Any) -> str:
    """A short, stable SHA-256 digest of a JSON-able value."""
    canonical = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def redact_args(args: Mapping[str, Any]) -> dict[str, str]:
    """Argument names with digests of their values, never the values themselves."""
    return {name: digest(value) for name, value in sorted(args.items())}


def audit(event: str, **fields: Any) -> None:
    """Write one record to the sink. `args`, when given, is redacted here.

    A failing sink raises: an action that cannot be audited must not look audited.
    """
    record: dict[str, Any] = {"time": datetime.now(UTC).isoformat(), "event": event}
    for key, value in fields.items():
        if key == "args" and isinstance(value, Mapping):
            record["args"] = redact_args(value)
            record["args_digest"] = digest(dict(value))
        else:
            record[key] = value
    _sink.write(record)


__all__ = [
    "AUDIT_LOG_ENV",
    "DEFAULT_AUDIT_LOG",
    "AuditSink",
    "FileAuditSink",
    "MemoryAuditSink",
    "audit",
    "digest",
    "get_audit_sink",
    "redact_args",
    "set_audit_sink",
]
