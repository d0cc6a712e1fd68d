"""Crash-resume: `kill -9` a run mid-node, restart, resume with `None`, compare with no crash.

The run happens in a subprocess (crash_worker.py) against SQLite and against a real PostgreSQL.
While the side-effecting step is in progress the parent sends SIGKILL; a fresh process then
resumes the same thread. Checked: finished nodes are not re-run (including a parallel sibling
that finished in the crashed step), the interrupted node runs again exactly once, the side
effect keyed by thread id + tool call id happened once, and the final state equals the state of
an uncrashed run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nodes.persistence import open_checkpointer_sync

WORKER = Path(__file__).with_name("crash_worker.py")
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def _worker(graph: str, db: str, thread: str, workdir: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), graph, db, thread, str(workdir), mode],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{out}\n{err}"


def _saved_writes(db: str, thread: str) -> set[str]:
    """Channels with writes saved for the thread's next step (finished tasks of that step)."""
    with open_checkpointer_sync(db) as saver:
        saved = saver.get_tuple({"configurable": {"thread_id": thread}})
    return {channel for _, channel, _ in (saved.pending_writes or [])} if saved else set()


def _kill_when_blocked(
    proc: subprocess.Popen[str], workdir: Path, ready: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ((workdir / "blocked").exists() and ready()):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"worker exited ({proc.returncode}) before blocking:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("worker never reached the blocking step")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _crash_and_resume(graph: str, db: str, tmp_path: Path) -> dict[str, Any]:
    """Run `graph` crashed-then-resumed and uncrashed; return what each left behind."""
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    crashed.mkdir()
    clean.mkdir()

    (crashed / "block").touch()

    # Writes of finished tasks are saved in the background; in the steps graph, wait until the
    # parallel sibling's are on disk so "finished" is unambiguous when the kill lands.
    def ready() -> bool:
        return graph != "steps" or "sibling" in _saved_writes(db, "t-crash")

    _kill_when_blocked(_worker(graph, db, "t-crash", crashed, "run"), crashed, ready)
    executions_at_crash = _lines(crashed / "executions.log")
    (crashed / "block").unlink()
    _finish(_worker(graph, db, "t-crash", crashed, "resume"))

    _finish(_worker(graph, db, "t-clean", clean, "run"))
    return {
        "at_crash": executions_at_crash,
        "executions": Counter(_lines(crashed / "executions.log")),
        "clean_executions": Counter(_lines(clean / "executions.log")),
        "effects": _lines(crashed / "effects.log"),
        "next": json.loads((crashed / "next-before-resume.json").read_text()),
        "final": json.loads((crashed / "final-resume.json").read_text()),
        "clean_final": json.loads((clean / "final-run.json").read_text()),
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "checkpoints.sqlite")
    return str(request.getfixturevalue("postgres_db"))


def test_steps_graph_resumes_after_kill_9(database: str, tmp_path: Path) -> None:
    seen = _crash_and_resume("steps", database, tmp_path)

    # The crash happened inside `act`, after its side effect and after `sibling` finished.
    assert seen["at_crash"].count("act") == 1 and "finish" not in seen["at_crash"]
    assert seen["next"] == ["act"], "only the interrupted node is pending after the crash"
    assert seen["executions"] == Counter(prepare=1, sibling=1, act=2, finish=1)
    assert seen["clean_executions"] == Counter(prepare=1, sibling=1, act=1, finish=1)
    assert [line.split("\t")[0] for line in seen["effects"]] == ["t-crash:act-1"]
    assert seen["final"] == seen["clean_final"]
    assert seen["final"]["result"] == "sent report + done"
    assert sorted(seen["final"]["log"]) == ["act", "finish", "prepare", "sibling"]


def test_react_graph_resumes_after_kill_9_in_a_side_effecting_tool(
    database: str, tmp_path: Path
) -> None:
    seen = _crash_and_resume("react", database, tmp_path)

    assert seen["at_crash"] == ["model", "tool:send_email"]
    assert seen["next"] == ["tools"]
    # The first model call is not repeated; the tool runs again once, the effect does not.
    assert seen["executions"] == Counter({"model": 2, "tool:send_email": 2})
    assert seen["clean_executions"] == Counter({"model": 2, "tool:send_email": 1})
    assert len(seen["effects"]) == 1
    assert seen["effects"][0].startswith("t-crash:call_1\t")
    assert seen["final"] == seen["clean_final"]
    assert seen["final"]["success"] is True
    assert seen["final"]["final_answer"] == "Done: sent to ann@example.com."
