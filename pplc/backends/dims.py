"""Dimension names for ArviZ: every axis of every variable, named after the model.

ArviZ labels each axis of each array with a dimension name, and arrays over the same thing
should share it (in eight schools `theta`, `y` and `sigma` all run over the schools, `J`),
so that selections, plots and `arviz.loo` line them up. This module is the naming policy
over the one symbolic axis inference (pplc/ir/axes.py, which also gives a built module its
shapes): it reads the names off the model, in this order of preference for each axis:

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

from typing import Mapping, Sequence

import numpy as np

from pplc.frontend import ast
from pplc.ir.axes import AxisInference
from pplc.ir.graph import Graph, Kind, Variable

ARVIZ_DIMS = frozenset({"chain", "draw"})


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
        # The one symbolic axis inference (ir/axes.py), reading the names found so far.
        self.axes = AxisInference(graph, self.shapes, self.sizes, self.names.get)

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
        """Sizes named in the declared type (its extents), where they are plain data sizes."""
        extents = self.axes.extents(variable.name) if variable.declared_type else None
        if extents is None or len(extents) != len(shape):
            return [None] * len(shape)
        return [self._size_name(expr, n) for expr, n in zip(extents, shape)]

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
            axes = self.axes.piece(piece)
            if axes is None or len(axes) != len(shape) - leading:
                continue
            for k, axis in enumerate(axes, start=leading):
                if current[k] is None and axis.name is not None and axis.length == shape[k]:
                    current[k] = axis.name
                    changed = True
        return changed

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
