"""Checks of constant distribution arguments against their supports (`Normal(0, -1)`,
`Dirichlet` with a zero entry, probabilities that do not sum to one) and of an `ode`'s
times, when the model is checked with its data, before any sampling: the first value at
fault, at its loop position, with a hint for the usual slip. A mixin of the analysis
(analysis.py), which holds the state.
"""

from __future__ import annotations

import numpy as np

from pplc.backends.data import STRUCTURE_CHECKS, SUM_TOLERANCE
from pplc.errors import error
from pplc.frontend import ast
from pplc.frontend.library import (DISTRIBUTIONS, KIND_BOUNDS, PARAMETER_SUPPORTS,
                                   ParameterSupport, named_arguments)
from pplc.ir.graph import Piece
from pplc.backends.value_checks import loop_words, number_text


class ArgumentChecks:
    def _check_arguments(self) -> None:
        """Distribution arguments known now (numbers, data) inside their parameters'
        supports (library.PARAMETER_SUPPORTS), said at the argument: `Normal(0, -1)` would
        make the density NaN, and unnormalized Categorical probabilities silently wrong."""
        for variable in self.graph.variables():
            for i, piece in enumerate(variable.pieces):
                if piece.distribution is not None:
                    self._check_call_arguments((variable.name, i), piece, piece.distribution)

    def _check_call_arguments(self, key: tuple[str, int], piece: Piece, call: ast.Call
                              ) -> None:
        supports = PARAMETER_SUPPORTS.get(call.func, {})
        named = named_arguments(call)
        values = {}
        for param, expr in named.items():
            if isinstance(expr, ast.Call) and expr.func in DISTRIBUTIONS:
                self._check_call_arguments(key, piece, expr)  # Truncated's inner one
                continue
            if param not in supports:
                continue
            value = self._known_value(key, piece, expr)
            if value is None:
                continue
            values[param] = value
            loops = len(piece.plates)
            problem = _parameter_problem(value, supports[param], loops)
            if problem is not None:
                words, position = problem
                varies = {n.id for n in ast.names_in(expr)} & {p.index for p in piece.plates}
                where = loop_words(tuple(p for p in position[:loops] if p is not None),
                                    piece, self.pieces[key].ranges) if varies else ""
                raise error(f"the {param} of {call.func} must be "
                            f"{_support_words(supports[param])}, but "
                            f"{_subject(position, loops)}{words}{where}", self.source,
                            expr.span, hint=_parameter_hint(call.func, param, supports[param]))
        for param, value in values.items():
            other = supports[param].above
            if other in values:
                with np.errstate(invalid="ignore"):
                    bad = ~(value > values[other])
                if np.any(bad):
                    position = tuple(np.argwhere(np.broadcast_to(bad, np.broadcast_shapes(
                        np.shape(value), np.shape(values[other]))))[0])
                    high = np.broadcast_to(value, bad.shape if np.ndim(bad) else ())
                    low = np.broadcast_to(values[other], bad.shape if np.ndim(bad) else ())
                    raise error(f"the {param} of {call.func} must be greater than its {other}, "
                                f"but {param} = {number_text(high[position])} and {other} = "
                                f"{number_text(low[position])}"
                                + loop_words(position, piece, self.pieces[key].ranges),
                                self.source, named[param].span)

    def _check_ode_times(self) -> None:
        """An `ode`'s output times known now must not decrease and not start before t0:
        the solver would otherwise fail inside JAX, or integrate backwards silently."""
        for variable in self.graph.variables():
            for i, piece in enumerate(variable.pieces):
                for expr in (piece.distribution, piece.value):
                    if expr is None:
                        continue
                    for node in ast.walk(expr):
                        if isinstance(node, ast.Call) and node.func == "ode" \
                                and len(node.args) >= 4:
                            self._check_ode_call((variable.name, i), piece, node)

    def _check_ode_call(self, key: tuple[str, int], piece: Piece, call: ast.Call) -> None:
        t0_expr, ts_expr = call.args[2], call.args[3]
        ts = self._known_value(key, piece, ts_expr)
        if ts is None or ts.ndim <= len(piece.plates):
            return
        loops = len(piece.plates)
        ranges = self.pieces[key].ranges
        with np.errstate(invalid="ignore"):
            steps = np.diff(ts, axis=-1)
            if np.any(~np.isfinite(ts)):
                position = tuple(np.argwhere(~np.isfinite(ts))[0])
                raise error(f"the times ts of ode must be finite, but ts[{position[-1]}] = "
                            f"{number_text(ts[position])}" + loop_words(position, piece, ranges),
                            self.source, ts_expr.span)
            if np.any(steps < 0):
                position = tuple(np.argwhere(steps < 0)[0])
                k = position[-1]
                raise error(f"the times ts of ode must not decrease, but ts[{k + 1}] = "
                            f"{number_text(ts[position[:-1] + (k + 1,)])} comes after ts[{k}] = "
                            f"{number_text(ts[position])}" + loop_words(position, piece, ranges),
                            self.source, ts_expr.span,
                            hint="give the output times in increasing order")
        t0 = self._known_value(key, piece, t0_expr)
        if t0 is None:
            return
        first = ts[..., 0]
        t0 = np.broadcast_to(t0, first.shape) if np.ndim(t0) <= first.ndim else None
        if t0 is not None and np.any(first < t0):
            position = tuple(np.argwhere(first < t0)[0])
            raise error(f"the first time of ode, ts[0] = {number_text(first[position])}, is "
                        f"before the initial time t0 = {number_text(t0[position])}"
                        + loop_words(position[:loops], piece, ranges), self.source,
                        ts_expr.span, hint="the solution starts at t0: every output time "
                                           "must be t0 or later")


