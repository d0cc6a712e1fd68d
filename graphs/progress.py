"""Live progress for `weft run`: which node runs, tool calls, tokens so far, custom events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from nodes.state import total_tokens

_MAX_SHOWN = 160


def _short(text: Any) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_SHOWN else flat[: _MAX_SHOWN - 1] + "…"


def _where(namespace: tuple[str, ...]) -> str:
    parts = [part.split(":")[0] for part in namespace]
    return "/".join(parts) + "/" if parts else ""


class ProgressDisplay:
    """Turns `astream(..., stream_mode=["updates","messages","custom"], subgraphs=True)` chunks
    into log lines plus one live status line (node, streamed tokens, tokens used)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None
        self._node = "starting"
        self._streamed_chunks = 0
        self._tokens = 0
        self._budget_left: dict[str, float] = {}

    def __enter__(self) -> ProgressDisplay:
        if self._console.is_terminal:
            self._status = self._console.status(self._line())
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _line(self) -> str:
        line = (
            f"[cyan]{escape(self._node)}[/cyan] · {self._streamed_chunks} chunks streamed · "
            f"{self._tokens} tokens used"
        )
        if self._budget_left:
            left = ", ".join(
                f"{name.removeprefix('max_')} {_number(value)}"
                for name, value in self._budget_left.items()
            )
            line += f" · budget left: {escape(left)}"
        return line

    def _refresh(self) -> None:
        if self._status is not None:
            self._status.update(self._line())

    def handle(self, chunk: Any) -> None:
        """Show one stream chunk: `(namespace, mode, data)`."""
        namespace, mode, data = chunk
        if mode == "messages":
            message, metadata = data
            self._node = _where(namespace) + str(metadata.get("langgraph_node", "?"))
            self._streamed_chunks += 1
        elif mode == "updates":
            for node, update in (data or {}).items():
                self._show_update(_where(namespace), node, update)
        elif mode == "custom":
            self._show_event(_where(namespace), data)
        self._refresh()

    def _show_event(self, where: str, event: Any) -> None:
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "budget_used":
            self._budget_left = dict(event.get("remaining") or {})
            return
        if kind == "tool_called":
            # Results are shown from the state updates; only failed attempts (which a retry
            # or fallback may hide there) are worth a line of their own.
            if not event.get("ok"):
                self._console.print(
                    f"  [yellow]![/yellow] {where}{escape(str(event.get('tool')))} attempt "
                    f"failed: {escape(str(event.get('error_code')))}"
                )
            return
        self._console.print(f"  [magenta]•[/magenta] {escape(_short(_describe(event)))}")

    def _show_update(self, where: str, node: str, update: Any) -> None:
        if node == "__interrupt__":
            return
        if isinstance(update, list | tuple):
            # A node that returns several Commands (e.g. parallel tool calls) yields a list.
            for part in update:
                self._show_fields(where, part)
        elif isinstance(update, dict):
            self._show_fields(where, update)
        else:
            return
        self._console.print(f"[dim]✓ {escape(where + node)}[/dim]")

    def _show_fields(self, where: str, update: Any) -> None:
        if not isinstance(update, dict):
            return
        if not where and "usage" in update:
            self._tokens += total_tokens(update["usage"])
        for message in update.get("messages", []) or []:
            if isinstance(message, AIMessage):
                for call in message.tool_calls:
                    args = json.dumps(call["args"], ensure_ascii=False, default=str)
                    self._console.print(
                        f"  [blue]→[/blue] {where}{escape(call['name'])}({escape(_short(args))})"
                    )
            elif isinstance(message, ToolMessage):
                mark = "[red]✗[/red]" if message.status == "error" else "[green]←[/green]"
                self._console.print(
                    f"  {mark} {where}{escape(str(message.name))}: "
                    f"{escape(_short(message.content))}"
                )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def metrics_line(metrics: Mapping[str, Any]) -> str:
    """One line summing up a run's `metrics`: calls, tools, tokens, cost, time."""
    tools = _count(metrics["tool_calls"], "tool call")
    if metrics.get("tool_errors"):
        tools += f" ({metrics['tool_errors']} failed)"
    parts = [
        _count(metrics["model_calls"], "model call"),
        tools,
        f"{metrics['input_tokens'] + metrics['output_tokens']:,} tokens",
    ]
    if metrics.get("cost_usd") is not None:
        parts.append(f"${metrics['cost_usd']:.4f}")
    parts.append(f"{metrics['wall_time_s']:.1f} s")
    if metrics.get("paused_s"):
        parts.append(f"{metrics['paused_s']:.1f} s waiting on review")
    if metrics.get("degraded"):
        parts.append(f"degraded: {', '.join(metrics['degraded'])}")
    return " · ".join(parts)


def _describe(event: Any) -> str:
    if isinstance(event, dict):
        kind = event.get("event") or event.get("type") or "event"
        rest = {k: v for k, v in event.items() if k not in {"event", "type"}}
        return f"{kind}: {json.dumps(rest, ensure_ascii=False, default=str)}"
    return str(event)
