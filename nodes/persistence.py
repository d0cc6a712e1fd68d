"""Where threads and long-term memory live, picked by one setting.

`open_checkpointer(setting)` / `open_store(setting)` (async context managers) and their sync
twins `open_checkpointer_sync` / `open_store_sync` turn a single database setting into a
LangGraph saver or store:

=====================================  ============================================
setting                                backend
=====================================  ============================================
``"postgresql://user@host:5432/db"``   PostgreSQL (`AsyncPostgresSaver` / `PostgresStore`);
``"postgres://..."``                   needs the ``weftgraph[postgres]`` extra
``"memory"`` or ``":memory:"``         in-process (`InMemorySaver` / `InMemoryStore`), lost on exit
``"sqlite:///path/x.sqlite"`` or a     SQLite file (`AsyncSqliteSaver` / `SqliteStore`);
plain path                             parent folders are created
``None``                               ``DATABASE_URL`` from the environment when set, otherwise
                                       the SQLite file `DEFAULT_SQLITE_PATH`
=====================================  ============================================

Tables are created on open (`setup()`), so a fresh database just works. Graphs served by
`langgraph dev` or the LangGraph server never use this module: the platform brings its own
persistence, which is why exported `graph` objects are compiled without a saver.

Durability (how eagerly checkpoints are written) is chosen per graph in `DURABILITY`: ``"sync"``
for graphs whose tools may have side effects (a step's checkpoint is on disk before the next
step starts, so a crash never loses a finished side effect's record), ``"async"`` for graphs
that only call models (faster; a crash may repeat the last step's model calls).
Pass it as ``graph.ainvoke(..., durability=durability_for("react"))``; `weft run` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

logger = logging.getLogger(__name__)

Backend = Literal["memory", "sqlite", "postgres"]
Durability = Literal["sync", "async", "exit"]

DATABASE_URL_ENV = "DATABASE_URL"
DEFAULT_SQLITE_PATH = Path(".weft") / "checkpoints.sqlite"
MEMORY_SETTINGS = frozenset({"memory", ":memory:"})
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite:///"

DURABILITY: dict[str, Durability] = {
    # Tools (directly or in an agent-loop worker) may have side effects: files, HTTP, messages.
    # "sync" saves each step before the next starts, so a crash never forgets a finished effect.
    "react": "sync",
    "supervisor": "sync",
    "team": "sync",
    "plan_execute": "sync",
    "pipeline": "sync",
    "router": "sync",
    "reflexion": "sync",
    # Deletes and rewrites long-term memories.
    "memory_maintenance": "sync",
    # Model calls only: losing the last step to a crash costs a repeated model call, nothing more.
    "debate": "async",
    "tot": "async",
    "refine": "async",
}
"""Durability mode per graph id. Unlisted graphs get ``"sync"``: the safe choice until someone
decides the graph has no side effects."""


class PersistenceConfigurationError(ValueError):
    """The database setting cannot be used: unknown scheme or a missing optional driver."""


class DatabaseUnavailableError(PersistenceConfigurationError):
    """The setting names a database that cannot be reached (wrong host/port, server down)."""


@dataclass(frozen=True)
class DatabaseSetting:
    """A parsed database setting.

    Attributes:
        backend: Which saver/store family to build.
        target: The Postgres URL, the SQLite file path, or ``":memory:"``.
    """

    backend: Backend
    target: str

    def describe(self) -> str:
        """A loggable description that never shows a password."""
        if self.backend != "postgres":
            return f"{self.backend}:{self.target}"
        scheme, _, rest = self.target.partition("://")
        credentials, at, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"postgres:{scheme}://{user}{at}{host}" if at else f"postgres:{self.target}"


def parse_database_setting(setting: str | os.PathLike[str] | None = None) -> DatabaseSetting:
    """Interpret one database setting (see the module docstring for the accepted forms).

    Raises:
        PersistenceConfigurationError: For a URL with a scheme other than postgres/sqlite.
    """
    if setting is None:
        setting = os.environ.get(DATABASE_URL_ENV) or str(DEFAULT_SQLITE_PATH)
    text = os.fspath(setting).strip()
    if not text:
        raise PersistenceConfigurationError(
            "empty database setting; expected a postgresql:// URL, a SQLite path or 'memory'"
        )
    if text.lower() in MEMORY_SETTINGS:
        return DatabaseSetting("memory", ":memory:")
    if text.lower().startswith(_POSTGRES_SCHEMES):
        return DatabaseSetting("postgres", text)
    if text.lower().startswith(_SQLITE_SCHEME):
        return DatabaseSetting("sqlite", text[len(_SQLITE_SCHEME) :])
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isidentifier():
        raise PersistenceConfigurationError(
            f"unsupported database URL scheme {scheme!r} in setting; expected "
            "'postgresql://...', 'postgres://...', 'sqlite:///path', a file path or 'memory'"
        )
    return DatabaseSetting("sqlite", text)


def durability_for(graph_id: str) -> Durability:
    """The durability mode to run `graph_id` with (``"sync"`` unless DURABILITY says otherwise)."""
    return DURABILITY.get(graph_id, "sync")


def _sqlite_path(target: str) -> str:
    Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return str(Path(target).expanduser())


@asynccontextmanager
async def _reachable(db: DatabaseSetting) -> AsyncIterator[None]:
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to the database {db.describe()!r}: {str(exc).strip()}"
        ) from exc


@contextmanager
def _reachable_sync(db: DatabaseSetting) -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to the database {db.describe()!r}: {str(exc).strip()}"
        ) from exc


def _require_postgres() -> None:
    try:
        import psycopg  # noqa: F401
        from langgraph.checkpoint.postgres import PostgresSaver  # noqa: F401
    except ImportError as exc:
        raise PersistenceConfigurationError(
            "a postgresql:// database needs the optional Postgres driver: "
            "pip install 'weftgraph[postgres]'"
        ) from exc


@asynccontextmanager
async def open_checkpointer(
    setting: str | os.PathLike[str] | None = None,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the async checkpointer for `setting`, creating its tables; close it on exit.

    Example:
        async with open_checkpointer("postgresql://postgres@127.0.0.1/app") as saver:
            graph = build_graph(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "t1"}})
    """
    db = parse_database_setting(setting)
    logger.debug("opening async checkpointer %s", db.describe())
    if db.backend == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif db.backend == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(_sqlite_path(db.target)) as saver:
            await saver.setup()
            yield saver
    else:
        _require_postgres()
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        # from_conn_string opens the connection with autocommit=True, prepare_threshold=0 and
        # dict rows: setup() runs CREATE INDEX CONCURRENTLY, which fails inside a transaction.
        async with _reachable(db), AsyncPostgresSaver.from_conn_string(db.target) as pg_saver:
            await pg_saver.setup()
            yield pg_saver


