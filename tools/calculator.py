"""`calculate`: arithmetic through a small AST evaluator (no `eval`, bounded work)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 1000
MAX_INT_BITS = 4096

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalculationError(ToolException):
    """The expression is not allowed or cannot be evaluated; the text says how to fix it."""


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Supports numbers, + - * / // % **, parentheses, the constants pi, e, tau and the functions
    abs, round, min, max, sqrt, exp, log, log10, sin, cos, tan, floor, ceil.

    Raises:
        CalculationError: for anything else, too-large work, or math errors.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(
            f"expression is {len(expression)} characters; the limit is {MAX_EXPRESSION_CHARS}"
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculationError(f"not a valid arithmetic expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculationError(f"expression has more than {MAX_NODES} parts; split it up")
    try:
        value: int | float = _eval(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError) as exc:
        raise CalculationError(f"cannot evaluate {expression!r}: {exc}") from None
    return value


def _eval(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculationError(
            f"unknown name {node.id!r}; known constants: {', '.join(_CONSTANTS)}"
        )
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"exponent {right} is larger than {MAX_EXPONENT}")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = _FUNCTIONS.get(node.func.id)
        if func is None:
            raise CalculationError(
                f"unknown function {node.func.id!r}; known: {', '.join(_FUNCTIONS)}"
            )
        return _bounded(func(*(_eval(arg) for arg in node.args)))
    raise CalculationError(
        f"{type(node).__name__} is not allowed; use numbers, operators and known functions"
    )


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculationError(f"result has more than {MAX_INT_BITS} bits")
    if isinstance(value, complex):
        raise CalculationError("result is a complex number; only real results are supported")
    return value


class CalculateArgs(BaseModel):
    """Arguments of `calculate`."""

    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
        description="Arithmetic expression, e.g. '(3 + 4) * 2 ** 3' or 'sqrt(2) * pi'.",
    )


@tool("calculate", args_schema=CalculateArgs)
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result.

    Supports + - * / // % **, parentheses, pi, e, and abs, round, min, max, sqrt, exp, log,
    log10, sin, cos, tan, floor, ceil.
    """
    result = evaluate(expression)
    if isinstance(result, float) and result.is_integer() and abs(result) < 1e15:
        return str(int(result))
    return str(result)
