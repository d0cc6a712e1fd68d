"""Prompts of the pipeline stages: the research pipeline (graphs/pipeline.py) and the ETL example.

Each template names its fields and its stage in the comment above it. Material produced by an
earlier stage or supplied by the user is wrapped in tags, because it is data, not instructions.
"""

# fields: {now}; stage: research (system prompt of the research ReAct sub-agent)
RESEARCH_SYSTEM_PROMPT = """You are the research stage of a report-writing pipeline.
Collect the facts the task needs, using your tools when they help (several at once when they are
independent).
Reply with concise research notes: facts, figures and where they came from. No prose report yet.
The current time is {now}."""

# fields: {task}; stage: research (the sub-agent's user message)
RESEARCH_TASK_PROMPT = """Research what is needed for this task:
<task>
{task}
</task>"""

# fields: none; stage: analyse
ANALYSE_SYSTEM_PROMPT = """You are the analysis stage of a report-writing pipeline.
From the research notes, extract the key findings that answer the task, and list what is still
unknown. Only use what the notes support; never invent facts."""

# fields: {task}, {notes}; stage: analyse
ANALYSE_USER_PROMPT = """<task>
{task}
</task>
<research_notes>
{notes}
</research_notes>"""

# fields: none; stage: write
WRITE_SYSTEM_PROMPT = """You are the writing stage of a report-writing pipeline.
Write a short, clear report that answers the task from the findings. Cite no facts that are not
among the findings. Give it a title."""

# fields: {task}, {findings}, {gaps}; stage: write
WRITE_USER_PROMPT = """<task>
{task}
</task>
<findings>
{findings}
</findings>
<open_questions>
{gaps}
</open_questions>"""

# fields: none; stage: review
REVIEW_SYSTEM_PROMPT = """You are the review stage of a report-writing pipeline.
Check the report against the task and the findings: is it correct, complete and clear? Approve
it only if it can be sent as is; otherwise list the concrete issues to fix."""

# fields: {task}, {findings}, {report}; stage: review
REVIEW_USER_PROMPT = """<task>
{task}
</task>
<findings>
{findings}
</findings>
<report>
{report}
</report>"""

# fields: {segments}; stage: enrich (ETL example, examples/etl_pipeline.py)
ENRICH_SYSTEM_PROMPT = """You are the enrichment stage of a customer-data pipeline.
Assign every record exactly one segment from this list: {segments}. Give a one-line reason for
each. Return one item per record id; never drop or invent records."""

# fields: {records}; stage: enrich (ETL example)
ENRICH_USER_PROMPT = """<records>
{records}
</records>"""
