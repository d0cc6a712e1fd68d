"""An ETL-style pipeline built with `build_pipeline`: extract → validate → enrich → load.

- extract: parse the CSV text given as `data["csv"]` into records (deterministic).
- validate: check every record (id, name, an e-mail with '@'); any invalid record stops the run at
  this stage with the problems in `error`. Fix the records and resume from `validate` with
  `resume_pipeline(graph, config, stage_inputs={"validate": {"records": [...]}})`.
- enrich: one structured model call assigns every customer a segment.
- load: write the records to the run's store under ("etl", "customers"), keyed by id.

Model calls: exactly 1 (enrich). Run it offline:

    python -m examples.etl_pipeline
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from graphs.pipeline import PipelineInput, PipelineOutput, PipelineState, build_pipeline
from nodes.context import Context
from nodes.model import ModelOverride
from nodes.pipelines import PipelineView, StageContext, StageResult, StageSpec
from nodes.prompts.pipeline import ENRICH_SYSTEM_PROMPT, ENRICH_USER_PROMPT
from nodes.structured import ask_structured

SEGMENTS = ("enterprise", "smb", "consumer")
LOAD_NAMESPACE = ("etl", "customers")
REQUIRED_FIELDS = ("id", "name", "email")


class SegmentAssignment(BaseModel):
    """The segment chosen for one customer record."""

    id: str = Field(description="The record's id, exactly as given.")
    segment: Literal["enterprise", "smb", "consumer"]
    reason: str = Field(description="One line on why.")


class Enrichment(BaseModel):
    """Segments for every record."""

    items: list[SegmentAssignment]


async def extract(csv_text: str, stage: StageContext) -> dict[str, Any]:
    """Parse CSV text (header row first) into a list of records."""
    rows = list(csv.DictReader(io.StringIO(csv_text.strip())))
    return {"records": [{k.strip(): (v or "").strip() for k, v in row.items()} for row in rows]}


def record_problems(record: Mapping[str, Any]) -> list[str]:
    """What is wrong with one record (empty when it is valid)."""
    where = f"record {record.get('id') or '?'}"
    problems = [f"{where}: missing {name!r}" for name in REQUIRED_FIELDS if not record.get(name)]
    email = str(record.get("email") or "")
    if email and "@" not in email:
        problems.append(f"{where}: email {email!r} has no '@'")
    return problems


async def validate(stage_input: Mapping[str, Any], stage: StageContext) -> dict[str, Any]:
    """Keep the records and list every problem found in them."""
    records = list(stage_input.get("records") or [])
    problems = [p for record in records for p in record_problems(record)]
    return {"records": records, "problems": problems}


def no_problems(output: Any) -> str | None:
    """Validator of the validate stage: every record must be valid, and there must be some."""
    if not output.get("records"):
        return "no records to load"
    if output.get("problems"):
        return "; ".join(output["problems"])
    return None


async def enrich(stage_input: Mapping[str, Any], stage: StageContext) -> StageResult:
    """Ask the model for a segment per record (one structured call)."""
    records = list(stage_input["records"])
    answer = await ask_structured(
        Enrichment,
        [
            SystemMessage(ENRICH_SYSTEM_PROMPT.format(segments=", ".join(SEGMENTS))),
            HumanMessage(ENRICH_USER_PROMPT.format(records=json.dumps(records, indent=1))),
        ],
        role="worker",
        context=stage.context,
        model=stage.model,
    )
    segments = {item.id: item.segment for item in answer.value.items}
    enriched = [{**r, "segment": segments.get(r["id"])} for r in records]
    return StageResult(output={"records": enriched}, usage=answer.usage)


def every_record_has_a_segment(output: Any) -> str | None:
    """Validator of the enrich stage: no record may be left without a segment."""
    missing = [r["id"] for r in output["records"] if r.get("segment") not in SEGMENTS]
    return f"no valid segment for record(s) {', '.join(missing)}" if missing else None


async def load(stage_input: Mapping[str, Any], stage: StageContext) -> dict[str, Any]:
    """Write the records to the run's store (nothing is written without one)."""
    records = list(stage_input["records"])
    if stage.store is None:
        return {"loaded": 0, "destination": None, "segments": {}}
    for record in records:
        await stage.store.aput(LOAD_NAMESPACE, record["id"], dict(record))
    counts = Counter(str(r["segment"]) for r in records)
    return {"loaded": len(records), "destination": "/".join(LOAD_NAMESPACE), "segments": counts}


def _csv_of(view: PipelineView) -> str:
    return str(view.data.get("csv") or "")


def _summary(outputs: Mapping[str, Any]) -> str:
    loaded = outputs["load"]
    if not loaded["destination"]:
        return "Validated and enriched the records; no store was configured, so nothing loaded."
    segments = ", ".join(f"{k}: {v}" for k, v in sorted(loaded["segments"].items()))
    return f"Loaded {loaded['loaded']} customer records into {loaded['destination']} ({segments})."


def build_etl_pipeline(
    *,
    model: ModelOverride = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
) -> CompiledStateGraph[PipelineState, Context, PipelineInput, PipelineOutput]:
    """Compile the ETL example (graph name `etl_pipeline`)."""
    stages = [
        StageSpec("extract", extract, input_transform=_csv_of, description="Parse the CSV."),
        StageSpec("validate", validate, output_validator=no_problems, description="Check records."),
        StageSpec(
            "enrich",
            enrich,
            output_validator=every_record_has_a_segment,
            description="Assign a segment per customer.",
        ),
        StageSpec("load", load, description="Write the records to the store."),
    ]
    return build_pipeline(
        stages,
        name="etl_pipeline",
        model=model,
        answer_from=_summary,
        checkpointer=checkpointer,
        store=store,
    )


SAMPLE_CSV = """id,name,email,company
c1,Ada Lovelace,ada@example.com,Analytical Engines Ltd
c2,Bob Smith,bob@example.com,
"""


async def _main() -> int:
    from langgraph.store.memory import InMemoryStore

    from nodes.offline import ScriptedChatModel

    model = ScriptedChatModel(
        replies=[
            {
                "json": {
                    "items": [
                        {"id": "c1", "segment": "enterprise", "reason": "company account"},
                        {"id": "c2", "segment": "consumer", "reason": "no company"},
                    ]
                }
            }
        ]
    )
    graph = build_etl_pipeline(model=model, store=InMemoryStore())
    result = await graph.ainvoke({"task": "import customers", "data": {"csv": SAMPLE_CSV}})
    sys.stdout.write(f"{result['final_answer']}\n")
    return 0 if result["success"] else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
