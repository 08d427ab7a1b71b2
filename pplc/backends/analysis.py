"""Analysis of a conditioned model, once, with the data's sizes in hand: the plan.

Shapes (shapes.py) and the checks that need the data (checks.py) first; then the
decisions the renderings read: the layout of the unconstrained vector and each latent's
constraint, each recursive piece's evaluation order and the groups of arrays computed
jointly (recurrence.py), the deterministics of data alone and those the density needs.
The result is a `LoweredModel`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping

import jax.numpy as jnp
import numpy as np

from pplc.backends import factors, plan, recurrence, rows, sharding
from pplc.backends.argument_checks import ArgumentChecks
from pplc.backends.checks import DataChecks, discrete_latent_diagnostic
from pplc.backends.data import BoundData
from pplc.backends.evaluate import Evaluator, over_plates, plate_ranges
from pplc.backends.lower import Env, LoweredModel, PieceInfo
from pplc.backends.plan import Block
from pplc.backends.shapes import ShapeAnalysis
from pplc.backends.value_checks import ValueChecks
from pplc.runtime.transforms import transform_for
from pplc.errors import Diagnostics, PplcError, error
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, bind_arguments, is_discrete
from pplc.ir.graph import Graph, Kind, Piece, Variable


def lower(graph: Graph, data: BoundData, externs: Mapping[str, Callable] | None = None,
          *, as_written: bool = False) -> LoweredModel:
    """Analyse a conditioned model: shapes, coverage, layout. Raises PplcError on mistakes.

    `as_written`: the model before the passes, checked for the user's mistakes; latent
    discrete variables are then allowed, since the marginalization pass may sum them out.
    """
    return _Analysis(graph, data, dict(externs or {}), as_written).run()


def check_observed(graph: Graph, data: BoundData,
                   externs: Mapping[str, Callable] | None = None) -> None:
    """The model as written checked against the data's values alone (value_checks.py:
    observations inside their supports, constant arguments inside theirs), without the
    structural checks and the plan. Why: streamed minibatch ADVI (inference/minibatch.py
    `check_rows`) runs these on each block of rows, after the whole analysis has run once
    on the first batch; the whole analysis again on each block (`lower`) made the check
    of 10^6 rows 0.52 s instead of 0.20."""
    _Analysis(graph, data, dict(externs or {}), as_written=True).check_observed()


class _Analysis(ShapeAnalysis, DataChecks, ValueChecks, ArgumentChecks):
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
        self.scans: dict[tuple[str, int], recurrence.Scan] = {}   # recursive piece -> order
        self.groups: dict[str, recurrence.Group] = {}   # member -> its group
        self.members = {n: g for g in graph.groups() for n in g}

    def check_observed(self) -> None:
        """What the value checks read (data, loop ranges, shapes), then the checks."""
        self.static.update(self.data.arrays)
        for name, value in self.data.arrays.items():
            self.shapes[name], self.dtypes[name] = value.shape, value.dtype
        for name in self.data.sizes:
            self.shapes[name], self.dtypes[name] = (), np.int64
        for variable in self.graph.variables():
            for i, piece in enumerate(variable.pieces):
                self.pieces[(variable.name, i)] = self._piece_info(variable, piece)
        self._infer_shapes()
        self._check_observed_support()

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
                        diags.add(*discrete_latent_diagnostic(graph, variable, piece))
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
        constraints = plan.constraints(graph, imputed=self.data.missing)
        layout, offset = [], 0
        for name in order:
            if name in constraints and graph[name].kind is Kind.LATENT:   # not discrete
                kind = constraints[name].kind
                shape = self.shapes[name]
                free = shape if kind == "interval" else \
                    transform_for(kind).unconstrained_shape(shape)
                layout.append(Block(name, shape, offset, free_shape=tuple(free)))
                offset += layout[-1].size
            elif name in self.data.missing:
                count = int(self.data.missing[name].sum())
                layout.append(Block(name, (count,), offset, imputed=True))
                offset += count
        decisions = plan.Plan(tuple(layout), constraints, self.scans, self.groups,
                              plan.data_only(graph, self.data.missing), plan.needed(graph),
                              self._states(), plan.prior_refusal(graph),
                              sharding.decide(graph, self.shapes, self.data.sizes,
                                              self.data.arrays, plan.data_only(graph),
                                              {*self.scans, *((n, i) for n in self.groups
                                                for i in range(len(graph[n].pieces)))}),
                              rows=rows.decide(graph, self.shapes, self.pieces))
        decisions = replace(decisions, factors=factors.decide(
            graph, [*self.data.arrays, *self.data.sizes], decisions.data_only,
            decisions.sharding.axes))
        return LoweredModel(graph, self.data, order, self.shapes, self.dtypes, self.pieces,
                            decisions, self.externs)

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
                self.scans[(variable.name, i)] = recurrence.schedule(
                    variable.name, piece, info.ranges, grid, writes,
                    self._at_every_index(piece, info),
                    lambda e: self.evaluate(e, self.static), self.source)

    def _at_every_index(self, piece: Piece, info: PieceInfo):
        """e -> its values at every index of the piece's loops (data known now)."""
        return lambda e: over_plates(lambda env: jnp.asarray(self.evaluate(e, env)),
                                     piece.plates, info.ranges, self.static)

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
                        self._at_every_index(piece, info)))
            pieces.sort(key=lambda p: (p.piece.span.line, p.piece.span.column))
            grids = {n: self.shapes[n][:len(self.graph[n].pieces[0].indices)] for n in names}
            group, scans = recurrence.schedule_group(
                names, pieces, grids, lambda e: self.evaluate(e, self.static), self.source)
            self.scans.update(scans)
            self.groups.update({n: group for n in names})
