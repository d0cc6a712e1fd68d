"""Python checks used by evals/smoke.yaml (`expect.python: evals.smoke_checks:NAME`).

Each takes the final state values and returns None to pass or a reason string to fail (the
contract is in evals/checks.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def every_task_completed(state: Mapping[str, Any]) -> str | None:
    """plan_execute: no task of the final plan is left pending, failed or skipped."""
    tasks = state.get("tasks") or []
    if not tasks:
        return "the plan has no tasks"
    unfinished = [f"{t['id']} ({t['status']})" for t in tasks if t.get("status") != "completed"]
    return f"tasks not completed: {', '.join(unfinished)}" if unfinished else None


def every_handoff_succeeded(state: Mapping[str, Any]) -> str | None:
    """supervisor/team: every worker the supervisor handed work to reported success."""
    handoffs = state.get("handoffs") or []
    if not handoffs:
        return "no handoffs were made"
    failed = [h["worker"] for h in handoffs if not h.get("success")]
    return f"handoffs failed: {', '.join(failed)}" if failed else None


def drafts_improved(state: Mapping[str, Any]) -> str | None:
    """refine: every revision scored higher than the draft before it."""
    averages = [d["average"] for d in state.get("drafts") or []]
    if len(averages) < 2:
        return f"expected at least one revision, got {len(averages)} draft(s)"
    if any(later <= earlier for earlier, later in zip(averages, averages[1:], strict=False)):
        return f"scores did not rise with each revision: {averages}"
    return None


def learned_from_failure(state: Mapping[str, Any]) -> str | None:
    """reflexion: the first attempt failed, a reflection was written, the last attempt passed."""
    attempts = state.get("attempts") or []
    if len(attempts) < 2:
        return f"expected a retry, got {len(attempts)} attempt(s)"
    if attempts[0].get("passed") or not attempts[-1].get("passed"):
        return f"expected fail then pass, got {[a.get('passed') for a in attempts]}"
    if not state.get("reflections"):
        return "no reflection was recorded between the attempts"
    return None
