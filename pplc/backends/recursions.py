"""The JAX lowering of recursions: arrays whose elements read earlier elements.

Each runs the evaluation order the plan holds (plan.py `scans` and `groups`, decided in
recurrence.py) with the scans of scans.py, which a built module copies by source: a
scan over one loop carrying the array or a window of its last slices, one element per
step in dependency order, or several arrays in one joint scan.
"""

from __future__ import annotations

import jax.numpy as jnp

from pplc.backends import recurrence, scan_forms
from pplc.runtime import scans
from pplc.backends.evaluate import over_plates
from pplc.frontend import ast

Env = dict


class RecursionRunner:
    """LoweredModel's part that computes recursions (a mixin: it uses the model's graph,
    plan, pieces, shapes and evaluator)."""

    def _recurrence(self, variable, i, env, array):
        """Piece i, recursive, in the order the plan holds (recurrence.py), run by the scan
        for that strategy (scans.py)."""
        name, evaluate = variable.name, self._evaluate
        piece, info = variable.pieces[i], self.pieces[(name, i)]
        scan = self.plan.scans[(name, i)]
        if scan.at_once:
            def body(local):
                local = {**local, name: array}
                return self._lhs(piece, local), evaluate(piece.value, local)
            lhs, values = over_plates(body, piece.plates, info.ranges, env)
            return array.at[lhs].set(jnp.asarray(values, array.dtype))
        if scan.plate is None:
            def value_at(carry, indices):
                local = {**env, name: carry}
                local.update({p.index: indices[k] for k, p in enumerate(piece.plates)})
                return self._lhs(piece, local), evaluate(piece.value, local)
            return scans.ordered_scan(value_at, array, scan.order)
        scanned = piece.plates[scan.plate]
        others = [p for k, p in enumerate(piece.plates) if k != scan.plate]
        other_ranges = [r for k, r in enumerate(info.ranges) if k != scan.plate]
        steps = info.ranges[scan.plate]
        if not scan.lags:
            def values_at(carry, t):
                local = {**env, name: carry, scanned.index: t}
                return over_plates(lambda inner: (self._lhs(piece, inner),
                                                  evaluate(piece.value, inner)),
                                   others, other_ranges, local)
            return scans.scan_loop(values_at, array, steps)
        if scan.form:
            return self._algebraic(name, piece, info, scan, env, array)
        # Each read `h[.., t - k, ..]` becomes the slice `h@lagk[..]` of the window.
        depth = max(scan.lags)
        lag_names = {k: f"{name}@lag{k}" for k in scan.lags}
        value = ast.substitute(piece.value, recurrence.lag_read(name, scan.axis, scanned.index,
                                                                lag_names))
        # The other loops in the order of the array axes they write (a permutation).
        written = [i.id for i in piece.indices]
        permutation = sorted(range(len(others)), key=lambda k: written.index(others[k].index))

        def slice_at(window, t):
            local = {**env, scanned.index: t}
            local.update({lag: window[depth - k] for k, lag in lag_names.items()})
            row = jnp.asarray(over_plates(lambda inner: evaluate(value, inner), others,
                                          other_ranges, local))
            return jnp.transpose(row, permutation + list(range(len(others), row.ndim)))
        return scans.lagged_scan(slice_at, array, scan.axis, depth, steps, scan.unroll)

    def _algebraic(self, name, piece, info, scan, env, array):
        """A linear or log-semiring recurrence (scan_forms.py): its parts free of the array
        evaluated at every step at once, vectorized, then scans.linear_recurrence or
        scans.semiring_recurrence, sequential or parallel as the plan chose."""
        evaluate = self._evaluate
        others = [p for k, p in enumerate(piece.plates) if k != scan.plate]
        steps = info.ranges[scan.plate]
        plates = [piece.plates[scan.plate]] + others
        ranges = [steps] + [r for k, r in enumerate(info.ranges) if k != scan.plate]
        written = [i.id for i in piece.indices]
        axes = [0] + [1 + k for k in sorted(range(len(others)),
                                             key=lambda k: written.index(others[k].index))]

        def every(expr):
            """expr at every step and index of the other loops (None stays None: zero)."""
            return None if expr is None else over_plates(
                lambda local: evaluate(expr, local), plates, ranges, env)

        if scan.form == scan_forms.LINEAR:
            a, b = scan_forms.linear_parts(name, piece, scan.axis)
            return scans.linear_recurrence(array, scan.axis, steps, every(a), every(b), axes,
                                           scan.parallel, scan.unroll)
        c, d = scan_forms.semiring_parts(name, piece, scan.axis)
        return scans.semiring_recurrence(array, steps, every(c), every(d), scan.parallel,
                                         scan.unroll)

    def _group(self, group, env: Env) -> dict:
        """Arrays that read each other's elements, stage by stage (recurrence.Group)."""
        arrays = {n: jnp.zeros(self.shapes[n], self.dtypes[n]) for n in group.names}
        for stage in group.stages:
            if stage.joint:
                arrays = self._joint_scan(stage, env, arrays)
                continue
            ((name, i),) = stage.pieces
            variable = self.graph[name]
            arrays[name] = self._recurrence(variable, i, {**env, **arrays}, arrays[name])
        return arrays

    def _joint_scan(self, stage, env: Env, arrays: dict) -> dict:
        """Several pieces in one `lax.scan` over the loop they share: in each step, each
        piece in turn (vectorized over its other loops) reads the arrays as they stand."""
        evaluate = self._evaluate
        names = tuple(arrays)
        first_name, first_i = stage.pieces[0]
        steps = self.pieces[(first_name, first_i)].ranges[stage.plates[0]]

        def values_at(name, i, at):
            piece, info = self.graph[name].pieces[i], self.pieces[(name, i)]
            others = [p for k, p in enumerate(piece.plates) if k != at]
            other_ranges = [r for k, r in enumerate(info.ranges) if k != at]
            index = piece.plates[at].index   # this piece's name for the shared loop

            def at_step(carry, t):
                local = {**env, **dict(zip(names, carry)), index: t}
                return over_plates(lambda inner: (self._lhs(piece, inner),
                                                  evaluate(piece.value, inner)),
                                   others, other_ranges, local)
            return at_step

        pieces = [(names.index(name), values_at(name, i, at))
                  for (name, i), at in zip(stage.pieces, stage.plates)]
        out = scans.joint_scan(pieces, tuple(arrays[n] for n in names), steps)
        return dict(zip(names, out))
