"""Which data arrays are split across devices, along which axis: a decision of the plan.

With `--shard-data` (`sample(shard_data=True)`) the arrays that run over the observations
are placed on a device mesh split along that axis, and everything else is replicated
(inference/sharding.py places them; JAX's SPMD partitioner splits the computation and
inserts the sum of the per-device partial log densities, so value and gradient are the
single-device ones up to the order of the summation). The decision is made here, once,
from the shaped graph, so that `pplc ir --plan` and `pplc explain` say what runs:

  * the plate is the data size over which observations run (a dimension of an observed
    array's declared type, or the stop of a loop around a `~` of observed data; for a
    `factor`, which is what a `~` becomes when a discrete latent is summed out, the same of
    the data it reads), the largest if several;
  * every data array (and every deterministic of data alone) with an axis over that size is
    split along it (the first such axis), unless
  * a recurrence reads it: a piece computed in order along its loop (a scan, an array that
    reads its own earlier elements, the forward algorithm of a summed-out Markov chain)
    cannot be split along its own axis, so the arrays it reads stay whole on every device.

Which arrays are split changes only where the work runs, never the result: the
partitioner keeps the program's meaning whatever the placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from pplc.errors import Span
from pplc.frontend import ast
from pplc.ir.graph import Graph, Kind, Piece, reads_itself

RECURSIVE_CALLS = frozenset({"hmm_forward", "hmm_smooth"})
# `shard_data="auto"` splits when each device's share of the split arrays is at least this
# (docs/scaling.md, measured with benchmarks/sharding.py on CPU devices: with shares of
# 1.3-2.7 MB the split gradient took 5-10% more CPU than one device, with 6.7 MB and more
# at 10^6 rows 30-60% less).
AUTO_MIN_BYTES_PER_DEVICE = 4 * 2**20


@dataclass(frozen=True)
class Sharding:
    """The observations' plate (`size` = `extent` rows), the arrays split along it (name ->
    axis) and those over it kept whole (name -> why)."""

    size: str | None   # None: no observed array runs over a data size
    extent: int
    span: Span | None
    axes: Mapping[str, int] = field(default_factory=dict)
    whole: Mapping[str, str] = field(default_factory=dict)
    # split arrays read row by row in a loop over the plate (name -> the loop's line): the
    # lowering maps them along the loop (rows.py), which splits like a whole array, except
    # where the devices do not divide the rows: then they are read by gathers, their rows
    # gathered onto every device (inference/sharding.py, docs/scaling.md)
    by_row: Mapping[str, int] = field(default_factory=dict)
    nbytes: int = 0   # the split arrays' bytes (auto's measure of the work to split)

    def auto(self, devices: int) -> bool:
        """Whether `shard_data="auto"` splits over `devices`: more than one, something to
        split, and each device's share large enough to pay for the collective."""
        return (devices > 1 and bool(self.axes)
                and self.nbytes / devices >= AUTO_MIN_BYTES_PER_DEVICE)

    def describe_auto(self) -> str:
        mib = AUTO_MIN_BYTES_PER_DEVICE / 2**20
        most = int(self.nbytes // AUTO_MIN_BYTES_PER_DEVICE)
        share = f"{self.nbytes / 2**20:.3g} MiB to split, {mib:g} MiB a device at least"
        if not self.axes or most < 2:
            return f"auto keeps the data whole ({share})"
        return f"auto splits over 2 to {most} devices ({share}), else keeps them whole"

    def describe(self) -> str:
        if self.size is None:
            return "nothing to split: no observed array runs over a data size"
        split = ", ".join(f"{n} (axis {a})" for n, a in self.axes.items()) or "nothing"
        text = f"split along {self.size} = {self.extent}: {split}"
        for name, why in self.whole.items():
            text += f"; {name} kept whole: {why}"
        if self.by_row:
            lines = sorted(set(self.by_row.values()))
            text += (f"; {', '.join(self.by_row)} read row by row in a loop (line"
                     f"{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}): split "
                     f"too where the devices divide {self.size} = {self.extent}, else "
                     "gathered onto every device (docs/scaling.md)")
        return text + "; " + self.describe_auto()


def decide(graph: Graph, shapes: Mapping[str, tuple[int, ...]], sizes: Mapping[str, int],
           arrays, data_only=(), recurrences=()) -> Sharding:
    """The sharding of a conditioned model (module docstring); with `size` None, at the
    first observation, when no observed array runs over a data size. `arrays`: the data
    arrays' names; `recurrences`: the (name, piece index) of pieces computed in order (the
    plan's scans and groups)."""
    candidates: dict[str, Span] = {}
    for variable in graph.of_kind(Kind.OBSERVED, Kind.FACTOR):   # a factor: a summed-out `~`
        dims = variable.declared_type.shape if variable.declared_type is not None else ()
        for dim in dims:
            if isinstance(dim, ast.Name) and dim.id in sizes:
                candidates.setdefault(dim.id, dim.span)
        for piece in variable.pieces:
            for plate in piece.plates:
                if isinstance(plate.stop, ast.Name) and plate.stop.id in sizes:
                    candidates.setdefault(plate.stop.id, plate.stop.span)
            if variable.kind is Kind.FACTOR:   # the data a summed-out `~` observed
                for read in sorted({n.id for n in _reads(piece)} & set(arrays)):
                    declared = graph[read].declared_type if read in graph else None
                    for dim in declared.shape if declared is not None else ():
                        if isinstance(dim, ast.Name) and dim.id in sizes:
                            candidates.setdefault(dim.id, dim.span)
    if not candidates:
        observed = graph.of_kind(Kind.OBSERVED, Kind.FACTOR)
        return Sharding(None, 0, observed[0].pieces[0].span if observed else None)
    size = max(candidates, key=lambda s: sizes[s])   # the first of the largest
    extent = sizes[size]
    axes: dict[str, int] = {}
    for name in arrays:
        axis = _declared_axis(graph, name, size)
        if axis is not None:
            axes[name] = axis
    for name in data_only:   # no declared type: the one axis of the plate's extent
        matching = [k for k, n in enumerate(shapes.get(name, ())) if n == extent]
        if len(matching) == 1:
            axes[name] = matching[0]
    whole: dict[str, str] = {}
    for variable in graph.variables():
        for i, piece in enumerate(variable.pieces):
            if not _in_order(variable.name, i, piece, recurrences):
                continue
            what = f"the recurrence on line {piece.span.line}"
            if variable.kind is Kind.FACTOR and "@" in variable.name:
                what = (f"the forward algorithm of the summed-out Markov chain "
                        f"'{variable.name.split('@')[-1]}' (line {piece.span.line})")
            for read in sorted({n.id for n in _reads(piece)} & set(axes)):
                del axes[read]
                whole[read] = f"read by {what}, which runs in order along its loop"
    nbytes = sum(int(getattr(arrays[name], "nbytes", 0)) for name in axes
                 if isinstance(arrays, Mapping) and name in arrays)
    return Sharding(size, extent, candidates[size], axes, whole, _by_row(graph, size, axes),
                    nbytes)


def _by_row(graph: Graph, size: str, axes: Mapping[str, int]) -> dict[str, int]:
    """Split arrays indexed by the index of a loop over `size` at their split axis."""
    out: dict[str, int] = {}
    over = lambda plates: {p.index for p in plates
                           if isinstance(p.stop, ast.Name) and p.stop.id == size}
    for variable in graph.variables():
        for piece in variable.pieces:
            outer = over(piece.plates)
            exprs = [e for e in (piece.value, piece.distribution) if e is not None]
            if piece.indices is not None and variable.name in axes:
                exprs.append(ast.Index(ast.Name(variable.name, piece.span), piece.indices,
                                       piece.span))
            for expr in exprs:
                loops = outer | {i for node in ast.walk(expr) if isinstance(node, ast.OverPlates)
                                 for i in over(node.plates)}
                for node in ast.walk(expr):
                    if (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
                            and node.value.id in axes
                            and len(node.indices) > axes[node.value.id]):
                        index = node.indices[axes[node.value.id]]
                        if isinstance(index, ast.Name) and index.id in loops:
                            out.setdefault(node.value.id, piece.span.line)
    return out


def _declared_axis(graph: Graph, name: str, size: str) -> int | None:
    """The first axis of a data array declared over `size` (`real[N, K]`: 0 for N)."""
    if name not in graph or graph[name].declared_type is None:
        return None
    dims = graph[name].declared_type.shape
    return next((k for k, d in enumerate(dims) if isinstance(d, ast.Name) and d.id == size),
                None)


def _in_order(name: str, i: int, piece: Piece, recurrences) -> bool:
    """Whether a piece is computed element after element (it cannot be split)."""
    calls = [c for e in (piece.value, piece.distribution) if e is not None
             for c in ast.walk(e) if isinstance(c, ast.Call)]
    return ((name, i) in recurrences or reads_itself(name, piece)
            or any(c.func in RECURSIVE_CALLS for c in calls))


def _reads(piece: Piece):
    for expr in (piece.value, piece.distribution, *(piece.indices or ())):
        if expr is not None:
            yield from ast.names_in(expr)
