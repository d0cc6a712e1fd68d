"""read_file / write_file / list_directory: confinement to the sandbox root and size caps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from langchain_core.tools import ToolException

from tools import files
from tools.files import list_directory, read_file, resolve_in_sandbox, sandbox_root, write_file

pytestmark = pytest.mark.anyio


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sandbox = tmp_path / "sandbox"
    monkeypatch.setenv("WEFT_SANDBOX_ROOT", str(sandbox))
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    return sandbox_root()


async def test_write_read_and_list_inside_the_sandbox(root: Path) -> None:
    written = await write_file.ainvoke({"path": "notes/todo.txt", "content": "buy milk\n"})
    assert written == {"path": "notes/todo.txt", "bytes_written": 9, "appended": False}
    await write_file.ainvoke({"path": "notes/todo.txt", "content": "call Ann\n", "append": True})

    read = await read_file.ainvoke({"path": "notes/todo.txt"})
    assert read["content"] == "buy milk\ncall Ann\n" and read["truncated"] is False
    listing = await list_directory.ainvoke({"path": "notes"})
    assert listing["entries"] == [{"name": "todo.txt", "type": "file", "size_bytes": 18}]
    top = await list_directory.ainvoke({})
    assert top["path"] == "." and top["entries"] == [{"name": "notes", "type": "folder"}]
    assert (root / "notes" / "todo.txt").is_file()


def test_default_root_is_under_dot_weft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEFT_SANDBOX_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert sandbox_root() == (tmp_path / ".weft" / "sandbox").resolve()


@pytest.mark.parametrize(
    "path", ["../secret.txt", "notes/../../secret.txt", "..", "a/b/../../../secret.txt"]
)
async def test_dot_dot_cannot_escape(root: Path, path: str) -> None:
    for tool_call in (
        read_file.ainvoke({"path": path}),
        write_file.ainvoke({"path": path, "content": "pwned"}),
        list_directory.ainvoke({"path": path}),
    ):
        with pytest.raises(ToolException, match="leaves the sandbox"):
            await tool_call
    assert (root.parent / "secret.txt").read_text(encoding="utf-8") == "top secret"


@pytest.mark.parametrize("path", ["/etc/passwd", "/tmp", "//etc/passwd"])
async def test_absolute_paths_are_refused(root: Path, path: str) -> None:
    with pytest.raises(ToolException, match="absolute path .* not allowed"):
        await read_file.ainvoke({"path": path})
    with pytest.raises(ToolException, match="absolute path"):
        await write_file.ainvoke({"path": path, "content": "x"})


async def test_symlinks_pointing_outside_cannot_be_followed(root: Path) -> None:
    outside = root.parent / "secret.txt"
    (root / "link.txt").symlink_to(outside)
    (root / "linkdir").symlink_to(root.parent, target_is_directory=True)

    with pytest.raises(ToolException, match="leaves the sandbox"):
        await read_file.ainvoke({"path": "link.txt"})
    with pytest.raises(ToolException, match="leaves the sandbox"):
        await write_file.ainvoke({"path": "link.txt", "content": "overwritten"})
    with pytest.raises(ToolException, match="leaves the sandbox"):
        await read_file.ainvoke({"path": "linkdir/secret.txt"})
    with pytest.raises(ToolException, match="leaves the sandbox"):
        await list_directory.ainvoke({"path": "linkdir"})
    assert outside.read_text(encoding="utf-8") == "top secret"
    listing = await list_directory.ainvoke({})
    assert {"name": "link.txt", "type": "link"} in listing["entries"]


async def test_symlink_inside_the_sandbox_is_fine(root: Path) -> None:
    (root / "real.txt").write_text("hello", encoding="utf-8")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert (await read_file.ainvoke({"path": "alias.txt"}))["content"] == "hello"


def test_write_does_not_follow_a_link_planted_after_the_check(root: Path) -> None:
    # Simulates the race: the path checks out, then becomes a link before the open.
    outside = root.parent / "secret.txt"
    target = resolve_in_sandbox("late.txt", root)
    target.symlink_to(outside)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    with pytest.raises(OSError):
        os.open(target, flags)
    assert outside.read_text(encoding="utf-8") == "top secret"


async def test_read_is_capped_and_reports_truncation(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_READ_BYTES", 10)
    (root / "big.txt").write_text("é" * 20, encoding="utf-8")  # 40 bytes, 2-byte characters
    result = await read_file.ainvoke({"path": "big.txt"})
    assert result["truncated"] is True and result["size_bytes"] == 40
    assert result["content"] == "é" * 5


async def test_write_size_cap(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_WRITE_BYTES", 10)
    await write_file.ainvoke({"path": "a.txt", "content": "12345678"})
    with pytest.raises(ToolException, match="limit is 10"):
        await write_file.ainvoke({"path": "a.txt", "content": "abc", "append": True})
    assert (root / "a.txt").read_text(encoding="utf-8") == "12345678"


async def test_binary_and_missing_files_give_fixable_errors(root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ToolException, match="not a UTF-8 text file"):
        await read_file.ainvoke({"path": "blob.bin"})
    with pytest.raises(ToolException, match="call list_directory"):
        await read_file.ainvoke({"path": "missing.txt"})
    with pytest.raises(ToolException, match="is a folder"):
        await write_file.ainvoke({"path": ".", "content": "x"})
