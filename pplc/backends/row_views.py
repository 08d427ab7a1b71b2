"""The plan's reads along loops (rows.py), in JAX: arrays mapped by `jax.vmap` with the
loop indices, read without a gather.

`over_rows` is evaluate.py's `over_plates` for a statement whose plan lists reads like
`y[n]` or `X[n, k]`: each such array is cut to its loops' ranges (a static slice, only
where a loop does not cover its whole axis), its mapped axes moved to the front in the
order of the loops, and handed to the nested `jax.vmap`s beside the loop indices; inside,
the evaluator (`RowEvaluator`) reads the subscript as what the mapping left of the array,
with the subscript's other positions applied to it. The per-element program is the same
as before, so value and gradient are the same numbers; what changes is that XLA sees
elementwise work on whole arrays (which its partitioner splits across devices, and whose
gradient needs no scatter-add) instead of a gather at an iota.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from pplc.backends.evaluate import Evaluator, over_plates
from pplc.frontend import ast

# The env key under which the mapped arrays travel into a statement's body: `@` is in no
# model name a user can write.
VIEWS = "@rows"
_VALUE = "@row"   # the mapped array, as the base evaluator reads a subscript's value
# Set in the data by a caller that needs the literal gathers instead (inference/sharding.py:
# rows split unevenly across devices, where XLA's partitioner aborts on the gradient of a
# gather whose indices are mapped rows, docs/scaling.md).
GATHER_ROWS = "@gather-rows"


def over_rows(fn: Callable, plates, ranges, env, rows) -> Any:
    """`over_plates(fn, plates, ranges, env)`, with the plan's `rows` (rows.py `Row`s of
    this statement) read as the arrays mapped along the loops."""
    rows = [] if env.get(GATHER_ROWS) else [r for r in rows if r.array in env]
    if not rows or not plates:
        return over_plates(fn, plates, ranges, env)
    arrays = [_along_loops(jnp.asarray(env[r.array]), r) for r in rows]
    depths = [sorted(d for _, d, _, _, _ in r.mapped) for r in rows]

    def level(depth, indices, views):
        if depth == len(plates):
            local = dict(env)
            for plate, i in zip(plates, indices):
                local[plate.index] = i
            local[VIEWS] = {**env.get(VIEWS, {}), **dict(zip(rows, views))}
            return fn(local)
        axes = tuple(0 if depth in d else None for d in depths)
        r = ranges[depth]
        return jax.vmap(lambda i, *vs: level(depth + 1, [*indices, i], vs),
                        in_axes=(0, *axes))(jnp.arange(r.start, r.stop), *views)

    return level(0, [], arrays)


def _along_loops(array, row):
    """The array cut to its loops' ranges, its mapped axes first, outermost loop first."""
    for position, _, _, start, stop in row.mapped:
        if (start, stop) != (0, array.shape[position]):
            array = jax.lax.slice_in_dim(array, start, stop, axis=position)
    order = [p for p, _, _, _, _ in sorted(row.mapped, key=lambda m: m[1])]
    if order != list(range(len(order))):
        array = jnp.moveaxis(array, order, list(range(len(order))))
    return array


class RowEvaluator(Evaluator):
    """The evaluator of the lowering: a subscript that the plan lists as a read along the
    loops is what `over_rows` mapped, with its other positions applied as subscripts."""

    def _Index(self, e: ast.Index, env):
        views = env.get(VIEWS) if hasattr(env, "get") else None
        if views:
            for row, view in views.items():
                if row.matches(e):
                    mapped = {p for p, _, _, _, _ in row.mapped}
                    rest = [i for k, i in enumerate(e.indices) if k not in mapped]
                    if not rest:
                        return view
                    return super()._Index(ast.Index(ast.Name(_VALUE, e.span), tuple(rest),
                                                    e.span), {**env, _VALUE: view})
        return super()._Index(e, env)

    def _OverPlates(self, e: ast.OverPlates, env):
        views = env.get(VIEWS) if hasattr(env, "get") else None
        if views:   # an inner loop that rebinds an index: those reads are no longer rows
            rebound = {p.index for p in e.plates}
            env = {**env, VIEWS: {r: v for r, v in views.items()
                                  if not rebound & {i for _, _, i, _, _ in r.mapped}}}
        return super()._OverPlates(e, env)
