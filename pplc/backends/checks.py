"""Structural checks of a conditioned model that need the data's sizes, before anything
is compiled: each element of a latent or deterministic defined exactly once, distribution
shapes that match their variables, integer data used as indices in range, missing data
that can be imputed, discrete latents that can be summed out. A mixin of the analysis
(analysis.py), which holds the state; the checks against values are in value_checks.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pplc.frontend.data_json import value_span
from pplc.backends.evaluate import over_plates, shape_text
from pplc.errors import Diagnostic, PplcError, error
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.library import is_discrete
from pplc.ir.graph import Graph, Kind, Piece, Variable
from pplc.backends.value_checks import element_text


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
                message = (f"data '{element_text(name, index)}' is missing, but no '~' statement "
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
                    or not reads <= loop_vars | set(self.static) \
                    or reads & getattr(self.data, "deferred", set()):
                continue   # a run's split rows: checked by each process (pplc/row_shares.py)
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
