"""`weft run --db` (SQLite path, Postgres URL, DATABASE_URL), `weft inspect`, `weft graph`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import graphs.cli as cli
from graphs.cli import main
from graphs.react import build_graph

SCRIPT = {
    "rules": [
        {
            "match": {"user": "times"},
            "replies": [
                {"tool_calls": [{"name": "calculate", "args": {"expression": "6 * 7"}}]},
                {"content": "It is {{tool:calculate}}."},
            ],
        }
    ]
}
PNG_BYTES = b"\x89PNG\r\n\x1a\nfake-image"


def _run_then_inspect(
    capsys: pytest.CaptureFixture[str], db_args: list[str], thread: str
) -> dict[str, Any]:
    assert main(["run", "react", "What is 6 times 7?", "--thread", thread, *db_args]) == 0
    capsys.readouterr()
    assert main(["inspect", thread, *db_args, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _check_report(report: dict[str, Any], thread: str) -> None:
    assert report["thread_id"] == thread and report["graph_id"] == "react"
    assert "42" in report["final_answer"]
    steps = [row["step"] for row in report["history"]]
    assert steps == sorted(steps) and steps[0] == -1, "oldest first, from the input checkpoint"
    assert report["history"][-1]["next"] == [] and report["next"] == []
    assert [m["type"] for m in report["messages"]] == ["human", "ai", "tool", "ai"]
    assert report["messages"][1]["tool_calls"] == ["calculate"]
    metrics = report["metrics"]
    assert metrics["success"] is True and metrics["iterations"] == 2
    assert metrics["model_calls"] == 2 and metrics["total_tokens"] > 0
    assert metrics["tool_calls"] == {"calculate": {"calls": 1, "errors": 0}}


def test_run_and_inspect_on_sqlite(
    use_script: Callable[[Any], Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    use_script(SCRIPT)
    used: list[str] = []
    real = cli.durability_for
    monkeypatch.setattr(
        cli, "durability_for", lambda graph_id: used.append(graph_id) or real(graph_id)
    )

    db = tmp_path / "state" / "threads.sqlite"
    report = _run_then_inspect(capsys, ["--db", str(db)], "cli-sqlite")
    _check_report(report, "cli-sqlite")
    assert report["database"] == f"sqlite:{db}"
    assert used == ["react"], "weft run passes the graph's durability mode"

    assert main(["inspect", "cli-sqlite", "--db", str(db)]) == 0
    human = capsys.readouterr().out
    for expected in (
        "thread cli-sqlite",
        "history",
        "metrics",
        "tool calculate: 1 calls, 0 errors",
    ):
        assert expected in human


@pytest.mark.postgres
def test_run_and_inspect_on_postgres_from_database_url(
    use_script: Callable[[Any], Any],
    capsys: pytest.CaptureFixture[str],
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_script(SCRIPT)
    monkeypatch.setenv("DATABASE_URL", postgres_db)
    report = _run_then_inspect(capsys, [], "cli-pg")
    _check_report(report, "cli-pg")
    assert report["database"].startswith("postgres:postgresql://postgres@127.0.0.1:")


@pytest.mark.postgres
def test_run_accepts_a_postgres_url_in_db(
    use_script: Callable[[Any], Any],
    capsys: pytest.CaptureFixture[str],
    postgres_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    use_script(SCRIPT)
    _check_report(_run_then_inspect(capsys, ["--db", postgres_db], "cli-pg-arg"), "cli-pg-arg")


def test_inspect_unknown_thread_and_unreachable_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["inspect", "nope", "--db", str(tmp_path / "x.sqlite")]) == 2
    assert "no checkpoints for thread 'nope'" in capsys.readouterr().err
    unreachable = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"
    assert main(["inspect", "nope", "--db", unreachable]) == 2
    assert "cannot connect to the database" in capsys.readouterr().err.replace("\n", " ")


def test_graph_writes_mermaid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expected = build_graph().get_graph().draw_mermaid()
    assert main(["graph", "react"]) == 0
    assert capsys.readouterr().out.strip() == expected.strip()
    target = tmp_path / "react.mmd"
    assert main(["graph", "react", "--mermaid", str(target)]) == 0
    assert target.read_text() == expected


def test_graph_png_offline_refuses_with_a_way_forward(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["graph", "react", "--png", str(tmp_path / "react.png")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "https://mermaid.ink" in err and "--mermaid" in err and "--renderer-url" in err
    assert not (tmp_path / "react.png").exists()


@pytest.fixture
def renderer() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for a self-hosted mermaid.ink answering every /img/ request with a PNG."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG_BYTES)))
            self.end_headers()
            self.wfile.write(PNG_BYTES)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


def test_graph_png_through_a_self_hosted_renderer(
    renderer: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, paths = renderer
    target = tmp_path / "react.png"
    assert main(["graph", "react", "--png", str(target), "--renderer-url", url]) == 0
    assert target.read_bytes() == PNG_BYTES
    assert len(paths) == 1 and paths[0].startswith("/img/")
