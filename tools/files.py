"""`read_file`, `write_file`, `list_directory`: file access confined to one sandbox root.

The root is `WEFT_SANDBOX_ROOT` or `./.weft/sandbox` (created on first use), read when a tool
runs. Every path the model gives is taken relative to the root, resolved with
`Path.resolve()` (which follows symlinks and collapses `..`) and accepted only if the result
`is_relative_to` the resolved root; absolute paths are refused outright. Writes open the final
component with `O_NOFOLLOW`, so a symlink planted between the check and the write is not
followed. Not covered: hard links created inside the root by something else (they are ordinary
files to us), and a directory component swapped for a symlink in the instant between check and
open. The tools never create links themselves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

SANDBOX_ENV = "WEFT_SANDBOX_ROOT"
DEFAULT_SANDBOX = Path(".weft") / "sandbox"
MAX_READ_BYTES = 200_000
MAX_WRITE_BYTES = 1_000_000
MAX_LIST_ENTRIES = 200
MAX_PATH_CHARS = 512


class SandboxPathError(ToolException):
    """The path is absolute, malformed or resolves outside the sandbox root."""


def sandbox_root() -> Path:
    """The resolved sandbox root (from `WEFT_SANDBOX_ROOT`), created if missing."""
    root = Path(os.environ.get(SANDBOX_ENV) or DEFAULT_SANDBOX).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def resolve_in_sandbox(path: str, root: Path) -> Path:
    """Resolve `path` (relative to `root`) and prove it stays inside `root`.

    Raises:
        SandboxPathError: for absolute paths, NUL bytes, or anything resolving outside the root
            (`..` segments, symlinks pointing out).
    """
    if "\x00" in path:
        raise SandboxPathError("Error: the path contains a NUL byte; use a plain relative path.")
    candidate = Path(path)
    if candidate.is_absolute() or candidate.drive:
        raise SandboxPathError(
            f"Error: absolute path {path!r} is not allowed; use a path relative to the sandbox "
            "root, e.g. 'notes/todo.txt'."
        )
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise SandboxPathError(
            f"Error: path {path!r} leaves the sandbox; use a path inside it without '..' "
            "segments or links pointing outside."
        )
    return resolved


def _relative(resolved: Path, root: Path) -> str:
    return resolved.relative_to(root).as_posix() or "."


class ReadFileArgs(BaseModel):
    """Arguments of `read_file`."""

    path: str = Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="File path relative to the sandbox root, e.g. 'reports/summary.txt'.",
    )


def _read(path: str) -> dict[str, Any]:
    root = sandbox_root()
    target = resolve_in_sandbox(path, root)
    if not target.is_file():
        raise ToolException(
            f"Error: no file at {path!r}; call list_directory to see which files exist."
        )
    size = target.stat().st_size
    with target.open("rb") as handle:
        data = handle.read(MAX_READ_BYTES)
    return {
        "path": _relative(target, root),
        "size_bytes": size,
        "truncated": size > MAX_READ_BYTES,
        "content": _decode(data, truncated=size > MAX_READ_BYTES),
    }


def _decode(data: bytes, *, truncated: bool) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if not truncated:
            raise
    # The cap may cut a multi-byte character in two; that alone does not make a file binary.
    for cut in (1, 2, 3):
        try:
            return data[:-cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("utf-8", data, 0, len(data), "not UTF-8 text")


@tool("read_file", args_schema=ReadFileArgs)
async def read_file(path: str) -> dict[str, Any]:
    """Read a UTF-8 text file from the sandbox folder.

    Returns the content (the first 200 KB of larger files, with truncated=true) and its size.
    """
    try:
        return await asyncio.to_thread(_read, path)
    except UnicodeDecodeError:
        raise ToolException(f"Error: {path!r} is not a UTF-8 text file.") from None


class WriteFileArgs(BaseModel):
    """Arguments of `write_file`."""

    path: str = Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="File path relative to the sandbox root; missing folders are created.",
    )
    content: str = Field(
        max_length=MAX_WRITE_BYTES, description="Text to write (UTF-8, at most 1 MB)."
    )
    append: bool = Field(
        default=False,
        description="Add to the end of an existing file instead of replacing it.",
    )


def _write(path: str, content: str, append: bool) -> dict[str, Any]:
    root = sandbox_root()
    target = resolve_in_sandbox(path, root)
    if target == root or target.is_dir():
        raise ToolException(f"Error: {path!r} is a folder; give a file path such as 'a.txt'.")
    data = content.encode("utf-8")
    existing = target.stat().st_size if append and target.exists() else 0
    if existing + len(data) > MAX_WRITE_BYTES:
        raise ToolException(
            f"Error: the file would be {existing + len(data)} bytes; the limit is "
            f"{MAX_WRITE_BYTES}. Write less or use another file."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise ToolException(f"Error: cannot write {path!r}: {exc.strerror}.") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return {"path": _relative(target, root), "bytes_written": len(data), "appended": append}


@tool("write_file", args_schema=WriteFileArgs)
async def write_file(path: str, content: str, append: bool = False) -> dict[str, Any]:
    """Write a UTF-8 text file in the sandbox folder, replacing it unless append is true.

    Returns the path written and the number of bytes.
    """
    return await asyncio.to_thread(_write, path, content, append)


class ListDirectoryArgs(BaseModel):
    """Arguments of `list_directory`."""

    path: str = Field(
        default=".",
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="Folder relative to the sandbox root; '.' is the root itself.",
    )


def _list(path: str) -> dict[str, Any]:
    root = sandbox_root()
    target = resolve_in_sandbox(path, root)
    if not target.is_dir():
        raise ToolException(f"Error: no folder at {path!r}; use '.' for the sandbox root.")
    entries: list[dict[str, Any]] = []
    children = sorted(target.iterdir(), key=lambda p: p.name)
    for child in children[:MAX_LIST_ENTRIES]:
        # A link pointing outside is listed as a link but never described or followed.
        if child.is_symlink():
            entries.append({"name": child.name, "type": "link"})
        elif child.is_dir():
            entries.append({"name": child.name, "type": "folder"})
        else:
            entries.append({"name": child.name, "type": "file", "size_bytes": child.stat().st_size})
    return {
        "path": _relative(target, root),
        "entries": entries,
        "truncated": len(children) > MAX_LIST_ENTRIES,
    }


@tool("list_directory", args_schema=ListDirectoryArgs)
async def list_directory(path: str = ".") -> dict[str, Any]:
    """List the files and folders in a sandbox folder (at most 200 entries, sorted by name)."""
    return await asyncio.to_thread(_list, path)
