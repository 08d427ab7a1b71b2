"""Static checks on the AST: names, definitions, calls, distribution arguments, types.

These need no data. Each mistake becomes a diagnostic at the offending span; all
independent mistakes in a file are collected and reported together (mypy's `Errors`).
Shape checks need the data's sizes and run when the model is conditioned.

This module walks the program: the loops, each statement, the defs and the calls between
them (recursion is refused, then the depth of calls written out is bounded). Where each
name is defined is collected by definitions.py, and each expression, type and distribution
is checked by expression_checks.py.
"""

from __future__ import annotations

import networkx as nx

from pplc.errors import Diagnostics, did_you_mean
from pplc.frontend import ast
# The language's tables stay importable from here, as before the split (the backends import
# CONSTANTS, and the tests RESERVED, from pplc.frontend.check).
from pplc.frontend.definitions import (CONSTANTS, RESERVED, SPECIAL_FORMS,  # noqa: F401
                                       Definitions, collect_definitions, flatten)
from pplc.frontend.expression_checks import (SUPPORTED_TYPES, TYPES,  # noqa: F401
                                             check_distribution, check_expr, check_type)
from pplc.frontend.nesting import check_expanded_depth

DECORATORS = {"centered", "noncentered"}


def check_program(program: ast.Program) -> Definitions:
    """Check a parsed model; return where each name is defined, or raise PplcError."""
    source = program.source
    diags = Diagnostics()
    defs = collect_definitions(program, source, diags)
    names = defs.variables()
    for statement, loops in flatten(program.statements):
        _check_loops(loops, names, defs, source, diags)
        _check_statement(statement, loops, defs, source, diags)
    for fn in defs.functions.values():
        _check_function(fn, defs, source, diags)
    calls = _call_graph(defs)
    if not _check_recursion(calls, defs, source, diags):
        roots = [(e, len(loops)) for statement, loops in flatten(program.statements)
                 for e in _statement_expressions(statement)]
        check_expanded_depth(defs.functions, list(reversed(list(nx.topological_sort(calls)))),
                             roots, source, diags)
    diags.raise_if_any()
    return defs


def _statement_expressions(statement) -> list:
    if isinstance(statement, ast.Sample):
        return [statement.distribution]
    if isinstance(statement, ast.Assign):
        return [statement.value]
    if isinstance(statement, ast.Factor):
        return [statement.expr]
    return []


# ---------------------------------------------------------------- statements


def _check_loops(loops, names, defs, source, diags):
    seen: set[str] = set()
    for loop in loops:
        if loop.var in RESERVED:
            diags.add(f"'{loop.var}' is a keyword and cannot be used as a loop variable",
                      source, loop.var_span)
        if loop.var in names or loop.var in defs.callables() or loop.var == "inf":
            diags.add(f"loop variable '{loop.var}' hides the model variable of the same name",
                      source, loop.var_span)
        if loop.var in seen:
            diags.add(f"loop variable '{loop.var}' is already used by an enclosing loop",
                      source, loop.var_span)
        for bound in (loop.start, loop.stop):
            if bound is not None:
                check_expr(bound, seen, defs, source, diags)
        seen.add(loop.var)


def _check_statement(statement, loops, defs, source, diags):
    scope = {loop.var for loop in loops}
    if isinstance(statement, ast.DataDecl):
        check_type(statement.type, set(), defs, source, diags)
    elif isinstance(statement, ast.Sample):
        _check_target(statement.target, scope, defs, source, diags)
        if statement.type is not None:
            check_type(statement.type, scope, defs, source, diags)
        check_distribution(statement.distribution, scope, defs, source, diags)
        spans = statement.decorator_spans or (statement.span,) * len(statement.decorators)
        for decorator, span in zip(statement.decorators, spans):
            if decorator not in DECORATORS:
                diags.add(f"unknown decorator '@{decorator}'", source, span,
                          hint=did_you_mean(decorator, DECORATORS)
                          or "the decorators are @centered and @noncentered")
        if set(DECORATORS) <= set(statement.decorators):
            diags.add("@centered and @noncentered cannot both apply", source, statement.span)
    elif isinstance(statement, ast.Assign):
        _check_target(statement.target, scope, defs, source, diags)
        check_expr(statement.value, scope, defs, source, diags)
    elif isinstance(statement, ast.Factor):
        check_expr(statement.expr, scope, defs, source, diags)


def _check_target(target, scope, defs, source, diags):
    for index in target.indices or ():
        check_expr(index, scope, defs, source, diags)


# ---------------------------------------------------------------- defs


def _check_function(fn, defs, source, diags):
    local: set[str] = set()
    params = set(fn.params)
    if len(params) != len(fn.params):
        diags.add(f"function '{fn.name}' repeats a parameter name", source, fn.name_span)
    for assign in fn.body:
        check_expr(assign.value, set(), defs, source, diags, local_names=params | local)
        local.add(assign.name)
    check_expr(fn.result, set(), defs, source, diags, local_names=params | local)


def _call_graph(defs) -> nx.DiGraph:
    """Which def calls which, directly or by passing it to `integrate`/`ode`."""
    calls = nx.DiGraph()
    for fn in defs.functions.values():
        calls.add_node(fn.name)
        for expr in [a.value for a in fn.body] + [fn.result]:
            for node in ast.walk(expr):
                callee = node.func if isinstance(node, ast.Call) else \
                    node.name if isinstance(node, ast.FunctionRef) else None
                if callee in defs.functions:
                    calls.add_edge(fn.name, callee)
    return calls


def _check_recursion(calls, defs, source, diags) -> bool:
    """Report each group of defs that call each other in a cycle, once, at its first def,
    with the shortest cycle through it (`f -> g -> f`); True if there was any."""
    line = {name: fn.span.line for name, fn in defs.functions.items()}
    groups = [sorted(g, key=line.get) for g in nx.strongly_connected_components(calls)
              if len(g) > 1 or calls.has_edge(next(iter(g)), next(iter(g)))]
    for group in sorted(groups, key=lambda g: line[g[0]]):
        start = group[0]
        within = calls.subgraph(group)
        back = min((p for p in within.predecessors(start)),
                   key=lambda p: (nx.shortest_path_length(within, start, p), line[p]))
        cycle = nx.shortest_path(within, start, back) if back != start else [start]
        chain = " -> ".join(cycle + [start])
        diags.add(f"recursive function: {chain}", source, defs.functions[start].name_span,
                  hint="functions cannot call themselves; write the recursion as a "
                       "piecewise array definition")
    return bool(groups)
