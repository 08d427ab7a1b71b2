"""The constraint transform of each latent block of a `LoweredModel` (a mixin), at the
values computed so far: a vector kind (simplex, ...) as is, or an interval whose bounds
are the plan's expressions (constraints.py) evaluated now, since they may move with other
variables, and picked at the imputed entries of a partly observed variable.

Split from lower.py by job: lower.py computes the values and densities, and calls
`_transform` for each latent block on its way.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from pplc.backends.constraints import constraint_of
from pplc.backends.plan import Block
from pplc.runtime.transforms import transform_for
from pplc.frontend import ast
from pplc.ir.graph import Variable

Env = dict[str, Any]


class LatentTransforms:
    """LoweredModel's part that transforms latents (a mixin: it uses the model's plan,
    shapes, evaluator and loops)."""

    def _transform(self, variable: Variable, block: Block, env: Env):
        """The constraint transform of a block (constraints.py): a vector kind (simplex,
        ...) or an interval whose bounds may move with other variables."""
        kind = self.plan.constraints[variable.name].kind
        if kind != "interval" and not block.imputed:
            return transform_for(kind)
        lower, upper = self._block_bounds(variable, block, env)
        return transform_for("interval", lower, upper)

    def _block_bounds(self, variable: Variable, block: Block, env: Env):
        """The support bounds of a block: the whole latent's, or at the imputed entries."""
        lower, upper = self._bounds(variable, env)
        if not block.imputed:
            return lower, upper
        shape, index = self.shapes[variable.name], self.missing_indices(variable.name)
        pick = lambda b: b if b is None or jnp.ndim(b) == 0 else \
            jnp.ravel(jnp.broadcast_to(b, shape))[index]
        return pick(lower), pick(upper)

    def _bounds(self, variable: Variable, env: Env):
        """The latent's (lower, upper), its plan's expressions evaluated and broadcast over
        its shape where they vary: each piece's support bounds, narrowed by its type's."""
        constraint = self.plan.constraints[variable.name]
        if constraint.kind != "interval":   # an imputed entry of a vector: elementwise
            constraint = constraint_of(variable, interval=True)
        shape = self.shapes[variable.name]
        sides = []
        for bounds, typed, narrow in ((constraint.lower, constraint.type_lower, jnp.maximum),
                                      (constraint.upper, constraint.type_upper, jnp.minimum)):
            bound = _combine([self._piece_bound(variable, i, piece, expr, env, shape)
                              for i, (piece, expr) in enumerate(zip(variable.pieces, bounds))],
                             shape)
            if typed is not None:
                given = self._evaluate(typed, env)
                bound = given if bound is None else narrow(bound, given)
            sides.append(bound)
        return sides[0], sides[1]

    def _piece_bound(self, variable, i, piece, expr, env, shape):
        """One piece's bound: a number as is, else its values over the piece's loops, set
        into the whole variable's shape, NaN where other pieces define it (`_combine`)."""
        if expr is None or isinstance(expr, ast.Number):
            return None if expr is None else float(expr.value)
        evaluate = self._evaluate
        element = shape[len(piece.indices):] if piece.indices is not None else shape

        def body(local):
            lhs = self._lhs(piece, local) if piece.indices is not None else ()
            return lhs, jnp.broadcast_to(jnp.asarray(evaluate(expr, local), jnp.float64),
                                         element)

        lhs, values = self._over(variable.name, i, body, env)
        if piece.indices is None:
            return values
        return jnp.full(shape, jnp.nan).at[lhs].set(values)


def _combine(bounds: list, shape) -> Any:
    """One bound array from the pieces' bounds (None = unbounded, NaN = another piece's)."""
    if all(b is None for b in bounds):
        return None
    if any(b is None for b in bounds):
        # Mixed bounded/unbounded pieces: analysis refuses this (see _check_supports).
        raise AssertionError("mixed supports")
    arrays = [b for b in bounds if not isinstance(b, (int, float))]
    numbers = {b for b in bounds if isinstance(b, (int, float))}
    if not arrays and len(numbers) == 1:
        return numbers.pop()
    out = jnp.full(shape, jnp.nan)
    for b in bounds:
        b = jnp.broadcast_to(jnp.asarray(b, jnp.float64), shape)
        out = jnp.where(jnp.isnan(out), b, out)
    return out
