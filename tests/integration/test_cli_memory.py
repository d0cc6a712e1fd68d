"""`weft run` with long-term memory: the CLI opens the default store (Qdrant on disk under
./.weft/memory) so a fact from one invocation is recalled by the next, for that user only,
and `weft run memory_maintenance` finds the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphs.cli import main

SCRIPT = {
    "rules": [
        {"match": {"user": "favourite colour is teal"}, "replies": ["Noted: teal."]},
        {"match": {"user": "What is my favourite colour"}, "replies": ["Teal."]},
    ]
}


@pytest.fixture
def cli_env(use_script: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    server = use_script(SCRIPT)
    monkeypatch.chdir(tmp_path)  # the default store lives under ./.weft/memory
    monkeypatch.setenv("WEFT_EMBEDDINGS", "openai:text-embedding-3-small")
    monkeypatch.setenv("WEFT_EMBEDDING_DIMS", "64")  # the scripted server's vector size
    for name in ("QDRANT_URL", "QDRANT_PATH", "WEFT_MEMORY_STORE"):
        monkeypatch.delenv(name, raising=False)
    return server


def run(user: str, text: str, thread: str, *extra: str) -> int:
    return main(
        [
            "run", "react", text, "--thread", thread, "--db", "weft.sqlite",
            "--context", "memory_enabled=true", "--context", f"user_id={user}", *extra,
        ]
    )  # fmt: skip


def system_prompts(server: Any) -> list[str]:
    return [
        next(m["content"] for m in request["messages"] if m["role"] == "system")
        for request in server.requests
        if request.get("messages")
    ]


def test_two_invocations_share_memory_per_user(
    cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("alice@example.com", "My favourite colour is teal.", "t1") == 0
    assert (tmp_path / ".weft" / "memory").is_dir()
    assert run("alice@example.com", "What is my favourite colour?", "t2") == 0
    assert run("bob", "What is my favourite colour?", "t3") == 0

    out = capsys.readouterr()
    assert out.out.splitlines() == ["Noted: teal.", "Teal.", "Teal."]
    assert "memory store unavailable" not in out.err
    prompts = system_prompts(cli_env)
    assert len(prompts) == 3
    assert "<memories>" not in prompts[0]
    # The second process-level run recalls the first run's episode from the on-disk store.
    assert "My favourite colour is teal." in prompts[1]
    assert "favourite colour is teal" not in prompts[2]

    assert main(["run", "memory_maintenance", "", "--db", "weft.sqlite"]) == 0
    assert capsys.readouterr().out.startswith("Memory maintenance done: users=2")


def test_runs_without_memory_open_no_store(cli_env: Any, tmp_path: Path) -> None:
    assert main(["run", "react", "My favourite colour is teal.", "--db", "weft.sqlite"]) == 0
    assert not (tmp_path / ".weft" / "memory").exists()


def test_a_locked_store_degrades_instead_of_failing(
    cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qdrant_client import QdrantClient

    folder = tmp_path / ".weft" / "memory"
    folder.mkdir(parents=True)
    holder = QdrantClient(path=str(folder))  # another process holding the local store
    try:
        assert run("alice", "My favourite colour is teal.", "t1") == 0
    finally:
        holder.close()
    captured = capsys.readouterr()
    assert captured.out.strip() == "Noted: teal."
    assert "memory store unavailable" in captured.err and "without memory" in captured.err


def test_a_bad_store_setting_is_a_usage_error(
    cli_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEFT_MEMORY_STORE", "redis")
    assert run("alice", "hi", "t1") == 2
    assert "WEFT_MEMORY_STORE='redis' is not supported" in capsys.readouterr().err
