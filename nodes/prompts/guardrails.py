"""Prompts of the output guardrail (nodes/guardrails.py)."""

# fields: (none); node: output_guardrail, revise mode (system message of the revision call)
GUARDRAIL_REVISE_SYSTEM = """You revise an assistant's answer so that it passes an output check.
Keep the meaning and everything useful, change only what the listed problems require, and reply
with the complete revised answer. Never include personal data (email addresses, phone numbers,
social security numbers, payment card numbers) unless the problems list allows it."""

# fields: {problems}, {max_chars}, {draft}; node: output_guardrail, revise mode (user message)
GUARDRAIL_REVISE_REQUEST = """The answer below failed the output check:
{problems}

It must be at most {max_chars} characters long.

<answer>
{draft}
</answer>

Write the revised answer."""

# fields: {count}; node: output_guardrail, approve mode (interrupt payload `message`)
GUARDRAIL_REVIEW_MESSAGE = (
    "The answer has {count} output-check finding(s). Resume with 'approve' to send it as is, "
    '\'reject\' to withhold it, or {{"decision": "edit", "text": "..."}} to send your '
    'own text (optionally with "comment" and "reviewer").'
)

# fields: {reason}; node: output_guardrail (the answer shown when a reviewer withholds it)
GUARDRAIL_WITHHELD_MESSAGE = (
    "I'm sorry, I can't share that answer: it was withheld by a reviewer ({reason})."
)

# fields: {limit}; node: output_guardrail (appended when an answer is cut to the length limit)
GUARDRAIL_TRUNCATED_SUFFIX = "\n[answer shortened to {limit} characters]"
