"""Analysis of a conditioned model, once, with the data's sizes in hand.

Shapes of every variable (declared, or inferred by abstract evaluation with
`jax.eval_shape`), the elements each piece defines (each element of a latent or
deterministic exactly once), constraints, and checks that need the data (index data in
range, distribution shapes matching their variables). The result is a `LoweredModel`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import networkx as nx
import jax.numpy as jnp
import numpy as np

from pplc.backends import distributions as dists, recurrence
from pplc.backends.data import BoundData
from pplc.backends.transforms import VECTOR_KINDS, transform_for
from pplc.backends.evaluate import Evaluator, call_params, over_plates, plate_ranges, \
    shape_text
from pplc.backends.lower import Block, Env, LoweredModel, PieceInfo, is_discrete
from pplc.errors import Diagnostics, PplcError, error
from pplc.frontend import ast
from pplc.frontend.ast import to_source
from pplc.frontend.library import DISTRIBUTIONS, bind_arguments, named_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable, reads_itself


def lower(graph: Graph, data: BoundData, externs: Mapping[str, Callable] | None = None,
          *, as_written: bool = False) -> LoweredModel:
    """Analyse a conditioned model: shapes, coverage, layout. Raises PplcError on mistakes.

    `as_written`: the model before the passes, checked for the user's mistakes; latent
    discrete variables are then allowed, since the marginalization pass may sum them out.
    """
    return _Analysis(graph, data, dict(externs or {}), as_written).run()


class _Analysis:
    def __init__(self, graph: Graph, data: BoundData, externs: dict, as_written: bool = False):
        self.as_written = as_written
        self.graph = graph
        self.data = data
        self.externs = externs
        self.source = graph.source
        self.evaluate = Evaluator(graph.source, graph.functions, externs)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, Any] = {}
        self.pieces: dict[tuple[str, int], PieceInfo] = {}
        self.static: Env = dict(data.sizes)   # known concrete values (sizes, data arrays)
        self.kinds: dict[str, str] = {}       # latent -> constraint kind (transforms.py)
        self.groups: dict[str, recurrence.Group] = {}   # member -> its group
        self.members = {n: g for g in graph.groups() for n in g}

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
            if variable.kind is Kind.LATENT and not self.as_written:
                for piece in variable.pieces:
                    if is_discrete(piece.distribution):
                        diags.add(*_discrete_latent(graph, variable, piece))
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
        self._schedule_recursions()
        self._schedule_groups()
        self._check_observed_support()
        order = graph.order()
        self._check_imputable()
        layout, offset = [], 0
        for name in order:
            if graph[name].kind is Kind.LATENT:
                kind = self.kinds[name]
                shape = self.shapes[name]
                free = shape if kind == "interval" else \
                    transform_for(kind).unconstrained_shape(shape)
                layout.append(Block(name, shape, offset, free_shape=tuple(free)))
                offset += layout[-1].size
            elif name in self.data.missing:
                count = int(self.data.missing[name].sum())
                layout.append(Block(name, (count,), offset, imputed=True))
                offset += count
        data_only = self._data_only_deterministics(order)
        targets = [v.name for v in graph.variables() if v.stochastic or v.kind is Kind.FACTOR]
        needed = set()
        for name in targets:
            needed |= nx.ancestors(graph.dag, name)
        return LoweredModel(graph, self.data, order, self.shapes, self.dtypes, layout,
                            self.pieces, self.externs, data_only, self.kinds, needed,
                            self._states(), self.groups)

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

    def _data_only_deterministics(self, order) -> list[str]:
        depends: dict[str, bool] = {}
        for name in order:
            variable = self.graph[name]
            parents = self.graph.parents(name)
            random = variable.kind is Kind.LATENT or name in self.data.missing \
                or any(depends.get(p, False) for p in parents)
            depends[name] = random
        # A recursion may read later nodes only through the full graph; be safe with cycles.
        return [n for n in order if self.graph[n].kind is Kind.DETERMINISTIC
                and not depends[n] and not self.graph[n].recursive and n not in self.groups]

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
                cycle = _cycle_through(self.graph, variable.name)
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
            shape = []
            for size in declared.shape:
                n = self.evaluate(size, self.static)
                if not isinstance(n, (int, np.integer)):
                    raise error("a size in a type must be an int data value or a number",
                                self.source, size.span)
                if int(n) < 0:
                    raise error(f"size {to_source(size)} = {int(n)} is negative", self.source,
                                size.span)
                shape.append(int(n))
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

    def _schedule_recursions(self) -> None:
        """The evaluation order of every recursive `=` piece (recurrence.py), found from its
        concrete reads and writes: a definition that reads an element not computed yet is
        refused here, never computed from zeros."""
        for variable in self.graph.of_kind(Kind.DETERMINISTIC):
            for i, piece in enumerate(variable.pieces):
                info = self.pieces[(variable.name, i)]
                if not info.recursive or variable.name in self.members:
                    continue
                if piece.indices is None:
                    raise error(f"'{variable.name}' is defined in terms of itself as a whole",
                                self.source, piece.span,
                                hint=f"define its elements in a loop, each from earlier ones, "
                                     f"such as {variable.name}[t] = f({variable.name}[t - 1])")
                writes = self._index_arrays(variable, i, piece)
                grid = self.shapes[variable.name][:len(writes)]
                info.scan = recurrence.schedule(
                    variable.name, piece, info.ranges, grid, writes,
                    lambda e, piece=piece, info=info: over_plates(
                        lambda env: jnp.asarray(self.evaluate(e, env)), piece.plates,
                        info.ranges, self.static),
                    lambda e: self.evaluate(e, self.static), self.source)

    def _schedule_groups(self) -> None:
        """The stages of each group of arrays that read each other's elements
        (recurrence.schedule_group); every piece of a member gets its `Scan`."""
        for names in self.graph.groups():
            pieces = []
            for name in names:
                variable = self.graph[name]
                for i, piece in enumerate(variable.pieces):
                    info = self.pieces[(name, i)]
                    pieces.append(recurrence.GroupPiece(
                        name, i, piece, info.ranges, self._index_arrays(variable, i, piece),
                        lambda e, piece=piece, info=info: over_plates(
                            lambda env: jnp.asarray(self.evaluate(e, env)), piece.plates,
                            info.ranges, self.static)))
            pieces.sort(key=lambda p: (p.piece.span.line, p.piece.span.column))
            grids = {n: self.shapes[n][:len(self.graph[n].pieces[0].indices)] for n in names}
            group, scans = recurrence.schedule_group(
                names, pieces, grids, lambda e: self.evaluate(e, self.static), self.source)
            for key, scan in scans.items():
                self.pieces[key].scan = scan
            self.groups.update({n: group for n in names})

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


def _discrete_latent(graph: Graph, variable: Variable, piece: Piece):
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


def _cycle_through(graph: Graph, name: str) -> list[str]:
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
_KIND_BOUNDS = {"real": (None, None), "positive": (0.0, None), "unit": (0.0, 1.0)}


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
