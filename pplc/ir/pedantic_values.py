"""What the pedantic rules (pedantic.py) can know of a model without running it: each
piece's distribution calls and their arguments by parameter name, the value of an
expression of numbers and scalar data, the scale of the data a parameter informs, and the
lowest value a parameter can take.

Split from pedantic.py by job: pedantic.py holds the rules and their words; this module
reads expressions and supports for them, and pedantic_variates.py reads factors.
"""

from __future__ import annotations

import math
from typing import Iterator, Mapping

import networkx as nx
import numpy as np

from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, bind_arguments
from pplc.ir.graph import Graph, Kind, Variable

# Declared types whose values are never below 0.
_NONNEGATIVE_TYPES = frozenset({"positive", "positive_ordered", "unit", "simplex", "cov"})
_NONNEGATIVE_SUPPORTS = frozenset({"positive", "unit", "simplex", "nonnegative_int", "boolean",
                                   "nonnegative_int_vector"})
_MATH = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "log10": math.log10}


def distribution_calls(variable: Variable) -> Iterator[ast.Call]:
    """Each piece's distribution call and, for `Truncated(D(...))`, the inner call too."""
    for piece in variable.pieces:
        call = piece.distribution
        while isinstance(call, ast.Call):
            yield call
            info = DISTRIBUTIONS.get(call.func)
            wrapped = info is not None and info.wrapper
            call = arguments_by_name(call).get("dist") if wrapped else None


def arguments_by_name(call: ast.Call) -> dict[str, ast.Expr]:
    """A distribution call's arguments by parameter name ({} if it does not bind)."""
    info = DISTRIBUTIONS.get(call.func)
    if info is None:
        return {}
    try:
        positional, _ = bind_arguments(info, len(call.args), [k.name for k in call.keywords])
    except ValueError:
        return {}
    return {**dict(zip(positional, call.args)), **{k.name: k.value for k in call.keywords}}


def variable_of(expr: ast.Expr) -> str | None:
    """`s` or `s[j]` -> "s"; anything else -> None."""
    if isinstance(expr, ast.Index):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def scalar_env(data) -> dict[str, float]:
    """Scalar numeric data by name, with pi and inf: the names `constant_value` reads."""
    env: dict[str, float] = {"pi": math.pi, "inf": math.inf}
    for name, value in (data or {}).items():
        array = np.asarray(value)
        if array.ndim == 0 and np.issubdtype(array.dtype, np.number):
            env[name] = float(array)
    return env


def constant_value(expr, env: Mapping[str, float]) -> float | None:
    """The value of an expression of numbers (and scalar data), or None."""
    if expr is None:
        return None
    if isinstance(expr, ast.Number):
        return float(expr.value)
    if isinstance(expr, ast.Name):
        return env.get(expr.id)
    if isinstance(expr, ast.UnaryOp) and expr.op in "+-":
        value = constant_value(expr.operand, env)
        return None if value is None else (value if expr.op == "+" else -value)
    if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "/", "**"):
        left, right = constant_value(expr.left, env), constant_value(expr.right, env)
        if left is None or right is None:
            return None
        try:
            return {"+": left + right, "-": left - right, "*": left * right,
                    "/": left / right if right else None, "**": left ** right}[expr.op]
        except (OverflowError, ZeroDivisionError):
            return None
    if isinstance(expr, ast.Call) and expr.func in _MATH and len(expr.args) == 1 \
            and not expr.keywords:
        value = constant_value(expr.args[0], env)
        try:
            return None if value is None else _MATH[expr.func](value)
        except (ValueError, OverflowError):
            return None
    return None


def data_scale(graph: Graph, name: str, data) -> float | None:
    """The largest finite |value| among the observed variables that `name` reaches."""
    if not data:
        return None
    scales = []
    for other in nx.descendants(graph.dag, name):
        if graph[other].kind is Kind.OBSERVED and other in data:
            values = np.abs(np.asarray(data[other], dtype=float))
            values = values[np.isfinite(values)]
            if values.size:
                scales.append(float(values.max()))
    scale = max(scales, default=0.0)
    return scale if scale > 0 else None


def lower_bound(variable: Variable, env) -> float | None:
    """The lowest value a parameter can take (its support narrowed by its declared type),
    or None when that depends on other variables."""
    declared = variable.declared_type
    if declared is not None:
        if declared.base in _NONNEGATIVE_TYPES:
            return 0.0
        lower = next((b.value for b in declared.bounds if b.name == "lower"), None)
        if lower is not None:
            value = constant_value(lower, env)
            if value is None or value >= 0:
                return value
    bounds = [_support_lower(piece.distribution, env) for piece in variable.pieces]
    if not bounds or any(b is None for b in bounds):
        return None
    return min(bounds)


def _support_lower(call, env) -> float | None:
    info = DISTRIBUTIONS.get(call.func) if isinstance(call, ast.Call) else None
    if info is None:
        return None
    kind = info.support.kind
    if kind in _NONNEGATIVE_SUPPORTS:
        return 0.0
    if kind == "real":
        return -math.inf
    if kind in ("interval", "int_interval"):
        args = arguments_by_name(call)
        lower = info.support.lower
        if isinstance(lower, str):
            if lower in args:
                return constant_value(args[lower], env)
            if info.wrapper:  # Truncated with no lower bound: the inner support's own
                return _support_lower(args.get("dist"), env)
            return None
        return float(lower) if isinstance(lower, (int, float)) else None
    return None
