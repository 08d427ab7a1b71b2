"""Dimension names for ArviZ: every axis of every variable, named after the model.

ArviZ labels each axis of each array with a dimension name, and arrays over the same thing
should share it (in eight schools `theta`, `y` and `sigma` all run over the schools, `J`),
so that selections, plots and `arviz.loo` line them up. This module reads the names off
the model, in this order of preference for each axis:

1. the declared type: `real[J]` -> `J`; `cov[K]` and `corr_cholesky[K]` -> `K` for both
   axes (renamed below);
2. the loop that defines the axis, `for j in range(J): theta[j] ~ ...` -> `J`, when its
   stop is a plain data size equal to the axis length (`range(1, T)` with `x[0]` defined
   apart still gives `T`);
3. the expression that defines a whole variable, or the trailing axes of its elements:
   `theta = mu + tau * theta_raw` takes `theta_raw`'s names, `X @ beta` the first of `X`,
   `a[g]` those of the index `g`, `zeros(K)` `K`, and a distribution's value those of its
   parameters (the vector of `MultivariateNormal(m, S)` that of `m`);
4. the loop variable, for a loop whose stop is an expression (`for s in range(T - K)` ->
   `s`), carried on through expressions as in 3 (`ylag @ beta` -> `s`);
5. otherwise `{var}_dim_{k}` (ArviZ's own default).

Two axes of one variable never share a name: the second `K` is `K_bis` (as in PyMC's
covariance examples), a third `K_2`, a fourth `K_3`. A name stands for one length
throughout the model (xarray requires it): an axis whose name is already taken for
another length (a loop variable `t` over `T - 1` in one variable, over `T - K` in
another) falls back to `{var}_dim_{k}`. Names that ArviZ uses itself (`chain`, `draw`)
or that name a model variable are never used as dimension names. The last axis of a
summed-out discrete latent (its log-probability per value) is `{var}_value`.

The result depends only on the graph and the shapes, so every group of the ArviZ output
(posterior, observed data, predictive draws, log-likelihood) gets the same names.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, builtins_with, named_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable

# (name or None, length or None): what is known about one axis of an expression.
Axis = tuple[str | None, int | None]

ARVIZ_DIMS = frozenset({"chain", "draw"})
ELEMENTWISE = builtins_with("elementwise")
REDUCTIONS = builtins_with("reduce")   # over every axis
SAME_AXES = builtins_with("same")
# Parameters whose last axis lists the categories, not a batch axis of the value.
CATEGORY_PARAMS = {"Categorical": ("probs", "logits"), "OrderedLogistic": ("cutpoints",)}


def variable_dims(graph: Graph, shapes: Mapping[str, tuple[int, ...]]
                  ) -> dict[str, list[str]]:
    """Name -> one dimension name per axis of `shapes[name]` (module docstring), for every
    variable of the graph with a shape: latents, deterministics, observed and data."""
    return _Naming(graph, shapes).run()


class _Naming:
    """The naming of one model: candidate names per axis, then one consistent choice."""

    def __init__(self, graph: Graph, shapes: Mapping[str, tuple[int, ...]]):
        self.graph = graph
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self.sizes = _sizes(graph.data)
        self.variables = [v for v in graph.variables()
                          if v.name in self.shapes and v.kind is not Kind.FACTOR]
        self.forbidden = ARVIZ_DIMS | {v.name for v in graph.variables()
                                       if v.kind is not Kind.DATA}
        self.names: dict[str, list[str | None]] = {}   # the best names found so far

    def run(self) -> dict[str, list[str]]:
        loop_names = {}
        for variable in self.variables:
            shape = self.shapes[variable.name]
            declared = self._declared_names(variable, shape)
            sized, loop_names[variable.name] = self._loop_names(variable, shape)
            if variable.marginalized and shape:   # log P(value | rest) per value
                sized[-1] = f"{variable.name}_value"
            self.names[variable.name] = _first_known(declared, sized)
        self._infer_from_expressions()
        for name, loops in loop_names.items():
            self.names[name] = _first_known(self.names[name], loops)
        self._infer_from_expressions()   # now loop variables propagate too (`ylag @ beta`)
        return self._finish()

    # ------------------------------------------------------------ candidates
    def _declared_names(self, variable: Variable, shape) -> list[str | None]:
        """Sizes named in the declared type, where they are plain data sizes."""
        declared = variable.declared_type
        unknown = [None] * len(shape)
        if declared is None:
            return unknown
        sizes = list(declared.shape)
        if declared.base in ("cov", "corr_cholesky") and len(sizes) == 1:
            sizes = sizes * 2
        if len(sizes) != len(shape):
            return unknown
        return [self._size_name(expr, n) for expr, n in zip(sizes, shape)]

    def _loop_names(self, variable: Variable, shape
                    ) -> tuple[list[str | None], list[str | None]]:
        """Per indexed axis: the size its loop runs to (when a plain size of the axis's
        length), and the loop variable (the weaker fallback for a loop over an
        expression); the first piece that says something wins."""
        sized: list[str | None] = [None] * len(shape)
        loops: list[str | None] = [None] * len(shape)
        for piece in variable.pieces:
            plates = {plate.index: plate for plate in piece.plates}
            for k, index in enumerate(piece.indices or ()):
                plate = plates.get(index.id) if isinstance(index, ast.Name) else None
                if plate is None or k >= len(shape):
                    continue
                if sized[k] is None:
                    sized[k] = self._size_name(plate.stop, shape[k])
                if loops[k] is None:
                    loops[k] = plate.index
        return sized, loops

    def _size_name(self, expr, length: int) -> str | None:
        if isinstance(expr, ast.Name) and self.sizes.get(expr.id) == length:
            return expr.id
        return None

    # ------------------------------------------------------------ expressions
    def _infer_from_expressions(self) -> None:
        """Names carried by definitions, repeated while they name something new (a
        definition may read a variable whose names come later in the order)."""
        changed = True
        while changed:
            changed = False
            for variable in self.variables:
                changed |= self._adopt_definition(variable)

    def _adopt_definition(self, variable: Variable) -> bool:
        """Fill the unnamed axes of a variable from its pieces' values; True if any."""
        current = self.names[variable.name]
        shape = self.shapes[variable.name]
        changed = False
        for piece in variable.pieces:
            leading = len(piece.indices or ())
            if (piece.indices is None and piece.plates) or variable.marginalized:
                continue
            axes = self._piece_axes(piece)
            if axes is None or len(axes) != len(shape) - leading:
                continue
            for k, (name, length) in enumerate(axes, start=leading):
                if current[k] is None and name is not None and length == shape[k]:
                    current[k] = name
                    changed = True
        return changed

    def _piece_axes(self, piece: Piece) -> list[Axis] | None:
        """The axes of one element a piece defines (loop variables are scalars)."""
        loops = {plate.index for plate in piece.plates}
        if piece.value is not None:
            return self._axes(piece.value, loops)
        return self._distribution_axes(piece.distribution, loops)

    def _distribution_axes(self, call: ast.Call, loops) -> list[Axis] | None:
        """The axes of a draw: its batch axes (the parameters broadcast), then its event
        axes (a MultivariateNormal's vector is its mean's last axis)."""
        info = DISTRIBUTIONS[call.func]
        params = named_arguments(call)
        if info.wrapper:
            return self._distribution_axes(params["dist"], loops)
        axes = {name: self._axes(expr, loops) for name, expr in params.items()
                if name not in info.static_params}
        if any(a is None for a in axes.values()):
            return None
        for name in CATEGORY_PARAMS.get(call.func, ()):
            if name in axes:
                axes[name] = axes[name][:-1]
        if info.event_ndim == 0:
            return _broadcast(*axes.values())
        if call.func == "MultivariateNormal":
            loc, matrix = axes["loc"], axes.get("cov", axes.get("scale_tril"))
            if not loc or len(matrix) < 2:
                return None
            return _broadcast(loc[:-1], matrix[:-2]) + _broadcast(loc[-1:], matrix[-1:])
        if call.func == "Dirichlet" and axes["concentration"]:
            return axes["concentration"]
        if call.func == "Multinomial" and axes["probs"]:
            probs = axes["probs"]
            return _broadcast(probs[:-1], axes["total_count"]) + probs[-1:]
        return None

    def _axes(self, expr, loops: set[str]) -> list[Axis] | None:
        """What is known of the axes of an expression's value; None: not even how many."""
        if isinstance(expr, ast.Number):
            return []
        if isinstance(expr, ast.Name):
            return self._name_axes(expr.id, loops)
        if isinstance(expr, ast.UnaryOp):
            return self._axes(expr.operand, loops)
        if isinstance(expr, ast.BinOp):
            left, right = self._axes(expr.left, loops), self._axes(expr.right, loops)
            if left is None or right is None:
                return None
            return _matmul(left, right) if expr.op == "@" else _broadcast(left, right)
        if isinstance(expr, (ast.Compare, ast.BoolOp)):
            return self._broadcast_all([expr.left, expr.right], loops)
        if isinstance(expr, ast.IfExp):
            return self._broadcast_all([expr.test, expr.body, expr.orelse], loops)
        if isinstance(expr, ast.Index):
            return self._index_axes(expr, loops)
        if isinstance(expr, ast.Call):
            return self._call_axes(expr, loops)
        if isinstance(expr, ast.ListExpr):
            items = [self._axes(item, loops) for item in expr.items]
            return [(None, len(items))] if all(i == [] for i in items) else None
        return None

    def _name_axes(self, name: str, loops: set[str]) -> list[Axis] | None:
        if name in loops or name not in self.shapes:
            return []   # a loop index, or a constant such as `pi`
        return list(zip(self.names.get(name, [None] * len(self.shapes[name])),
                        self.shapes[name]))

    def _broadcast_all(self, exprs: Iterable, loops) -> list[Axis] | None:
        axes = [self._axes(e, loops) for e in exprs]
        return None if any(a is None for a in axes) else _broadcast(*axes)

    def _index_axes(self, expr: ast.Index, loops) -> list[Axis] | None:
        """NumPy indexing: a whole slice keeps its axis, a partial one keeps an axis of
        another length; the other subscripts (scalars, gathers such as `a[g]`) broadcast
        together and take the place of the first one, or go first when a slice separates
        them."""
        value = self._axes(expr.value, loops)
        if value is None or len(expr.indices) > len(value):
            return None
        kept: list[tuple[int, Axis]] = []
        picked: list[list[Axis]] = []
        positions = []
        for k, (axis, index) in enumerate(zip(value, expr.indices)):
            if isinstance(index, ast.Slice):
                kept.append((k, axis if self._whole(index, axis) else (None, None)))
                continue
            sub = self._axes(index, loops)
            if sub is None:
                return None
            picked.append(sub)
            positions.append(k)
        rest = value[len(expr.indices):]
        if not positions:
            return [axis for _, axis in kept] + rest
        gathered = _broadcast(*picked)
        if positions != list(range(positions[0], positions[-1] + 1)):
            return gathered + [axis for _, axis in kept] + rest
        before = [axis for k, axis in kept if k < positions[0]]
        after = [axis for k, axis in kept if k > positions[-1]]
        return before + gathered + after + rest

    def _whole(self, index: ast.Slice, axis: Axis) -> bool:
        """Whether a slice takes a whole axis: `:`, or `0:K` on an axis of length K."""
        starts_at_0 = index.start is None or (isinstance(index.start, ast.Number)
                                              and index.start.value == 0)
        if index.stop is None:
            return starts_at_0
        stop = self._literal_size(index.stop)[1]
        return starts_at_0 and stop is not None and stop == axis[1]

    def _call_axes(self, call: ast.Call, loops) -> list[Axis] | None:
        if call.func in ELEMENTWISE:
            return self._broadcast_all(call.args, loops)
        if call.func == "integrate":   # integrate(f, a, b, ...): one integral per limit
            return self._broadcast_all(call.args[1:3], loops)
        if call.func == "ode" and len(call.args) >= 4:   # ode(f, y0, t0, ts, ...)
            times, state = self._axes(call.args[3], loops), self._axes(call.args[1], loops)
            return None if times is None or state is None else times + state
        if call.func in ("zeros", "ones"):
            return [self._literal_size(arg) for arg in call.args]
        if len(call.args) != 1 or call.keywords:
            return None
        arg = self._axes(call.args[0], loops)
        if arg is None or call.func in REDUCTIONS:
            return None if arg is None else []
        if call.func in SAME_AXES:
            return arg
        if call.func == "transpose":
            return arg[::-1]
        if call.func == "diag" and len(arg) == 1:   # a vector -> a square matrix
            return arg * 2
        return None

    def _literal_size(self, expr) -> Axis:
        if isinstance(expr, ast.Name) and expr.id in self.sizes:
            return expr.id, self.sizes[expr.id]
        if isinstance(expr, ast.Number) and isinstance(expr.value, int):
            return None, expr.value
        return None, None

    # ------------------------------------------------------------ the final choice
    def _finish(self) -> dict[str, list[str]]:
        """Distinct names within a variable, one length per name, and fallbacks."""
        lengths = {name: n for name, n in self.sizes.items()}
        out = {}
        for variable in self.variables:
            name, shape = variable.name, self.shapes[variable.name]
            chosen = []
            for k, dim in enumerate(_distinct(self.names[name])):
                if dim is None or dim in self.forbidden or lengths.setdefault(
                        dim, shape[k]) != shape[k]:
                    dim = f"{name}_dim_{k}"
                chosen.append(dim)
            out[name] = chosen
        return out


