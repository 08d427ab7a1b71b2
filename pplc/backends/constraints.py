"""Where each latent lives: its constraint transform and bounds, decided once.

A latent whose declared type or distribution's support is a vector kind (simplex,
ordered, positive_ordered, corr_cholesky, cov) gets that transform. Any other continuous
latent lies in an interval: the support's bounds (the implicit 0 of a positive support,
Uniform's low and high, Truncated's bounds narrowing its inner distribution's), narrowed in
turn by a declared type's (`real(lower=0.5)`, `positive[K]`).

The decision reads the graph alone (no data), and keeps each bound as an expression of the
model, per piece of the latent. So the JAX lowering evaluates the very expressions
(lower.py) that a built module writes out (codegen/constraints.py), and `pplc ir --plan`
prints them: nothing decides twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pplc.runtime.transforms import VECTOR_KINDS
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, KIND_BOUNDS, AxisLength, named_arguments
from pplc.ir.graph import Variable

Bound = ast.Expr | None   # None: unbounded on that side


@dataclass(frozen=True)
class Constraint:
    """A latent's transform: a vector kind, or "interval" with these bounds.

    `lower[i]`/`upper[i]`: the support's bound in the latent's piece i, an expression over
    the model's names and that piece's loop indices. `type_lower`/`type_upper`: the declared
    type's, which narrow them everywhere (the larger lower and the smaller upper bound)."""

    kind: str
    lower: tuple[Bound, ...] = ()
    upper: tuple[Bound, ...] = ()
    type_lower: Bound = None
    type_upper: Bound = None

    def describe(self) -> str:
        """`simplex`, or the interval with its transform, its ends as the model writes
        them: `above 0.0 (log)`, `between a and b (logit)`, `real (identity)`."""
        if self.kind != "interval":
            return self.kind
        ends = []
        for side, typed in ((self.lower, self.type_lower), (self.upper, self.type_upper)):
            texts = list(dict.fromkeys(ast.to_source(b) for b in side if b is not None))
            if typed is not None:
                texts.append(ast.to_source(typed) + " (its type)")
            ends.append(" and ".join(texts) if len(texts) < 3 else f"{texts[0]}, ...")
        lower, upper = ends
        if lower and upper:
            return f"between {lower} and {upper} (logit)"
        if lower or upper:
            return f"above {lower} (log)" if lower else f"below {upper} (log)"
        return "real (identity)"


def constraint_of(variable: Variable, interval: bool = False) -> Constraint:
    """The transform of a continuous latent (module docstring); with `interval`, the
    elementwise bounds even of a vector kind (for imputed entries, one by one)."""
    declared = variable.declared_type
    support = DISTRIBUTIONS[variable.pieces[0].distribution.func].support
    if declared is not None and declared.base in VECTOR_KINDS and not interval:
        return Constraint(declared.base)
    if support.kind in VECTOR_KINDS and not interval:
        return Constraint(support.kind)
    bounds = [support_bounds(piece.distribution) for piece in variable.pieces]
    type_lower, type_upper = _type_bounds(variable)
    return Constraint("interval", tuple(b[0] for b in bounds), tuple(b[1] for b in bounds),
                      type_lower, type_upper)


def support_bounds(call: ast.Call) -> tuple[Bound, Bound]:
    """(lower, upper) of a distribution call's support, as expressions: a parameter's
    argument, a number, or None. Truncated's are its bounds, narrowing its inner
    distribution's where both exist (`max(lower, 0.0)` for a positive one)."""
    info = DISTRIBUTIONS[call.func]
    args = named_arguments(call)
    if info.wrapper:
        inner = support_bounds(args["dist"])
        out = []
        for given, own, pick in zip((args.get("lower"), args.get("upper")), inner,
                                    ("max", "min")):
            given = None if given is None or _infinite(given) else given
            if given is None or own is None:
                out.append(own if given is None else given)
            else:
                out.append(ast.Call(pick, (given, own), (), call.span, call.span))
        return out[0], out[1]
    implicit = KIND_BOUNDS.get(info.support.kind, (None, None))
    out = []
    for bound, default in zip((info.support.lower, info.support.upper), implicit):
        if isinstance(bound, AxisLength):   # a category count: discrete, never transformed
            out.append(None)
        elif isinstance(bound, str):
            out.append(args.get(bound))
        elif bound is not None or default is not None:
            out.append(ast.Number(float(bound if bound is not None else default), call.span))
        else:
            out.append(None)
    return out[0], out[1]


def _type_bounds(variable: Variable) -> tuple[Bound, Bound]:
    """The bounds a declared type adds: its kind's (`positive`), replaced by those it names
    (`real(lower=0, upper=c)`); an infinite one is none."""
    declared = variable.declared_type
    if declared is None:
        return None, None
    span = declared.span
    lower, upper = (None if b is None else ast.Number(float(b), span)
                    for b in KIND_BOUNDS.get(declared.base, (None, None)))
    for bound in declared.bounds:
        value = None if _infinite(bound.value) else bound.value
        if bound.name == "lower":
            lower = value
        else:
            upper = value
    return lower, upper


def _infinite(expr: ast.Expr) -> bool:
    """`inf`, `-inf` or an infinite number written in the model."""
    if isinstance(expr, ast.Name):
        return expr.id == "inf"
    if isinstance(expr, ast.Number):
        return math.isinf(expr.value)
    if isinstance(expr, ast.UnaryOp):
        return expr.op == "-" and _infinite(expr.operand)
    return False
