"""`weft inspect THREAD` and `weft graph GRAPH`: look into a thread, draw a graph.

`inspect_thread` reads a thread from the same database `weft run` writes (a SQLite path, a
postgresql:// URL, or `DATABASE_URL`): its checkpoint history, latest state and a metrics
summary (usage per model, tool calls and errors per tool, iterations, outcome). The graph is
found from the `graph_id` that `weft run` stores in each checkpoint's metadata; without it the
raw channel values are shown.

`draw_graph` writes Mermaid text, or a PNG rendered by a Mermaid rendering service: LangChain's
renderer sends the diagram to mermaid.ink unless `renderer_url` names a self-hosted one, so PNG
output needs that service to be reachable (use `--mermaid` offline).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from rich.console import Console
from rich.markup import escape

from graphs import get_graph_info
from nodes.persistence import open_checkpointer, parse_database_setting

_PREVIEW_CHARS = 80


class InspectError(ValueError):
    """The thread or graph cannot be shown (unknown thread, renderer unreachable, ...)."""


def _preview(content: Any) -> str:
    from nodes.model import message_text

    text = " ".join(message_text(content).split())
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _messages(values: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for message in values.get("messages") or []:
        row: dict[str, Any] = {"type": message.type, "content": _preview(message.content)}
        calls = getattr(message, "tool_calls", None)
        if calls:
            row["tool_calls"] = [call["name"] for call in calls]
        rows.append(row)
    return rows


def metrics_summary(values: dict[str, Any]) -> dict[str, Any]:
    """The run's accounting, from the shared `usage`/`tool_results` channels and the outcome."""
    usage = values.get("usage") or {}
    per_tool: dict[str, dict[str, int]] = {}
    for record in values.get("tool_results") or []:
        counts = per_tool.setdefault(record["tool"], {"calls": 0, "errors": 0})
        counts["calls"] += 1
        counts["errors"] += 0 if record.get("ok") else 1
    error_codes = Counter(
        r.get("error_code") for r in values.get("tool_results") or [] if not r.get("ok")
    )
    return {
        "success": values.get("success"),
        "error": values.get("error"),
        "iterations": values.get("iterations"),
        "model_calls": sum(u.get("calls", 0) for u in usage.values()),
        "tokens": {
            model: {"input": u.get("input_tokens", 0), "output": u.get("output_tokens", 0)}
            for model, u in usage.items()
        },
        "total_tokens": sum(u.get("total_tokens", 0) for u in usage.values()),
        "tool_calls": per_tool,
        "tool_error_codes": dict(error_codes),
    }


