"""`weft eval SUITE...`: run scenario suites k times over the graphs and report per pattern.

    weft eval smoke -k 2                       # the bundled suite (evals/smoke.yaml)
    weft eval my_suite.yaml --graph react --prices prices.yaml --json report.json

Each scenario (format: evals/suite.py) runs on each of its graphs `--trials` times (default:
k), every trial on a fresh thread with an in-memory checkpointer. Scripted scenarios are
answered by the in-process scripted OpenAI-compatible server (nodes/offline), so the real
ChatOpenAI is exercised over HTTP exactly as in `weft demo`; live scenarios use whatever
OPENAI_API_KEY / OPENAI_BASE_URL configure. The report (evals/scoring.py) gives, per pattern:
completion rate, pass^k, pass rate, mean iterations, tool error rate, tokens and cost per trial.

Exit codes: 0 every scenario reaches `--min-pass-rate` (default 1.0), 1 some scenario does not,
2 bad usage (an invalid suite, unknown graph, missing credentials for a live scenario, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from evals.scoring import EvalReport, TrialRecord
    from evals.suite import Case, Suite
    from nodes.budgets import PriceTable
    from nodes.offline import ScriptedLLMServer

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_BELOW_THRESHOLD, EXIT_USAGE = 0, 1, 2
_ENDPOINT_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY")


class EvalUsageError(ValueError):
    """The eval cannot start as asked (reported in one line, exit code 2)."""


def add_eval_arguments(sub: Any) -> None:
    """Register the `eval` subcommand on the `weft` subparsers."""
    ev = sub.add_parser("eval", help="run scenario suites k times and report per pattern")
    ev.add_argument(
        "suites",
        nargs="+",
        metavar="SUITE",
        help="suite file(s) (YAML/JSON), or the name of a bundled suite such as 'smoke'",
    )
    ev.add_argument("-k", type=int, default=1, help="k of pass^k (default 1)")
    ev.add_argument(
        "--trials",
        type=int,
        default=None,
        metavar="N",
        help="trials per scenario and graph (default: k; more gives a smoother pass^k)",
    )
    ev.add_argument(
        "--graph",
        action="append",
        default=[],
        metavar="GRAPH",
        help="only the scenarios on this graph (repeatable)",
    )
    ev.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="ID",
        help="only this scenario id (repeatable)",
    )
    ev.add_argument(
        "--prices",
        metavar="FILE",
        help="price table (JSON/YAML: model -> input_per_1m, output_per_1m); without it "
        "cost comes from the runs' own metrics, or is unknown",
    )
    ev.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-': stdout)")
    ev.add_argument(
        "--min-pass-rate",
        type=float,
        default=1.0,
        metavar="RATE",
        help="pass rate (passes / trials) every scenario must reach for exit code 0 (default 1.0)",
    )
    ev.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="wall-clock limit per trial (default 300)",
    )


def resolve_suite_paths(names: Sequence[str]) -> list[Path]:
    """Each argument as a file, else as a bundled suite name.

    Raises:
        EvalUsageError: Naming the argument and the bundled suites.
    """
    from evals import bundled_suite, bundled_suites

    paths = []
    for name in names:
        path = Path(name)
        if path.is_file():
            paths.append(path)
            continue
        bundled = bundled_suite(name)
        if bundled is None:
            raise EvalUsageError(
                f"suite {name!r} is neither a file nor a bundled suite "
                f"(bundled: {', '.join(bundled_suites())})"
            )
        paths.append(bundled)
    return paths


def _check_options(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise EvalUsageError(f"-k must be >= 1, got {args.k}")
    trials: int = args.k if args.trials is None else args.trials
    if trials < args.k:
        raise EvalUsageError(f"--trials ({trials}) must be >= k ({args.k}) to estimate pass^k")
    if not 0.0 <= args.min_pass_rate <= 1.0:
        raise EvalUsageError(f"--min-pass-rate must be in 0..1, got {args.min_pass_rate}")
    if args.timeout <= 0:
        raise EvalUsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    return trials


def _require_live_credentials(suite: Suite) -> None:
    live = [c.case_id for c in suite.cases if c.scenario.model == "live"]
    if live and not any(os.environ.get(name) for name in _ENDPOINT_VARS):
        raise EvalUsageError(
            f"live scenario(s) {', '.join(live)} need a model: set OPENAI_API_KEY (and "
            "OPENAI_BASE_URL for another OpenAI-compatible server), or select scripted "
            "scenarios with --scenario/--graph"
        )


@contextmanager
def _pointed_at(server: ScriptedLLMServer | None) -> Iterator[None]:
    """Point this process's OpenAI settings at the scripted server, restoring them after.

    `weft eval` is an application process: its environment is how every ChatOpenAI inside the
    graphs finds the endpoint (as with `weft demo`); live scenarios run outside this block and
    see the user's own settings.
    """
    if server is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in _ENDPOINT_VARS}
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ["OPENAI_API_KEY"] = "scripted-eval"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _input_payload(module: Any, value: Any) -> Any:
    if isinstance(value, str):
        make_input = getattr(module, "input_from_text", None)
        if make_input is not None:
            return make_input(value)
        return {"messages": [{"role": "user", "content": value}]}
    if isinstance(value, list):
        return {"messages": [message.model_dump() for message in value]}
    return dict(value)


async def _drive(graph: Any, payload: Any, config: dict[str, Any], case: Case) -> tuple[Any, ...]:
    """Run until the graph ends or waits with no scripted answer left; returns what it waits on."""
    from langgraph.types import Command

    from nodes.persistence import durability_for

    answers = list(case.scenario.resume)
    while True:
        await graph.ainvoke(
            payload,
            config,
            context=case.scenario.run_context(),
            durability=durability_for(case.graph_id),
        )
        state = await graph.aget_state(config)
        if not state.interrupts:
            return ()
        if not answers:
            return tuple(interrupt.value for interrupt in state.interrupts)
        payload = Command(resume=answers.pop(0))


async def run_trial(
    case: Case, trial: int, graph: Any, module: Any, *, prices: PriceTable | None, timeout_s: float
) -> TrialRecord:
    """One trial of `case` on a fresh thread of `graph`, checked and measured."""
    import openai

    from evals.checks import evaluate
    from evals.outcome import TrialOutcome, trial_metrics
    from evals.scoring import TrialRecord
    from nodes.model import ModelConfigurationError

    config: dict[str, Any] = {
        "configurable": {"thread_id": f"eval-{case.case_id}-{trial}-{uuid.uuid4().hex[:6]}"},
        "run_name": f"weft eval {case.case_id} #{trial}",
        "tags": ["weft-eval", case.graph_id],
        "metadata": {"graph_id": case.graph_id, "eval_scenario": case.case_id, "trial": trial},
    }
    error: str | None = None
    waiting: tuple[Any, ...] = ()
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            waiting = await _drive(graph, _input_payload(module, case.scenario.input), config, case)
    except TimeoutError:
        error = f"timed out after {timeout_s:g} s (--timeout)"
    except (ModelConfigurationError, openai.AuthenticationError, openai.APIConnectionError):
        raise  # the endpoint is misconfigured: no trial can say anything about the agent
    except Exception as exc:
        # A trial that crashes is a result to report (the run check fails with this text),
        # not a reason to stop evaluating the other scenarios.
        logger.info("trial %s #%d raised", case.case_id, trial, exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
    duration = time.monotonic() - started
    values = dict((await graph.aget_state(config)).values)
    outcome = TrialOutcome(values, trial_metrics(values, prices), error=error, waiting=waiting)
    return TrialRecord(
        case_id=case.case_id,
        graph_id=case.graph_id,
        trial=trial,
        completed=outcome.completed,
        failures=tuple(await evaluate(case.scenario.expect, outcome)),
        metrics=outcome.metrics,
        duration_s=duration,
        final_answer=outcome.final_answer,
        error=error,
    )


async def run_suite(
    suite: Suite,
    *,
    trials: int,
    prices: PriceTable | None = None,
    timeout_s: float = 300.0,
    on_trial: Callable[[Case, int], Any] | None = None,
    on_result: Callable[[TrialRecord], None] | None = None,
) -> list[TrialRecord]:
    """Run every case `trials` times, one trial at a time; returns the records in order.

    `on_trial(case, trial)` is entered (as a context manager, if it returns one) around each
    trial and `on_result(record)` called after it, for progress display.
    """
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs import get_graph_info
    from nodes.offline import ScriptedLLMServer

    first_scripted = next((c for c in suite.cases if c.scenario.model == "scripted"), None)
    records: list[TrialRecord] = []
    with ExitStack() as stack:
        # One server for the whole suite, its script swapped per scenario: trials run one at a
        # time, and reply selection depends only on each request's conversation.
        server = (
            stack.enter_context(ScriptedLLMServer(first_scripted.scenario.load_script()))
            if first_scripted is not None
            else None
        )
        for case in suite.cases:
            module = get_graph_info(case.graph_id).load_module()
            graph = module.build_graph(checkpointer=InMemorySaver())
            is_scripted = case.scenario.model == "scripted"
            if is_scripted and server is not None:
                server.script = case.scenario.load_script()
                server.requests.clear()
            with _pointed_at(server if is_scripted else None):
                for trial in range(1, trials + 1):
                    marker = on_trial(case, trial) if on_trial else None
                    with marker if marker is not None else nullcontext():
                        record = await run_trial(
                            case, trial, graph, module, prices=prices, timeout_s=timeout_s
                        )
                    records.append(record)
                    if on_result:
                        on_result(record)
    return records


# --- the report -------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def pattern_table(report: EvalReport) -> Table:
    """One row per pattern."""
    table = Table(
        title=f"weft eval · pass^k with k={report.k}",
        caption="iterations, tokens and cost: mean per trial · tool errors: failed / all calls",
        title_justify="left",
        caption_justify="left",
    )
    for name in (
        "pattern",
        "scenarios",
        "trials",
        "completed",
        "pass^k",
        "pass rate",
        "iterations",
        "tool errors",
        "tokens",
        "cost",
    ):
        table.add_column(name, justify="left" if name == "pattern" else "right", no_wrap=True)
    for p in report.patterns:
        iterations = "—" if p.mean_iterations is None else f"{p.mean_iterations:.1f}"
        errors = (
            "—"
            if p.tool_error_rate is None
            else f"{_pct(p.tool_error_rate)} ({p.tool_errors}/{p.tool_calls})"
        )
        table.add_row(
            p.graph_id,
            str(len(p.scenarios)),
            str(len(p.records)),
            _pct(p.completion_rate),
            f"{p.pass_hat_k:.2f}",
            _pct(p.pass_rate),
            iterations,
            errors,
            f"{p.mean_tokens:,.0f}",
            _usd(p.mean_cost_usd),
        )
    return table


def scenario_table(report: EvalReport) -> Table:
    """One row per scenario and graph, with the checks that failed."""
    table = Table(title="scenarios", title_justify="left")
    for name in ("scenario", "pattern", "passed", "pass^k", "", "failed checks"):
        table.add_column(name)
    for s in report.scenarios:
        mark = "[green]✓[/green]" if s.meets(report.min_pass_rate) else "[red]✗[/red]"
        failed = ", ".join(f"{check} ×{n}" for check, n in s.failed_checks.items())
        table.add_row(
            escape(s.case_id),
            s.graph_id,
            f"{s.passes}/{s.trials}",
            f"{s.pass_hat_k:.2f}",
            mark,
            escape(failed),
        )
    return table


def print_report(report: EvalReport, console: Console) -> None:
    """Tables, then each failed trial's reasons, then the verdict."""
    console.print(pattern_table(report))
    console.print(scenario_table(report))
    for s in report.scenarios:
        for record in s.records:
            for failure in record.failures:
                console.print(
                    f"[red]✗[/red] {escape(s.case_id)} trial {record.trial}: "
                    f"[bold]{escape(failure.check)}[/bold]: {escape(failure.reason)}"
                )
    unpriced = sorted({m for p in report.patterns for m in p.unpriced_models})
    if unpriced:
        console.print(f"[yellow]cost unknown:[/yellow] no price for {escape(', '.join(unpriced))}")
    meeting = sum(s.meets(report.min_pass_rate) for s in report.scenarios)
    colour = "green" if report.ok else "red"
    console.print(
        f"[{colour}]{meeting}/{len(report.scenarios)} scenarios reach the minimum pass rate "
        f"{report.min_pass_rate:.2f}[/{colour}]"
    )


