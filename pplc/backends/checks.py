"""Checks of a conditioned model that need the data's sizes and values, before anything
is compiled: each element of a latent or deterministic defined exactly once, supports and
types that agree, distribution shapes that match their variables, observed data inside
their support, integer data used as indices in range, missing data that can be imputed.
A mixin of the analysis (analysis.py), which holds the state.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from functools import lru_cache
from itertools import product

from pplc.backends.data import STRUCTURE_CHECKS, SUM_TOLERANCE, value_span
from pplc.backends.evaluate import call_params, over_plates, shape_text
from pplc.errors import Diagnostic, PplcError, error
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.check import CONSTANTS
from pplc.frontend.library import (DISTRIBUTIONS, KIND_BOUNDS, PARAMETER_SUPPORTS, AxisLength,
                                   ParameterSupport, is_discrete, named_arguments)
from pplc.ir.graph import Graph, Kind, Piece, Variable


class DataChecks:
    def _check_imputable(self) -> None:
        """Missing entries become latent: they must be continuous and have a distribution."""
        for name, mask in self.data.missing.items():
            variable = self.graph[name]
            for piece in variable.pieces:
                if is_discrete(piece.distribution):
                    raise error(f"'{name}' has missing entries, which would be latent discrete "
                                f"values ({piece.distribution.func}); this version of pplc "
                                "cannot impute discrete values", self.source, piece.span)
            covered = np.zeros(mask.shape, bool)
            for i, piece in enumerate(variable.pieces):
                if piece.indices is None:
                    covered[...] = True
                    continue
                arrays = self._index_arrays(variable, i, piece)
                covered[tuple(a.ravel() for a in arrays)] = True
            orphan = mask & ~covered
            if orphan.any():
                index = tuple(int(i) for i in np.argwhere(orphan)[0])
                message = (f"data '{_element(name, index)}' is missing, but no '~' statement "
                           "covers that entry, so nothing could fill it in")
                span = value_span(self.data.source, name, index)
                if span is None:
                    raise error(message, self.source, variable.span)
                raise PplcError([Diagnostic(message, self.data.source, span),
                                 Diagnostic(f"the '~' statements of '{name}' start here",
                                            self.source, variable.span, severity="note")])

    def _check_coverage(self) -> None:
        """Each element of a latent or deterministic is defined exactly once."""
        for variable in self.graph.variables():
            if variable.kind is Kind.FACTOR or all(p.indices is None for p in variable.pieces):
                continue
            shape = self.shapes[variable.name]
            first: np.ndarray | None = None
            owner = None
            for i, piece in enumerate(variable.pieces):
                arrays = self._index_arrays(variable, i, piece)
                leading = shape[:len(arrays)]
                if first is None:
                    first = np.full(leading, -1)
                    owner = np.full(leading, -1)
                flat = tuple(a.ravel() for a in arrays)
                for d, (a, n) in enumerate(zip(flat, leading)):
                    if a.size and a.max() >= n:
                        raise error(f"subscript {int(a.max())} is out of range for "
                                    f"'{variable.name}' of shape {shape_text(shape)}",
                                    self.source, piece.indices[d].span)
                counts = np.zeros(leading, int)
                np.add.at(counts, flat, 1)
                twice = (counts > 1) | ((counts > 0) & (owner >= 0))
                if twice.any():
                    where = tuple(int(x) for x in np.argwhere(twice)[0])
                    other = owner[where] if owner[where] >= 0 else i
                    other_line = variable.pieces[other].span.line
                    element = f"{variable.name}[{','.join(map(str, where))}]"
                    where_text = "also on line " + str(other_line) if other != i \
                        else "more than once by this statement"
                    raise error(f"element {element} is defined {where_text}", self.source,
                                piece.span,
                                hint="each element has exactly one definition")
                owner[counts > 0] = i
            if variable.kind in (Kind.LATENT, Kind.DETERMINISTIC) and (owner < 0).any():
                where = tuple(int(x) for x in np.argwhere(owner < 0)[0])
                raise error(f"element {variable.name}[{','.join(map(str, where))}] is never "
                            "defined", self.source, variable.span,
                            hint="every element of a latent or deterministic array needs a "
                                 "definition")

    def _check_supports(self) -> None:
        """Pieces agree on a support, and an explicit type lies inside it (Stan's rule:
        a type may narrow the support, never widen it)."""
        for variable in self.graph.of_kind(Kind.LATENT):
            supports = [DISTRIBUTIONS[p.distribution.func].support for p in variable.pieces]
            if len({s.kind for s in supports}) > 1:
                raise error(f"the pieces of '{variable.name}' have different supports",
                            self.source, variable.pieces[1].span,
                            hint="give every element of a latent array the same kind of "
                                 "distribution support")
            support = supports[0]
            declared = variable.declared_type
            func = variable.pieces[0].distribution.func
            if declared is not None and not _type_within(declared, support, self.evaluate,
                                                         self.static):
                raise error(f"type '{ast.type_to_source(declared)}' is wider than, or not "
                            f"inside, the support of {func} ({_describe_support(support)})",
                            self.source, declared.span,
                            hint="leave the type out to use the support, or narrow it")

    def _check_log_prob_shapes(self) -> None:
        """A `~` whose arguments broadcast beyond the variable's shape is a mistake."""
        for variable in self.graph.variables():
            if not variable.stochastic:
                continue
            shape = self.shapes[variable.name]
            for i, piece in enumerate(variable.pieces):
                info = self.pieces[(variable.name, i)]
                result = self._traced(piece, lambda env, i=i, piece=piece: over_plates(
                    lambda local: self._piece_value(variable, i, piece, local),
                    piece.plates, info.ranges, env))
                batch = tuple(result.shape[len(piece.plates):])
                element = shape if piece.indices is None else shape[len(piece.indices):]
                try:
                    joint = jnp.broadcast_shapes(batch, element)
                except ValueError:
                    joint = None
                if joint != tuple(element):
                    what = variable.name if piece.indices is None else "each element of " \
                        + variable.name
                    raise error(f"{piece.distribution.func}(...) has shape {shape_text(batch)}, "
                                f"but {what} has shape {shape_text(element)}", self.source,
                                piece.distribution.span)

    def _check_observed_support(self) -> None:
        """Observed data finite and inside their distribution's support, said before
        sampling at the value in the data file (the log density would otherwise be -inf or
        NaN everywhere, and sampling would fail vaguely). On the model as written, first
        the arguments and the `ode` times that are known now."""
        if self.as_written:
            self._check_arguments()
            self._check_ode_times()
        for variable in self.graph.of_kind(Kind.OBSERVED):
            name = variable.name
            values = self.data.arrays.get(name, self.data.sizes.get(name))
            if values is None:
                continue
            values = np.asarray(values)
            for i, piece in enumerate(variable.pieces):
                if piece.distribution is None:
                    continue
                at, index_of = self._observed_at(variable, i, piece, values)
                present = ~np.isnan(at) if at.dtype.kind == "f" else np.ones(at.shape, bool)
                infinite = present & ~np.isfinite(at) if at.dtype.kind == "f" else \
                    np.zeros(at.shape, bool)
                if infinite.any():
                    index = index_of(np.argwhere(infinite)[0])
                    raise self._data_error(
                        f"observed {_element(name, index)} = "
                        f"{'-' if values[index] < 0 else ''}Infinity is not finite", name,
                        index, piece,
                        hint="an observation must be a finite number; write null for a "
                             "missing one (it is then imputed)")
                test = self._support_test((name, i), piece, at)
                if test is not None:
                    inside, words = test
                    with np.errstate(invalid="ignore"):
                        bad = present & ~inside
                    if bad.any():
                        position = tuple(np.argwhere(bad)[0])
                        index = index_of(position)
                        raise self._data_error(
                            f"observed {_element(name, index)} = {_number(values[index])} "
                            f"is outside the support of {piece.distribution.func} "
                            f"({words(position)})",
                            name, index, piece, hint="check the data, or the distribution")
                self._check_known_density((name, i), piece, at, present, values, index_of)

    def _check_known_density(self, key, piece: Piece, at, present, values, index_of) -> None:
        """Where every argument of a scalar distribution is known now, its log density at
        each observation must be a number above -inf: an observation the distribution
        cannot produce (Gamma(3, 1) at 0) makes every posterior point impossible."""
        from pplc.runtime import distributions as dists

        call = piece.distribution
        info = DISTRIBUTIONS[call.func]
        if info.wrapper or info.event_ndim or isinstance(info.support.upper, AxisLength):
            return
        params = {}
        for param, expr in named_arguments(call).items():
            value = self._known_value(key, piece, expr)
            aligned = None if value is None else _aligned(value, at, len(piece.plates))
            if aligned is None or aligned is _UNKNOWN:
                return
            params[param] = aligned
        with np.errstate(invalid="ignore", divide="ignore"):
            density = np.asarray(dists.get(call.func).log_prob(jnp.asarray(at, float),
                                                               **params))
        bad = present & (np.isnan(density) | np.isneginf(density))
        if bad.any():
            position = tuple(np.argwhere(bad)[0])
            index = index_of(position)
            shown = ", ".join(_number(params[p][position]) for p in params)
            raise self._data_error(
                f"observed {_element(key[0], index)} = "
                f"{_number(values[index])} has log density "
                f"{'NaN' if np.isnan(density[position]) else '-inf'} under "
                f"{call.func}({shown})", key[0], index, piece,
                hint="its arguments are all known, so no parameter can make it possible: "
                     "check the data, or the distribution")

    def _observed_at(self, variable: Variable, i: int, piece: Piece, values: np.ndarray):
        """The observed values a piece addresses, with its loops' axes first (as its
        arguments are evaluated), and the map from a position there to the index in the
        whole array."""
        if piece.indices is None:
            return values, lambda position: tuple(int(p) for p in position)
        writes = self._index_arrays(variable, i, piece)
        at = values[tuple(writes)]
        loops = len(piece.plates)

        def index_of(position):
            position = tuple(int(p) for p in position)
            return tuple(int(w[position[:loops]]) for w in writes) + position[loops:]
        return at, index_of

    def _data_error(self, message: str, name: str, index: tuple, piece: Piece,
                    hint: str | None = None) -> PplcError:
        """An error at the value in the data file, with a note at the statement that
        reads it; at the statement alone when the data came without a file."""
        span = value_span(self.data.source, name, index)
        if span is None:
            return error(message, self.source, piece.span, hint=hint)
        return PplcError([
            Diagnostic(message, self.data.source, span, hint),
            Diagnostic(f"{_element(name, index)} is observed by this statement", self.source,
                       piece.span, severity="note")])

    def _support_test(self, key: tuple[str, int], piece: Piece, at: np.ndarray):
        """(mask of the values inside the piece's support, position -> the support in
        words), or None where the support depends on what is not known yet (a latent
        bound)."""
        call = piece.distribution
        info = DISTRIBUTIONS[call.func]
        kind = info.support.kind
        whole = lambda v: v == np.round(v)  # noqa: E731

        def constant(words):
            return lambda position: words

        if info.wrapper:
            inner = DISTRIBUTIONS[call.args[0].func] if call.args and \
                isinstance(call.args[0], ast.Call) else None
            if inner is None or inner.support.kind not in KIND_BOUNDS:
                return None
            lower, upper = KIND_BOUNDS[inner.support.kind]
            given = named_arguments(call)  # a bound left out is the inner support's own
            bounds = (self._known_bound(key, piece, "lower", lower),
                      "lower" if "lower" in given else None,
                      self._known_bound(key, piece, "upper", upper),
                      "upper" if "upper" in given else None)
            discrete = inner.discrete
        elif kind in ("interval", "int_interval"):
            bounds = (self._known_bound(key, piece, info.support.lower), info.support.lower,
                      self._known_bound(key, piece, info.support.upper), info.support.upper)
            discrete = kind == "int_interval"
        elif kind == "nonnegative_int":
            return (at >= 0) & whole(at), constant("non-negative integers")
        elif kind == "boolean":
            return (at == 0) | (at == 1), constant("0 or 1")
        elif kind == "positive":
            if _vanishes_at_zero(call.func):
                return at > 0, constant("positive values: its density is 0 at 0")
            return at >= 0, constant("non-negative values")
        elif kind == "unit":
            return (at >= 0) & (at <= 1), constant("values in [0, 1]")
        elif kind == "simplex":
            sums = at.sum(axis=-1, keepdims=True) if at.ndim else at
            return (at >= 0) & (np.abs(sums - 1) <= SUM_TOLERANCE * max(1, at.shape[-1])), \
                constant("vectors of non-negative entries that sum to 1")
        elif kind == "nonnegative_int_vector":
            inside = (at >= 0) & whole(at)
            total = _aligned(self._known_bound(key, piece, "total_count"), at[..., 0],
                             len(piece.plates))
            if total is _UNKNOWN or total is None:
                return inside, constant("non-negative integers")
            sums = at.sum(axis=-1, keepdims=True)
            return inside & (sums == total[..., None]), lambda position: (
                f"counts that sum to total_count = {_number(total[position[:-1]])}; these "
                f"sum to {_number(sums[position[:-1]][0])}")
        else:
            return None
        lower, lower_name, upper, upper_name = bounds
        lower, upper = (_aligned(b, at, len(piece.plates)) for b in (lower, upper))
        if lower is _UNKNOWN or upper is _UNKNOWN:
            return None
        inside = np.ones(at.shape, bool)
        if lower is not None:
            inside &= at >= lower
        if upper is not None:
            inside &= at <= upper
        if discrete:
            inside &= whole(at)
        noun = "integers" if discrete else "values"
        return inside, lambda position: (
            f"{noun} from {_bound_at(lower, position, lower_name, '-infinity')} to "
            f"{_bound_at(upper, position, upper_name, 'infinity')}")

    def _known_bound(self, key: tuple[str, int], piece: Piece, bound, default=None):
        """A support bound of a piece at every loop index: a number, a parameter whose
        value is known now (numbers and data), or an `AxisLength` (a count read off a
        parameter's shape); `default` where the distribution names none; _UNKNOWN when it
        depends on what is not known yet."""
        if bound is None:
            return default
        if isinstance(bound, (int, float)):
            return float(bound)
        call = piece.distribution
        named = named_arguments(call)
        if isinstance(bound, AxisLength):
            given = [p for p in bound.params if p in named]
            if not given:
                return _UNKNOWN
            ranges = self.pieces[key].ranges
            shapes = self._traced(piece, lambda env: over_plates(
                lambda local: call_params(self.evaluate, call, local), piece.plates,
                ranges, env))
            shape = shapes[given[0]].shape[len(piece.plates):]
            return float(shape[-1] + bound.offset) if shape else _UNKNOWN
        if bound not in named:
            return default
        value = self._known_value(key, piece, named[bound])
        return _UNKNOWN if value is None else value

    def _known_value(self, key: tuple[str, int], piece: Piece, expr) -> np.ndarray | None:
        """An argument's values at every loop index of the piece when they are known now
        (they read only numbers, data and loop indices); None otherwise."""
        loop_vars = {p.index for p in piece.plates}
        reads = {n.id for n in ast.names_in(expr)} - loop_vars
        if not all(self._known_now(name) for name in reads):
            return None
        for node in ast.walk(expr):
            if isinstance(node, ast.Call) and (node.func in ast.SPECIAL_FORMS
                                               or node.func in self.externs):
                return None  # user code and solvers run when sampling, not when checking
        try:
            return np.asarray(over_plates(lambda env: jnp.asarray(self.evaluate(expr, env)),
                                          piece.plates, self.pieces[key].ranges, self.static))
        except (PplcError, KeyError, TypeError, ValueError, IndexError):
            return None

    def _known_now(self, name: str) -> bool:
        """A name whose value is known before sampling: data without missing entries, or a
        constant (`pi`) that the model does not name a variable."""
        if name in self.graph.dag:
            return name in self.static and name not in self.data.missing
        return name in CONSTANTS

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
                where = _loop_words(tuple(p for p in position[:loops] if p is not None),
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
                                f"but {param} = {_number(high[position])} and {other} = "
                                f"{_number(low[position])}"
                                + _loop_words(position, piece, self.pieces[key].ranges),
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
                            f"{_number(ts[position])}" + _loop_words(position, piece, ranges),
                            self.source, ts_expr.span)
            if np.any(steps < 0):
                position = tuple(np.argwhere(steps < 0)[0])
                k = position[-1]
                raise error(f"the times ts of ode must not decrease, but ts[{k + 1}] = "
                            f"{_number(ts[position[:-1] + (k + 1,)])} comes after ts[{k}] = "
                            f"{_number(ts[position])}" + _loop_words(position, piece, ranges),
                            self.source, ts_expr.span,
                            hint="give the output times in increasing order")
        t0 = self._known_value(key, piece, t0_expr)
        if t0 is None:
            return
        first = ts[..., 0]
        t0 = np.broadcast_to(t0, first.shape) if np.ndim(t0) <= first.ndim else None
        if t0 is not None and np.any(first < t0):
            position = tuple(np.argwhere(first < t0)[0])
            raise error(f"the first time of ode, ts[0] = {_number(first[position])}, is "
                        f"before the initial time t0 = {_number(t0[position])}"
                        + _loop_words(position[:loops], piece, ranges), self.source,
                        ts_expr.span, hint="the solution starts at t0: every output time "
                                           "must be t0 or later")

    def _check_data_indices(self) -> None:
        """Integer data used as an index (`alpha[g[n]]`) must be in range, checked now.

        JAX clamps an out-of-range gather index silently, so 1-based group codes would
        give a wrong posterior without a word; here they are an error before compiling.
        """
        for variable in self.graph.variables():
            for i, piece in enumerate(variable.pieces):
                exprs = [e for e in (piece.distribution, piece.value) if e is not None]
                for expr in exprs:
                    for node in ast.walk(expr):
                        if isinstance(node, ast.Index) and isinstance(node.value, ast.Name):
                            self._check_index(variable, i, piece, node)

    def _check_index(self, variable, i, piece, node: ast.Index) -> None:
        target = node.value.id
        shape = self.shapes.get(target)
        if shape is None:
            return
        loop_vars = {p.index for p in piece.plates}
        info = self.pieces[(variable.name, i)]
        for axis, sub in enumerate(node.indices):
            if isinstance(sub, ast.Slice) or axis >= len(shape):
                continue
            reads = {n.id for n in ast.names_in(sub)}
            # Subscripts computed from loop variables and data are known now: check them all
            # (JAX would clamp an out-of-range gather silently).
            if not reads & (loop_vars | set(self.data.arrays)) \
                    or not reads <= loop_vars | set(self.static):
                continue
            values = np.asarray(over_plates(lambda env: jnp.asarray(self.evaluate(sub, env)),
                                            piece.plates, info.ranges, self.static))
            if not np.issubdtype(values.dtype, np.integer) or values.size == 0:
                continue
            size = shape[axis]
            bad = (values < 0) | (values >= size)
            if bad.any():
                value = int(values[bad].flat[0])
                from_data = any(r in self.data.arrays for r in reads)
                raise error(f"index {to_source(sub)} = {value} is out of range for axis {axis} "
                            f"of '{target}', which has {size} elements (valid: 0 to {size - 1})",
                            self.source, sub.span,
                            hint="indices are 0-based; if the codes in your data start at 1, "
                                 "subtract 1 from them" if from_data else
                                 "check the loop's range against the size of the array")