def _sizes(data: Mapping) -> dict[str, int]:
    """The model's sizes: its integer scalar data."""
    return {name: int(value) for name, value in data.items()
            if np.ndim(value) == 0 and isinstance(value, (int, np.integer))
            and not isinstance(value, bool)}


def _first_known(*candidates: Sequence[str | None]) -> list[str | None]:
    """Per axis, the first candidate list that names it."""
    return [next((c[k] for c in candidates if c[k] is not None), None)
            for k in range(len(candidates[0]))]


def _distinct(names: Sequence[str | None]) -> list[str | None]:
    """`[K, K]` -> `[K, K_bis]`; `[K, K, K]` -> `[K, K_bis, K_2]`."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name is None:
            out.append(None)
            continue
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_bis" if count == 1 else f"{name}_{count}")
    return out


def _broadcast(*operands: Sequence[Axis]) -> list[Axis]:
    """NumPy broadcasting of axes, aligned on the right: a length-1 axis yields to the
    other; two names for the same axis leave it unnamed."""
    rank = max((len(a) for a in operands), default=0)
    out = []
    for k in range(rank):
        present = [a[len(a) - rank + k] for a in operands if len(a) - rank + k >= 0]
        out.append(_merge(present))
    return out


def _merge(axes: Sequence[Axis]) -> Axis:
    lengths = {n for _, n in axes if n is not None and n != 1}
    names = {name for name, n in axes if name is not None and n != 1}
    if len(lengths) > 1:
        return None, None
    length = lengths.pop() if lengths else (1 if axes and all(n == 1 for _, n in axes)
                                            else None)
    return (names.pop() if len(names) == 1 else None), length


def _matmul(left: list[Axis], right: list[Axis]) -> list[Axis] | None:
    """The axes of `left @ right` (vector or matrix operands, batched matrices)."""
    if not left or not right:
        return None
    if len(left) == 1 and len(right) == 1:
        return []
    if len(right) == 1:
        return left[:-1]
    if len(left) == 1:
        return right[:-2] + right[-1:]
    return _broadcast(left[:-2], right[:-2]) + [left[-2], right[-1]]