# --- the command ------------------------------------------------------------------------------


class _Progress:
    """Which scenario and trial is running (a spinner on terminals) and each result."""

    def __init__(self, console: Console, total: int) -> None:
        self._console = console
        self._total = total
        self._done = 0

    def trial(self, case: Case, trial: int) -> Any:
        return self._console.status(
            f"[{self._done + 1}/{self._total}] {escape(case.case_id)} · {case.graph_id} · "
            f"trial {trial}"
        )

    def result(self, record: TrialRecord) -> None:
        self._done += 1
        verdict = (
            "[green]pass[/green]"
            if record.passed
            else (
                "[red]fail[/red] "
                + escape(", ".join(dict.fromkeys(f.check for f in record.failures)))
            )
        )
        self._console.print(
            f"[dim][{self._done}/{self._total}][/dim] {escape(record.case_id)} · "
            f"{record.graph_id} · trial {record.trial} · {verdict} "
            f"[dim]({record.duration_s:.1f} s)[/dim]"
        )


def run_eval_command(args: argparse.Namespace, console: Console) -> int:
    """`weft eval` (parsed by graphs/cli.py); returns the exit code."""
    from evals.scoring import score
    from evals.suite import load_suite
    from nodes.budgets import PriceTable

    trials = _check_options(args)
    paths = resolve_suite_paths(args.suites)
    suite = load_suite(paths).select(graphs=args.graph, ids=args.scenario)
    if args.prices and not Path(args.prices).is_file():
        raise EvalUsageError(f"--prices: no such file {args.prices!r}")
    prices = PriceTable.from_file(args.prices) if args.prices else None
    _require_live_credentials(suite)
    console.print(
        f"[dim]weft eval · {len(suite.cases)} scenario(s) × {trials} trial(s) · "
        f"{', '.join(str(p) for p in paths)}[/dim]"
    )
    progress = _Progress(console, len(suite.cases) * trials)
    records = asyncio.run(
        run_suite(
            suite,
            trials=trials,
            prices=prices,
            timeout_s=args.timeout,
            on_trial=progress.trial,
            on_result=progress.result,
        )
    )
    report = score(records, k=args.k, min_pass_rate=args.min_pass_rate, suite_files=suite.files)
    to_stdout_json = args.json == "-"
    out = (
        console
        if to_stdout_json
        else Console(
            file=sys.stdout,
            highlight=False,
            soft_wrap=True,  # failure reasons stay on one line each, greppable in CI logs
            width=None if sys.stdout.isatty() else 120,
        )
    )
    print_report(report, out)
    if args.json:
        text = json.dumps(report.as_dict(), indent=2, default=str) + "\n"
        if to_stdout_json:
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text, encoding="utf-8")
            console.print(f"[dim]wrote {escape(args.json)}[/dim]")
    return EXIT_OK if report.ok else EXIT_BELOW_THRESHOLD


__all__ = [
    "EvalUsageError",
    "add_eval_arguments",
    "pattern_table",
    "print_report",
    "resolve_suite_paths",
    "run_eval_command",
    "run_suite",
    "run_trial",
    "scenario_table",
]
