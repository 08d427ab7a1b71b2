"""Recursive definitions: which elements of its own array a piece reads, and so in what
order its elements can be computed.

`c[t, j] = c[t - 1, j] + y[j, t - 1]` inside `for j` / `for t` defines every element from
an earlier one. Whether such a definition is well founded, and how to compute it, is a
question about elements, not about the text: every subscript is a function of loop indices
and data, known once the model is conditioned, so this module evaluates the piece's writes
and reads at every loop index and decides, in this order of preference:

- `Scan(plate=m)`: every read goes strictly backwards along loop m, so a `lax.scan` over
  loop m computes it, the other loops vectorized inside each step. With `lags`, the reads
  are `c[..., t - k, ...]` at fixed k and the scan carries only the last max(k) slices;
- `Scan(order=...)`: no loop works (reads go backwards along different loops, or forwards
  to elements defined by another piece); one iteration per step, in an order in which
  each reads only elements computed before it;
- otherwise some element depends on itself: refused, at the read.

Elements defined by other pieces of the variable (the base cases) are computed first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import networkx as nx
import numpy as np

from pplc.backends import scan_forms
from pplc.errors import PplcError, error
from pplc.frontend import ast
from pplc.ir.graph import Piece


@dataclass(frozen=True)
class Scan:
    """How a recursive piece is evaluated (see the module docstring).

    `plate`: the position of the scanned loop among the piece's plates, or None for one
    iteration per step in `order` (rows of loop-index values); neither when the piece
    reads only elements that other pieces define (`h[1] = a * h[0]`): then it is
    evaluated at once, vectorized over all its loops, after them. `axis`: the array axis the
    scanned loop's index writes, and `lags` the constant offsets of the reads along it,
    when the scan carries a window of the last max(lags) slices instead of the array.
    `form`: a windowed first-order recurrence's algebraic form (scan_forms.py: linear,
    log-semiring matrix, or "" for any other), run as a parallel prefix scan when
    `parallel`, else sequentially with the loop unrolled `unroll` times.
    """

    plate: int | None
    axis: int | None = None
    lags: tuple[int, ...] = ()
    order: np.ndarray | None = None
    form: str = ""
    parallel: bool = False
    unroll: int = 1

    @property
    def at_once(self) -> bool:
        return self.plate is None and self.order is None

    def describe(self, piece: Piece) -> str:
        if self.at_once:
            return "at once, after the statements defining the elements it reads"
        if self.plate is None:
            return f"a scan over its {len(self.order)} iterations one at a time, in dependency order"
        index = piece.plates[self.plate].index
        others = [p.index for k, p in enumerate(piece.plates) if k != self.plate]
        text = f"a scan over {index}"
        if others:
            text += f", vectorized over {', '.join(others)} in each step"
        if self.lags:
            text += f", carrying the last {max(self.lags)} slice(s) (lags " \
                    f"{', '.join(map(str, self.lags))})"
        if self.form:
            text += f"; {self.form} recurrence, its coefficients computed for every step at " \
                    "once, then a " + ("parallel prefix scan" if self.parallel else
                                       "sequential scan")
        if not self.parallel and self.unroll > 1:
            text += f", unrolled x{self.unroll}"
        return text


def own_reads(name: str, expr) -> list:
    """The sub-expressions of `expr` that read `name`: `name[...]` nodes, and bare `name`
    (the whole array) where it is not the subscripted value of one of those."""
    subscripted = {id(n.value) for n in ast.walk(expr)
                   if isinstance(n, ast.Index) and isinstance(n.value, ast.Name)}
    return [n for n in ast.walk(expr)
            if (isinstance(n, ast.Index) and isinstance(n.value, ast.Name) and n.value.id == name)
            or (isinstance(n, ast.Name) and n.id == name and id(n) not in subscripted)]


def schedule(name: str, piece: Piece, ranges: list[range], grid: tuple[int, ...],
             writes: list[np.ndarray], at_every_index: Callable, static_value: Callable,
             source) -> Scan:
    """The evaluation order of a recursive `=` piece of `name`.

    `grid`: the variable's leading axes, those the piece's subscripts address; `writes`:
    the piece's subscripts at every loop index (arrays over the loops). `at_every_index(e)`
    evaluates an expression at every loop index (raising KeyError or PplcError when it
    reads something not known now); `static_value(e)` evaluates one without loop indices.
    """
    sizes = [len(r) for r in ranges]
    count = math.prod(sizes)
    writer = np.full(grid, -1)                      # element -> the iteration writing it
    writer[tuple(np.ravel(w) for w in writes)] = np.arange(count)
    position = np.unravel_index(np.arange(count), sizes)  # iteration -> loop positions
    written_at = [np.where(writer >= 0, p[np.maximum(writer, 0)], -1) for p in position]
    reads = [(node, _read_axes(node, name, grid, count, at_every_index, static_value))
             for node in own_reads(name, piece.value)]

    if all(np.all(_box_max(written_at[0], axes) < 0) for _, axes in reads):
        return Scan(None)   # it reads only elements other pieces define
    valid = [m for m in range(len(ranges))
             if all(np.all(_box_max(written_at[m], axes) < position[m]) for _, axes in reads)]
    if valid:
        windowed = [(m, _window(name, piece, m, grid, ranges)) for m in valid]
        windowed = [(m, w) for m, w in windowed if w is not None]
        if windowed:
            m, (axis, lags) = windowed[0]
            form, parallel, unroll = scan_forms.strategy(
                scan_forms.form_of(name, piece, axis, lags), sizes[m],
                math.prod(sizes) // sizes[m])
            return Scan(m, axis, lags, form=form, parallel=parallel, unroll=unroll)
        return Scan(valid[0])
    order = _dependency_order(name, piece, writer, reads, count, source)
    loops = np.stack([np.asarray(r)[p] for r, p in zip(ranges, position)], axis=1)
    return Scan(None, order=loops[order])


def scan_from_text(name: str, piece: Piece) -> Scan | None:
    """A loop the subscripts alone prove can be scanned, whatever the data: some axis is
    written with loop m's bare index t and every read of `name` has `t - k` (k >= 1 a
    constant) at that axis, so it reads an element written at an earlier step of loop m.
    None when the text alone does not tell."""
    written = [i.id if isinstance(i, ast.Name) else None for i in piece.indices or ()]
    reads = own_reads(name, piece.value)
    for m, plate in enumerate(piece.plates):
        if plate.index not in written:
            continue
        axis = written.index(plate.index)
        if all(isinstance(node, ast.Index) and len(node.indices) > axis
               and _lag(node.indices[axis], plate.index) is not None for node in reads):
            return Scan(m)
    return None


def _read_axes(node, name, grid, count, at_every_index, static_value) -> list:
    """Per axis of the grid, what `node` reads: an integer array over the iterations, or a
    (start, stop) range of the axis (a slice, or a subscript missing or unknown now)."""
    subscripts = node.indices if isinstance(node, ast.Index) else ()
    axes = []
    for axis, size in enumerate(grid):
        sub = subscripts[axis] if axis < len(subscripts) else None
        axes.append((0, size))
        if sub is None or any(n.id == name for n in ast.names_in(sub)):
            continue
        try:
            if isinstance(sub, ast.Slice):
                bounds = [None if b is None else static_value(b) for b in (sub.start, sub.stop)]
                picked = range(size)[slice(*(None if b is None else int(b) for b in bounds))]
                axes[-1] = (picked.start, max(picked.start, picked.stop)) if picked.step == 1 \
                    else (0, size)
                continue
            values = np.asarray(at_every_index(sub))
        except (KeyError, PplcError, TypeError, ValueError):
            continue  # not known before sampling: assume it may read any element
        if values.dtype.kind not in "iu":
            continue
        values = np.broadcast_to(values, values.shape).ravel()
        if values.size != count:
            continue
        axes[-1] = np.where(values < 0, values + size, values)
    return axes


def _box_max(table: np.ndarray, axes: list) -> np.ndarray:
    """max of `table` over the elements each iteration reads (-1 where none)."""
    ranged = [a for a, sel in enumerate(axes) if isinstance(sel, tuple)]
    slicer = tuple(slice(*sel) if isinstance(sel, tuple) else slice(None) for sel in axes)
    part = table[slicer]
    if ranged:
        part = part.max(axis=tuple(ranged), initial=-1) if part.size else \
            np.full([s for a, s in enumerate(part.shape) if a not in ranged], -1)
    points = tuple(np.clip(sel, 0, table.shape[a] - 1) for a, sel in enumerate(axes)
                   if not isinstance(sel, tuple))
    if not points:
        return np.asarray(part)
    return part[points]


def _dependency_order(name, piece, writer, reads, count, source) -> np.ndarray:
    """An order of the iterations in which each reads only elements computed before, or a
    diagnostic at the read that closes a cycle."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(count))
    edge_read = {}
    for node, axes in reads:
        for i in range(count):
            box = tuple(slice(*sel) if isinstance(sel, tuple) else
                        int(np.clip(sel[i], 0, writer.shape[a] - 1))
                        for a, sel in enumerate(axes))
            for w in np.unique(np.ravel(writer[box])):
                if w >= 0:
                    graph.add_edge(int(w), i)
                    edge_read.setdefault((int(w), i), node)
    try:
        return np.asarray(list(nx.lexicographical_topological_sort(graph)), dtype=int)
    except nx.NetworkXUnfeasible:
        pass
    cycle = nx.find_cycle(graph)
    node = edge_read[cycle[0]]
    element = np.argwhere(writer == cycle[0][0])[0]
    which = f"{name}[{', '.join(str(int(k)) for k in element)}]"
    raise error(f"{ast.to_source(node)} reads an element of '{name}' that is not computed "
                f"yet: {which} depends on itself through this read", source, node.span,
                hint=f"a recursive definition may only read elements defined before, such "
                     f"as {name}[t - 1]")


