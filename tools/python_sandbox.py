"""`run_python`: run a short Python program in a separate, limited process.

What each run gets (see `SandboxLimits` for the numbers):
- A new process (`python -I -S`, never in-process) in its own session, killed as a process group
  on the wall-clock timeout or when its output passes the cap; a fresh temporary working folder
  deleted afterwards; an environment with only PATH, HOME (the temp folder) and a UTF-8 locale,
  so no secrets are inherited; the `input` argument as JSON on stdin (exposed as `INPUT`).
- Before it runs, an AST check: imports only from `ALLOWED_MODULES`, no `open`/`exec`/`eval`/
  `getattr`-style builtins, no dunder names, no attribute starting with `_`, no frame-walking
  attributes. At run time, the same rules again: restricted builtins, an import guard, and
  module proxies that hide the modules an allowed module imported (e.g. `typing.sys`).
- rlimits: CPU seconds, address space, written file size, open files, and one process (so no
  fork or thread), no core dumps.
- When the kernel allows it, a new network namespace with no interfaces up (no network at all);
  when started as root, the code runs as uid/gid 65534 (nobody), so the process limit is real
  and root-only files are unreadable.

What it does NOT provide, honestly:
- No filesystem isolation: no chroot or mount namespace. If the Python-level checks were
  bypassed, the code could read every world-readable file (e.g. /etc/passwd, the project
  source) with the sandbox uid's permissions.
- The AST check and restricted builtins are not a security boundary on their own: CPython
  offers many introspection paths and this is a deny-list for some of them. The OS-level limits
  (separate process, uid, rlimits, network namespace) are what contain a determined attacker.
- Without network namespaces (an unprivileged user on a kernel that forbids user namespaces)
  there is no network isolation; each result reports `network_isolated`.
- Not a seccomp filter, cgroup, container or VM: system calls are unrestricted, memory is
  capped per process via RLIMIT_AS only, and a non-root caller shares its uid's process count.
  For untrusted multi-tenant code, use a container or microVM service instead.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("_sandbox_runner.py")
MAX_CODE_CHARS = 20_000
MAX_INPUT_CHARS = 100_000
_MARKER = "__weft_sandbox__"
# How long to wait for a killed child's exit and pipes before giving up on them.
_GRACE_S = 5.0
_NOBODY = 65534

ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "math", "cmath", "statistics", "random", "decimal", "fractions", "numbers",
        "json", "re", "string", "textwrap", "unicodedata", "difflib",
        "datetime", "calendar", "collections", "collections.abc", "itertools", "functools",
        "operator", "heapq", "bisect", "array", "copy", "pprint", "enum", "dataclasses",
        "typing", "base64", "binascii", "hashlib", "hmac", "csv", "time",
    }
)  # fmt: skip
BLOCKED_NAMES: frozenset[str] = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars",
        "getattr", "setattr", "delattr", "breakpoint", "input", "help", "exit", "quit",
    }
)  # fmt: skip
# Imported by the child before it drops privileges (lazy imports inside them happen then too).
_PRELOAD = ("_strptime", "encodings.latin_1", "encodings.ascii", "encodings.utf_16")
# Extra modules loaded for `enforce=False` runs, so tests can try the OS-level limits.
_UNENFORCED_PRELOAD = ("socket", "threading", "subprocess", "encodings.idna")
# Dunder attributes ordinary code needs and that lead nowhere (no globals, bases or frames).
SAFE_DUNDER_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "__init__", "__name__", "__doc__", "__len__", "__str__", "__repr__", "__iter__",
        "__next__", "__eq__", "__ne__", "__hash__", "__lt__", "__le__", "__gt__", "__ge__",
        "__contains__", "__getitem__", "__setitem__", "__enter__", "__exit__", "__add__",
        "__post_init__",
    }
)  # fmt: skip
# Non-underscore attributes that reach frames, code objects or another module's globals.
BLOCKED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
        "ag_code", "ag_await", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
        "tb_frame", "tb_next", "format_map", "mro", "func_globals",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one `run_python` run (defaults are the tool's)."""

    cpu_s: int = 10
    wall_s: float = 15.0
    memory_mb: int = 256
    file_mb: int = 1
    open_files: int = 32
    processes: int = 1
    output_bytes: int = 64 * 1024
    isolate_network: bool = True


class SandboxViolation(ToolException):
    """The code uses something the sandbox forbids; the text names it and the allowed set."""


