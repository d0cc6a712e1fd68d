"""`weft mock-llm --script FILE --port N` serves scripted answers to a real ChatOpenAI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from langchain_openai import ChatOpenAI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"weft mock-llm did not listen on {port}")


def test_mock_llm_command_serves_the_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"match": {"user": "ping"}, "replies": ["pong"]}]}))
    port = _free_port()
    weft = Path(sys.executable).with_name("weft")
    process = subprocess.Popen(
        [str(weft), "mock-llm", "--script", str(script), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process)
        model = ChatOpenAI(
            model="gpt-4.1-mini", base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0
        )
        assert model.invoke("ping").content == "pong"
    finally:
        process.terminate()
        process.wait(timeout=10)