def _window(name: str, piece: Piece, m: int, grid, ranges) -> tuple[int, tuple[int, ...]] | None:
    """(axis, lags) when the scan over loop m can carry a window: the piece writes whole
    slices (its subscripts are its loop indices, each loop over a whole axis but m's), and
    every read of `name` is `name[..., t - k, ...]` with t loop m's index at that axis and
    k a positive integer constant. Otherwise None."""
    indices = piece.indices or ()
    loops = [p.index for p in piece.plates]
    if len(indices) != len(loops) or not all(isinstance(i, ast.Name) for i in indices) \
            or sorted(i.id for i in indices) != sorted(loops):
        return None
    axis = [i.id for i in indices].index(loops[m])
    for k, (loop, r) in enumerate(zip(loops, ranges)):
        if k != m and (r.start != 0 or r.stop != grid[[i.id for i in indices].index(loop)]
                       or r.step != 1):
            return None
    lags = set()
    for node in own_reads(name, piece.value):
        if not isinstance(node, ast.Index) or len(node.indices) <= axis:
            return None
        lag = _lag(node.indices[axis], loops[m])
        if lag is None or any(n.id == name for i in node.indices for n in ast.names_in(i)):
            return None
        lags.add(lag)
    return axis, tuple(sorted(lags))


def _lag(index, loop: str) -> int | None:
    """k for an index `loop - k` (k a positive integer literal), else None."""
    if isinstance(index, ast.BinOp) and index.op == "-" and isinstance(index.left, ast.Name) \
            and index.left.id == loop and isinstance(index.right, ast.Number) \
            and float(index.right.value).is_integer() and index.right.value >= 1:
        return int(index.right.value)
    return None


