"""A real `langgraph dev` server, started once per session in a temp copy of the repo."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COPIED = ("graphs", "nodes", "tools", "memory", "langgraph.json", "pyproject.toml")
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"langgraph dev exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"langgraph dev did not start in time:\n{log.read_text()[-4000:]}")


def start_dev_server(
    workdir: Path, env: dict[str, str], extra_args: tuple[str, ...] = ()
) -> tuple[str, subprocess.Popen[bytes], Path]:
    """Copy the project into `workdir` and start `langgraph dev` there on a free port."""
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)
    port = free_port()
    log = workdir / "server.log"
    cli = Path(sys.executable).with_name("langgraph")
    process = subprocess.Popen(
        [
            str(cli),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra_args,
        ],
        cwd=workdir,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
    except BaseException:
        stop_dev_server(process)
        raise
    return url, process, log


def stop_dev_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest.fixture(scope="session")
def dev_server(llm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a `langgraph dev` whose graphs call the session's scripted LLM server."""
    env = {
        **os.environ,
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    url, process, _ = start_dev_server(
        tmp_path_factory.mktemp("langgraph-dev"), env, ("--n-jobs-per-worker", "4")
    )
    try:
        yield url
    finally:
        stop_dev_server(process)
