"""Partial noncentering: some elements of a latent noncentered, the others centered.

The reparameterization pass decides per element when a plated latent's groups are
unbalanced (`reparameterize._per_element`); this module writes that decision into the
graph. The 0/1 mask is an internal array of the graph (a list literal, computed once as a
data-only deterministic), so the lowering, `pplc build` and `pplc ir` need nothing new,
and the choice travels with the graph that `pplc explain` describes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pplc.frontend import ast
from pplc.frontend.library import named_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable


def fresh_name(graph: Graph, name: str) -> str:
    """`name`, with underscores appended until no variable of the graph has it."""
    while name in graph:
        name += "_"
    return name


def partially_noncenter(graph: Graph, variable: Variable, mask: np.ndarray, raw_name: str
               ) -> list[Variable]:
    """Per-element noncentering with a 0/1 mask m (an internal data-only array):

        theta_std[j] ~ F(loc=(1 - m[j]) * loc, scale=m[j] + (1 - m[j]) * scale)
        theta[j] = m[j] * loc + (m[j] * scale + (1 - m[j])) * theta_std[j]

    m[j] = 1 is the noncentered form, m[j] = 0 the centered one (theta[j] = theta_std[j]);
    the arithmetic is exact in floating point for both (x * 1 = x, x * 0 + y = y), so the
    density is the centered one plus sum_j m[j] log(scale), the Jacobian."""
    (piece,) = variable.pieces
    span = piece.distribution.span
    mask_name = fresh_name(graph, f"{variable.name}_noncentered")
    mask_var = Variable(mask_name, Kind.DETERMINISTIC, (Piece(
        (), None, None, _literal(mask.astype(float).tolist(), span), piece.span),),
        None, variable.span, internal=True)
    m = ast.Name(mask_name, span) if piece.indices is None else \
        ast.Index(ast.Name(mask_name, span), piece.indices, span)
    one = ast.Number(1.0, span)
    not_m = ast.BinOp("-", one, m, span)
    args = named_arguments(piece.distribution)
    loc, scale = args["loc"], args["scale"]
    keywords = [ast.Keyword("loc", ast.BinOp("*", not_m, loc, span), span),
                ast.Keyword("scale", ast.BinOp("+", m, ast.BinOp("*", not_m, scale, span),
                                                span), span)]
    if "df" in args:
        keywords.insert(0, ast.Keyword("df", args["df"], span))
    call = piece.distribution
    standard = ast.Call(call.func, (), tuple(keywords), span, call.func_span)
    reference = ast.Name(raw_name, span) if piece.indices is None else \
        ast.Index(ast.Name(raw_name, span), piece.indices, span)
    user = ast.Name(variable.name, span) if piece.indices is None else \
        ast.Index(ast.Name(variable.name, span), piece.indices, span)
    multiplier = ast.BinOp("+", ast.BinOp("*", m, scale, span), not_m, span)
    shift = ast.BinOp("*", m, loc, span)
    value = ast.BinOp("+", shift, ast.BinOp("*", multiplier, reference, span), span)
    recover = ast.BinOp("/", ast.BinOp("-", user, shift, span), multiplier, span)
    raw = Variable(raw_name, Kind.LATENT, (replace(piece, distribution=standard, decorators=()),),
                   variable.declared_type, variable.span, internal=True,
                   recover=(Piece(piece.plates, piece.indices, None, recover, piece.span),))
    deterministic = Variable(variable.name, Kind.DETERMINISTIC, (
        Piece(piece.plates, piece.indices, None, value, piece.span),), None, variable.span)
    return [mask_var, raw, deterministic]


def _literal(values, span) -> ast.Expr:
    if isinstance(values, list):
        return ast.ListExpr(tuple(_literal(v, span) for v in values), span)
    return ast.Number(values, span)


def elements_text(mask: np.ndarray) -> str:
    """The True positions of a mask as subscripts with ranges: [0, 3:6, 9]."""
    if mask.ndim != 1:
        return "[" + ", ".join(",".join(map(str, i)) for i in np.argwhere(mask)) + "]"
    parts, positions = [], np.flatnonzero(mask)
    start = previous = positions[0]
    for i in [*positions[1:], None]:
        if i is not None and i == previous + 1:
            previous = i
            continue
        parts.append(str(start) if previous == start else f"{start}:{previous + 1}")
        if i is not None:
            start = previous = i
    return "[" + ", ".join(parts) + "]"