def lag_read(name: str, axis: int, loop: str, lag_names: dict[int, str]) -> Callable:
    """For `ast.substitute`: `name[a, t - k, b]` -> `name@lagk[a, b]` (the slice of the
    window), everything else unchanged."""
    def replace(e):
        if isinstance(e, ast.Index) and isinstance(e.value, ast.Name) and e.value.id == name:
            k = _lag(e.indices[axis], loop)
            row = ast.Name(lag_names[k], e.span)
            rest = e.indices[:axis] + e.indices[axis + 1:]
            return ast.Index(row, rest, e.span) if rest else row
        return None
    return replace


# ---------------------------------------------------------------- several arrays at once

@dataclass(frozen=True)
class Stage:
    """One step of computing a group of arrays defined in terms of each other's elements:
    `pieces` ((name, piece index) pairs) computed at once (one piece reading only elements
    of earlier stages), by that piece's own `Scan` (one piece reading its own elements),
    or jointly (`joint`: several pieces in one `lax.scan` over the loop they share, at
    position `plates[k]` among piece k's loops, in this order within each step)."""

    pieces: tuple[tuple[str, int], ...]
    joint: bool = False
    plates: tuple[int, ...] = ()


@dataclass(frozen=True)
class Group:
    """Deterministic arrays that read each other's elements (ARMA's `nu[t]` reads
    `err[t - 1]`, `err[t]` reads `nu[t]`): a cycle between the variables that is none
    between their elements. They are computed together, stage by stage."""

    names: tuple[str, ...]
    stages: tuple[Stage, ...]


@dataclass
class GroupPiece:
    """What the group schedule needs of one piece (see `schedule`)."""

    name: str
    index: int
    piece: Piece
    ranges: list[range]
    writes: list[np.ndarray]
    at_every_index: Callable


