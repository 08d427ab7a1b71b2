"""Checks of one expression against the model's definitions: names, calls and their arity,
`integrate`/`ode`, the distribution on the right of `~`, and declared types.

Split from check.py by job: check.py walks the statements and the defs and calls these for
each expression, type and distribution it meets; the tables of where names are defined
come from definitions.py. Each mistake is added to the shared `Diagnostics`, so that all
of a file's independent mistakes are reported together.
"""

from __future__ import annotations

from pplc.errors import did_you_mean
from pplc.frontend import ast
from pplc.frontend.definitions import CONSTANTS, SPECIAL_FORMS
from pplc.frontend.habits import distribution_hint, type_hint
from pplc.frontend.library import DISTRIBUTIONS, FUNCTIONS, bind_arguments

TYPES = {"real", "int", "positive", "unit", "simplex", "ordered", "positive_ordered",
         "corr_cholesky", "cov"}
SUPPORTED_TYPES = TYPES
# Special forms: (arguments before the function's extra args, arguments f takes before them).
_SPECIAL_ARITY = {"integrate": (3, 1), "ode": (4, 2)}  # integrate(f, a, b, ...): f(x, ...)


def check_type(type_, scope, defs, source, diags):
    """A declared type: a known base, bounds only `lower=`/`upper=` on real and int, each
    once, a shape of sizes; its bound and size expressions are checked like any other."""
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
        check_expr(bound.value, scope, defs, source, diags)
    names = [b.name for b in type_.bounds]
    for name in set(names):
        if names.count(name) > 1:
            diags.add(f"bound '{name}' is given twice", source, type_.span)
    for size in type_.shape:
        if isinstance(size, ast.Slice):
            diags.add("a shape is a list of sizes, not a slice", source, size.span)
        else:
            check_expr(size, scope, defs, source, diags)


def check_distribution(expr, scope, defs, source, diags, *, inner=False):
    """The right side of `~`: a known distribution bound to its parameters; a wrapper's
    `dist` is checked as a distribution itself (`inner`: one wrapper may not wrap another)."""
    if not isinstance(expr, ast.Call):
        diags.add("the right side of '~' must be a distribution, such as Normal(0, 1)",
                  source, expr.span)
        check_expr(expr, scope, defs, source, diags)
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
                check_distribution(arg, scope, defs, source, diags, inner=True)
        else:
            check_expr(arg, scope, defs, source, diags)


def check_expr(expr, scope, defs, source, diags, *, local_names=None):
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