_SUPPORT_WORDS = {
    "real": "a finite number", "extended_real": "a number (not NaN)",
    "unit": "between 0 and 1", "nonnegative_int": "a whole number >= 0",
    "simplex": "a probability vector (entries >= 0 that sum to 1)",
    "ordered": "strictly increasing", "cov": "a covariance matrix",
    "lower_cholesky": "a Cholesky factor (lower triangular with a positive diagonal)",
}


def _support_words(support: ParameterSupport) -> str:
    if support.kind == "positive":
        return "positive" if support.open else "zero or positive"
    return _SUPPORT_WORDS[support.kind]


def _parameter_problem(value, support: ParameterSupport, loops: int):
    """(what is wrong, its position: loop axes first, then the entry's) for an argument's
    values, or None when they are inside the support. What is wrong either follows a
    subject ('is -1': it, its entry [1]) or is a whole clause (the position then ends with
    None)."""
    value = np.asarray(value, dtype=float)
    kind = support.kind

    def first(mask):
        return tuple(int(i) for i in np.argwhere(mask)[0]) if np.ndim(mask) else ()

    nan = np.isnan(value)
    if nan.any():
        return "is NaN", first(nan)
    if kind == "extended_real":
        return None
    infinite = ~np.isfinite(value)
    if infinite.any():
        return f"is {number_text(value[first(infinite)])}", first(infinite)
    if kind in KIND_BOUNDS:
        lower, upper = KIND_BOUNDS[kind]
        bad = np.zeros(value.shape, bool)
        if lower is not None:
            bad |= value <= lower if support.open else value < lower
        if upper is not None:
            bad |= value >= upper if support.open else value > upper
        if kind == "nonnegative_int":
            bad |= value != np.round(value)
        return (f"is {number_text(value[first(bad)])}", first(bad)) if bad.any() else None
    if value.ndim <= loops:
        return None  # a shape error, reported elsewhere
    if kind == "simplex":
        if (value < 0).any():
            return f"is {number_text(value[first(value < 0)])}", first(value < 0)
        sums = value.sum(axis=-1)
        bad = np.abs(sums - 1) > SUM_TOLERANCE * value.shape[-1]
        if bad.any():
            position = first(bad)
            return f"they sum to {number_text(sums[position])}, not 1", position + (None,)
        return None
    if kind == "ordered":
        bad = np.diff(value, axis=-1) <= 0
        if bad.any():
            position = first(bad)
            k = position[-1]
            after = value[position[:-1] + (k + 1,)]
            return (f"is {number_text(after)}, not above the entry before it, "
                    f"{number_text(value[position])}", position[:-1] + (k + 1,))
        return None
    if kind == "cov":
        problem = STRUCTURE_CHECKS["cov"](value)
        return (problem, (None,)) if problem else None  # "it is not symmetric"
    if kind == "lower_cholesky":
        if np.any(np.triu(value, 1) != 0):
            return "it is not lower triangular", (None,)
        if np.any(np.diagonal(value, axis1=-2, axis2=-1) <= 0):
            return "its diagonal is not positive", (None,)
    return None


def _subject(position: tuple, loops: int) -> str:
    """Who the problem is about: 'it ', 'its entry [1] ', or nobody (a whole clause)."""
    if position and position[-1] is None:
        return ""
    entry = position[loops:]
    return f"its entry [{','.join(map(str, entry))}] " if entry else "it "


def _parameter_hint(func: str, param: str, support: ParameterSupport) -> str | None:
    if support.kind == "simplex":
        return ("divide them by their sum, or give logits= instead (logits need not be "
                "normalized)" if "logits" in DISTRIBUTIONS[func].parameter_names else
                "divide them by their sum")
    if support.kind == "ordered":
        return "sort the cutpoints in increasing order"
    return None