def schedule_group(names: tuple[str, ...], pieces: list[GroupPiece], grids: dict,
                   static_value: Callable, source) -> tuple[Group, dict]:
    """The stages of a group, and the `Scan` of every piece that reads only its own
    elements among the group's unfinished ones ((name, index) -> Scan)."""
    owner, iteration, positions = {}, {}, []
    for name in names:
        owner[name] = np.full(grids[name], -1)
        iteration[name] = np.full(grids[name], -1)
    for k, p in enumerate(pieces):
        sizes = [len(r) for r in p.ranges]
        count = math.prod(sizes)
        where = tuple(np.ravel(w) for w in p.writes)
        owner[p.name][where] = k
        iteration[p.name][where] = np.arange(count)
        positions.append(np.unravel_index(np.arange(count), sizes) if sizes else ())
    reads = [[(name, node, _read_axes(node, name, grids[name], math.prod(len(r) for r in
                                                                         p.ranges),
                                      p.at_every_index, static_value))
              for name in names for node in own_reads(name, p.piece.value)] for p in pieces]

    dependence = nx.DiGraph()
    dependence.add_nodes_from(range(len(pieces)))
    for k, piece_reads in enumerate(reads):
        for name, _, axes in piece_reads:
            for q in np.unique(_box_union(owner[name], axes)):
                if q >= 0:
                    dependence.add_edge(int(q), k)
    condensed = nx.condensation(dependence)
    stages, scans = [], {}
    for c in nx.lexicographical_topological_sort(
            condensed, key=lambda c: min(condensed.nodes[c]["members"])):
        ks = sorted(condensed.nodes[c]["members"])
        if len(ks) == 1 and not dependence.has_edge(ks[0], ks[0]):
            p = pieces[ks[0]]
            stages.append(Stage(((p.name, p.index),)))
            scans[(p.name, p.index)] = Scan(None)
        elif len(ks) == 1:
            p = pieces[ks[0]]
            stages.append(Stage(((p.name, p.index),)))
            scans[(p.name, p.index)] = schedule(
                p.name, p.piece, p.ranges, grids[p.name], p.writes, p.at_every_index,
                static_value, source)
        else:
            stages.append(_joint_stage([pieces[k] for k in ks], ks, reads, owner, iteration,
                                       positions, source))
    return Group(names, tuple(stages)), scans


def _joint_stage(group: list[GroupPiece], ks: list[int], reads, owner, iteration, positions,
                 source) -> Stage:
    """Several pieces in one scan over a loop they all share, if every read goes to an
    earlier step or to a piece ordered before it in the same step."""
    shared = [p for p in group[0].piece.plates
              if all(p in g.piece.plates for g in group[1:])]
    for plate in shared:
        at = {k: g.piece.plates.index(plate) for k, g in zip(ks, group)}
        step_of = {}   # name -> the step at which each element is written by this stage
        for name in {g.name for g in group}:
            table = np.full(owner[name].shape, -1)
            for k in ks:
                mine = owner[name] == k
                table[mine] = positions[k][at[k]][iteration[name][mine]]
            step_of[name] = table
        same_step, valid = nx.DiGraph(), True
        same_step.add_nodes_from(ks)
        for k in ks:
            step = positions[k][at[k]]
            for name, _, axes in reads[k]:
                for q in ks:
                    if not (owner[name] == q).any():
                        continue
                    table = np.where(owner[name] == q, step_of[name], -1)
                    latest = _box_max(table, axes)
                    if np.any(latest > step):
                        valid = False
                    elif np.any(latest == step):
                        same_step.add_edge(q, k)
        if not valid or not nx.is_directed_acyclic_graph(same_step):
            continue
        order = list(nx.lexicographical_topological_sort(same_step))
        by_k = dict(zip(ks, group))
        return Stage(tuple((by_k[k].name, by_k[k].index) for k in order), joint=True,
                     plates=tuple(at[k] for k in order))
    first = group[0]
    names = sorted({g.name for g in group})
    raise error(f"{' and '.join(repr(n) for n in names)} are defined in terms of each other's "
                "elements in a way pplc cannot order: no loop they share has every read go "
                "to an earlier step", source, first.piece.span,
                hint="define them in one loop, each element reading elements of earlier "
                     "iterations or ones defined above it in the same iteration")


def _box_union(table: np.ndarray, axes: list) -> np.ndarray:
    """The entries of `table` that some iteration's read may touch (a superset)."""
    picks = [np.arange(*sel) if isinstance(sel, tuple)
             else np.unique(np.clip(sel, 0, table.shape[a] - 1)) for a, sel in enumerate(axes)]
    return np.ravel(table[np.ix_(*picks)]) if picks else np.ravel(table)