@contextmanager
def open_checkpointer_sync(
    setting: str | os.PathLike[str] | None = None,
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Sync twin of `open_checkpointer`, for `graph.invoke(...)` outside an event loop."""
    db = parse_database_setting(setting)
    logger.debug("opening checkpointer %s", db.describe())
    if db.backend == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
    elif db.backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        # from_conn_string uses check_same_thread=False: sync invoke writes from a worker thread.
        with SqliteSaver.from_conn_string(_sqlite_path(db.target)) as saver:
            saver.setup()
            yield saver
    else:
        _require_postgres()
        from langgraph.checkpoint.postgres import PostgresSaver

        with _reachable_sync(db), PostgresSaver.from_conn_string(db.target) as pg_saver:
            pg_saver.setup()
            yield pg_saver


@asynccontextmanager
async def open_store(setting: str | os.PathLike[str] | None = None) -> AsyncIterator[BaseStore]:
    """Open the async long-term store matching `open_checkpointer(setting)` (no vector index)."""
    db = parse_database_setting(setting)
    logger.debug("opening async store %s", db.describe())
    if db.backend == "memory":
        from langgraph.store.memory import InMemoryStore

        yield InMemoryStore()
    elif db.backend == "sqlite":
        from langgraph.store.sqlite.aio import AsyncSqliteStore

        async with AsyncSqliteStore.from_conn_string(_sqlite_path(db.target)) as store:
            await store.setup()
            yield store
    else:
        _require_postgres()
        from langgraph.store.postgres.aio import AsyncPostgresStore

        async with _reachable(db), AsyncPostgresStore.from_conn_string(db.target) as pg_store:
            await pg_store.setup()
            yield pg_store


@contextmanager
def open_store_sync(setting: str | os.PathLike[str] | None = None) -> Iterator[BaseStore]:
    """Sync twin of `open_store`."""
    db = parse_database_setting(setting)
    logger.debug("opening store %s", db.describe())
    if db.backend == "memory":
        from langgraph.store.memory import InMemoryStore

        yield InMemoryStore()
    elif db.backend == "sqlite":
        from langgraph.store.sqlite import SqliteStore

        with SqliteStore.from_conn_string(_sqlite_path(db.target)) as store:
            store.setup()
            yield store
    else:
        _require_postgres()
        from langgraph.store.postgres import PostgresStore

        with _reachable_sync(db), PostgresStore.from_conn_string(db.target) as pg_store:
            pg_store.setup()
            yield pg_store


__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_SQLITE_PATH",
    "DURABILITY",
    "Backend",
    "DatabaseSetting",
    "DatabaseUnavailableError",
    "Durability",
    "PersistenceConfigurationError",
    "durability_for",
    "open_checkpointer",
    "open_checkpointer_sync",
    "open_store",
    "open_store_sync",
    "parse_database_setting",
]
