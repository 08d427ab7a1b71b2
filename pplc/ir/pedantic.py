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

This module holds the walk, the rules and their words; what the rules know of expressions,
supports and the data is read by pedantic_values.py, and rule 5's reads of a factor are
found by pedantic_variates.py.

    >>> import pplc
    >>> graph = pplc.compile("data y: real\\nmu ~ Normal(0, 1)\\ns ~ Normal(0, 1)\\n"
    ...                      "y ~ Normal(mu, s)\\n").graph
    >>> for d in pedantic(graph):
    ...     print(d.render().splitlines()[0][:60])
    <model>:4:16: warning: parameter 's' is used as the scale of
"""

from __future__ import annotations

from typing import Iterator, Mapping

import networkx as nx
import numpy as np

from pplc.errors import Diagnostic, Span
from pplc.frontend import ast
from pplc.frontend.library import PARAMETER_SUPPORTS
from pplc.ir.graph import Graph, Kind, Variable
from pplc.ir.pedantic_values import (arguments_by_name, constant_value, data_scale,
                                     distribution_calls, lower_bound, scalar_env, variable_of)
from pplc.ir.pedantic_variates import datalike_names, inline_functions, parameter_reads

WIDE_UNIFORM = 1e3          # rule 1: a width above this is "very wide" whatever the data
DATA_SCALE_FACTOR = 100.0   # rule 1 with data: two orders of magnitude beyond the data
VAGUE_GAMMA = 0.1           # rule 4: both Gamma/InverseGamma parameters at most this


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
    env = scalar_env(data)
    for variable in _written(graph, Kind.LATENT):
        scale = data_scale(graph, variable.name, data)
        for call in distribution_calls(variable):
            if call.func != "Uniform":
                continue
            args = arguments_by_name(call)
            low, high = constant_value(args.get("low"), env), constant_value(args.get("high"), env)
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
    env = scalar_env(data)
    for variable in _written(graph, Kind.LATENT, Kind.OBSERVED):
        for call in distribution_calls(variable):
            for param, expr in arguments_by_name(call).items():
                name = variable_of(expr)
                support = PARAMETER_SUPPORTS.get(call.func, {}).get(param)
                if support is None or support.kind != "positive" or name is None \
                        or name not in graph or graph[name].kind is not Kind.LATENT:
                    continue
                lower = lower_bound(graph[name], env)
                if lower is not None and lower < 0:
                    yield _warn(graph, expr.span, *_msg_positive_argument(
                        name, param, call.func, graph[name]))


def _vague_scale_prior(graph: Graph, data) -> Iterator[Diagnostic]:
    """Rule 4: Gamma(eps, eps) or InverseGamma(eps, eps), eps <= 0.1, on a parameter."""
    env = scalar_env(data)
    for variable in _written(graph, Kind.LATENT):
        for call in distribution_calls(variable):
            if call.func not in ("Gamma", "InverseGamma"):
                continue
            args = arguments_by_name(call)
            second = "rate" if call.func == "Gamma" else "scale"
            shape = constant_value(args.get("concentration"), env)
            other = constant_value(args.get(second), env)
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
    datalike = datalike_names(graph)
    variates: dict[str, tuple[Variable, ast.Expr]] = {}
    others: set[str] = set()
    for factor in _written(graph, Kind.FACTOR):
        expr = inline_functions(factor.pieces[0].value, graph.functions)
        for name, term, is_variate in parameter_reads(expr, latents, datalike):
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
        and variable_of(term.args[0]) == name else None
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
