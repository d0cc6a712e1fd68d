"""run_python: static checks, runtime guards, rlimits, timeouts, output cap, isolation."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException

from tools.python_sandbox import (
    SandboxLimits,
    SandboxViolation,
    check_code,
    execute,
    explain_failure,
    run_python,
)

pytestmark = pytest.mark.anyio

# Limits for runs expected to finish: a generous wall clock keeps busy CI machines from timing out.
FAST = SandboxLimits(cpu_s=2, wall_s=30.0)


async def test_runs_code_with_json_input_and_returns_stdout() -> None:
    code = "import statistics\nprint(statistics.mean(INPUT['values']), INPUT['name'])"
    result = await run_python.ainvoke({"code": code, "input": {"values": [1, 2, 6], "name": "x"}})
    assert result == {"stdout": "3 x\n", "stderr": "", "exit_code": 0}


async def test_ordinary_python_works() -> None:
    code = (
        "from collections import Counter\n"
        "import collections.abc, dataclasses, datetime, json, re\n"
        "@dataclasses.dataclass\n"
        "class Point:\n"
        "    x: int\n"
        "class Base:\n"
        "    def __init__(self):\n"
        "        self.ok = True\n"
        "class Child(Base):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "_, total = None, sum(i for i in range(10))\n"
        "day = datetime.datetime.strptime('2024-02-29', '%Y-%m-%d').strftime('%A')\n"
        "print(json.dumps([Point(1).x, Child().ok, total, Counter('aab')['a'], day,\n"
        "                  isinstance({}, collections.abc.Mapping), re.sub('a', 'b', 'aa')]))"
    )
    result = await run_python.ainvoke({"code": code})
    assert result["stdout"].strip() == '[1, true, 45, 2, "Thursday", true, "bb"]'


@pytest.mark.parametrize(
    ("code", "named"),
    [
        ("import os\nos.system('id')", "'os'"),
        ("import subprocess", "'subprocess'"),
        ("from os import path", "'os'"),
        ("import socket", "'socket'"),
        ("open('/etc/passwd').read()", "'open'"),
        ("__import__('os')", "'__import__'"),
        ("eval('1+1')", "'eval'"),
        ("getattr(int, 'mro')", "'getattr'"),
        ("print(().__class__.__bases__[0].__subclasses__())", "'__class__'"),
        ("import random\nrandom._os.system('id')", "'_os'"),
        ("g = (x for x in [1])\nprint(g.gi_frame.f_back)", "'gi_frame'"),
        ("print(__builtins__)", "'__builtins__'"),
        ("from . import x", "relative"),
    ],
)
async def test_static_check_blocks_escapes(code: str, named: str) -> None:
    with pytest.raises(SandboxViolation) as info:
        check_code(code)
    assert named in str(info.value)
    with pytest.raises(ToolException):
        await run_python.ainvoke({"code": code})


async def test_import_error_lists_the_allowed_modules() -> None:
    with pytest.raises(SandboxViolation, match="Allowed modules: .*math.*statistics"):
        check_code("import os")


async def test_runtime_guard_hides_modules_that_allowed_modules_import() -> None:
    # typing imports sys; the proxy the guard hands out must not expose it.
    run = await execute("import typing, dataclasses\nprint(hasattr(typing, 'sys'))", limits=FAST)
    assert run.stdout.strip() == "False"


async def test_fork_bomb_is_refused_by_the_static_check() -> None:
    with pytest.raises(ToolException, match="'os' is not allowed"):
        await run_python.ainvoke({"code": "import os\nwhile True:\n    os.fork()"})


async def test_process_limit_stops_forks_even_without_the_static_check() -> None:
    run = await execute(
        "import os\nfor _ in range(100):\n    os.fork()", limits=FAST, enforce=False
    )
    assert run.exit_code == 1
    assert "BlockingIOError" in run.stderr
    assert "processes or threads" in (explain_failure(run, FAST) or "")


async def test_infinite_loop_is_killed_by_the_cpu_limit() -> None:
    # A generous wall clock so that only the CPU limit can stop it, even on a busy machine.
    limits = SandboxLimits(cpu_s=1, wall_s=60.0)
    run = await execute("while True:\n    pass", limits=limits)
    problem = explain_failure(run, limits)
    assert run.exit_code is not None and run.exit_code < 0
    assert problem is not None and "CPU time" in problem


async def test_sleeping_program_is_killed_at_the_wall_clock_limit() -> None:
    limits = SandboxLimits(cpu_s=5, wall_s=1.0)
    run = await execute("import time\ntime.sleep(60)", limits=limits)
    assert run.timed_out is True
    assert "longer than 1 s" in (explain_failure(run, limits) or "")


async def test_huge_allocation_fails_with_memory_error() -> None:
    with pytest.raises(ToolException, match="memory limit is 256 MB"):
        await run_python.ainvoke({"code": "data = bytearray(2 * 1024 ** 3)"})


async def test_huge_output_is_cut_and_the_program_stopped() -> None:
    with pytest.raises(ToolException, match="more than 64 KB") as info:
        await run_python.ainvoke({"code": "while True:\n    print('x' * 1000)"})
    assert len(str(info.value)) < 2000


async def test_temp_working_folder_is_deleted_and_env_is_minimal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    code = "import os\nprint(os.getcwd())\nprint(sorted(os.environ))"
    run = await execute(code, limits=FAST, enforce=False)
    cwd, env_names = run.stdout.splitlines()
    assert cwd.startswith("/") and "weft-py-" in cwd
    assert not Path(cwd).exists()
    assert "SECRET_TOKEN" not in env_names and "OPENAI_API_KEY" not in env_names


async def test_runs_unprivileged_when_started_as_root() -> None:
    run = await execute("import os\nprint(os.geteuid())", limits=FAST, enforce=False)
    if os.geteuid() == 0:
        assert run.stdout.strip() == "65534"
    assert run.unprivileged_uid is True


async def test_network_namespace_blocks_loopback_connections() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(2)\n"
        "try:\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('blocked', exc.errno)\n"
    )
    try:
        run = await execute(code, limits=FAST, enforce=False)
    finally:
        server.close()
    if not run.network_isolated:
        pytest.skip("no network namespace on this machine (documented limitation)")
    assert run.stdout.startswith("blocked")


async def test_runtime_error_shows_only_the_users_traceback() -> None:
    with pytest.raises(ToolException) as info:
        await run_python.ainvoke({"code": "x = 1\ny = x / 0"})
    text = str(info.value)
    assert "ZeroDivisionError" in text and 'File "<code>", line 2' in text
    assert "_sandbox_runner" not in text


async def test_agent_run_continues_after_a_blocked_program(scripted_model: Any) -> None:
    from nodes.agent import build_agent

    model = scripted_model(
        AIMessage(
            "",
            tool_calls=[
                {
                    "name": "run_python",
                    "args": {"code": "import os"},
                    "id": "p1",
                    "type": "tool_call",
                }
            ],
        ),
        AIMessage("I cannot use os in the sandbox."),
    )
    agent = build_agent(tools=[run_python], model=model)
    result = await agent.ainvoke({"messages": [HumanMessage("list files")]})
    tool_message = model.calls[1][-1]
    assert isinstance(tool_message, ToolMessage) and tool_message.status == "error"
    assert "'os' is not allowed" in str(tool_message.content)
    assert result["final_answer"] == "I cannot use os in the sandbox."


async def test_concurrent_runs_do_not_trip_each_others_process_limit() -> None:
    # The process limit counts per uid and every run shares the sandbox uid.
    import asyncio

    code = "import time\ntime.sleep(0.3)\nprint(INPUT)"
    runs = await asyncio.gather(*(execute(code, i, limits=FAST) for i in range(4)))
    assert [(r.exit_code, r.stdout.strip()) for r in runs] == [(0, str(i)) for i in range(4)]
