"""Graph IR + data -> a log density over one flat unconstrained vector.

`lower(graph, data)` analyses the conditioned model once, with the data's sizes in hand:
the shape of every variable, which elements each piece defines (each element of a latent
or deterministic exactly once), the layout of the latents in the unconstrained vector and
the constraint of each. It returns a `LoweredModel` whose methods are pure JAX functions
of `(u, data)`: data are arguments, never constants baked into the program, so new data
of the same shapes reuse the compiled program.

The log density is Stan's: sum of the log densities of every `~` piece and every
`factor`, at x = T(u) for the latents, plus log |dT/du| (Stan Reference Manual,
"Constraint Transforms").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends import distributions as dists
from pplc.backends.data import BoundData
from pplc.backends.evaluate import Evaluator, over_plates, plate_ranges, shape_text
from pplc.backends.transforms import transform_for
from pplc.errors import Diagnostics, PplcError, error
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.library import DISTRIBUTIONS, bind_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable

Env = dict[str, Any]

# Where each declared type lives, as (lower, upper); None is unbounded.
_TYPE_BOUNDS = {"real": (None, None), "positive": (0.0, None), "unit": (0.0, 1.0)}
_SUPPORT_BOUNDS = {"real": (None, None), "positive": (0.0, None), "unit": (0.0, 1.0)}


@dataclass(frozen=True)
class Block:
    """A latent's slice of the unconstrained vector."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class PieceInfo:
    """What analysis learned about one piece: loop ranges and its distribution's binding."""

    ranges: list[range]
    positional: tuple[str, ...] = ()   # parameter names of the distribution's positional args
    recursive: bool = False


