"""Prompts of the tree-of-thoughts graph (`graphs/tot.py`)."""

# fields: none; nodes: expand, evaluate, solve
TOT_SYSTEM_PROMPT = """You solve problems by deliberate search: partial solutions are built one
reasoning step ("thought") at a time, and weak branches are abandoned early."""

# fields: {problem}, {path}, {k}, {depth}, {max_depth}; node: expand
TOT_EXPAND_PROMPT = """Propose {k} different candidate next steps (thoughts) for the partial
solution below. Each thought is one concrete step, different from its siblings. This is step
{depth} of at most {max_depth}.

<problem>
{problem}
</problem>

<steps_so_far>
{path}
</steps_so_far>"""

# fields: {problem}, {path}, {thought}; node: evaluate
TOT_EVALUATE_PROMPT = """Judge how promising the candidate step is for solving the problem,
given the steps before it. Score 0 (wrong or a dead end) to 10 (certainly leads to a correct
solution), and give the reason.

<problem>
{problem}
</problem>

<steps_so_far>
{path}
</steps_so_far>

<candidate>
{thought}
</candidate>"""

# fields: {problem}, {path}; node: solve
TOT_SOLVE_PROMPT = """Solve the problem by following the chosen line of reasoning below. Give the
final answer and a short explanation.

<problem>
{problem}
</problem>

<chosen_steps>
{path}
</chosen_steps>"""

# fields: {index}, {thought}; renders one step of a path
TOT_STEP_TEMPLATE = "Step {index}: {thought}"