async def inspect_thread(
    thread_id: str, db: str | None = None, *, graph_id: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """A JSON-able report of one thread: history (oldest first), state and metrics.

    Raises:
        InspectError: When the database holds no checkpoint for `thread_id`.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    where = parse_database_setting(db).describe()
    async with open_checkpointer(db) as saver:
        latest = await saver.aget_tuple(config)
        if latest is None:
            raise InspectError(f"no checkpoints for thread {thread_id!r} in {where}")
        recorded = latest.metadata.get("graph_id")
        graph_id = graph_id or (recorded if isinstance(recorded, str) else None)
        if graph_id:
            graph = get_graph_info(graph_id).load_module().build_graph(checkpointer=saver)
            state = await graph.aget_state(config)
            snapshots = [s async for s in graph.aget_state_history(config, limit=limit)]
            values, next_nodes = dict(state.values), list(state.next)
            interrupts = [i.value for i in state.interrupts]
            history = [
                {
                    "checkpoint_id": s.config["configurable"]["checkpoint_id"],
                    "step": s.metadata.get("step") if s.metadata else None,
                    "source": s.metadata.get("source") if s.metadata else None,
                    "next": list(s.next),
                    "created_at": s.created_at,
                }
                for s in snapshots
            ]
        else:
            values = dict(latest.checkpoint["channel_values"])
            next_nodes, interrupts = [], []
            history = [
                {
                    "checkpoint_id": t.checkpoint["id"],
                    "step": t.metadata.get("step"),
                    "source": t.metadata.get("source"),
                    "next": None,
                    "created_at": t.checkpoint["ts"],
                }
                async for t in saver.alist(config, limit=limit)
            ]
    history.reverse()
    return {
        "thread_id": thread_id,
        "graph_id": graph_id,
        "database": where,
        "checkpoints": len(history),
        "history": history,
        "next": next_nodes,
        "interrupts": interrupts,
        "final_answer": values.get("final_answer"),
        "messages": _messages(values),
        "metrics": metrics_summary(values),
        "other_keys": sorted(k for k in values if k not in _SHOWN_KEYS),
    }


_SHOWN_KEYS = {
    "messages",
    "usage",
    "tool_results",
    "final_answer",
    "success",
    "error",
    "iterations",
}


def print_inspection(report: dict[str, Any], console: Console) -> None:
    """Human-readable rendering of `inspect_thread`'s report (on `console`)."""
    console.print(
        f"[bold]thread {escape(report['thread_id'])}[/bold] · graph "
        f"{escape(str(report['graph_id'] or '(unknown)'))} · {escape(report['database'])} · "
        f"{report['checkpoints']} checkpoints"
    )
    console.print("[bold]history[/bold] (oldest first)")
    for row in report["history"]:
        nxt = ", ".join(row["next"]) if row["next"] else ("—" if row["next"] is not None else "?")
        console.print(
            f"  step {row['step']!s:>3}  {row['source'] or '':<6} next: {escape(nxt):<22} "
            f"[dim]{row['checkpoint_id']}[/dim]"
        )
    console.print("[bold]state[/bold]")
    for message in report["messages"]:
        calls = f" → {', '.join(message['tool_calls'])}" if message.get("tool_calls") else ""
        console.print(f"  {message['type']:>6}: {escape(message['content'])}{escape(calls)}")
    if report["next"]:
        console.print(f"  waiting to run: {escape(', '.join(report['next']))}")
    for value in report["interrupts"]:
        console.print(f"  paused on: {escape(json.dumps(value, default=str))}")
    if report["other_keys"]:
        console.print(f"  [dim]other keys: {escape(', '.join(report['other_keys']))}[/dim]")
    m = report["metrics"]
    console.print("[bold]metrics[/bold]")
    console.print(
        f"  success: {m['success']}  iterations: {m['iterations']}  model calls: "
        f"{m['model_calls']}  tokens: {m['total_tokens']}"
    )
    if m["error"]:
        console.print(f"  stopped: {escape(str(m['error']))}")
    for model, tokens in m["tokens"].items():
        console.print(f"  {escape(model)}: {tokens['input']} in / {tokens['output']} out")
    for tool, counts in m["tool_calls"].items():
        console.print(f"  tool {escape(tool)}: {counts['calls']} calls, {counts['errors']} errors")


def draw_graph(
    graph_id: str,
    *,
    mermaid: str | None = None,
    png: str | None = None,
    renderer_url: str | None = None,
) -> str:
    """Draw `graph_id`; write Mermaid to `mermaid` ('-' or None: return it) and/or a PNG.

    Returns the Mermaid text. Raises InspectError when the PNG renderer cannot be reached.
    """
    graph = get_graph_info(graph_id).load_module().build_graph().get_graph()
    text: str = graph.draw_mermaid()
    if mermaid and mermaid != "-":
        Path(mermaid).write_text(text, encoding="utf-8")
    if png:
        try:
            graph.draw_mermaid_png(output_file_path=png, base_url=renderer_url, max_retries=0)
        except (ValueError, ImportError, OSError) as exc:
            service = renderer_url or "https://mermaid.ink"
            raise InspectError(
                f"PNG rendering needs the Mermaid rendering service at {service}, which could "
                f"not be used ({type(exc).__name__}). Offline, write Mermaid instead "
                f"(`weft graph {graph_id} --mermaid {Path(png).with_suffix('.mmd')}`) and "
                "render it locally (e.g. mermaid-cli `mmdc`), or pass --renderer-url for a "
                "self-hosted mermaid.ink."
            ) from exc
    return text


def run_inspect_command(args: Any, console: Console) -> int:
    """Dispatch `weft inspect` / `weft graph` (parsed in graphs/cli.py); returns the exit code."""
    import asyncio
    import sys

    if args.command == "inspect":
        report = asyncio.run(
            inspect_thread(args.thread, args.db, graph_id=args.graph, limit=args.limit)
        )
        if args.json:
            sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        else:
            print_inspection(report, Console(file=sys.stdout, highlight=False, soft_wrap=True))
        return 0
    to_stdout = args.mermaid == "-" or (args.mermaid is None and args.png is None)
    text = draw_graph(
        args.graph, mermaid=args.mermaid, png=args.png, renderer_url=args.renderer_url
    )
    if to_stdout:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    for path in (args.mermaid, args.png):
        if path and path != "-":
            console.print(f"[dim]wrote {escape(path)}[/dim]")
    return 0