def check_code(code: str) -> None:
    """Statically check `code` against the sandbox rules.

    Raises:
        SandboxViolation: naming the first forbidden import, name or attribute (with its line).
    """
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as exc:
        raise SandboxViolation(f"Error: syntax error on line {exc.lineno}: {exc.msg}.") from None
    problems = [(node, problem) for node in ast.walk(tree) if (problem := _problem(node))]
    if problems:
        # Report the innermost, earliest problem: what the author wrote first.
        node, problem = min(problems, key=lambda item: _position(item[0]))
        raise SandboxViolation(f"Error: line {getattr(node, 'lineno', '?')}: {problem}")


def _position(node: ast.AST) -> tuple[int, int, int, int]:
    return (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", 0) or 0,
        getattr(node, "end_col_offset", 0) or 0,
    )


def _problem(node: ast.AST) -> str | None:
    modules: list[str] = []
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level or not node.module:
            return "relative imports are not allowed."
        modules = [node.module]
    for module in modules:
        if module not in ALLOWED_MODULES:
            return (
                f"import of {module!r} is not allowed. Allowed modules: "
                f"{', '.join(sorted(ALLOWED_MODULES))}."
            )
    if isinstance(node, ast.Name) and (node.id in BLOCKED_NAMES or node.id.startswith("__")):
        return f"{node.id!r} is not available in the sandbox; read input from INPUT, print results."
    if isinstance(node, ast.Attribute) and (
        (node.attr.startswith("_") and node.attr not in SAFE_DUNDER_ATTRIBUTES)
        or node.attr in BLOCKED_ATTRIBUTES
    ):
        return f"attribute {node.attr!r} is not allowed (no private or introspection attributes)."
    return None


@dataclass(frozen=True)
class SandboxRun:
    """What one run produced."""

    exit_code: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    timed_out: bool
    output_exceeded: bool
    duration_ms: float
    network_isolated: bool
    unprivileged_uid: bool


async def _read_capped(stream: asyncio.StreamReader, cap: int, exceeded: asyncio.Event) -> bytes:
    data = bytearray()
    # Keep draining past the cap: asyncio only reports the process finished once its pipes
    # reach EOF, and a reader that stops lets the pipe back up (flow control) forever.
    while chunk := await stream.read(65536):
        room = cap - len(data)
        if room > 0:
            data += chunk[:room]
        if len(chunk) > room:
            exceeded.set()
    return bytes(data)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _make_workdir() -> str:
    workdir = tempfile.mkdtemp(prefix="weft-py-")
    if os.geteuid() == 0:
        # The child drops to nobody; it needs its own working folder to be writable.
        os.chown(workdir, _NOBODY, _NOBODY)
    return workdir


def _minimal_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


async def execute(
    code: str,
    input_data: Any = None,
    *,
    limits: SandboxLimits | None = None,
    enforce: bool = True,
) -> SandboxRun:
    """Run `code` in a limited child process and collect its output.

    `enforce=False` skips the AST check and the runtime guards but keeps every OS-level limit;
    tests use it to prove the rlimits and the network namespace hold on their own.

    Raises:
        SandboxViolation: when `enforce` is on and the code breaks the static rules.
    """
    limits = limits or SandboxLimits()
    if enforce:
        check_code(code)
    settings = {
        **asdict(limits),
        "enforce": enforce,
        "allowed_modules": sorted(ALLOWED_MODULES),
        "blocked_names": sorted(BLOCKED_NAMES),
        "internal_modules": list(_PRELOAD),
        "preload": [
            *sorted(ALLOWED_MODULES),
            *_PRELOAD,
            *(() if enforce else _UNENFORCED_PRELOAD),
        ],
    }
    envelope = json.dumps({"code": code, "input": input_data}).encode("utf-8")
    workdir = await asyncio.to_thread(_make_workdir)
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(RUNNER), json.dumps(settings),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=_minimal_env(workdir),
            start_new_session=True,
        )  # fmt: skip
        return await _supervise(process, envelope, limits, started)
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


