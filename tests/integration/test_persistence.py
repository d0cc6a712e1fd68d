"""One database setting → saver and store: memory, SQLite and a real PostgreSQL.

Threads must survive closing and reopening the database (a new process would see the same),
in the async and the sync API; the store must round-trip items and namespaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphs.react import build_graph
from nodes.persistence import (
    DEFAULT_SQLITE_PATH,
    DatabaseSetting,
    PersistenceConfigurationError,
    durability_for,
    open_checkpointer,
    open_checkpointer_sync,
    open_store,
    open_store_sync,
    parse_database_setting,
)

pytestmark = pytest.mark.anyio

SCRIPT = {
    "rules": [
        {"match": {"user": "first"}, "replies": [{"content": "one"}]},
        {"match": {"user": "second"}, "replies": [{"content": "two"}]},
    ]
}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("memory", DatabaseSetting("memory", ":memory:")),
        (":memory:", DatabaseSetting("memory", ":memory:")),
        (
            "postgresql://u:pw@db:5432/app",
            DatabaseSetting("postgres", "postgresql://u:pw@db:5432/app"),
        ),
        ("postgres://db/app", DatabaseSetting("postgres", "postgres://db/app")),
        ("sqlite:///var/lib/weft.sqlite", DatabaseSetting("sqlite", "var/lib/weft.sqlite")),
        ("runs/threads.sqlite", DatabaseSetting("sqlite", "runs/threads.sqlite")),
    ],
)
def test_parses_each_form_of_the_setting(setting: str, expected: DatabaseSetting) -> None:
    assert parse_database_setting(setting) == expected


def test_none_means_database_url_then_default_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert parse_database_setting(None) == DatabaseSetting("sqlite", str(DEFAULT_SQLITE_PATH))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5/x")
    assert parse_database_setting(None).backend == "postgres"


def test_rejects_unknown_schemes_listing_the_valid_forms() -> None:
    with pytest.raises(PersistenceConfigurationError, match=r"'mysql'.*postgresql://.*memory"):
        parse_database_setting("mysql://db/app")
    with pytest.raises(PersistenceConfigurationError, match="empty"):
        parse_database_setting("  ")


def test_description_hides_the_password() -> None:
    described = parse_database_setting("postgresql://ann:s3cret@db:5432/app").describe()
    assert "s3cret" not in described and "ann@db:5432/app" in described


def test_durability_is_decided_for_every_registered_graph() -> None:
    from graphs import GRAPHS
    from nodes.persistence import DURABILITY

    assert durability_for("react") == "sync"
    assert durability_for("debate") == "async"
    assert durability_for("a_new_graph") == "sync", "undecided graphs get the safe mode"
    undecided = sorted(set(GRAPHS) - set(DURABILITY))
    assert undecided == [], f"choose a durability mode in nodes/persistence.py for {undecided}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return str(tmp_path / "nested" / "threads.sqlite")
    return str(request.getfixturevalue("postgres_db"))


async def test_threads_survive_reopening_async(setting: str, scripted_model: Any) -> None:
    config: dict[str, Any] = {"configurable": {"thread_id": "t1"}}
    async with open_checkpointer(setting) as saver:
        graph = build_graph(model=scripted_model(script=SCRIPT), checkpointer=saver)
        first = await graph.ainvoke(
            {"messages": [HumanMessage("first")]}, config, durability=durability_for("react")
        )
        assert first["final_answer"] == "one"
    async with open_checkpointer(setting) as saver:
        graph = build_graph(model=scripted_model(script=SCRIPT), checkpointer=saver)
        state = await graph.aget_state(config)
        if setting == "memory":
            assert state.values == {}, "memory must not outlive its context"
            return
        assert [m.content for m in state.values["messages"]] == ["first", "one"]
        second = await graph.ainvoke({"messages": [HumanMessage("second")]}, config)
    assert [m.content for m in second["messages"]] == ["first", "one", "second", "two"]
    assert second["usage"]["scripted"]["calls"] == 2


def test_threads_survive_reopening_sync(setting: str, scripted_model: Any) -> None:
    config: dict[str, Any] = {"configurable": {"thread_id": "sync-1"}}
    with open_checkpointer_sync(setting) as saver:
        graph = build_graph(model=scripted_model(script=SCRIPT), checkpointer=saver)
        assert graph.invoke({"messages": [HumanMessage("first")]}, config)["final_answer"] == "one"
    with open_checkpointer_sync(setting) as saver:
        state = build_graph(model=scripted_model(script=SCRIPT), checkpointer=saver).get_state(
            config
        )
    expected = [] if setting == "memory" else ["first", "one"]
    assert [m.content for m in state.values.get("messages", [])] == expected


async def test_memory_setting_gives_an_in_memory_saver() -> None:
    async with open_checkpointer("memory") as saver:
        assert isinstance(saver, InMemorySaver)


async def test_store_round_trips_async(setting: str) -> None:
    async with open_store(setting) as store:
        await store.aput(("users", "ann"), "prefs", {"tone": "brief"})
        await store.aput(("users", "bob"), "prefs", {"tone": "long"})
    async with open_store(setting) as store:
        item = await store.aget(("users", "ann"), "prefs")
        found = await store.asearch(("users",))
        if setting == "memory":
            assert item is None and found == []
            return
        assert item is not None and item.value == {"tone": "brief"}
        assert sorted(i.namespace[-1] for i in found) == ["ann", "bob"]
        await store.adelete(("users", "ann"), "prefs")
        assert await store.aget(("users", "ann"), "prefs") is None


def test_store_round_trips_sync(setting: str) -> None:
    with open_store_sync(setting) as store:
        store.put(("docs",), "d1", {"text": "hello"})
        assert store.get(("docs",), "d1").value == {"text": "hello"}  # type: ignore[union-attr]
        assert [i.key for i in store.search(("docs",))] == ["d1"]