@dataclass
class LoweredModel:
    graph: Graph
    data: BoundData
    order: list[str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, Any]
    layout: list[Block]
    pieces: dict[tuple[str, int], PieceInfo]
    externs: Mapping[str, Callable] = field(default_factory=dict)
    data_only: list[str] = field(default_factory=list)   # deterministics of data alone

    # ------------------------------------------------------------ public surface
    @property
    def dim(self) -> int:
        return sum(b.size for b in self.layout)

    @property
    def latent_names(self) -> list[str]:
        return [b.name for b in self.layout]

    @property
    def recorded_names(self) -> list[str]:
        """Latents and the deterministics that change from draw to draw, in model order."""
        return [n for n in self.order if self.graph[n].kind is Kind.LATENT or (
            self.graph[n].kind is Kind.DETERMINISTIC and n not in self.data_only)]

    def runtime_data(self) -> dict[str, jax.Array]:
        """The data as arguments of the compiled program, with data-only deterministics
        (Stan's transformed data) computed once here instead of in every evaluation."""
        arrays = {k: jnp.asarray(v) for k, v in self.data.arrays.items()}
        if self.data_only:
            env = {**self.data.sizes, **arrays}
            for name in self.data_only:
                env[name] = self._deterministic(self.graph[name], env)
                arrays[name] = env[name]
        return arrays

    def log_density(self, u: jax.Array, data: Mapping[str, jax.Array]) -> jax.Array:
        """log p(T(u), data) + log|det dT/du|: the sampler's target."""
        env, log_jacobian = self._values(u, data)
        return log_jacobian + self._log_prob(env)

    def constrain(self, u: jax.Array, data: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The latents and deterministics (`recorded_names`) at unconstrained point u."""
        env, _ = self._values(u, data)
        return {name: env[name] for name in self.recorded_names}

    def unconstrain(self, values: Mapping[str, Any], data: Mapping[str, jax.Array]) -> jax.Array:
        """The inverse of `constrain` for the latents: constrained values -> u."""
        env: Env = {**self.data.sizes, **data}
        parts = []
        for name in self.order:
            variable = self.graph[name]
            if variable.kind is Kind.LATENT:
                block = self._block(name)
                x = jnp.broadcast_to(jnp.asarray(values[name], jnp.float64), block.shape)
                lower, upper = self._bounds(variable, env)
                parts.append(jnp.ravel(transform_for("interval", lower, upper).inverse(x)))
                env[name] = x
            elif variable.kind is Kind.DETERMINISTIC and name not in data:
                env[name] = self._deterministic(variable, env)
        return jnp.concatenate(parts) if parts else jnp.zeros(0)

    def element_names(self, name: str) -> list[str]:
        """`theta[0]`, `X[1,2]`: 0-based, no spaces, C order."""
        shape = self.shapes[name]
        if not shape:
            return [name]
        return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]

    @property
    def param_names(self) -> list[str]:
        return [n for b in self.layout for n in self.element_names(b.name)]

    # ------------------------------------------------------------ evaluation
    @property
    def _evaluate(self) -> Evaluator:
        return Evaluator(self.graph.source, self.graph.functions, self.externs)

    def _block(self, name: str) -> Block:
        return next(b for b in self.layout if b.name == name)

    def _values(self, u, data) -> tuple[Env, jax.Array]:
        env: Env = {**self.data.sizes, **data}
        log_jacobian = jnp.zeros(())
        for name in self.order:
            variable = self.graph[name]
            if variable.kind is Kind.LATENT:
                block = self._block(name)
                u_block = jnp.reshape(u[block.offset:block.offset + block.size], block.shape)
                lower, upper = self._bounds(variable, env)
                transform = transform_for("interval", lower, upper)
                env[name] = transform.forward(u_block)
                log_jacobian = log_jacobian + jnp.sum(transform.log_abs_det_jacobian(u_block))
            elif variable.kind is Kind.DETERMINISTIC and name not in data:
                env[name] = self._deterministic(variable, env)
        return env, log_jacobian

    def _log_prob(self, env: Env) -> jax.Array:
        total = jnp.zeros(())
        for name in self.order:
            variable = self.graph[name]
            if variable.stochastic or variable.kind is Kind.FACTOR:
                for i, piece in enumerate(variable.pieces):
                    total = total + self._piece_log_prob(variable, i, piece, env)
        return total

    def _params(self, variable: Variable, i: int, call: ast.Call, env: Env) -> dict:
        info = self.pieces[(variable.name, i)]
        evaluate = self._evaluate
        params = {p: evaluate(a, env) for p, a in zip(info.positional, call.args)}
        params.update({k.name: evaluate(k.value, env) for k in call.keywords})
        return params

    def _piece_log_prob(self, variable: Variable, i: int, piece: Piece, env: Env):
        info = self.pieces[(variable.name, i)]
        evaluate = self._evaluate
        if variable.kind is Kind.FACTOR:
            body = lambda local: jnp.sum(evaluate(piece.value, local))
        else:
            dist = dists.get(piece.distribution.func)

            def body(local):
                params = self._params(variable, i, piece.distribution, local)
                value = self._element(variable, piece, local)
                return jnp.sum(dist.log_prob(value, **params))
        return jnp.sum(over_plates(body, piece.plates, info.ranges, env))

    def _element(self, variable: Variable, piece: Piece, env: Env):
        value = env[variable.name]
        if piece.indices is None:
            return value
        return value[self._lhs(piece, env)]

    def _lhs(self, piece: Piece, env: Env) -> tuple:
        evaluate = self._evaluate
        return tuple(evaluate(i, env) for i in piece.indices)

    def _bounds(self, variable: Variable, env: Env):
        """The latent's (lower, upper) support, broadcast over its shape where they vary."""
        shape = self.shapes[variable.name]
        declared = variable.declared_type
        lowers, uppers = [], []
        for i, piece in enumerate(variable.pieces):
            info = DISTRIBUTIONS[piece.distribution.func]
            support = info.support
            if support.kind in ("real", "positive", "unit"):
                lowers.append(_SUPPORT_BOUNDS[support.kind][0])
                uppers.append(_SUPPORT_BOUNDS[support.kind][1])
                continue
            lower, upper = self._piece_bounds(variable, i, piece, env, shape)
            lowers.append(lower)
            uppers.append(upper)
        lower = _combine(lowers, shape)
        upper = _combine(uppers, shape)
        if declared is not None:
            type_lower, type_upper = _TYPE_BOUNDS.get(declared.base, (None, None))
            evaluate = self._evaluate
            for bound in declared.bounds:
                value = evaluate(bound.value, env)
                if bound.name == "lower":
                    type_lower = value
                else:
                    type_upper = value
            lower = type_lower if lower is None else (
                lower if type_lower is None else jnp.maximum(lower, type_lower))
            upper = type_upper if upper is None else (
                upper if type_upper is None else jnp.minimum(upper, type_upper))
        return lower, upper

    def _piece_bounds(self, variable, i, piece, env, shape):
        info = self.pieces[(variable.name, i)]
        catalogue = DISTRIBUTIONS[piece.distribution.func]

        def body(local):
            params = self._params(variable, i, piece.distribution, local)
            lower, upper = dists.support_bounds(catalogue, params)
            element = shape[len(piece.indices):] if piece.indices is not None else shape
            lower = None if lower is None else jnp.broadcast_to(lower, element)
            upper = None if upper is None else jnp.broadcast_to(upper, element)
            lhs = self._lhs(piece, local) if piece.indices is not None else ()
            return lhs, lower, upper

        lhs, lower, upper = over_plates(body, piece.plates, info.ranges, env)
        if piece.indices is None:
            return lower, upper
        # Scatter this piece's bounds into the whole variable's shape; NaN marks elements
        # other pieces define (combined in `_combine`).
        full_lower = None if lower is None else jnp.full(shape, jnp.nan).at[lhs].set(lower)
        full_upper = None if upper is None else jnp.full(shape, jnp.nan).at[lhs].set(upper)
        return full_lower, full_upper

    def _deterministic(self, variable: Variable, env: Env):
        name = variable.name
        evaluate = self._evaluate
        if len(variable.pieces) == 1 and variable.pieces[0].indices is None:
            return jnp.asarray(evaluate(variable.pieces[0].value, env))
        array = jnp.zeros(self.shapes[name], self.dtypes[name])
        order = sorted(range(len(variable.pieces)),
                       key=lambda i: self.pieces[(name, i)].recursive)
        for i in order:
            piece = variable.pieces[i]
            info = self.pieces[(name, i)]
            if not info.recursive:
                def body(local, piece=piece):
                    return self._lhs(piece, local), evaluate(piece.value, local)
                lhs, values = over_plates(body, piece.plates, info.ranges, env)
                array = array.at[lhs].set(jnp.asarray(values, array.dtype))
            else:
                array = self._recurrence(variable, piece, info, env, array)
        return array

    def _recurrence(self, variable, piece, info, env, array):
        """`h[t] = f(h[t - 1], ...)`: a `lax.scan` over the outer loop, carrying h.

        The remaining loops of the piece are vectorized inside each step.
        """
        evaluate = self._evaluate
        outer, inner = piece.plates[0], piece.plates[1:]

        def step(carry, t):
            local = {**env, variable.name: carry, outer.index: t}

            def body(inner_env):
                return self._lhs(piece, inner_env), evaluate(piece.value, inner_env)
            lhs, values = over_plates(body, inner, info.ranges[1:], local)
            return carry.at[lhs].set(jnp.asarray(values, carry.dtype)), None

        first = info.ranges[0]
        array, _ = jax.lax.scan(step, array, jnp.arange(first.start, first.stop))
        return array


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


# ---------------------------------------------------------------- analysis


def lower(graph: Graph, data: BoundData, externs: Mapping[str, Callable] | None = None
          ) -> LoweredModel:
    """Analyse a conditioned model: shapes, coverage, layout. Raises PplcError on mistakes."""
    return _Analysis(graph, data, dict(externs or {})).run()


class _Analysis:
    def __init__(self, graph: Graph, data: BoundData, externs: dict):
        self.graph = graph
        self.data = data
        self.externs = externs
        self.source = graph.source
        self.evaluate = Evaluator(graph.source, graph.functions, externs)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, Any] = {}
        self.pieces: dict[tuple[str, int], PieceInfo] = {}
        self.static: Env = dict(data.sizes)   # known concrete values (sizes, data arrays)

    def run(self) -> LoweredModel:
        graph = self.graph
        self.static.update(self.data.arrays)
        for name, value in self.data.arrays.items():
            self.shapes[name] = value.shape
            self.dtypes[name] = value.dtype
        for name in self.data.sizes:
            self.shapes[name] = ()
            self.dtypes[name] = np.int64
        diags = Diagnostics()
        for variable in graph.variables():
            for i, piece in enumerate(variable.pieces):
                try:
                    self.pieces[(variable.name, i)] = self._piece_info(variable, piece)
                except PplcError as exc:
                    diags.extend(exc)
            if variable.kind is Kind.LATENT:
                for piece in variable.pieces:
                    info = DISTRIBUTIONS[piece.distribution.func]
                    if info.discrete:
                        diags.add(f"'{variable.name}' is a latent discrete variable "
                                  f"({piece.distribution.func}), which this version of pplc "
                                  "cannot sample", self.source, piece.span,
                                  hint=f"supply '{variable.name}' in the data, or use a "
                                       "continuous distribution")
                        break
                if variable.declared_type is not None and variable.declared_type.base == "int":
                    diags.add(f"latent '{variable.name}' cannot have type int", self.source,
                              variable.declared_type.span)
        diags.raise_if_any()
        self._infer_shapes()
        self._check_coverage()
        self._check_supports()
        self._check_log_prob_shapes()
        self._check_data_indices()
        order = graph.order()
        layout, offset = [], 0
        for name in order:
            if graph[name].kind is Kind.LATENT:
                layout.append(Block(name, self.shapes[name], offset))
                offset += layout[-1].size
        data_only = self._data_only_deterministics(order)
        return LoweredModel(graph, self.data, order, self.shapes, self.dtypes, layout,
                            self.pieces, self.externs, data_only)

    def _data_only_deterministics(self, order) -> list[str]:
        depends: dict[str, bool] = {}
        for name in order:
            variable = self.graph[name]
            parents = self.graph.parents(name)
            random = variable.kind is Kind.LATENT or any(depends.get(p, False) for p in parents)
            depends[name] = random
        # A recursion may read later nodes only through the full graph; be safe with cycles.
        return [n for n in order if self.graph[n].kind is Kind.DETERMINISTIC
                and not depends[n] and not self.graph[n].recursive]

    def _piece_info(self, variable: Variable, piece: Piece) -> PieceInfo:
        ranges = plate_ranges(piece.plates, self.evaluate, self.static)
        positional: tuple[str, ...] = ()
        if piece.distribution is not None:
            info = DISTRIBUTIONS[piece.distribution.func]
            positional, _ = bind_arguments(info, len(piece.distribution.args),
                                           [k.name for k in piece.distribution.keywords])
        recursive = variable.kind is Kind.DETERMINISTIC and any(
            n.id == variable.name for e in ([piece.value] if piece.value else [])
            for n in ast.names_in(e))
        if recursive and not piece.plates:
            raise error(f"'{variable.name}' is defined in terms of itself outside a loop",
                        self.source, piece.span)
        for index in piece.indices or ():
            if isinstance(index, ast.Slice):
                raise error("a slice on the left of '~' or '=' is not supported yet by this "
                            "version of pplc; define the elements in a loop", self.source,
                            index.span)
        return PieceInfo(ranges, positional, recursive)

    # ------------------------------------------------------------ shapes
    def _abstract_env(self) -> tuple[Env, Env]:
        static = dict(self.data.sizes)
        arrays = {n: jax.ShapeDtypeStruct(self.shapes[n], self.dtypes[n]) for n in self.shapes
                  if n not in static}
        return static, arrays

    def _eval_shape(self, fn: Callable[[Env], Any]):
        static, arrays = self._abstract_env()
        return jax.eval_shape(lambda a: fn({**static, **a}), arrays)

    def _infer_shapes(self) -> None:
        pending = [v for v in self.graph.variables() if v.name not in self.shapes
                   and v.kind is not Kind.FACTOR]
        while pending:
            progress = False
            for variable in list(pending):
                reads = set(self.graph.parents(variable.name))
                if any(r not in self.shapes for r in reads):
                    continue
                self._infer_shape(variable)
                pending.remove(variable)
                progress = True
            if not progress:
                variable = pending[0]
                waiting = sorted(r for r in self.graph.parents(variable.name)
                                 if r not in self.shapes)
                raise error(f"cannot infer the shape of '{variable.name}': it depends on "
                            f"{', '.join(repr(w) for w in waiting)}, whose shapes depend on "
                            f"it", self.source, variable.span,
                            hint=f"declare its type, e.g. {variable.name}: real[N] ~ ...")

    def _infer_shape(self, variable: Variable) -> None:
        name = variable.name
        declared = variable.declared_type
        if variable.kind is Kind.OBSERVED:
            raise error(f"internal: observed '{name}' without data", self.source, variable.span)
        if declared is not None:
            shape = []
            for size in declared.shape:
                n = self.evaluate(size, self.static)
                if not isinstance(n, (int, np.integer)):
                    raise error("a size in a type must be an int data value or a number",
                                self.source, size.span)
                shape.append(int(n))
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
            if self.pieces[(name, i)].recursive:
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
        params = {}
        info = self.pieces[(variable.name, i)]
        for p, a in zip(info.positional, piece.distribution.args):
            params[p] = self.evaluate(a, env)
        for k in piece.distribution.keywords:
            params[k.name] = self.evaluate(k.value, env)
        shapes = [jnp.shape(v) for v in params.values()]
        try:
            shape = jnp.broadcast_shapes(*shapes) if shapes else ()
        except ValueError:
            raise error(f"the arguments of {piece.distribution.func} have shapes "
                        f"{', '.join(shape_text(s) for s in shapes)}, which do not broadcast",
                        self.source, piece.distribution.span) from None
        return jnp.zeros(shape)

    def _traced(self, piece: Piece, fn):
        try:
            return self._eval_shape(fn)
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
        for variable in self.graph.of_kind(Kind.LATENT):
            bounded = []
            for piece in variable.pieces:
                support = DISTRIBUTIONS[piece.distribution.func].support
                bounded.append((support.kind not in ("real",),
                                support.kind in ("unit", "interval")))
            if len(set(bounded)) > 1:
                raise error(f"the pieces of '{variable.name}' have different supports",
                            self.source, variable.pieces[1].span,
                            hint="give every element of a latent array the same kind of "
                                 "distribution support")
            declared = variable.declared_type
            if declared is None or declared.base not in _TYPE_BOUNDS:
                continue
            support = DISTRIBUTIONS[variable.pieces[0].distribution.func].support
            kind = support.kind
            if kind in _SUPPORT_BOUNDS and not declared.bounds:
                s_lower, s_upper = _SUPPORT_BOUNDS[kind]
                t_lower, t_upper = _TYPE_BOUNDS[declared.base]
                wider = (s_lower is not None and (t_lower is None or t_lower < s_lower)) or \
                        (s_upper is not None and (t_upper is None or t_upper > s_upper))
                if wider:
                    raise error(f"type '{declared.base}' is wider than the support of "
                                f"{variable.pieces[0].distribution.func} ({kind})",
                                self.source, declared.span,
                                hint=f"leave the type out to use the support, or narrow it")

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
            data_arrays = [r for r in reads if r in self.data.arrays]
            if not data_arrays or not reads <= loop_vars | set(self.static):
                continue
            values = np.asarray(over_plates(lambda env: jnp.asarray(self.evaluate(sub, env)),
                                            piece.plates, info.ranges, self.static))
            if not np.issubdtype(values.dtype, np.integer) or values.size == 0:
                continue
            size = shape[axis]
            bad = (values < 0) | (values >= size)
            if bad.any():
                value = int(values[bad].flat[0])
                raise error(f"index {to_source(sub)} = {value} is out of range for axis {axis} "
                            f"of '{target}', which has {size} elements (valid: 0 to {size - 1})",
                            self.source, sub.span,
                            hint="indices are 0-based; if the codes in your data start at 1, "
                                 "subtract 1 from them")
