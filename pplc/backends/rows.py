"""Which reads inside a loop are the array itself: a decision of the lowering plan.

A statement in loops is evaluated for one index tuple and vectorized over its plates
(evaluate.py `over_plates`). Read literally, `y[n]` in `for n in range(N)` is then a
gather of `y` at the iota 0..N-1, and its gradient a scatter-add: both cost more than the
array itself, and XLA's SPMD partitioner does not see a gather at an iota as the
identity, so with the data split across devices every device would gather every row
(docs/scaling.md). Here the plan decides, once, which subscripts run over the whole of
their axis in order, so that the lowering maps the array along that axis together with
the loop index (`jax.vmap` of the array, row_views.py) instead of indexing it:

  * `A[..., i, ...]` where `i` is the index of one of the statement's own loops, running
    over `range(a, b)` with 0 <= a <= b <= the axis's extent: the array's axis, sliced
    statically to [a, b) where that is not the whole axis;
  * several such positions in one subscript (`X[n, k]`), each a different loop;
  * the other positions (`x[n, g[n]]`, `y[n - 1]`) stay ordinary subscripts, read from
    what the mapping leaves: a gather only where the index depends on data.

The left side of a `~` (`y[n] ~ ...`, the value its density reads) is one such read.
Reads inside an array comprehension (`OverPlates`) or a function's body are left as
they are. The result is exact: the same elements, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pplc.frontend import ast
from pplc.ir.graph import Graph, Piece


@dataclass(frozen=True)
class Row:
    """`array[...]` read along loops: each mapped position of the subscript is
    (position, loop depth, loop index name, start, stop)."""

    array: str
    mapped: tuple[tuple[int, int, str, int, int], ...]

    def matches(self, node) -> bool:
        """Whether a subscript node is this read (the same array and loop indices at the
        mapped positions)."""
        return (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
                and node.value.id == self.array
                and all(position < len(node.indices)
                        and isinstance(node.indices[position], ast.Name)
                        and node.indices[position].id == index
                        for position, _, index, _, _ in self.mapped))

    def text(self) -> str:
        subscript = {p: i for p, _, i, _, _ in self.mapped}
        last = max(subscript)
        return f"{self.array}[{', '.join(subscript.get(k, ':') for k in range(last + 1))}]"


def decide(graph: Graph, shapes: Mapping[str, tuple[int, ...]], pieces: Mapping
           ) -> dict[tuple[str, int], tuple[Row, ...]]:
    """The reads of each piece in loops that are its arrays mapped along the loops
    (module docstring); `pieces` maps (name, i) to analysis's PieceInfo (its `ranges`)."""
    out: dict[tuple[str, int], tuple[Row, ...]] = {}
    for variable in graph.variables():
        for i, piece in enumerate(variable.pieces):
            info = pieces.get((variable.name, i))
            if not piece.plates or info is None:
                continue
            rows: list[Row] = []
            for node in _subscripts(variable.name, piece):
                row = _row(node, piece, info.ranges, shapes)
                if row is not None and row not in rows:
                    rows.append(row)
            if rows:
                out[(variable.name, i)] = tuple(rows)
    return out


def _subscripts(name: str, piece: Piece):
    """The subscript nodes a piece reads at its own loops' level (not inside array
    comprehensions), its `~`'s left side included."""
    roots = [e for e in (piece.value, piece.distribution) if e is not None]
    if piece.distribution is not None and piece.indices is not None:
        roots.insert(0, ast.Index(ast.Name(name, piece.span), piece.indices, piece.span))
    for root in roots:
        yield from _in_order(root)


def _in_order(node):
    if isinstance(node, ast.OverPlates):
        return
    if isinstance(node, ast.Index):
        yield node
    for child in ast.children(node):
        yield from _in_order(child)


def _row(node: ast.Index, piece: Piece, ranges, shapes) -> Row | None:
    if not isinstance(node.value, ast.Name) or node.value.id not in shapes:
        return None
    shape = shapes[node.value.id]
    depth_of = {plate.index: depth for depth, plate in enumerate(piece.plates)}
    if node.value.id in depth_of:
        return None
    mapped, used = [], set()
    for position, index in enumerate(node.indices[:len(shape)]):
        if not isinstance(index, ast.Name) or index.id not in depth_of or index.id in used:
            continue
        depth = depth_of[index.id]
        r = ranges[depth]
        if r.step != 1 or not 0 <= r.start <= r.stop <= shape[position]:
            continue
        used.add(index.id)
        mapped.append((position, depth, index.id, r.start, r.stop))
    return Row(node.value.id, tuple(mapped)) if mapped else None


def describe(rows: Mapping[tuple[str, int], tuple[Row, ...]], graph: Graph) -> list[str]:
    """One line per statement: the reads taken as the array itself."""
    out = []
    for (name, i), reads in rows.items():
        line = graph[name].pieces[i].span.line
        out.append(f"line {line}: {', '.join(r.text() for r in reads)} read as the array "
                   "along the loop (no gather)")
    return out


def covers(piece: Piece, ranges, shape: tuple[int, ...]) -> bool:
    """Whether a piece's left side is its loops in order, each over the whole of its axis
    (`mu[n, k] = ...` in `for n in range(N): for k in range(K)` with mu: real[N, K]): its
    values are then the array itself, set without a scatter."""
    indices = piece.indices or ()
    return (0 < len(indices) == len(piece.plates) <= len(shape)
            and all(isinstance(index, ast.Name) and index.id == plate.index
                    and r.step == 1 and r.start == 0 and r.stop == extent
                    for index, plate, r, extent in zip(indices, piece.plates, ranges, shape)))
