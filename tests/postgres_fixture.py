"""The `postgres_url` fixture: a real PostgreSQL for checkpoint and store tests.

Uses `DATABASE_URL` when the environment sets it; otherwise starts a throwaway server from
Debian's binaries with `.ci/pg_start.sh` (127.0.0.1, a free port, fsync off) for the whole test
session and stops it at the end. Skips, saying why, only when no PostgreSQL binaries exist
(`.ci/run` installs them; locally: `apt-get install -y postgresql`).

Registered for every test through `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_START = REPO / ".ci" / "pg_start.sh"
_NO_BINARIES = 3


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A connection URL to a PostgreSQL database that lives for the test session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    started = subprocess.run(
        ["bash", str(PG_START)], capture_output=True, text=True, timeout=120, check=False
    )
    if started.returncode == _NO_BINARIES:
        pytest.skip(f"PostgreSQL is not installed: {started.stderr.strip()}")
    if started.returncode != 0:
        raise RuntimeError(
            f"{PG_START} failed with exit code {started.returncode}:\n{started.stderr}"
        )
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    try:
        yield values["DATABASE_URL"]
    finally:
        subprocess.run(
            ["bash", str(PG_START), "--stop", values["PGBASE"]],
            capture_output=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = postgres_url.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