_UNKNOWN = object()  # a support bound that depends on what is not known yet


def _element(name: str, index: tuple) -> str:
    return name + (f"[{','.join(str(int(i)) for i in index)}]" if len(index) else "")


def _number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else f"{value:g}"


def _aligned(bound, at: np.ndarray, loops: int):
    """A bound (None, a number, or values with the piece's loop axes first and then the
    element's own) broadcast to the observed values `at`; _UNKNOWN if it is or cannot be."""
    if bound is None or bound is _UNKNOWN:
        return bound
    bound = np.asarray(bound, dtype=float)
    if 0 < bound.ndim and loops and bound.ndim < at.ndim:
        # the loop axes first, then the element's own axes aligned on the right
        bound = bound.reshape(bound.shape[:loops] + (1,) * (at.ndim - bound.ndim)
                              + bound.shape[loops:])
    try:
        return np.broadcast_to(bound, at.shape)
    except ValueError:
        return _UNKNOWN


def _bound_at(bound, position: tuple, name, none: str) -> str:
    """A bound at one observed value in words: its number, with the parameter that gives
    it (`total_count = 3`); `none` where there is no bound."""
    if bound is None:
        return none
    value = _number(bound[position])
    if bound.size and np.all(bound == bound.flat[0]) and not isinstance(name, str):
        return value
    if isinstance(name, AxisLength):
        name = f"len({name.params[0]})" + (f" - {-name.offset}" if name.offset < 0 else
                                           f" + {name.offset}" if name.offset else "")
    return f"{name} = {value}" if isinstance(name, str) else value


