"""`weft`: list, run and demo the registered graphs; serve scripted answers offline.

    weft graphs
    weft run GRAPH "input" [--thread ID] [--context key=value ...] [--resume JSON]
    weft demo GRAPH ["input"]
    weft mock-llm --script FILE [--port N]
    weft inspect THREAD [--db SQLITE_PATH|POSTGRES_URL] [--json]
    weft graph GRAPH [--mermaid FILE|-] [--png FILE]
    weft eval SUITE... [-k K] [--trials N] [--prices FILE] [--json FILE] [--min-pass-rate R]

Exit codes: 0 answered, 1 the run ended without success, 2 bad usage or configuration,
3 the run is paused on an interrupt and no answer could be asked for (non-interactive).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from graphs import GRAPHS, UnknownGraphError, get_graph_info
from graphs.progress import ProgressDisplay, metrics_line
from nodes.approval import resume_value
from nodes.context import Context, context_from_mapping, parse_context_assignments
from nodes.logs import LOG_FORMATS, configure_logging
from nodes.model import ModelConfigurationError
from nodes.persistence import durability_for

logger = logging.getLogger(__name__)

DEFAULT_DB = Path(".weft") / "checkpoints.sqlite"
EXIT_OK, EXIT_UNSUCCESSFUL, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3


class CliError(Exception):
    """A problem to report to the user in one sentence (no traceback)."""


@dataclass
class RunRequest:
    """Everything one `weft run`/`weft demo` invocation needs."""

    graph_id: str
    text: str | None
    thread_id: str
    context: Context
    resume: list[Any] = field(default_factory=list)
    interactive: bool = True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("WEFT_LOG_FORMAT", "text"),
        help="log records as text or JSON lines with thread/run/node (env WEFT_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("graphs", help="list the registered graphs")

    run = sub.add_parser("run", help="run a graph with a local SQLite checkpointer")
    run.add_argument("graph", help="graph id (see `weft graphs`)")
    run.add_argument("input", nargs="?", help="the request (omit when only resuming)")
    run.add_argument("--thread", help="thread id; reuse it to continue a conversation")
    run.add_argument(
        "--context", action="append", default=[], metavar="KEY=VALUE",
        help="a run setting from nodes/context.py (repeatable), e.g. max_iterations=5",
    )
    run.add_argument("--resume", help="JSON answer for the interrupt the thread is paused on")
    run.add_argument(
        "--db", default=None,
        help="SQLite file, postgresql:// URL or 'memory' "
        f"(default: $DATABASE_URL, else {DEFAULT_DB})",
    )

    demo = sub.add_parser("demo", help="run a graph offline against scripted answers")
    demo.add_argument("graph", help="graph id (see `weft graphs`)")
    demo.add_argument("input", nargs="?", help="override the demo's request")
    demo.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run setting on top of the demo's own (e.g. max_model_calls=1)",
    )

    mock = sub.add_parser("mock-llm", help="serve an OpenAI-compatible API from a script")
    mock.add_argument("--script", required=True, help="script file (JSON or YAML)")
    mock.add_argument("--port", type=int, default=8765)
    mock.add_argument("--host", default="127.0.0.1")

    # durability: `weft inspect` and `weft graph` (graphs/cli_inspect.py)
    inspect = sub.add_parser("inspect", help="show a thread's history, state and metrics")
    inspect.add_argument("thread", help="thread id (as printed by `weft run`)")
    inspect.add_argument("--db", default=None, help="same database setting as `weft run --db`")
    inspect.add_argument("--graph", help="graph id (default: the one recorded by `weft run`)")
    inspect.add_argument("--limit", type=int, default=50, help="most checkpoints listed")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    draw = sub.add_parser("graph", help="draw a graph as Mermaid text or a PNG")
    draw.add_argument("graph", help="graph id (see `weft graphs`)")
    draw.add_argument("--mermaid", metavar="FILE", help="write Mermaid text ('-' for stdout)")
    draw.add_argument("--png", metavar="FILE", help="render a PNG (needs a Mermaid renderer)")
    draw.add_argument("--renderer-url", help="self-hosted mermaid.ink URL for --png")
    # evaluations: `weft eval` (graphs/cli_eval.py; its exit code 1 means below --min-pass-rate)
    from graphs.cli_eval import add_eval_arguments

    add_eval_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `weft` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_format, level=logging.DEBUG if args.verbose else logging.WARNING)
    except ValueError as exc:  # WEFT_LOG_FORMAT set to something else
        parser.error(str(exc))
    console = Console(stderr=True, highlight=False)
    # langchain-openai streams structured-output chunks with the parsed object inside, and
    # Pydantic warns when serialising them; harmless, and noise on every structured call.
    warnings.filterwarnings(
        "ignore", message=r"Pydantic serializer warnings:(?s:.)*field_name='parsed'"
    )
    import openai

    try:
        if args.command == "graphs":
            return _list_graphs()
        if args.command == "mock-llm":
            from nodes.offline import serve_forever

            serve_forever(args.script, host=args.host, port=args.port)
            return EXIT_OK
        if args.command == "run":
            return asyncio.run(_run_command(args, console))
        if args.command == "demo":
            return asyncio.run(_demo_command(args, console))
        if args.command in ("inspect", "graph"):
            from graphs.cli_inspect import run_inspect_command

            return run_inspect_command(args, console)
        if args.command == "eval":
            from graphs.cli_eval import run_eval_command

            return run_eval_command(args, console)
    except (CliError, UnknownGraphError, ModelConfigurationError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    except openai.AuthenticationError:
        console.print(
            "[red]error:[/red] the model endpoint rejected the API key (HTTP 401): "
            "check OPENAI_API_KEY."
        )
        return EXIT_USAGE
    except openai.APIConnectionError:
        where = os.environ.get("OPENAI_BASE_URL") or "the OpenAI API"
        console.print(
            f"[red]error:[/red] could not reach the model endpoint ({escape(where)}): check "
            "OPENAI_BASE_URL and that the server is running."
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
    raise AssertionError(f"unhandled command {args.command!r}")


def _list_graphs() -> int:
    width = max(len(graph_id) for graph_id in GRAPHS)
    for info in GRAPHS.values():
        sys.stdout.write(f"{info.graph_id.ljust(width)}  {info.description}\n")
    return EXIT_OK


def _parse_resume(raw: str | None) -> list[Any]:
    if raw is None:
        return []
    try:
        return [json.loads(raw)]
    except json.JSONDecodeError:
        # A bare word ("approve") is a friendlier answer than '"approve"'.
        return [raw]


async def _run_command(args: argparse.Namespace, console: Console) -> int:
    get_graph_info(args.graph)
    if args.input is None and args.resume is None:
        raise CliError("give the request to run, or --resume with --thread to answer an interrupt")
    if args.resume is not None and not args.thread:
        raise CliError("--resume needs --thread: the id of the thread that is waiting")
    request = RunRequest(
        graph_id=args.graph,
        text=args.input,
        thread_id=args.thread or uuid.uuid4().hex[:12],
        context=parse_context_assignments(args.context),
        resume=_parse_resume(args.resume),
        interactive=sys.stdin.isatty(),
    )
    from memory.store import open_store_or_none  # memory: memory/settings.py picks the backend
    from nodes.persistence import open_checkpointer  # SQLite path, postgresql:// URL or memory

    # memory: the long-term store is opened only for runs that use it (Qdrant on disk under
    # ./.weft/memory by default); if it cannot be opened the run goes on without memory.
    wants_store = request.context.memory_enabled or request.graph_id == "memory_maintenance"
    async with (
        open_checkpointer(args.db) as saver,
        open_store_or_none(wants_store) as (store, store_problem),
    ):
        if store_problem:
            console.print(f"[yellow]warning:[/yellow] {escape(store_problem)}")
        return await execute(request, saver, console, store=store)


def load_demo(graph_id: str) -> dict[str, Any]:
    """The bundled demo for `graph_id`: {"input", "script", optional "context", "resume"}."""
    name = f"{graph_id}.json"
    folder = resources.files("graphs") / "demo_scripts"
    if not (folder / name).is_file():
        available = sorted(p.name.removesuffix(".json") for p in folder.iterdir())
        raise CliError(f"no demo for {graph_id!r}; demos exist for: {', '.join(available)}")
    demo: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return demo


async def _demo_command(args: argparse.Namespace, console: Console) -> int:
    get_graph_info(args.graph)
    demo = load_demo(args.graph)
    from langgraph.checkpoint.memory import InMemorySaver

    from nodes.offline import ScriptedLLMServer, load_script

    with ScriptedLLMServer(load_script(demo["script"])) as server:
        # The demo is an application process: pointing its own environment at the scripted
        # server is how every ChatOpenAI inside the graph finds it, exactly as a user would.
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ["OPENAI_API_KEY"] = "scripted-demo"
        console.print(
            f"[bold yellow]DEMO[/bold yellow] — scripted answers from a local OpenAI-compatible "
            f"server at {server.base_url}; no real model is called."
        )
        request = RunRequest(
            graph_id=args.graph,
            text=args.input or demo["input"],
            thread_id=f"demo-{uuid.uuid4().hex[:8]}",
            context=dataclasses.replace(
                context_from_mapping(demo.get("context", {})),
                **_assigned(parse_context_assignments(args.context), args.context),
            ),
            resume=list(demo.get("resume", [])),
            interactive=False,
        )
        return await execute(request, InMemorySaver(), console)


def _input_for(module: Any, text: str) -> Any:
    make_input = getattr(module, "input_from_text", None)
    if make_input is not None:
        return make_input(text)
    return {"messages": [{"role": "user", "content": text}]}


async def execute(
    request: RunRequest, checkpointer: Any, console: Console, *, store: Any = None
) -> int:
    """Run (or resume) a graph on a thread, showing progress, until it ends or waits.

    `store` is the long-term memory store (None: the graph runs without one).
    """
    from langgraph.types import Command

    module = get_graph_info(request.graph_id).load_module()
    graph = module.build_graph(checkpointer=checkpointer, store=store)
    config: dict[str, Any] = {"configurable": {"thread_id": request.thread_id}}
    config["metadata"] = {"graph_id": request.graph_id}  # lets `weft inspect` find the graph
    console.print(f"[dim]graph {request.graph_id} · thread {request.thread_id}[/dim]")
    pending_resumes = list(request.resume)
    payload: Any
    if request.text is not None:
        payload = _input_for(module, request.text)
    else:
        payload = Command(resume=pending_resumes.pop(0))
    while True:
        # safety: each run (a resume too) gets its own id, LangGraph's run id and the audit
        # records' `run_id` (config metadata reaches nested agents; see nodes/tool_gate.py).
        run_id = uuid.uuid4()
        run_config = {
            **config,
            "run_id": run_id,
            "metadata": {**config["metadata"], "run_id": str(run_id)},
        }
        with ProgressDisplay(console) as display:
            async for chunk in graph.astream(
                payload,
                run_config,
                context=request.context,
                stream_mode=["updates", "messages", "custom"],
                subgraphs=True,
                durability=durability_for(request.graph_id),  # nodes/persistence.py DURABILITY
            ):
                display.handle(chunk)
        state = await graph.aget_state(config)
        if not state.interrupts:
            return _report(state.values, console)
        answer = _answer_interrupts(state.interrupts, pending_resumes, request, console)
        if answer is None:
            return EXIT_WAITING
        # Several pending interrupts (parallel tasks) need one answer per interrupt id.
        payload = Command(resume=resume_value([i.id for i in state.interrupts], answer))


def _answer_interrupts(
    interrupts: Sequence[Any], pending: list[Any], request: RunRequest, console: Console
) -> Any | None:
    for interrupt in interrupts:
        console.print("[bold magenta]paused[/bold magenta] — the graph asks:")
        console.print_json(json.dumps(interrupt.value, default=str))
    if pending:
        answer = pending.pop(0)
        console.print(f"[dim]answering with {json.dumps(answer)}[/dim]")
        return answer
    if not request.interactive:
        console.print(
            f"Answer with: weft run {request.graph_id} --thread {request.thread_id} "
            "--resume 'JSON'"
        )
        return None
    raw = console.input("[bold]your answer (JSON or text)> [/bold]")
    return _parse_resume(raw)[0]


def _assigned(ctx: Context, pairs: Sequence[str]) -> dict[str, Any]:
    """The fields `pairs` (`key=value`) set, with their parsed values from `ctx`."""
    names = {pair.partition("=")[0].strip() for pair in pairs}
    return {name: getattr(ctx, name) for name in names}


def _report(values: dict[str, Any], console: Console) -> int:
    answer = values.get("final_answer")
    if answer is None and values.get("messages"):
        answer = values["messages"][-1].content
    sys.stdout.write(f"{answer}\n")
    metrics = values.get("metrics")
    usage = values.get("usage") or {}
    if metrics:
        console.print(f"[dim]this run — {escape(metrics_line(metrics))}[/dim]")
    elif usage:
        spent = ", ".join(
            f"{model}: {u['calls']} calls, {u['total_tokens']} tokens" for model, u in usage.items()
        )
        console.print(f"[dim]usage — {spent}[/dim]")
    if values.get("success") is False:
        console.print(f"[yellow]stopped:[/yellow] {escape(str(values.get('error')))}")
        return EXIT_UNSUCCESSFUL
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
