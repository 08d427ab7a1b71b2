"""Checks of a conditioned model that need the data's sizes and values, before anything
is compiled: each element of a latent or deterministic defined exactly once, supports and
types that agree, distribution shapes that match their variables, observed data inside
their support, integer data used as indices in range, missing data that can be imputed.
A mixin of the analysis (analysis.py), which holds the state.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pplc.backends.evaluate import over_plates, shape_text
from pplc.backends.lower import is_discrete
from pplc.backends.transforms import VECTOR_KINDS
from pplc.errors import PplcError, error
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.library import DISTRIBUTIONS, KIND_BOUNDS
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
                where = ",".join(str(int(i)) for i in np.argwhere(orphan)[0])
                raise error(f"data '{name}[{where}]' is missing, but no '~' statement covers "
                            "that entry, so nothing could fill it in", self.source,
                            variable.span)

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
            self.kinds[variable.name] = (
                declared.base if declared is not None and declared.base in VECTOR_KINDS
                else support.kind if support.kind in VECTOR_KINDS else "interval")

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
        """Observed data inside their distribution's support, said before sampling (the
        log density would otherwise be -inf everywhere, and sampling would fail vaguely)."""
        checks = {
            "nonnegative_int": (lambda v: (v >= 0) & (v == np.round(v)),
                                "non-negative integers"),
            "boolean": (lambda v: (v == 0) | (v == 1), "0 or 1"),
            "positive": (lambda v: v >= 0, "non-negative values"),
            "unit": (lambda v: (v >= 0) & (v <= 1), "values in [0, 1]"),
        }
        for variable in self.graph.of_kind(Kind.OBSERVED):
            values = self.data.arrays.get(variable.name)
            if values is None:
                continue
            for i, piece in enumerate(variable.pieces):
                info = DISTRIBUTIONS[piece.distribution.func]
                if info.support.kind not in checks or info.wrapper:
                    continue
                test, words = checks[info.support.kind]
                if piece.indices is None:
                    covered = np.ones(values.shape, bool)
                else:
                    covered = np.zeros(values.shape, bool)
                    arrays = self._index_arrays(variable, i, piece)
                    covered[tuple(a.ravel() for a in arrays)] = True
                present = covered & ~np.isnan(values) if values.dtype.kind == "f" else covered
                with np.errstate(invalid="ignore"):
                    bad = present & ~test(values)
                if bad.any():
                    where = tuple(int(x) for x in np.argwhere(bad)[0])
                    element = variable.name + (f"[{','.join(map(str, where))}]" if where else "")
                    raise error(f"observed {element} = {values[where]:g} is outside the support "
                                f"of {piece.distribution.func} ({words})", self.source,
                                piece.span, hint="check the data, or the distribution")

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