def _loop_words(position: tuple, piece: Piece, ranges) -> str:
    """' when j = 3' for a position whose first axes are the piece's loops."""
    loops = [f"{plate.index} = {ranges[d][int(position[d])]}"
             for d, plate in enumerate(piece.plates) if d < len(position)]
    return " when " + ", ".join(loops) if loops else ""


@lru_cache(maxsize=None)
def _vanishes_at_zero(func: str) -> bool:
    """Is a positive-support density 0 at 0 whatever its parameters (LogNormal), so that
    an observed 0 makes it -inf? Found by asking the density itself at parameters spread
    over their supports (library.PARAMETER_SUPPORTS), not from a second table."""
    from pplc.runtime import distributions as dists

    info = DISTRIBUTIONS[func]
    if info.discrete or info.wrapper or info.event_ndim:
        return False
    # Shapes below, at and above 1 (ChiSquared's df around 2), where a density at 0 turns
    # from infinite to finite to 0.
    spread = {"positive": (0.5, 1.0, 2.0, 3.0), "real": (-1.0, 0.0, 1.0), "unit": (0.3,),
              "nonnegative_int": (3.0,), "extended_real": (-1.0, 0.0, 1.0)}
    signature = info.signatures[0]
    choices = [spread.get(PARAMETER_SUPPORTS[func][p].kind, (1.0,)) for p in signature]
    for values in product(*choices):
        density = dists.get(func).log_prob(jnp.asarray(0.0), **dict(zip(signature, values)))
        if not np.isneginf(float(density)):
            return False
    return True


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
        return f"is {_number(value[first(infinite)])}", first(infinite)
    if kind in KIND_BOUNDS:
        lower, upper = KIND_BOUNDS[kind]
        bad = np.zeros(value.shape, bool)
        if lower is not None:
            bad |= value <= lower if support.open else value < lower
        if upper is not None:
            bad |= value >= upper if support.open else value > upper
        if kind == "nonnegative_int":
            bad |= value != np.round(value)
        return (f"is {_number(value[first(bad)])}", first(bad)) if bad.any() else None
    if value.ndim <= loops:
        return None  # a shape error, reported elsewhere
    if kind == "simplex":
        if (value < 0).any():
            return f"is {_number(value[first(value < 0)])}", first(value < 0)
        sums = value.sum(axis=-1)
        bad = np.abs(sums - 1) > SUM_TOLERANCE * value.shape[-1]
        if bad.any():
            position = first(bad)
            return f"they sum to {_number(sums[position])}, not 1", position + (None,)
        return None
    if kind == "ordered":
        bad = np.diff(value, axis=-1) <= 0
        if bad.any():
            position = first(bad)
            k = position[-1]
            after = value[position[:-1] + (k + 1,)]
            return (f"is {_number(after)}, not above the entry before it, "
                    f"{_number(value[position])}", position[:-1] + (k + 1,))
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


