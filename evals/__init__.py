"""Evaluation suites for `weft eval`: the suite schema, the checks and the scoring maths.

`evals/smoke.yaml` is the bundled suite (one scripted scenario or more per pattern; `weft eval
smoke` finds it from any working directory). The runner and the report live with the CLI in
`graphs/cli_eval.py`; everything here is pure and unit-tested on its own.

Like `graphs/cli.py`, this package sits at the top of the layers: it may read the graph
registry, and nothing under `graphs/`, `nodes/`, `tools/` or `memory/` imports it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_suite(name: str) -> Path | None:
    """The path of a suite shipped in this package (`"smoke"` -> evals/smoke.yaml), or None."""
    folder = resources.files(__name__)
    for suffix in (".yaml", ".yml", ".json"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return Path(str(candidate))
    return None


def bundled_suites() -> list[str]:
    """Names of the suites shipped in this package."""
    folder = resources.files(__name__)
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in folder.iterdir()
        if entry.name.endswith((".yaml", ".yml", ".json"))
    )
