"""Shapes of a conditioned model: the one shape inference.

Every variable's shape and dtype (declared, or inferred by abstract evaluation with
`jax.eval_shape`, arrays defined element by element from their subscripts' ranges), the
elements each piece's subscripts address, and the number of values of each discrete latent.
A mixin of the analysis (analysis.py), which holds the state: the graph, the data, the
evaluator, and the tables these methods fill.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from pplc.runtime import distributions as dists
from pplc.backends.data import declared_sizes
from pplc.backends.evaluate import call_params, over_plates, shape_text
from pplc.backends.lower import Env
from pplc.errors import PplcError, error
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, is_discrete, named_arguments
from pplc.ir.build import reads_of
from pplc.ir.graph import Kind, Piece, Variable, reads_itself


class ShapeAnalysis:
    def _states(self) -> dict[str, int]:
        """The number of values of each discrete latent with finite support, where every
        piece agrees: 2 for Bernoulli, total_count + 1 for Binomial with a known count, and
        the last axis of a Categorical's probabilities as this analysis shapes them (so
        `theta[z[t - 1]]` with `theta` of shape (2, K) has K, whatever wrote K)."""
        states = {}
        for variable in self.graph.of_kind(Kind.LATENT):
            counts = set()
            for i, piece in enumerate(variable.pieces):
                call = piece.distribution
                if not is_discrete(call) or DISTRIBUTIONS[call.func].wrapper:
                    counts.add(None)
                elif call.func == "Bernoulli":
                    counts.add(2)
                elif call.func == "Binomial":
                    try:
                        n = self.evaluate(named_arguments(call)["total_count"], self.static)
                    except (KeyError, PplcError):
                        n = None
                    counts.add(int(n) + 1 if isinstance(n, (int, np.integer)) else None)
                elif call.func == "Categorical":
                    info = self.pieces[(variable.name, i)]
                    params = self._traced(piece, lambda env, piece=piece, info=info: over_plates(
                        lambda local: call_params(self.evaluate, piece.distribution, local),
                        piece.plates, info.ranges, env))
                    shape = next(iter(params.values())).shape[len(piece.plates):]
                    counts.add(int(shape[-1]) if shape else None)
                else:
                    counts.add(None)
            if len(counts) == 1 and None not in counts:
                states[variable.name] = counts.pop()
        return states

    def _eval_shape(self, fn: Callable[[Env], Any], names):
        """fn's result shape, with abstract values of the variables in `names` (those the
        piece reads: a model's checking time stays linear in its length)."""
        static = dict(self.data.sizes)
        arrays = {n: jax.ShapeDtypeStruct(self.shapes[n], self.dtypes[n]) for n in names
                  if n in self.shapes and n not in static}
        return jax.eval_shape(lambda a: fn({**static, **a}), arrays)

    def _infer_shapes(self) -> None:
        pending = [v for v in self.graph.variables() if v.name not in self.shapes
                   and v.kind is not Kind.FACTOR]
        while pending:
            progress = False
            for variable in list(pending):
                group = self.members.get(variable.name, (variable.name,))
                reads = {r for n in group for r in self.graph.parents(n)} - set(group)
                if any(r not in self.shapes for r in reads):
                    continue
                if len(group) > 1:
                    self._infer_group_shapes(group)
                    pending = [v for v in pending if v.name not in group]
                else:
                    self._infer_shape(variable)
                    pending.remove(variable)
                progress = True
            if not progress:
                variable = pending[0]
                cycle = cycle_through(self.graph, variable.name)
                if cycle:
                    chain = " -> ".join(cycle + [cycle[0]])
                    raise error(f"these variables depend on each other in a cycle: {chain}",
                                self.source, self.graph[cycle[0]].span,
                                hint="a model is a directed acyclic graph; a variable may "
                                     "read only earlier elements of itself, and a cycle "
                                     "through data is allowed only when elements depend on "
                                     "earlier ones (declare the shape with a type then)")
                waiting = sorted(r for r in self.graph.parents(variable.name)
                                 if r not in self.shapes)
                raise error(f"cannot infer the shape of '{variable.name}': it depends on "
                            f"{', '.join(repr(w) for w in waiting)}, whose shapes depend on "
                            f"it", self.source, variable.span,
                            hint=f"declare its type, e.g. {variable.name}: real[N] ~ ...")

    def _infer_group_shapes(self, group: tuple[str, ...]) -> None:
        """Arrays that read each other's elements: start from their extents with scalar
        integer elements and infer each from the others until nothing changes."""
        for name in group:
            self.shapes[name] = tuple(self._extent(self.graph[name]))
            self.dtypes[name] = jnp.int64
        for _ in range(4):
            before = {n: (self.shapes[n], self.dtypes[n]) for n in group}
            for name in group:
                self._infer_shape_and_dtype(self.graph[name])
            if before == {n: (self.shapes[n], self.dtypes[n]) for n in group}:
                return
        raise error(f"cannot infer the shapes of {', '.join(repr(n) for n in group)}, which "
                    "are defined in terms of each other", self.source, self.graph[group[0]].span)

    def _infer_shape(self, variable: Variable) -> None:
        self._infer_shape_and_dtype(variable)
        if variable.kind is Kind.LATENT and any(is_discrete(p.distribution)
                                                for p in variable.pieces):
            self.dtypes[variable.name] = jnp.int64  # read as an index (mu[z[n]])

    def _infer_shape_and_dtype(self, variable: Variable) -> None:
        name = variable.name
        declared = variable.declared_type
        if variable.kind is Kind.OBSERVED:
            raise error(f"internal: observed '{name}' without data", self.source, variable.span)
        if declared is not None:
            shape = list(declared_sizes(declared, lambda e: self.evaluate(e, self.static),
                                        self.source))
            if declared.base in ("corr_cholesky", "cov"):
                if len(shape) != 1:
                    raise error(f"{declared.base}[K] takes one size: the matrix is K x K",
                                self.source, declared.span)
                shape = shape * 2
            self.shapes[name] = tuple(shape)
            self.dtypes[name] = jnp.float64
            return
        if all(p.indices is None for p in variable.pieces):
            piece = variable.pieces[0]
            result = self._traced(piece, lambda env: self._piece_value(variable, 0, piece, env))
            self.shapes[name] = tuple(result.shape)
            self.dtypes[name] = jnp.float64 if variable.kind is Kind.LATENT else result.dtype
            return
        # Defined element by element: leading axes from the subscripts' ranges, trailing
        # axes from the elements' own shape.
        leading = self._extent(variable)
        element, dtype = None, None
        for i, piece in enumerate(variable.pieces):
            if reads_itself(name, piece):  # x[t] ~ Normal(phi * x[t - 1], s): shape elsewhere
                continue
            info = self.pieces[(name, i)]
            result = self._traced(piece, lambda env, i=i, piece=piece: over_plates(
                lambda local: self._piece_value(variable, i, piece, local),
                piece.plates, info.ranges, env))
            shape = tuple(result.shape[len(piece.plates):])
            dtype = result.dtype if dtype is None else jnp.result_type(dtype, result.dtype)
            if element is not None and shape != element:
                raise error(f"the elements of '{name}' have shape {shape_text(shape)} here but "
                            f"{shape_text(element)} elsewhere", self.source, piece.span)
            element = shape
        if element is None:
            raise error(f"cannot infer the element shape of '{name}'", self.source,
                        variable.span, hint=f"declare its type, e.g. {name}: real[N] ~ ...")
        self.shapes[name] = tuple(leading) + element
        self.dtypes[name] = jnp.float64 if variable.kind is Kind.LATENT else dtype

    def _piece_value(self, variable, i, piece, env):
        """The value a piece defines: a deterministic's value, or a `~`'s batch shape."""
        if piece.value is not None:
            return jnp.asarray(self.evaluate(piece.value, env))
        params = call_params(self.evaluate, piece.distribution, env)
        try:
            batch, event = dists.get(piece.distribution.func).shapes(**params)
        except ValueError:
            shapes = [jnp.shape(v) for v in params.values()]
            raise error(f"the arguments of {piece.distribution.func} have shapes "
                        f"{', '.join(shape_text(s) for s in shapes)}, which do not "
                        "broadcast", self.source, piece.distribution.span) from None
        return jnp.zeros(tuple(batch) + tuple(event))

    def _traced(self, piece: Piece, fn):
        try:
            return self._eval_shape(fn, reads_of(piece))
        except PplcError:
            raise
        except (TypeError, ValueError, IndexError) as exc:
            raise error(str(exc).splitlines()[0], self.source, piece.span) from None

    def _index_arrays(self, variable: Variable, i: int, piece: Piece) -> list[np.ndarray]:
        """The concrete subscripts of a piece at every loop index (for shapes, coverage)."""
        info = self.pieces[(variable.name, i)]
        for index in piece.indices:
            reads = {n.id for n in ast.names_in(index)} - {p.index for p in piece.plates}
            unknown = [r for r in reads if r not in self.static]
            if unknown:
                raise error(f"a subscript on the left side may only use loop variables and "
                            f"data, not '{unknown[0]}'", self.source, index.span)
        try:
            values = over_plates(lambda env: tuple(
                jnp.asarray(self.evaluate(e, env)) for e in piece.indices),
                piece.plates, info.ranges, self.static)
        except PplcError:
            raise
        out = []
        for index, value in zip(piece.indices, values):
            value = np.asarray(value)
            if value.shape != tuple(len(r) for r in info.ranges):
                raise error("a subscript on the left side must be one integer per element",
                            self.source, index.span)
            if not np.issubdtype(value.dtype, np.integer):
                raise error("a subscript must be an integer", self.source, index.span)
            if value.size and value.min() < 0:
                raise error(f"subscript {int(value.min())} is negative", self.source,
                            index.span, hint="indices start at 0 and cannot be negative here")
            out.append(value)
        return out

    def _extent(self, variable: Variable) -> list[int]:
        extent: list[int] | None = None
        for i, piece in enumerate(variable.pieces):
            arrays = self._index_arrays(variable, i, piece)
            if extent is None:
                extent = [0] * len(arrays)
            if len(arrays) != len(extent):
                raise error(f"'{variable.name}' is indexed with {len(arrays)} subscripts here "
                            f"but {len(extent)} elsewhere", self.source, piece.span)
            for d, a in enumerate(arrays):
                if a.size:
                    extent[d] = max(extent[d], int(a.max()) + 1)
        return extent or []


def cycle_through(graph, name: str) -> list[str]:
    """A dependency cycle through `name`, starting at its earliest line, or []."""
    import networkx as nx

    try:
        edges = nx.find_cycle(graph.dag, source=name)
    except nx.NetworkXNoCycle:
        return []
    names = [u for u, _ in edges]
    if len(names) < 2:
        return []
    first = min(names, key=lambda n: (graph[n].span.line, graph[n].span.column))
    start = names.index(first)
    return names[start:] + names[:start]