def discrete_latent_diagnostic(graph: Graph, variable: Variable, piece: Piece):
    """The diagnostic for a discrete latent left after the passes: why it stayed."""
    func = piece.distribution.func
    reasons = [n.message.split(" — ", 1)[1] for n in graph.notes
               if n.pass_name == "marginalize" and n.message.startswith(variable.name + ":")
               and " — " in n.message]
    if func in ("Bernoulli", "Categorical", "Binomial"):
        why = reasons[0] if reasons else "the marginalization pass is off"
        message = (f"'{variable.name}' is a latent discrete variable ({func}) that cannot be "
                   f"summed out: {why}")
        hint = ("NUTS samples only continuous parameters; supply it in the data, or write "
                "the mixture with `factor logsumexp(...)`")
    else:
        message = (f"'{variable.name}' is a latent discrete variable with infinite support "
                   f"({func}): it can be neither sampled by NUTS nor summed out")
        hint = f"supply '{variable.name}' in the data, or use a continuous distribution"
    return message, graph.source, piece.span, hint


# ---------------------------------------------------------------- types within supports

# Which sets contain which: a type may name any subset of its distribution's support.
_WITHIN = {
    "real": {"real", "positive", "unit", "simplex", "ordered", "positive_ordered",
             "corr_cholesky", "cov", "interval"},
    "positive": {"positive", "unit", "simplex", "positive_ordered"},
    "unit": {"unit", "simplex"},
    "simplex": {"simplex"},
    "corr_cholesky": {"corr_cholesky"},
}
_KIND_BOUNDS = {k: KIND_BOUNDS[k] for k in ("real", "positive", "unit")}   # continuous


