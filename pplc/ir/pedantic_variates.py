"""Where a `factor` is a density of a nonlinear function of a parameter (pedantic rule 5):
user functions inlined, then each read of a parameter in a factor classed as a variate of a
density (a term of the base of an even power or of `abs`) or as any other read.

Split from pedantic.py by job: pedantic.py holds the rule and its message, built on the
reads this module finds; constants are folded by pedantic_values.py.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping

import networkx as nx

from pplc.errors import Span
from pplc.frontend import ast
from pplc.ir.graph import Graph, Kind
from pplc.ir.pedantic_values import constant_value

# Calls linear in their arguments (rule 5): anything else of a parameter is nonlinear.
_LINEAR_CALLS = frozenset({"sum", "cumsum", "transpose", "concat", "stack", "diag"})


def datalike_names(graph: Graph) -> set[str]:
    """Data, observed variables, and deterministics computed from them alone."""
    out = {v.name for v in graph.of_kind(Kind.DATA, Kind.OBSERVED)}
    for variable in graph.of_kind(Kind.DETERMINISTIC):
        if not any(graph[a].kind is Kind.LATENT for a in nx.ancestors(graph.dag, variable.name)):
            out.add(variable.name)
    return out


def _substitute(node, env: Mapping[str, ast.Expr]):
    """`node` with each Name in `env` replaced (spans of the replacements kept)."""
    if isinstance(node, ast.Name):
        return env.get(node.id, node)
    if isinstance(node, tuple):
        return tuple(_substitute(item, env) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, Span):
        changes = {f.name: _substitute(getattr(node, f.name), env)
                   for f in dataclasses.fields(node) if f.name != "span"}
        return dataclasses.replace(node, **changes)
    return node


def inline_functions(expr, functions: Mapping[str, ast.FunctionDef], depth: int = 0):
    """User `def` calls replaced by their bodies (arguments substituted), recursively."""
    if depth > 20 or not functions:
        return expr
    if isinstance(expr, ast.Call) and expr.func in functions and not expr.keywords \
            and len(expr.args) == len(functions[expr.func].params):
        fn = functions[expr.func]
        env = dict(zip(fn.params, (inline_functions(a, functions, depth + 1) for a in expr.args)))
        for local in fn.body:
            env[local.name] = _substitute(local.value, env)
        return inline_functions(_substitute(fn.result, env), functions, depth + 1)
    if dataclasses.is_dataclass(expr) and not isinstance(expr, Span):
        changes = {}
        for f in dataclasses.fields(expr):
            value = getattr(expr, f.name)
            if isinstance(value, tuple):
                changes[f.name] = tuple(inline_functions(v, functions, depth) for v in value)
            elif f.name != "span" and dataclasses.is_dataclass(value):
                changes[f.name] = inline_functions(value, functions, depth)
        return dataclasses.replace(expr, **changes)
    return expr


def _deviation_base(node) -> ast.Expr | None:
    """The base of `b ** 2k`, `pow(b, 2k)` or `abs(b)`, else None."""
    if isinstance(node, ast.BinOp) and node.op == "**":
        base, exponent = node.left, node.right
    elif isinstance(node, ast.Call) and node.func == "pow" and len(node.args) == 2:
        base, exponent = node.args
    elif isinstance(node, ast.Call) and node.func == "abs" and len(node.args) == 1:
        return node.args[0]
    else:
        return None
    power = constant_value(exponent, {})
    return base if power is not None and power > 0 and power % 2 == 0 else None


def _terms(expr) -> tuple[list[ast.Expr], list[ast.Expr]]:
    """A deviation's base split into additive terms of its numerator, and the rest."""
    rest: list[ast.Expr] = []
    while isinstance(expr, ast.BinOp) and expr.op == "/":
        rest.append(expr.right)
        expr = expr.left
    terms: list[ast.Expr] = []

    def split(e):
        if isinstance(e, ast.BinOp) and e.op in ("+", "-"):
            split(e.left)
            split(e.right)
        elif isinstance(e, ast.UnaryOp) and e.op in "+-":
            split(e.operand)
        else:
            terms.append(e)

    split(expr)
    return terms, rest


def _linear(expr, name: str) -> bool:
    """Whether `expr` is affine in the variable `name` (or does not read it)."""
    if not _reads(expr, name):
        return True
    if isinstance(expr, ast.Name):
        return True
    if isinstance(expr, ast.Index):
        return _linear(expr.value, name) and not any(_reads(i, name) for i in expr.indices)
    if isinstance(expr, ast.UnaryOp) and expr.op in "+-":
        return _linear(expr.operand, name)
    if isinstance(expr, ast.BinOp):
        if expr.op in ("+", "-"):
            return _linear(expr.left, name) and _linear(expr.right, name)
        if expr.op in ("*", "@"):
            one_side = not _reads(expr.left, name) or not _reads(expr.right, name)
            return one_side and _linear(expr.left, name) and _linear(expr.right, name)
        if expr.op == "/":
            return not _reads(expr.right, name) and _linear(expr.left, name)
        return False
    if isinstance(expr, ast.Call):
        if expr.func == "dot" or expr.func in _LINEAR_CALLS or expr.func == "mean":
            return all(_linear(a, name) for a in expr.args) and (
                expr.func != "dot" or not all(_reads(a, name) for a in expr.args))
        return False
    if isinstance(expr, ast.ListExpr):
        return all(_linear(i, name) for i in expr.items)
    return False


def _reads(expr, name: str) -> bool:
    return any(n.id == name for n in ast.names_in(expr))


def parameter_reads(expr, latents: set[str], datalike: set[str]
                    ) -> Iterator[tuple[str, ast.Expr, bool]]:
    """(parameter, where, is_variate) for each read of a parameter in a factor expression."""
    base = _deviation_base(expr)
    if base is not None and not any(n.id in datalike for n in ast.names_in(base)):
        terms, rest = _terms(base)
        for term in terms:
            read = {n.id for n in ast.names_in(term)} & latents
            curved = sorted(n for n in read if not _linear(term, n))
            for name in curved:
                yield name, term, True
            for name in sorted(read - set(curved)):
                yield name, term, False
        for other in rest:
            yield from parameter_reads(other, latents, datalike)
        return
    if isinstance(expr, ast.Name):
        if expr.id in latents:
            yield expr.id, expr, False
        return
    for child in ast.children(expr):
        yield from parameter_reads(child, latents, datalike)
