"""Texts of the tool gate, the approval gate and the tool executor (nodes/tool_gate.py,
nodes/approval.py, nodes/tool_node.py). Most are read by the model as error ToolMessages, so
each says what happened and what the model can do instead."""

# fields: {tool}, {allowed}; node: tool gate (a tool outside the run's subset)
UNKNOWN_TOOL_MESSAGE = (
    "Error: there is no tool named {tool!r}. Available tools: {allowed}. Call one of those instead."
)

# fields: {tool}, {allowed}; node: tool gate (plan-time allow-list)
NOT_IN_PLAN_MESSAGE = (
    "Error: {tool!r} is not among the tools fixed for this task ({allowed}); the call was "
    "denied. Finish the task with those tools or explain what is missing."
)

# fields: {tool}, {problems}; node: tool gate / approval gate (schema validation)
INVALID_ARGS_MESSAGE = (
    "Error: invalid arguments for {tool!r}: {problems}. Fix the arguments and call again."
)

# fields: {tool}, {reason}; node: tool gate (policy deny or default deny)
POLICY_DENIED_MESSAGE = (
    "Error: the call to {tool!r} was denied by policy: {reason}. Do not retry it; use another "
    "approach or tell the user it is not permitted."
)

# fields: {tool}, {reviewer}, {comment}; node: approval gate (reviewer rejected)
REJECTED_MESSAGE = (
    "Error: a reviewer ({reviewer}) rejected the call to {tool!r}: {comment}. Do not retry it "
    "unchanged."
)

# fields: {tool}, {deadline}; node: approval gate (answer after the deadline)
EXPIRED_MESSAGE = (
    "Error: the call to {tool!r} was not run: its approval deadline ({deadline}) passed before "
    "a decision, so it counts as rejected."
)

# fields: {tool}, {answer}; node: approval gate (an answer it cannot read)
UNREADABLE_DECISION_MESSAGE = (
    "Error: the call to {tool!r} was not run: the review answer {answer} was not "
    "'approve', 'reject' or 'edit', so it counts as rejected."
)

# fields: {tool}; node: tool executor (a call that reached execution without a gate verdict
# that allows it, e.g. one needing review when no review ran)
NOT_REVIEWED_MESSAGE = (
    "Error: the call to {tool!r} needs a human review that did not happen; it was not run."
)

# fields: {args}; node: tool executor (shown before the output of an edited call)
EDITED_NOTE = "Note: a reviewer changed the arguments of this call to {args}."

# fields: {tool}, {code}, {fallback}; node: tool executor (answer came from the fallback tool)
FALLBACK_NOTE = "Note: {tool!r} failed ({code}); this answer comes from its fallback {fallback!r}."

# fields: {tool}, {timeout}; node: tool executor
TIMEOUT_MESSAGE = (
    "Error: {tool!r} did not finish within {timeout:g} s and was stopped. Try a smaller "
    "request or another tool."
)

# fields: {tool}, {limit}, {wait}; node: tool executor
RATE_LIMITED_MESSAGE = (
    "Error: {tool!r} is rate limited ({limit}); try again in {wait:.0f} s or use another tool."
)

# fields: {tool}, {call_id}, {content}; node: tool executor (every tool output the model reads)
TOOL_OUTPUT_WRAPPER = '<tool_output tool="{tool}" call_id="{call_id}">\n{content}\n</tool_output>'

# fields: {count}; node: approval gate (interrupt payload headline)
APPROVAL_REQUEST_MESSAGE = (
    "{count} tool call(s) need review. Answer with a mapping from call id to "
    '{{"decision": "approve" | "reject" | "edit", "args": {{...}} (edit only), '
    '"comment": "...", "reviewer": "..."}}, or a bare "approve" / "reject" for all.'
)
