"""Child-side launcher for `run_python` (runs as `python -I -S _sandbox_runner.py LIMITS`).

Self-contained on purpose: it runs in a fresh interpreter that cannot import the project. In
order it reads the JSON envelope `{"code", "input"}` from stdin, imports the allowed modules,
moves into a new network
namespace when the kernel lets it, drops to an unprivileged uid when started as root, applies
rlimits, reports what it achieved as the first stderr line, and runs the code with restricted
builtins and an import guard. The parent (`tools/python_sandbox.py`) has already checked the
code's AST; this is the second, runtime layer.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import sys
import traceback
import types
from typing import Any

_MARKER = "__weft_sandbox__"
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_NOBODY = 65534


def _unshare_network() -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    if os.geteuid() != 0 and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        return True
    return False


def _drop_privileges() -> bool:
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(_NOBODY)
    os.setuid(_NOBODY)
    return True


def _limit(limits: dict[str, Any]) -> None:
    mb = 1024 * 1024
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    # Counted per user: with 1 this process can start no other process or thread.
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _proxy(module: types.ModuleType, allowed: frozenset[str]) -> types.ModuleType:
    # Allowed modules hold references to modules that are not (e.g. typing.sys): expose only
    # public, non-module attributes, plus allowed submodules as proxies of their own.
    proxy = types.ModuleType(module.__name__)
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            if value.__name__ in allowed:
                setattr(proxy, name, _proxy(value, allowed))
            continue
        setattr(proxy, name, value)
    return proxy


def _restricted_builtins(
    allowed: frozenset[str],
    blocked_names: frozenset[str],
    internal: frozenset[str],
    user_globals: dict[str, Any],
) -> dict[str, Any]:
    real_import = builtins.__import__

    def guarded_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        # C code (e.g. datetime.strptime importing _strptime) imports with the caller's globals;
        # those internal names cannot be written in user code (the parent's AST check).
        if globals is not user_globals or name in internal:
            return real_import(name, globals, locals, fromlist, level)
        if level or name not in allowed:
            raise ImportError(f"import of {name!r} is not allowed in the sandbox")
        real_import(name, globals, locals, fromlist, level)
        target = sys.modules[name if fromlist else name.split(".")[0]]
        return _proxy(target, allowed)

    safe = {k: v for k, v in vars(builtins).items() if k not in blocked_names}
    safe["__import__"] = guarded_import
    return safe


def _preload(names: list[str]) -> None:
    # Import while the files are still readable: after dropping to nobody the interpreter's own
    # library folder may not be (e.g. a Python installed under /root).
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def main() -> None:
    limits = json.loads(sys.argv[1])
    envelope = json.loads(sys.stdin.read())
    sys.stdin.close()
    _preload(limits["preload"])
    network = _unshare_network() if limits["isolate_network"] else False
    dropped = _drop_privileges()
    _limit(limits)
    status = {"network_isolated": network, "unprivileged_uid": dropped or os.geteuid() != 0}
    sys.stderr.write(f"{_MARKER}{json.dumps(status)}\n")
    sys.stderr.flush()
    user_globals = {"__name__": "__main__", "INPUT": envelope.get("input")}
    if limits["enforce"]:
        user_globals["__builtins__"] = _restricted_builtins(
            frozenset(limits["allowed_modules"]),
            frozenset(limits["blocked_names"]),
            frozenset(limits["internal_modules"]),
            user_globals,
        )
    try:
        code = compile(envelope["code"], "<code>", "exec")
        exec(code, user_globals)
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException as exc:  # everything the user's code raises is reported, not hidden
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<code>"]
        lines = traceback.format_list(frames) + traceback.format_exception_only(exc)
        sys.stdout.flush()
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(lines))
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