def _describe_support(support) -> str:
    return support.kind if support.kind != "interval" else \
        f"interval from {support.lower} to {support.upper}"


def _type_within(declared: ast.Type, support, evaluate, static) -> bool:
    """Is the declared type a subset of the support? Bounds known only at run time
    (expressions of other variables) are given the benefit of the doubt, as in Stan."""
    if declared.base == "int":
        return True  # refused elsewhere with its own message
    base = declared.base
    if declared.bounds:
        lower, upper = _KIND_BOUNDS.get(base, (None, None))
        for bound in declared.bounds:
            try:
                value = evaluate(bound.value, static)
            except (KeyError, PplcError):
                return True
            if not isinstance(value, (int, float)):
                return True
            if bound.name == "lower":
                lower = value if lower is None else max(lower, value)
            else:
                upper = value if upper is None else min(upper, value)
        base = "bounded"
    else:
        lower, upper = _KIND_BOUNDS.get(base, (None, None))
    if support.kind == "interval":
        if base not in ("real", "positive", "unit", "bounded"):
            return base in _WITHIN["positive"]  # simplex etc.: leave to the density
        low, high = support.lower, support.upper
        if not all(isinstance(b, (int, float)) for b in (low, high)):
            return True
        return lower is not None and upper is not None and lower >= low and upper <= high
    if support.kind in _KIND_BOUNDS:
        s_low, s_high = _KIND_BOUNDS[support.kind]
        if base in ("real", "positive", "unit", "bounded"):
            return (s_low is None or (lower is not None and lower >= s_low)) and \
                   (s_high is None or (upper is not None and upper <= s_high))
        return base in _WITHIN[support.kind]
    return base in _WITHIN.get(support.kind, {support.kind})
