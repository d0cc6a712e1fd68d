"""Fixtures shared by the approval and policy tests (a plugin of tests/conftest.py).

A module opts in with `pytestmark = pytest.mark.usefixtures("audit_sink", "fresh_rate_limits")`
or asks for `audit_sink` by name to read the records.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.audit import MemoryAuditSink, set_audit_sink
from tools.registry import RATE_LIMITER

OUTBOX_TOOLS = ("send_email", "create_ticket")


@pytest.fixture
def audit_sink() -> Iterator[MemoryAuditSink]:
    """Every audit record of the test, in memory (the process-wide sink is restored after)."""
    sink = MemoryAuditSink()
    previous = set_audit_sink(sink)
    yield sink
    set_audit_sink(previous)


@pytest.fixture
def fresh_rate_limits() -> Iterator[None]:
    """The outbox tools' rate limits (10/h, 30/h) are process-wide; other tests use them up."""
    for name in OUTBOX_TOOLS:
        RATE_LIMITER.reset(name)
    yield
    for name in OUTBOX_TOOLS:
        RATE_LIMITER.reset(name)