async def _supervise(
    process: asyncio.subprocess.Process, envelope: bytes, limits: SandboxLimits, started: float
) -> SandboxRun:
    assert process.stdin and process.stdout and process.stderr
    exceeded = asyncio.Event()
    process.stdin.write(envelope)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        await process.stdin.drain()
        process.stdin.close()
    out_task = asyncio.create_task(_read_capped(process.stdout, limits.output_bytes, exceeded))
    err_task = asyncio.create_task(_read_capped(process.stderr, limits.output_bytes, exceeded))
    exceeded_task = asyncio.create_task(exceeded.wait())
    wait_task = asyncio.create_task(process.wait())
    done, _ = await asyncio.wait(
        {wait_task, exceeded_task}, timeout=limits.wall_s, return_when=asyncio.FIRST_COMPLETED
    )
    timed_out = not done
    if timed_out or exceeded.is_set():
        _kill_group(process)
    await asyncio.wait({wait_task}, timeout=_GRACE_S)
    # Grandchildren (if any escaped the process limit) may hold the pipes open.
    _kill_group(process)
    exceeded_task.cancel()
    finished, stuck = await asyncio.wait({out_task, err_task, wait_task}, timeout=_GRACE_S)
    for task in stuck:
        logger.warning("sandbox pipes still open %.0f s after the kill; giving up", _GRACE_S)
        task.cancel()
    exit_code = process.returncode
    stdout = out_task.result() if out_task in finished else b""
    stderr = err_task.result() if err_task in finished else b""
    status_line, _, rest = stderr.decode("utf-8", "replace").partition("\n")
    status: dict[str, Any] = {}
    if status_line.startswith(_MARKER):
        status = json.loads(status_line[len(_MARKER) :])
    else:
        rest = stderr.decode("utf-8", "replace")
    return SandboxRun(
        exit_code=None if timed_out else exit_code,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=rest,
        stdout_truncated=exceeded.is_set(),
        timed_out=timed_out,
        output_exceeded=exceeded.is_set(),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        network_isolated=bool(status.get("network_isolated")),
        unprivileged_uid=bool(status.get("unprivileged_uid")),
    )


def explain_failure(run: SandboxRun, limits: SandboxLimits) -> str | None:
    """The error text for the model when a run failed, or None when it succeeded."""
    tail = run.stderr.strip()[-2000:]
    if run.timed_out:
        return (
            f"Error: the program ran longer than {limits.wall_s:g} s and was stopped. Make it "
            "faster or do less work (no infinite loops or sleeps)."
        )
    if run.output_exceeded:
        head = run.stdout[:1000]
        return (
            f"Error: the program printed more than {limits.output_bytes // 1024} KB and was "
            f"stopped. Print a summary instead. Output began with:\n{head}"
        )
    if run.exit_code == -signal.SIGXCPU or run.exit_code == -signal.SIGKILL:
        return (
            f"Error: the program used more than {limits.cpu_s} s of CPU time and was stopped. "
            "Use a faster algorithm or smaller input."
        )
    if run.exit_code != 0:
        hint = ""
        if "MemoryError" in tail:
            hint = f" The memory limit is {limits.memory_mb} MB: use less memory."
        elif "BlockingIOError" in tail or "can't start new thread" in tail:
            hint = " Starting processes or threads is not allowed."
        return f"Error: the program failed (exit code {run.exit_code}).{hint}\n{tail}"
    return None


class RunPythonArgs(BaseModel):
    """Arguments of `run_python`."""

    code: str = Field(
        min_length=1,
        max_length=MAX_CODE_CHARS,
        description="A complete Python 3.11 program. Print the results you need. Only "
        "standard modules such as math, statistics, json, re, datetime, collections, "
        "itertools and decimal can be imported; no files, network or subprocesses.",
    )
    input: Any = Field(
        default=None,
        description="Optional JSON value passed to the program, readable there as INPUT.",
    )


@tool("run_python", args_schema=RunPythonArgs)
async def run_python(code: str, input: Any = None) -> dict[str, Any]:
    """Run a short Python program in an isolated sandbox and return what it printed.

    Use it for calculations, data transformation and checks that are easier in code. Limits:
    10 s CPU, 256 MB memory, 64 KB of output; no files, network or subprocesses.
    """
    if len(json.dumps(input, default=str)) > MAX_INPUT_CHARS:
        raise ToolException(
            f"Error: input is larger than {MAX_INPUT_CHARS} characters; pass less data."
        )
    limits = SandboxLimits()
    run = await execute(code, input, limits=limits)
    logger.debug(
        "run_python exit=%s in %.0f ms (network isolated: %s)",
        run.exit_code,
        run.duration_ms,
        run.network_isolated,
    )
    if (problem := explain_failure(run, limits)) is not None:
        raise ToolException(problem)
    return {"stdout": run.stdout, "stderr": run.stderr[-4000:], "exit_code": run.exit_code}
