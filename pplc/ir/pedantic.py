"""Pedantic mode: warnings about models that compile but are probably not what was meant.

Like stanc3's `--warn-pedantic` (Stan User's Guide, "Pedantic mode"), each rule reads the
graph, never the sampler, and reports a `Diagnostic` with severity "warning" at the most
useful span: the variable, the distribution call or the argument. The rules:

1. a very wide `Uniform(a, b)` prior on a parameter (b - a > 1e3, or, with data, more than
   100 times the largest magnitude in the data it informs);
2. a parameter that nothing observed and no `factor` depends on: its posterior is its prior;
3. a positive-only argument (scale, rate, concentration, df, ...) given a parameter whose
   support reaches below 0 (`s ~ Normal(0, 1)` then `Normal(mu, s)`);
4. the "vague" `Gamma(eps, eps)` / `InverseGamma(eps, eps)` prior (Gelman 2006);
5. a `factor` that writes a density of a nonlinear transform of a parameter (`log(x)` as the
   variate of a squared deviation) without the log-Jacobian (Stan warns on `log(x) ~ ...`);
6. a `data` variable that nothing reads, and an observed `~` that no parameter reaches.

    >>> import pplc
    >>> graph = pplc.compile("data y: real\\nmu ~ Normal(0, 1)\\ns ~ Normal(0, 1)\\n"
    ...                      "y ~ Normal(mu, s)\\n").graph
    >>> for d in pedantic(graph):
    ...     print(d.render().splitlines()[0][:60])
    <model>:4:16: warning: parameter 's' is used as the scale of
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Mapping

import networkx as nx
import numpy as np

from pplc.errors import Diagnostic, Span
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, PARAMETER_SUPPORTS, bind_arguments
from pplc.ir.graph import Graph, Kind, Variable

WIDE_UNIFORM = 1e3          # rule 1: a width above this is "very wide" whatever the data
DATA_SCALE_FACTOR = 100.0   # rule 1 with data: two orders of magnitude beyond the data
VAGUE_GAMMA = 0.1           # rule 4: both Gamma/InverseGamma parameters at most this

# Declared types whose values are never below 0.
_NONNEGATIVE_TYPES = frozenset({"positive", "positive_ordered", "unit", "simplex", "cov"})
_NONNEGATIVE_SUPPORTS = frozenset({"positive", "unit", "simplex", "nonnegative_int", "boolean",
                                   "nonnegative_int_vector"})
# Calls linear in their arguments (rule 5): anything else of a parameter is nonlinear.
_LINEAR_CALLS = frozenset({"sum", "cumsum", "transpose", "concat", "stack", "diag"})
_MATH = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt, "log10": math.log10}


def pedantic(graph: Graph, data: Mapping[str, np.ndarray | int] | None = None
             ) -> list[Diagnostic]:
    """Warnings about likely modelling mistakes, in source order.

    Parameters
    ----------
    graph: the model (`pplc.compile(...).graph`, or a conditioned model's graph).
    data: the bound data (`{**lowered.data.sizes, **lowered.data.arrays}`), or None; with
        data, rule 1 also compares a Uniform prior's width to the data's scale.

    Returns
    -------
    Diagnostics with severity "warning", sorted by line and column. Variables a pass made
    (`internal`) are never reported, since the user did not write them; the graph before
    the passes (`pplc.compile(...).graph`) gives the most faithful report.
    """
    if data is None:
        data = getattr(graph, "data", None) or None   # a conditioned graph carries its data
    found: list[Diagnostic] = []
    for rule in (_wide_uniform, _unused_parameter, _positive_argument, _vague_scale_prior,
                 _factor_jacobian, _unused_data, _uninformed_observation):
        found.extend(rule(graph, data))
    return sorted(found, key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))


def _written(graph: Graph, *kinds: Kind) -> list[Variable]:
    """The variables of these kinds that the user wrote (not made by a pass)."""
    return [v for v in graph.of_kind(*kinds) if not getattr(v, "internal", False)]


# ---------------------------------------------------------------- rules


def _wide_uniform(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 1: Uniform(a, b) on a parameter with b - a > 1e3 (or >> the data's scale)."""
    env = _scalar_env(data)
    for variable in _written(graph, Kind.LATENT):
        scale = _data_scale(graph, variable.name, data)
        for call in _calls(variable):
            if call.func != "Uniform":
                continue
            args = _bound(call)
            low, high = _const(args.get("low"), env), _const(args.get("high"), env)
            if low is None or high is None or not high > low:
                continue
            width = high - low
            too_wide_for_data = scale is not None and width > DATA_SCALE_FACTOR * scale
            if width > WIDE_UNIFORM or too_wide_for_data:
                yield _warn(graph, call.span, *_msg_wide_uniform(variable.name, call, width,
                                                                 scale, too_wide_for_data))


def _unused_parameter(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 2: a parameter with no observed variable and no factor among its descendants."""
    for variable in _written(graph, Kind.LATENT):
        reached = nx.descendants(graph.dag, variable.name)
        if not any(graph[n].kind in (Kind.OBSERVED, Kind.FACTOR) for n in reached):
            yield _warn(graph, variable.span, *_msg_unused_parameter(variable.name))


def _positive_argument(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 3: a positive-only argument that is a parameter whose support reaches below 0."""
    env = _scalar_env(data)
    for variable in _written(graph, Kind.LATENT, Kind.OBSERVED):
        for call in _calls(variable):
            for param, expr in _bound(call).items():
                name = _variable_of(expr)
                support = PARAMETER_SUPPORTS.get(call.func, {}).get(param)
                if support is None or support.kind != "positive" or name is None \
                        or name not in graph or graph[name].kind is not Kind.LATENT:
                    continue
                lower = _lower_bound(graph[name], env)
                if lower is not None and lower < 0:
                    yield _warn(graph, expr.span, *_msg_positive_argument(
                        name, param, call.func, graph[name]))


def _vague_scale_prior(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 4: Gamma(eps, eps) or InverseGamma(eps, eps), eps <= 0.1, on a parameter."""
    env = _scalar_env(data)
    for variable in _written(graph, Kind.LATENT):
        for call in _calls(variable):
            if call.func not in ("Gamma", "InverseGamma"):
                continue
            args = _bound(call)
            second = "rate" if call.func == "Gamma" else "scale"
            shape, other = _const(args.get("concentration"), env), _const(args.get(second), env)
            if shape is not None and other is not None and 0 < shape <= VAGUE_GAMMA \
                    and 0 < other <= VAGUE_GAMMA:
                yield _warn(graph, call.span, *_msg_vague_prior(variable.name, call))


def _factor_jacobian(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 5: a factor whose only reads of a parameter are nonlinear variates of a density.

    A *variate slot* is an additive term of the base of an even power or of `abs` (after
    dividing out any denominator): `-0.5 * ((log(x) - mu) / s) ** 2` has terms `log(x)` and
    `mu`. When the base reads no data it is a prior-like density of its terms, and a term
    nonlinear in a parameter x, g(x), makes it a density on g(x), which needs
    log|g'(x)| to be a density on x. User functions are inlined first, so
    `normal_lpdf(log(x), 0, 1)` counts too. Any other read of x in any factor (such as the
    Jacobian `- log(x)` itself) silences the warning: the author handled x on purpose.
    """
    latents = {v.name for v in graph.of_kind(Kind.LATENT)}
    datalike = _datalike(graph)
    variates: dict[str, tuple[Variable, ast.Expr]] = {}
    others: set[str] = set()
    for factor in _written(graph, Kind.FACTOR):
        expr = _inline(factor.pieces[0].value, graph.functions)
        for name, term, is_variate in _scan(expr, latents, datalike):
            if is_variate:
                variates.setdefault(name, (factor, term))
            else:
                others.add(name)
    for name, (factor, term) in variates.items():
        if name not in others:
            yield _warn(graph, term.span, *_msg_factor_jacobian(name, term))


def _unused_data(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 6a: a `data` variable with no child (not a size, bound, index or argument)."""
    for variable in _written(graph, Kind.DATA):
        if graph.dag.out_degree(variable.name) == 0:
            yield _warn(graph, variable.span, *_msg_unused_data(variable.name))


def _uninformed_observation(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 6b: an observed `~` with no parameter among its ancestors."""
    for variable in _written(graph, Kind.OBSERVED):
        if not any(graph[n].kind is Kind.LATENT for n in nx.ancestors(graph.dag, variable.name)):
            piece = variable.pieces[0]
            yield _warn(graph, piece.span, *_msg_uninformed(variable.name, piece.distribution))


# ---------------------------------------------------------------- helpers


def _warn(graph: Graph, span: Span, message: str, hint: str) -> Diagnostic:
    return Diagnostic(message, graph.source, span, hint, severity="warning")


def _calls(variable: Variable) -> Iterator[ast.Call]:
    """Each piece's distribution call and, for `Truncated(D(...))`, the inner call too."""
    for piece in variable.pieces:
        call = piece.distribution
        while isinstance(call, ast.Call):
            yield call
            info = DISTRIBUTIONS.get(call.func)
            call = _bound(call).get("dist") if info is not None and info.wrapper else None


def _bound(call: ast.Call) -> dict[str, ast.Expr]:
    """A distribution call's arguments by parameter name ({} if it does not bind)."""
    info = DISTRIBUTIONS.get(call.func)
    if info is None:
        return {}
    try:
        positional, _ = bind_arguments(info, len(call.args), [k.name for k in call.keywords])
    except ValueError:
        return {}
    return {**dict(zip(positional, call.args)), **{k.name: k.value for k in call.keywords}}


def _variable_of(expr: ast.Expr) -> str | None:
    """`s` or `s[j]` -> "s"; anything else -> None."""
    if isinstance(expr, ast.Index):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _scalar_env(data) -> dict[str, float]:
    env: dict[str, float] = {"pi": math.pi, "inf": math.inf}
    for name, value in (data or {}).items():
        array = np.asarray(value)
        if array.ndim == 0 and np.issubdtype(array.dtype, np.number):
            env[name] = float(array)
    return env


def _const(expr, env: Mapping[str, float]) -> float | None:
    """The value of an expression of numbers (and scalar data), or None."""
    if expr is None:
        return None
    if isinstance(expr, ast.Number):
        return float(expr.value)
    if isinstance(expr, ast.Name):
        return env.get(expr.id)
    if isinstance(expr, ast.UnaryOp) and expr.op in "+-":
        value = _const(expr.operand, env)
        return None if value is None else (value if expr.op == "+" else -value)
    if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "/", "**"):
        left, right = _const(expr.left, env), _const(expr.right, env)
        if left is None or right is None:
            return None
        try:
            return {"+": left + right, "-": left - right, "*": left * right,
                    "/": left / right if right else None, "**": left ** right}[expr.op]
        except (OverflowError, ZeroDivisionError):
            return None
    if isinstance(expr, ast.Call) and expr.func in _MATH and len(expr.args) == 1 \
            and not expr.keywords:
        value = _const(expr.args[0], env)
        try:
            return None if value is None else _MATH[expr.func](value)
        except (ValueError, OverflowError):
            return None
    return None


def _data_scale(graph: Graph, name: str, data) -> float | None:
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


def _lower_bound(variable: Variable, env) -> float | None:
    """The lowest value a parameter can take (its support narrowed by its declared type),
    or None when that depends on other variables."""
    declared = variable.declared_type
    if declared is not None:
        if declared.base in _NONNEGATIVE_TYPES:
            return 0.0
        lower = next((b.value for b in declared.bounds if b.name == "lower"), None)
        if lower is not None:
            value = _const(lower, env)
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
        args = _bound(call)
        lower = info.support.lower
        if isinstance(lower, str):
            if lower in args:
                return _const(args[lower], env)
            if info.wrapper:  # Truncated with no lower bound: the inner support's own
                return _support_lower(args.get("dist"), env)
            return None
        return float(lower) if isinstance(lower, (int, float)) else None
    return None


def _datalike(graph: Graph) -> set[str]:
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


def _inline(expr, functions: Mapping[str, ast.FunctionDef], depth: int = 0):
    """User `def` calls replaced by their bodies (arguments substituted), recursively."""
    if depth > 20 or not functions:
        return expr
    if isinstance(expr, ast.Call) and expr.func in functions and not expr.keywords \
            and len(expr.args) == len(functions[expr.func].params):
        fn = functions[expr.func]
        env = dict(zip(fn.params, (_inline(a, functions, depth + 1) for a in expr.args)))
        for local in fn.body:
            env[local.name] = _substitute(local.value, env)
        return _inline(_substitute(fn.result, env), functions, depth + 1)
    if dataclasses.is_dataclass(expr) and not isinstance(expr, Span):
        changes = {}
        for f in dataclasses.fields(expr):
            value = getattr(expr, f.name)
            if isinstance(value, tuple):
                changes[f.name] = tuple(_inline(v, functions, depth) for v in value)
            elif f.name != "span" and dataclasses.is_dataclass(value):
                changes[f.name] = _inline(value, functions, depth)
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
    power = _const(exponent, {})
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


def _scan(expr, latents: set[str], datalike: set[str]) -> Iterator[tuple[str, ast.Expr, bool]]:
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
            yield from _scan(other, latents, datalike)
        return
    if isinstance(expr, ast.Name):
        if expr.id in latents:
            yield expr.id, expr, False
        return
    for child in ast.children(expr):
        yield from _scan(child, latents, datalike)


# ---------------------------------------------------------------- messages


def _msg_wide_uniform(name: str, call: ast.Call, width: float, scale: float | None,
                      for_data: bool) -> tuple[str, str]:
    why = (f"width {width:g}, over {DATA_SCALE_FACTOR:g} times the largest magnitude "
           f"{scale:g} in the data it informs" if for_data and width <= WIDE_UNIFORM
           else f"width {width:g}")
    return (f"parameter '{name}' has a very wide prior {ast.to_source(call)} ({why}); "
            "almost all of its mass is on implausible values and its hard edges can stall "
            "the sampler",
            f"use a weakly informative prior on the scale you expect for '{name}', such as "
            "Normal(0, s) with s a few times that scale")


def _msg_unused_parameter(name: str) -> tuple[str, str]:
    return (f"parameter '{name}' is not used by the model; its posterior is its prior "
            "(no observed variable or factor depends on it)",
            f"use '{name}' in the likelihood, or remove it (or supply it as data)")


def _msg_positive_argument(name: str, param: str, dist: str, variable: Variable
                           ) -> tuple[str, str]:
    prior = ast.to_source(variable.pieces[0].distribution)
    return (f"parameter '{name}' is used as the {param} of {dist}, which must be positive, "
            f"but its prior {prior} allows values below 0: the sampler will reject every "
            "negative draw",
            f"give '{name}' a positive prior (HalfNormal, Exponential, LogNormal, ...) or "
            f"declare it positive: `{name}: positive ~ {prior}`")


def _msg_vague_prior(name: str, call: ast.Call) -> tuple[str, str]:
    return (f"parameter '{name}' has the 'vague' prior {ast.to_source(call)}: it is not "
            "uninformative; it piles its mass up near 0 and spreads the rest over huge "
            "values, far from the data's scale, so the posterior can depend strongly on "
            "it (Gelman 2006)",
            "use a weakly informative prior on the scale, such as HalfNormal(s), "
            "HalfStudentT(3, s) or Exponential(1 / s) with s near the data's scale")


def _msg_factor_jacobian(name: str, term: ast.Expr) -> tuple[str, str]:
    text = ast.to_source(term)
    jacobian = _JACOBIANS.get(term.func) if isinstance(term, ast.Call) and len(term.args) == 1 \
        and _variable_of(term.args[0]) == name else None
    arg = ast.to_source(term.args[0]) if jacobian else name
    add = (f"the log-Jacobian ({jacobian.format(arg)})" if jacobian
           else f"the log-Jacobian log|d({text})/d{name}|")
    return (f"a factor on a nonlinear function of '{name}' changes the density of "
            f"'{name}': {text} is the variate of a density here, so the factor is a density "
            f"on {text}, not on {name}",
            f"if you meant a prior on {text}, add {add} to the factor")


# log|dg/dx| for the transforms g whose Jacobian the hint can spell out.
_JACOBIANS = {"log": "-log({})", "exp": "{}", "sqrt": "-0.5 * log({})", "log10": "-log({})",
              "logit": "-log({0}) - log1p(-{0})"}


def _msg_unused_data(name: str) -> tuple[str, str]:
    return (f"data '{name}' is not used",
            f"remove the declaration of '{name}', or use it in the model")


def _msg_uninformed(name: str, call) -> tuple[str, str]:
    dist = ast.to_source(call) if call is not None else "its distribution"
    return (f"observed '{name}' does not depend on any parameter: {dist} has no unknowns, "
            "so these data inform nothing",
            f"give {dist.split('(')[0]} a parameter as an argument, or remove the statement "
            "if it only checks the data")
