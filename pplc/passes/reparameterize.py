"""Automatic reparameterization of hierarchical location-scale latents.

    theta ~ Normal(mu, tau)   ==>   theta_std ~ Normal(0, 1);  theta = mu + tau * theta_std

(the noncentered form; Papaspiliopoulos, Roberts and Skold 2007; Gorinova, Moore and
Hoffman 2020). Which form samples better depends on the data: when each element of theta
is weakly informed by the data relative to its prior scale, the posterior has a funnel in
(theta, tau) and the noncentered form removes it; when the data pin theta down, the
centered form is the well-conditioned one and the noncentered form creates the funnel.

The choice per variable compares the precision the data give an element of theta with
the precision its prior gives it (Betancourt and Girolami 2015, section 4):

    r = n * (prior scale / observation scale)^2

n is the number of observations that inform each element (observed descendants per
element), the scales are typical values (a data value's mean magnitude, a latent's prior
median). r < 1: the prior dominates, noncenter; r >= 1: keep centered. When the elements
are read by different numbers of observations (unbalanced groups), the ratio is taken per
element, with the scales estimated from the data where `group_sizes` can, and only the
weakly informed elements are noncentered (`partial.py`). `@centered` and
`@noncentered` on the statement override the choice. Families: Normal, StudentT, Cauchy,
Laplace, Logistic (theta = loc + scale * z) and LogNormal (theta = exp(loc + scale * z)).
Draws are reported in the user's parameterization: theta becomes a recorded deterministic
and theta_std is internal.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from pplc.frontend import ast
from pplc.frontend.library import named_arguments
from pplc.ir.build import replace_variables
from pplc.ir.graph import Graph, Kind, Note, Piece, Variable
from pplc.passes.group_sizes import moment_scales, observations_per_element
from pplc.passes.partial import elements_text, fresh_name, partially_noncenter

NAME = "reparameterize"
FAMILIES = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "LogNormal"}

def reparameterize(graph: Graph) -> Graph:
    """Noncenter the hierarchical location-scale latents whose data are weak (see above)."""
    notes: list[Note] = []
    rewritten: list[Variable] = []
    random = _random_names(graph)
    for variable in graph.of_kind(Kind.LATENT):
        family = _family(variable, random)
        if family is None:
            continue
        choice, reason = _choose(graph, variable)
        mask = None
        if not reason.startswith("as written"):
            mask, reason = _per_element(graph, variable, family) or (None, reason)
            if mask is not None and mask.all() != mask.any():
                choice = "partially noncentered"
            elif mask is not None:
                choice, mask = ("noncentered" if mask.all() else "centered"), None
        piece = variable.pieces[0]
        notes.append(Note(NAME, piece.span, f"{variable.name}: {choice} — {reason}"))
        if choice != "centered":
            rewritten.extend(_noncenter(graph, variable, mask))
    if not rewritten:
        return graph.with_notes(*notes) if notes else graph
    return replace_variables(graph, rewritten).with_notes(*notes)


# ---------------------------------------------------------------- which variables


def _family(variable: Variable, random: set[str]) -> str | None:
    """The location-scale family of a latent whose loc or scale depends on latents
    (`random`: the latents and whatever depends on them)."""
    if variable.internal:
        return None
    declared = variable.declared_type
    if declared is not None and (declared.base != "real" or declared.bounds):
        return None  # a narrowed support would not survive the affine map
    funcs = {p.distribution.func for p in variable.pieces}
    if len(funcs) != 1 or not funcs <= FAMILIES:
        return None
    decorators = {d for p in variable.pieces for d in p.decorators}
    for piece in variable.pieces:
        args = named_arguments(piece.distribution)
        if variable.name in {n.id for n in ast.names_in(args["scale"])}:
            return None
        if variable.name in {n.id for n in ast.names_in(piece.distribution)} \
                and "noncentered" not in decorators:
            # x[t] ~ Normal(phi * x[t - 1], s): an autoregression is noncentered only on
            # request (then x becomes a recurrence over its standardized innovations).
            return None
    reads = {n.id for p in variable.pieces for arg in (named_arguments(p.distribution)["loc"],
                                                        named_arguments(p.distribution)["scale"])
             for n in ast.names_in(arg)}
    return funcs.pop() if reads & random else None


def _random_names(graph: Graph) -> set[str]:
    """Latents and whatever depends on them."""
    out = {v.name for v in graph.of_kind(Kind.LATENT)}
    frontier = list(out)
    while frontier:   # one breadth-first search from all the latents at once
        frontier = [c for n in frontier for c in graph.dag.successors(n) if c not in out]
        out.update(frontier)
    return out


# ---------------------------------------------------------------- the decision


def _choose(graph: Graph, variable: Variable) -> tuple[str, str]:
    decorators = {d for p in variable.pieces for d in p.decorators}
    if "noncentered" in decorators:
        return "noncentered", "as written (@noncentered)"
    if "centered" in decorators:
        return "centered", "as written (@centered)"
    arguments = named_arguments(variable.pieces[0].distribution)
    prior_scale = _typical(graph, arguments["scale"])
    size = _size(graph, variable)
    observed = _observations(graph, variable.name)
    if size is None or not observed:
        if not observed:
            return "noncentered", "no observation informs it directly: the prior dominates"
        return "noncentered", "its size is unknown before the data; the default is noncentered"
    count = sum(n for n, _ in observed) / size
    obs_scales = [s for _, s in observed if s is not None]
    obs_scale = float(np.mean(obs_scales)) if obs_scales else None
    per = f"{count:g} observation{'s' if count != 1 else ''} per element"
    scale_text = ast.to_source(arguments["scale"])
    if prior_scale is None or obs_scale is None:
        choice = "noncentered" if count < 5 else "centered"
        return choice, (f"{per} (scales not known before sampling: "
                        f"{'few' if count < 5 else 'many'} observations)")
    ratio = count * (prior_scale / obs_scale) ** 2
    if ratio < 1:
        return "noncentered", (f"prior scale {scale_text} (about {prior_scale:.3g}) dominates "
                               f"the {per} of scale about {obs_scale:.3g} "
                               f"(information ratio {ratio:.2g} < 1)")
    return "centered", (f"the {per} of scale about {obs_scale:.3g} outweigh the prior scale "
                        f"{scale_text} (about {prior_scale:.3g}; information ratio {ratio:.3g})")


def _per_element(graph: Graph, variable: Variable, family: str
                 ) -> tuple[np.ndarray, str] | None:
    """Unbalanced groups: (which elements to noncenter, why), or None to decide per variable.

    Each element's information ratio from its own number of observations, with the group
    and observation scales estimated from the data where `group_sizes.moment_scales` can,
    from the priors otherwise. Only for one statement over the whole variable (`theta[j]`
    in a loop over j, or `theta` vectorized) of an affine family."""
    if family == "LogNormal" or len(variable.pieces) != 1:
        return None
    piece = variable.pieces[0]
    loops = [plate.index for plate in piece.plates]
    written = None if piece.indices is None else \
        [i.id if isinstance(i, ast.Name) else None for i in piece.indices]
    if (written or []) != loops:
        return None
    counts = observations_per_element(graph, variable.name)
    if counts is None or counts.min() == counts.max():
        return None
    moments = moment_scales(graph, variable.name)
    if moments is not None:
        group_scale, low, precision = moments
        ratio = low ** 2 * precision
        typical = float(np.sqrt(np.sum(counts) / np.sum(precision)))
        basis = (f"group scale as low as {low:.2g} (the 2.5% point of its likelihood; "
                 f"most likely {group_scale:.2g}) and observation scale about {typical:.2g}, from the data")
    else:
        arguments = named_arguments(piece.distribution)
        prior_scale = _typical(graph, arguments["scale"])
        scales = [s for _, s in _observations(graph, variable.name) if s is not None]
        if prior_scale is None or not scales:
            ratio, basis = counts / 5.0, "scales not known before sampling: 5 observations"
        else:
            ratio = counts * (prior_scale / float(np.mean(scales))) ** 2
            basis = (f"prior scale {ast.to_source(arguments['scale'])} about "
                     f"{prior_scale:.3g}, observation scale about {np.mean(scales):.3g}")
    mask = ratio < 1
    name, size = variable.name, counts.size
    few = f"{counts[mask].min()} to {counts[mask].max()}" if mask.any() else ""
    many = f"{counts[~mask].min()} to {counts[~mask].max()}" if not mask.all() else ""
    rule = f"information ratio n * (group scale / observation scale)^2 is below 1 ({basis})"
    if mask.all():
        return mask, f"every element's {rule}: groups of {few} observations"
    if not mask.any():
        return mask, f"no element's {rule}: groups of {many} observations"
    return mask, (f"{int(mask.sum())} of {size} elements noncentered, {name}"
                  f"{elements_text(mask)} ({few} observations each), the other "
                  f"{size - int(mask.sum())} centered ({many} observations); noncentered "
                  f"where the {rule}")


def _size(graph: Graph, variable: Variable) -> int | None:
    """Number of elements of a latent, as the shaped graph records it (None unshaped)."""
    shape = graph.shapes.get(variable.name)
    return None if shape is None else int(np.prod(shape))


def _observations(graph: Graph, name: str) -> list[tuple[int, float | None]]:
    """(number of observed elements, their typical scale) for each observed descendant
    reached through deterministics."""
    out = []
    for _, child in graph.through_deterministics(name):
        variable = graph[child]
        if variable.kind is Kind.OBSERVED and child in graph.data:
            out.append((int(np.size(graph.data[child])), _observation_scale(graph, variable)))
    return out


def _observation_scale(graph: Graph, variable: Variable) -> float | None:
    """How precisely one observation pins down its location (in the location's units)."""
    call = variable.pieces[0].distribution
    if call.func in FAMILIES or call.func in ("HalfNormal",):
        return _typical(graph, named_arguments(call).get("scale"))
    if call.func in ("Bernoulli", "Binomial"):
        return 2.0  # Fisher information about a logit is p (1 - p) <= 1/4
    if call.func == "Poisson":
        return 1.0  # about a log rate: information = rate; unit rate as the typical case
    return None


def _typical(graph: Graph, expr) -> float | None:
    """A typical magnitude of an expression: data by their mean magnitude, latents by their
    prior's median; None when it cannot tell."""
    if expr is None:
        return None
    if isinstance(expr, ast.Number):
        return float(abs(expr.value))
    if isinstance(expr, ast.Name):
        if expr.id in graph.data:
            value = np.asarray(graph.data[expr.id], dtype=float)
            return float(value) if value.ndim == 0 else float(np.mean(np.abs(value)))
        if expr.id not in graph:
            return None
        return _prior_median(graph, graph[expr.id])
    if isinstance(expr, ast.Index):
        return _typical(graph, expr.value)
    if isinstance(expr, ast.BinOp):
        left, right = _typical(graph, expr.left), _typical(graph, expr.right)
        if left is None or right is None:
            return None
        if expr.op in ("+", "-"):
            return max(left, right)
        if expr.op in ("*", "@"):
            return left * right
        if expr.op == "/":
            return left / right if right else None
        if expr.op == "**":
            return left ** right
        return None
    if isinstance(expr, ast.UnaryOp):
        return _typical(graph, expr.operand)
    if isinstance(expr, ast.Call):
        inner = [_typical(graph, a) for a in expr.args]
        if len(inner) == 1 and inner[0] is not None:
            fn = {"exp": math.exp, "sqrt": math.sqrt, "abs": abs}.get(expr.func)
            return fn(inner[0]) if fn else None
    return None


def _prior_median(graph: Graph, variable: Variable) -> float | None:
    if variable.kind is Kind.DETERMINISTIC and len(variable.pieces) == 1:
        return _typical(graph, variable.pieces[0].value)
    if variable.kind is not Kind.LATENT:
        return None
    call = variable.pieces[0].distribution
    args = named_arguments(call)
    if call.func in ("HalfNormal", "HalfCauchy", "HalfStudentT"):
        scale = _typical(graph, args["scale"])
        return None if scale is None else scale * {"HalfNormal": 0.674, "HalfCauchy": 1.0,
                                                   "HalfStudentT": 0.8}[call.func]
    if call.func == "Exponential":
        rate = _typical(graph, args.get("rate"))
        return None if not rate else math.log(2) / rate
    if call.func == "LogNormal":
        loc = args["loc"]
        value = -_typical(graph, loc.operand) if isinstance(loc, ast.UnaryOp) \
            and loc.op == "-" else _typical(graph, loc)
        return None if value is None else math.exp(value)
    if call.func == "Gamma":
        a, b = _typical(graph, args.get("concentration")), _typical(graph, args.get("rate"))
        return None if not a or not b else a / b
    if call.func == "InverseGamma":
        a, b = _typical(graph, args.get("concentration")), _typical(graph, args.get("scale"))
        return None if not a or not b or a <= 1 else b / (a - 1)
    if call.func == "Uniform":
        low, high = _typical(graph, args.get("low")), _typical(graph, args.get("high"))
        return None if low is None or high is None else (low + high) / 2
    if call.func in FAMILIES:
        return _typical(graph, args.get("loc"))
    return None


# ---------------------------------------------------------------- the rewrite


def _noncenter(graph: Graph, variable: Variable, mask: np.ndarray | None = None
               ) -> list[Variable]:
    """theta ~ F(loc, scale) -> theta_std ~ F(0, 1) (internal); theta = loc + scale * theta_std.

    With a `mask` (1 where an element is noncentered), only those elements are: see
    `passes/partial.py`."""
    raw_name = fresh_name(graph, f"{variable.name}_std")
    if mask is not None:
        return partially_noncenter(graph, variable, mask, raw_name)
    raw_pieces, det_pieces, recover_pieces = [], [], []
    for piece in variable.pieces:
        call = piece.distribution
        args = named_arguments(call)
        loc, scale = args["loc"], args["scale"]
        span = call.span
        zero = ast.Number(0.0, span)
        # The standard draws keep the shape loc and scale broadcast to (0 * loc + 0 * scale);
        # an autoregressive loc (reading the variable itself) is left out of that.
        shaped_zero = ast.BinOp("*", zero, scale, span)
        if variable.name not in {n.id for n in ast.names_in(loc)}:
            shaped_zero = ast.BinOp("+", ast.BinOp("*", zero, loc, span), shaped_zero, span)
        keywords = [ast.Keyword("loc", shaped_zero, span),
                    ast.Keyword("scale", ast.Number(1.0, span), span)]
        if "df" in args:
            keywords.insert(0, ast.Keyword("df", args["df"], span))
        standard = ast.Call(call.func if call.func != "LogNormal" else "Normal", (),
                            tuple(keywords), span, call.func_span)
        raw_pieces.append(replace(piece, distribution=standard, decorators=()))
        reference = ast.Name(raw_name, span) if piece.indices is None else \
            ast.Index(ast.Name(raw_name, span), piece.indices, span)
        value = ast.BinOp("+", loc, ast.BinOp("*", scale, reference, span), span)
        if call.func == "LogNormal":
            value = ast.Call("exp", (value,), (), span, span)
        det_pieces.append(Piece(piece.plates, piece.indices, None, value, piece.span))
        # theta_std = (theta - loc) / scale, or (log(theta) - loc) / scale for LogNormal.
        user = ast.Name(variable.name, span) if piece.indices is None else \
            ast.Index(ast.Name(variable.name, span), piece.indices, span)
        if call.func == "LogNormal":
            user = ast.Call("log", (user,), (), span, span)
        standardized = ast.BinOp("/", ast.BinOp("-", user, loc, span), scale, span)
        recover_pieces.append(Piece(piece.plates, piece.indices, None, standardized, piece.span))
    raw = Variable(raw_name, Kind.LATENT, tuple(raw_pieces), variable.declared_type,
                   variable.span, internal=True, recover=tuple(recover_pieces))
    deterministic = Variable(variable.name, Kind.DETERMINISTIC, tuple(det_pieces), None,
                             variable.span)
    return [raw, deterministic]
