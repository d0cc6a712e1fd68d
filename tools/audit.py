"""The audit log: one JSON line per policy decision, review and side-effecting execution.

Records live outside graph state and outside the store, in an append-only sink. The default
sink appends to `WEFT_AUDIT_LOG` or `./.weft/audit.jsonl` (the path is looked up on each write,
so tests and operators can redirect it; a new file is created readable by its owner only);
`set_audit_sink(...)` plugs in anything with a `write(record)` method (a SIEM forwarder, a
database table, `MemoryAuditSink` in tests).

Tools never receive the sink: only the agent loop's gates and executor call `audit(...)`.
Arguments are never written in clear: each value is replaced by a keyed digest
(`hmac-sha256:<32 hex>`, HMAC-SHA-256 of the value's canonical JSON), enough to correlate calls
and to check a suspected value, but not to guess one: an unkeyed hash of an email address or a
short id can be reversed by hashing candidates. The key is per installation:

1. `WEFT_AUDIT_KEY` (at least 32 characters; e.g. from a secret manager), else
2. the key file `WEFT_AUDIT_KEY_FILE`, else `audit.key` next to the audit log
   (`./.weft/audit.key` by default), created on first use with 32 random bytes (64 hex
   characters) and mode 0600; an existing file readable by group or others is reported.

Whoever holds the key can test a guess (`digest(value)`), so keep it away from readers of the
log; rotating it makes later digests incomparable with earlier ones.

Record fields: `time` (ISO UTC), `event` (`policy_decision` | `approval_requested` |
`approval_decision` | `tool_executed`), `thread_id`, `run_id`, `agent`, `tool`, `call_id`,
`args` (digests), `args_digest`, `decision`, `rule_id`, `reviewer`, plus event-specific extras.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

AUDIT_LOG_ENV = "WEFT_AUDIT_LOG"
DEFAULT_AUDIT_LOG = Path(".weft") / "audit.jsonl"
AUDIT_KEY_ENV = "WEFT_AUDIT_KEY"
AUDIT_KEY_FILE_ENV = "WEFT_AUDIT_KEY_FILE"
AUDIT_KEY_FILE_NAME = "audit.key"
MIN_KEY_CHARS = 32
DIGEST_PREFIX = "hmac-sha256:"


class AuditKeyError(RuntimeError):
    """The audit key is missing, too short or unreadable (the message says which and where)."""


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
                # Append-only and, when new, readable by its owner only.
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                handle = os.fdopen(fd, "a", encoding="utf-8")
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


def audit_key_path() -> Path:
    """Where the key file is (`WEFT_AUDIT_KEY_FILE`, else `audit.key` next to the audit log)."""
    explicit = os.environ.get(AUDIT_KEY_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get(AUDIT_LOG_ENV) or DEFAULT_AUDIT_LOG).parent / AUDIT_KEY_FILE_NAME


_keys: dict[str, bytes] = {}
_key_lock = threading.Lock()


def audit_key_ready() -> bool:
    """True when `audit_key()` needs no file I/O (env key set, or the file already read)."""
    return bool(os.environ.get(AUDIT_KEY_ENV)) or str(audit_key_path()) in _keys


def audit_key() -> bytes:
    """The installation's digest key (see the module docstring for where it comes from).

    Raises:
        AuditKeyError: the env key or the key file is shorter than 32 characters, or the
            key file cannot be read or created.
    """
    secret = os.environ.get(AUDIT_KEY_ENV)
    if secret:
        if len(secret) < MIN_KEY_CHARS:
            raise AuditKeyError(
                f"{AUDIT_KEY_ENV} must be at least {MIN_KEY_CHARS} characters, got {len(secret)}"
            )
        return secret.encode("utf-8")
    path = audit_key_path()
    cached = _keys.get(str(path))
    if cached is not None:
        return cached
    with _key_lock:
        if str(path) not in _keys:
            _keys[str(path)] = _load_or_create_key(path)
        return _keys[str(path)]


def _load_or_create_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write the new key to a private temp file, then link it into place: the link fails
        # if another process got there first, and nobody ever reads a half-written key.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            os.link(temp, path)
            logger.info("created audit key file %s (mode 0600)", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
        key = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise AuditKeyError(
            f"cannot read or create the audit key file {str(path)!r}: {exc}"
        ) from exc
    if mode & 0o077:
        logger.warning("audit key file %s has mode %o; restrict it with chmod 600", path, mode)
    if len(key) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"audit key file {str(path)!r} holds {len(key)} characters, expected at least "
            f"{MIN_KEY_CHARS} (delete it to have a new key created)"
        )
    return key.encode("utf-8")


def digest(value: Any) -> str:
    """A keyed digest (HMAC-SHA-256 with `audit_key()`, 128 bits) of a JSON-able value."""
    canonical = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    mac = hmac.new(audit_key(), canonical.encode("utf-8"), hashlib.sha256)
    return DIGEST_PREFIX + mac.hexdigest()[:32]


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
    "AUDIT_KEY_ENV",
    "AUDIT_KEY_FILE_ENV",
    "AUDIT_LOG_ENV",
    "DEFAULT_AUDIT_LOG",
    "AuditKeyError",
    "AuditSink",
    "FileAuditSink",
    "MemoryAuditSink",
    "audit",
    "audit_key",
    "audit_key_path",
    "audit_key_ready",
    "digest",
    "get_audit_sink",
    "redact_args",
    "set_audit_sink",
]
