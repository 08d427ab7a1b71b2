"""Checks of a conditioned model against the data's values, before anything is compiled:
observed data inside their support, constant distribution arguments inside theirs, declared
types within the support of what they hold, an `ode`'s times in order. Each names the
element and the loop position at fault. A mixin of the analysis (analysis.py), which holds
the state; the structural checks are in checks.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from functools import lru_cache
from itertools import product

from pplc.backends.data import SUM_TOLERANCE
from pplc.frontend.data_json import value_span
from pplc.backends.evaluate import call_params, over_plates
from pplc.errors import Diagnostic, PplcError, error
from pplc.frontend import ast
from pplc.frontend.check import CONSTANTS
from pplc.frontend.library import (DISTRIBUTIONS, KIND_BOUNDS, PARAMETER_SUPPORTS, AxisLength,
                                   named_arguments)
from pplc.ir.graph import Kind, Piece, Variable


class ValueChecks:
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
            if values is None or name in getattr(self.data, "deferred", ()):
                continue   # a run's split rows: checked by each process (pplc/row_shares.py)
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
                        f"observed {element_text(name, self._shown(name, index))} = "
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
                            f"observed {element_text(name, self._shown(name, index))} = "
                            f"{number_text(values[index])} "
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
            shown = ", ".join(number_text(params[p][position]) for p in params)
            raise self._data_error(
                f"observed {element_text(key[0], self._shown(key[0], index))} = "
                f"{number_text(values[index])} has log density "
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
        index = self._shown(name, index)
        span = value_span(self.data.source, name, index)
        if span is None:
            return error(message, self.source, piece.span, hint=hint)
        return PplcError([
            Diagnostic(message, self.data.source, span, hint),
            Diagnostic(f"{element_text(name, index)} is observed by this statement", self.source,
                       piece.span, severity="note")])

    def _shown(self, name: str, index: tuple) -> tuple:
        """An index into the checked array as an index into the whole one: a process of a
        run checks its own rows, which start at `row_offsets[name]` (pplc/row_shares.py)."""
        offset = getattr(self.data, "row_offsets", {}).get(name, 0)
        return (int(index[0]) + offset, *index[1:]) if offset and len(index) else index

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
                f"counts that sum to total_count = {number_text(total[position[:-1]])}; these "
                f"sum to {number_text(sums[position[:-1]][0])}")
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
            return name in self.static and name not in self.data.missing \
                and name not in getattr(self.data, "deferred", ())
        return name in CONSTANTS


_UNKNOWN = object()  # a support bound that depends on what is not known yet


def element_text(name: str, index: tuple) -> str:
    return name + (f"[{','.join(str(int(i)) for i in index)}]" if len(index) else "")


def number_text(value) -> str:
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
    value = number_text(bound[position])
    if bound.size and np.all(bound == bound.flat[0]) and not isinstance(name, str):
        return value
    if isinstance(name, AxisLength):
        name = f"len({name.params[0]})" + (f" - {-name.offset}" if name.offset < 0 else
                                           f" + {name.offset}" if name.offset else "")
    return f"{name} = {value}" if isinstance(name, str) else value


def loop_words(position: tuple, piece: Piece, ranges) -> str:
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
