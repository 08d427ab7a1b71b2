"""Static checks on the AST: names, definitions, calls, distribution arguments, types.

These need no data. Each mistake becomes a diagnostic at the offending span; all
independent mistakes in a file are collected and reported together (mypy's `Errors`).
Shape checks need the data's sizes and run when the model is conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from pplc.errors import Diagnostics, Span, did_you_mean
from pplc.frontend import ast
from pplc.frontend.habits import distribution_hint, type_hint
from pplc.frontend.library import DISTRIBUTIONS, FUNCTIONS, bind_arguments
from pplc.frontend.nesting import check_expanded_depth

CONSTANTS = {"inf": float("inf"), "pi": 3.141592653589793}
TYPES = {"real", "int", "positive", "unit", "simplex", "ordered", "positive_ordered",
         "corr_cholesky", "cov"}
SUPPORTED_TYPES = TYPES
DECORATORS = {"centered", "noncentered"}
# Words of the language, and Python's, that cannot name a variable (docs/language.md lists
# them). `lambda` is not one: the language has no lambda expressions, and statisticians
# name a Poisson rate `lambda`.
RESERVED = {"data", "factor", "for", "in", "def", "return", "extern", "if", "else", "and",
            "or", "not", "while", "import", "elif", "class", "from", "with", "range"}
SPECIAL_FORMS = set(ast.SPECIAL_FORMS)
# Special forms: (arguments before the function's extra args, arguments f takes before them).
_SPECIAL_ARITY = {"integrate": (3, 1), "ode": (4, 2)}  # integrate(f, a, b, ...): f(x, ...)


@dataclass
class Definitions:
    """Where each name of a model is defined."""

    data: dict[str, ast.DataDecl] = field(default_factory=dict)
    sampled: dict[str, list[ast.Sample]] = field(default_factory=dict)
    assigned: dict[str, list[ast.Assign]] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    externs: dict[str, ast.ExternDef] = field(default_factory=dict)
    # The name sets, cached: checks ask for them once per expression, and rebuilding them
    # each time made checking quadratic in the number of statements. The tables only grow
    # (by new keys), so their sizes tell when a cached set is stale.
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def variables(self) -> frozenset[str]:
        return self._cached("variables", (self.data, self.sampled, self.assigned))

    def callables(self) -> frozenset[str]:
        return self._cached("callables", (self.functions, self.externs))

    def _cached(self, key: str, tables: tuple[dict, ...]) -> frozenset[str]:
        sizes = tuple(len(t) for t in tables)
        hit = self._cache.get(key)
        if hit is None or hit[0] != sizes:
            hit = self._cache[key] = (sizes, frozenset().union(*tables))
        return hit[1]


def flatten(statements, plates=()) -> list[tuple[object, tuple[ast.For, ...]]]:
    """Every non-loop statement with the loops around it, outermost first."""
    out = []
    for s in statements:
        if isinstance(s, ast.For):
            out.extend(flatten(s.body, plates + (s,)))
        else:
            out.append((s, plates))
    return out


def check_program(program: ast.Program) -> Definitions:
    """Check a parsed model; return where each name is defined, or raise PplcError."""
    source = program.source
    diags = Diagnostics()
    defs = _collect_definitions(program, source, diags)
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


# ---------------------------------------------------------------- definitions


def _collect_definitions(program, source, diags) -> Definitions:
    defs = Definitions()
    first_seen: dict[str, Span] = {}
    for statement, loops in flatten(program.statements):
        if isinstance(statement, ast.DataDecl):
            if statement.name in defs.data:
                line = defs.data[statement.name].span.line
                diags.add(f"data '{statement.name}' is declared twice (first on line {line})",
                          source, statement.name_span)
                continue
            if loops:
                diags.add("a data declaration cannot be inside a loop", source, statement.span)
            defs.data[statement.name] = statement
        elif isinstance(statement, ast.Sample):
            defs.sampled.setdefault(statement.target.name, []).append(statement)
        elif isinstance(statement, ast.Assign):
            defs.assigned.setdefault(statement.target.name, []).append(statement)
        elif isinstance(statement, (ast.FunctionDef, ast.ExternDef)):
            table = defs.functions if isinstance(statement, ast.FunctionDef) else defs.externs
            if loops:
                diags.add("a function cannot be defined inside a loop", source, statement.span)
            if statement.name in first_seen:
                diags.add(f"function '{statement.name}' is defined twice (first on line "
                          f"{first_seen[statement.name].line})", source, statement.name_span)
                continue
            if statement.name in FUNCTIONS or statement.name in DISTRIBUTIONS \
                    or statement.name in SPECIAL_FORMS:
                diags.add(f"'{statement.name}' is a built-in name and cannot be redefined",
                          source, statement.name_span)
                continue
            first_seen[statement.name] = statement.name_span
            table[statement.name] = statement
    for name, samples in defs.sampled.items():
        if name in defs.assigned:
            other = defs.assigned[name][0]
            diags.add(f"'{name}' is defined both with '~' (line {samples[0].span.line}) and "
                      f"with '=' (line {other.span.line})", source, other.target.name_span,
                      hint="a variable is either random ('~') or deterministic ('='), not both")
        _check_pieces(name, samples, source, diags)
        for sample in samples:
            if sample.type is not None and sample.target.indices is not None:
                diags.add("a type annotation goes on a whole variable, not on an element",
                          source, sample.type.span)
            if sample.type is not None and name in defs.data:
                diags.add(f"'{name}' already has a type from its data declaration on line "
                          f"{defs.data[name].span.line}", source, sample.type.span)
    for name, assigns in defs.assigned.items():
        if name in defs.data:
            diags.add(f"'{name}' is data (line {defs.data[name].span.line}); it cannot also be "
                      "defined with '='", source, assigns[0].target.name_span)
        _check_pieces(name, assigns, source, diags)
    for name in defs.variables() & defs.callables():
        diags.add(f"'{name}' names both a function and a variable", source,
                  (defs.functions.get(name) or defs.externs[name]).name_span)
    for name in defs.variables():
        if name in RESERVED:
            statement = (defs.data.get(name) or (defs.sampled.get(name) or
                                                 defs.assigned.get(name))[0])
            span = statement.name_span if isinstance(statement, ast.DataDecl) \
                else statement.target.name_span
            diags.add(f"'{name}' is a keyword and cannot be used as a variable name", source,
                      span)
            continue
        # Variables may shadow functions, types and `pi` (they never meet in one position);
        # `inf` is a number literal of the language.
        if name == "inf":
            statement = (defs.data.get(name) or (defs.sampled.get(name) or
                                                 defs.assigned.get(name))[0])
            span = statement.name_span if isinstance(statement, ast.DataDecl) \
                else statement.target.name_span
            diags.add(f"'{name}' is a built-in name and cannot be used as a variable",
                      source, span)
    return defs


def _check_pieces(name, statements, source, diags):
    """A whole-variable definition must be the only one."""
    whole = [s for s in statements if s.target.indices is None]
    if whole and len(statements) > 1:
        other = next(s for s in statements if s is not whole[0])
        first, second = sorted([whole[0], other], key=lambda s: s.span.line)
        diags.add(f"'{name}' is defined twice (first on line {first.span.line})", source,
                  second.target.name_span,
                  hint="each variable has exactly one definition; an array may be defined "
                       "element by element in loops")


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
                _check_expr(bound, seen, defs, source, diags)
        seen.add(loop.var)


def _check_statement(statement, loops, defs, source, diags):
    scope = {loop.var for loop in loops}
    if isinstance(statement, ast.DataDecl):
        _check_type(statement.type, set(), defs, source, diags)
    elif isinstance(statement, ast.Sample):
        _check_target(statement.target, scope, defs, source, diags)
        if statement.type is not None:
            _check_type(statement.type, scope, defs, source, diags)
        _check_distribution(statement.distribution, scope, defs, source, diags)
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
        _check_expr(statement.value, scope, defs, source, diags)
    elif isinstance(statement, ast.Factor):
        _check_expr(statement.expr, scope, defs, source, diags)


def _check_target(target, scope, defs, source, diags):
    for index in target.indices or ():
        _check_expr(index, scope, defs, source, diags)


def _check_type(type_, scope, defs, source, diags):
    if type_.base not in TYPES:
        diags.add(f"unknown type '{type_.base}'", source, type_.span,
                  hint=type_hint(type_.base) or did_you_mean(type_.base, TYPES)
                  or "types: " + ", ".join(sorted(TYPES)))
        return
    if type_.base not in SUPPORTED_TYPES:
        diags.add(f"type '{type_.base}' is not supported yet by this version of pplc",
                  source, type_.span, hint="supported: " + ", ".join(sorted(SUPPORTED_TYPES)))
    for bound in type_.bounds:
        if bound.name not in ("lower", "upper"):
            diags.add(f"unknown type bound '{bound.name}'", source, bound.span,
                      hint="a type takes lower= and upper=")
        elif type_.base not in ("real", "int"):
            diags.add(f"type '{type_.base}' takes no bounds", source, bound.span,
                      hint=f"write real(lower=..., upper=...) instead of {type_.base}(...)")
        _check_expr(bound.value, scope, defs, source, diags)
    names = [b.name for b in type_.bounds]
    for name in set(names):
        if names.count(name) > 1:
            diags.add(f"bound '{name}' is given twice", source, type_.span)
    for size in type_.shape:
        if isinstance(size, ast.Slice):
            diags.add("a shape is a list of sizes, not a slice", source, size.span)
        else:
            _check_expr(size, scope, defs, source, diags)


def _check_distribution(expr, scope, defs, source, diags, *, inner=False):
    if not isinstance(expr, ast.Call):
        diags.add("the right side of '~' must be a distribution, such as Normal(0, 1)",
                  source, expr.span)
        _check_expr(expr, scope, defs, source, diags)
        return
    if expr.func not in DISTRIBUTIONS:
        if expr.func in FUNCTIONS or expr.func in defs.callables():
            diags.add(f"'{expr.func}' is a function, not a distribution", source, expr.func_span,
                      hint="the right side of '~' must be a distribution, such as Normal(0, 1)")
        else:
            diags.add(f"unknown distribution '{expr.func}'", source, expr.func_span,
                      hint=distribution_hint(expr.func)
                      or did_you_mean(expr.func, DISTRIBUTIONS))
        return
    info = DISTRIBUTIONS[expr.func]
    try:
        positional, _ = bind_arguments(info, len(expr.args), [k.name for k in expr.keywords])
    except ValueError as exc:
        diags.add(str(exc), source, expr.span)
        positional = ()
    named = list(zip(positional, expr.args)) + [(k.name, k.value) for k in expr.keywords]
    for param, arg in named:
        if info.wrapper and param == "dist":
            if inner:
                diags.add(f"{expr.func} cannot wrap another {expr.func}", source, expr.span)
            elif isinstance(arg, ast.Call) and arg.func in DISTRIBUTIONS \
                    and DISTRIBUTIONS[arg.func].event_ndim > 0:
                diags.add(f"{expr.func} applies to distributions of scalars, not to "
                          f"{arg.func}", source, arg.span)
            else:
                _check_distribution(arg, scope, defs, source, diags, inner=True)
        else:
            _check_expr(arg, scope, defs, source, diags)


def _check_expr(expr, scope, defs, source, diags, *, local_names=None):
    """Names exist, calls are to known functions with the right arity."""
    # Membership is tested table by table: building the union of every model variable for
    # each expression would make checking a long model quadratic.
    tables = (defs.variables(), scope, CONSTANTS) if local_names is None \
        else (local_names, CONSTANTS)
    for node in ast.walk(expr):
        if isinstance(node, ast.Name) and not any(node.id in t for t in tables):
            known = set().union(*tables)
            if local_names is not None and node.id in defs.variables():
                diags.add(f"function bodies can only read their parameters and local names, "
                          f"not the model variable '{node.id}'", source, node.span,
                          hint=f"pass '{node.id}' as an argument")
                continue
            if node.id in defs.callables() or node.id in FUNCTIONS:
                diags.add(f"'{node.id}' is a function; call it with arguments", source, node.span)
                continue
            diags.add(f"unknown name '{node.id}'", source, node.span,
                      hint=did_you_mean(node.id, known))
        elif isinstance(node, ast.Call):
            _check_call(node, defs, source, diags)


def _check_call(call, defs, source, diags):
    name = call.func
    if name in DISTRIBUTIONS:
        diags.add(f"distribution '{name}' cannot be used as a value", source, call.func_span,
                  hint="a distribution goes on the right of '~': x ~ " + name + "(...)")
        return
    if name in SPECIAL_FORMS:
        _check_special_form(call, defs, source, diags)
        return
    if call.keywords:
        diags.add(f"function '{name}' takes no keyword arguments", source, call.keywords[0].span)
    if name in FUNCTIONS:
        low, high = FUNCTIONS[name]
    elif name in defs.functions:
        low = high = len(defs.functions[name].params)
    elif name in defs.externs:
        low = high = len(defs.externs[name].params)
    else:
        hint = did_you_mean(name, set(FUNCTIONS) | defs.callables())
        if distribution_hint(name):
            hint = distribution_hint(name)
        elif name[:1].isupper() and not hint:
            hint = did_you_mean(name, DISTRIBUTIONS)
        diags.add(f"unknown function '{name}'", source, call.func_span, hint=hint)
        return
    n = len(call.args)
    if n < low or (high is not None and n > high):
        expected = str(low) if low == high else (f"at least {low}" if high is None
                                                 else f"{low} to {high}")
        diags.add(f"'{name}' takes {expected} argument{'s' if expected != '1' else ''}, "
                  f"{n} given", source, call.span)


def _check_special_form(call, defs, source, diags):
    """integrate(f, a, b, args...) and ode(f, y0, t0, ts, args...): f is a def or extern."""
    fixed, own = _SPECIAL_ARITY[call.func]
    usage = {"integrate": "integrate(f, a, b, args...)",
             "ode": "ode(f, y0, t0, ts, args...)"}[call.func]
    if call.keywords:
        diags.add(f"'{call.func}' takes no keyword arguments", source, call.keywords[0].span)
    if len(call.args) < fixed:
        given = len(call.args)
        diags.add(f"'{call.func}' needs at least {fixed} arguments: {usage}; {given} "
                  f"given", source, call.span,
                  hint=f"the first {fixed} are {usage.split('(')[1].split(', args')[0]}; "
                       "any more are passed on to the function")
        return
    fn = call.args[0]
    if not isinstance(fn, ast.FunctionRef):
        diags.add(f"the first argument of '{call.func}' must be the name of a function "
                  "(a def or an extern def)", source, fn.span, hint=usage)
        return
    if fn.name in defs.functions:
        params = len(defs.functions[fn.name].params)
    elif fn.name in defs.externs:
        params = len(defs.externs[fn.name].params)
    else:
        diags.add(f"unknown function '{fn.name}'", source, fn.span,
                  hint=did_you_mean(fn.name, defs.callables()) or
                  f"define it with `def {fn.name}(...):` or `extern def {fn.name}(...)`")
        return
    expected = own + len(call.args) - fixed
    if params != expected:
        what = "(x, args...)" if call.func == "integrate" else "(t, y, args...)"
        diags.add(f"'{fn.name}' takes {params} parameters, but {call.func} calls it with "
                  f"{expected}: f{what}", source, fn.span)


def _check_function(fn, defs, source, diags):
    local: set[str] = set()
    params = set(fn.params)
    if len(params) != len(fn.params):
        diags.add(f"function '{fn.name}' repeats a parameter name", source, fn.name_span)
    for assign in fn.body:
        _check_expr(assign.value, set(), defs, source, diags, local_names=params | local)
        local.add(assign.name)
    _check_expr(fn.result, set(), defs, source, diags, local_names=params | local)


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
